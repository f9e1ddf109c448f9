"""Commands that evaluate a graph over a data set: ``talon evaluate`` and ``talon sweep``."""

from __future__ import annotations

from pathlib import Path

import click

from talon.cli._common import (
    _console,
    _emit_json,
    _fail,
    _file_argument,
    _json_option,
    _read,
    _refuse_overwriting_inputs,
    _reports_errors,
    _table,
    main,
)

_PRECISIONS = ["fp32", "fp16", "int16", "int8", "int4"]


def _data_options(func):
    options = [
        click.option("--data", "data", required=True, metavar="DATA",
                     help="'digits' (scikit-learn's, the demo's test split), an .npz (arrays x, y) or an .npy file."),
        click.option("--labels", type=click.Path(dir_okay=False, exists=True), help="Labels .npy for an .npy --data."),
        click.option("--steps", "n_steps", type=click.IntRange(min=1), required=True, help="Timesteps per sample."),
        click.option("--encoder", type=click.Choice(["rate", "direct", "sequence"]), default=None,
                     help="How a sample becomes a stimulus (default: direct, or sequence for [T, ...] samples)."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Rate encoder seed."),
        click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: CPU count)."),
        click.option("--serial", is_flag=True, help="Run in this process (no workers)."),
        click.option("--scheduler", metavar="ADDRESS", help="A Dask scheduler (tcp://host:8786) to run on."),
        click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True),
        click.option("--checkpoint", type=click.Path(file_okay=False, path_type=Path),
                     help="Directory of finished shards; a run started again continues from it."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def _check_sweep_outputs(output: Path | None, plot: Path | None) -> None:
    """Refuse, before the sweep runs, a table or plot file whose kind the suffix does not name."""
    if output is not None and output.suffix.lower() not in (".csv", ".json"):
        _fail(f"-o {output}: the table is written as .csv or .json (by the suffix)")
    if plot is not None and plot.suffix:
        from matplotlib.backend_bases import FigureCanvasBase

        kinds = FigureCanvasBase.get_supported_filetypes()
        if plot.suffix[1:].lower() not in kinds:
            _fail(f"--plot {plot}: matplotlib cannot write {plot.suffix!r} images; use .png, .svg or .pdf")


def _run_options(data, labels, encoder, seed, workers, serial, scheduler):
    from talon import evaluate as ev

    if data == "digits" and labels is not None:
        _fail("--labels is for an .npy --data file; the digits data set carries its own labels")
    source = ev.digits() if data == "digits" else ev.as_source(data, labels)
    encoder = ev.Rate(seed) if encoder == "rate" else encoder
    if serial and scheduler:
        _fail("--serial and --scheduler exclude each other")
    executor = "serial" if serial else None
    if scheduler:
        try:
            from distributed import Client
        except ImportError:
            _fail("--scheduler needs dask.distributed: pip install -e '.[dask]' (from the talon checkout)")
        executor = Client(scheduler)
    return source, encoder, executor


@main.command()
@_file_argument
@_data_options
@click.option("--precision", "precisions", type=click.Choice(_PRECISIONS), multiple=True, default=["fp32"],
              show_default=True, help="Repeat to evaluate several precisions.")  # fmt: skip
@click.option("--reference", type=click.Choice([*_PRECISIONS, "torch"]),
              help="Spike agreement against this precision, or talon's PyTorch executor ('torch').")  # fmt: skip
@click.option("--energy-preset", default="neuromorphic_int8", show_default=True, help="See 'talon energy -h'.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the JSON here.")
@_json_option
@_reports_errors
def evaluate(file: Path, data, labels, n_steps, encoder, seed, workers, serial, scheduler, shard_size, checkpoint,
             precisions, reference, energy_preset, output, as_json) -> None:  # fmt: skip
    """Evaluate FILE over a whole data set: accuracy, agreement, energy, NeuroBench metrics."""
    from talon import evaluate as ev
    from talon.evaluate.result import pct

    _refuse_overwriting_inputs(output, file, data, labels)
    source, encoder, executor = _run_options(data, labels, encoder, seed, workers, serial, scheduler)
    result = ev.evaluate(
        _read(file), source, precisions=list(precisions), reference=reference, n_steps=n_steps, encoder=encoder,
        energy_preset=energy_preset, executor=executor, workers=workers, shard_size=shard_size,
        checkpoint=checkpoint, progress=not as_json,
    )  # fmt: skip
    if output:
        ev.save_result(result, output)
    if as_json:
        _emit_json(result.to_dict())
        return
    table = _table(
        f"{file.name}: {result.samples:,} samples x {result.n_steps} steps ({result.shards} shards, {result.executor})",
        "precision", "accuracy", "agreement", "energy/sample", "act. sparsity", "eff. ACs", "eff. MACs",
        right=("accuracy", "agreement", "energy/sample", "act. sparsity", "eff. ACs", "eff. MACs"),
    )  # fmt: skip
    for p in result.precisions.values():
        agreement = p.spike_agreement if p.spike_agreement is not None else p.output_agreement
        synops = p.neurobench["synaptic_operations"] or {}
        table.add_row(
            p.name, pct(p.accuracy), pct(agreement),
            f"{p.energy_per_sample_uj:.4f} uJ", f"{p.neurobench['activation_sparsity']:.4f}",
            f"{synops.get('effective_acs', 0):,.0f}", f"{synops.get('effective_macs', 0):,.0f}",
        )  # fmt: skip
    _console().print(table)
    for f in result.failures:
        click.echo(f"retried: samples {f.start}..{f.stop - 1} (attempt {f.attempt}): {f.error}", err=True)


@main.command()
@_file_argument
@_data_options
@click.option("--precision", "precisions", type=click.Choice(_PRECISIONS), multiple=True, default=["fp32", "int8"],
              show_default=True)  # fmt: skip
@click.option("--weight-bits", type=click.IntRange(2, 32), multiple=True, help="Fixed-point weight widths to sweep.")
@click.option("--energy-preset", "presets", multiple=True, default=["neuromorphic_int8"], show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Table as .csv or .json (by the suffix)."
)
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Accuracy-vs-energy plot (.png/.svg).")
@_json_option
@_reports_errors
def sweep(file: Path, data, labels, n_steps, encoder, seed, workers, serial, scheduler, shard_size, checkpoint,
          precisions, weight_bits, presets, output, plot, as_json) -> None:  # fmt: skip
    """Evaluate FILE at every precision x weight width x energy preset; mark the Pareto front."""
    from talon import evaluate as ev

    _refuse_overwriting_inputs(output, file, data, labels)
    _refuse_overwriting_inputs(plot, file, data, labels, option="--plot")
    _check_sweep_outputs(output, plot)
    source, encoder, executor = _run_options(data, labels, encoder, seed, workers, serial, scheduler)
    grid = {"precision": list(precisions), "energy_preset": list(presets)}
    if weight_bits:
        grid["weight_bits"] = list(weight_bits)
    result = ev.sweep(
        _read(file), source, grid, n_steps=n_steps, encoder=encoder, executor=executor, workers=workers,
        shard_size=shard_size, checkpoint=checkpoint, progress=not as_json,
    )  # fmt: skip
    if output:
        result.to_json(output) if output.suffix.lower() == ".json" else result.to_csv(output)
    if plot:
        result.plot(plot)
    if as_json:
        _emit_json({"rows": result.rows, "pareto": result.pareto})
        return
    table = _table(f"{file.name}: sweep", "point", "accuracy", "energy/sample", "Pareto",
                   right=("accuracy", "energy/sample"))  # fmt: skip
    for i, row in enumerate(result.rows):
        table.add_row(row["label"], f"{row['accuracy']:.2%}", f"{row['energy_per_sample_uj']:.4f} uJ",
                      "*" if i in result.pareto else "")  # fmt: skip
    _console().print(table)
