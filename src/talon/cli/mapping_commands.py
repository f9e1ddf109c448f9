"""Hardware mapping commands: partition, compile, pipeline (docs/mapping.md, docs/cli.md)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import click

from talon.cli._common import (
    EXIT_FINDINGS,
    _console,
    _emit_json,
    _fail,
    _file_argument,
    _graph_output,
    _json_option,
    _plural,
    _read,
    _refuse_overwriting_inputs,
    _reports_errors,
    _table,
    _text,
    _working,
    main,
)

_hw_option = click.option(
    "--hw", "hw", default="zynq_us_plus", show_default=True,
    help="Hardware: a preset (zynq_7020, zcu102, zynq_us_plus, t1c_asic_target, loihi, spinnaker2) "
    "or a spec .json file.",
)  # fmt: skip
_algorithm_option = click.option(
    "--algorithm", type=click.Choice(["metis", "greedy", "edgemap", "spectral"]), default="metis", show_default=True,
    help="Partitioning algorithm.",
)  # fmt: skip
_seed_option = click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of METIS and of the placement."
)
_activity_option = click.option(
    "--activity", default=None,
    help="Weight the cut by spike traffic: 'simulate' (measured on the default stimulus) "
    "or a JSON file {node: spikes per step}.",
)  # fmt: skip


def _activity(graph, activity: str | None, steps: int = 100):
    if activity is None:
        return None
    if activity == "simulate":
        from talon.backend import get_backend

        return get_backend("cpu").simulate(graph, n_steps=steps)
    try:
        data = json.loads(Path(activity).read_text())
    except OSError as exc:
        raise OSError(f"cannot read activity file {activity!r}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"activity file {activity!r} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"activity file {activity!r} must hold a JSON object {{node: spikes per step}}")
    from talon.graph.inline import inline_subgraphs
    from talon.graph.traffic import check_rate_names

    check_rate_names(graph, inline_subgraphs(graph)[0], data, where=f"activity file {activity!r}")
    return data


def _core_rows(resources) -> list[dict[str, Any]]:
    return [
        {"core": core, "neurons": b.neuron_count, "synapses": b.synapse_count, "sram_bytes": b.sram_bytes,
         "utilization": b.utilization}
        for core, b in resources.budgets.items()
    ]  # fmt: skip


@main.command()
@_file_argument
@_hw_option
@_algorithm_option
@_activity_option
@_seed_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the partitioned graph (.t1c)."
)
@_json_option
@_reports_errors
def partition(
    file: Path, hw: str, algorithm: str, activity: str | None, seed: int, output: Path | None, as_json: bool
) -> None:
    """Split FILE's oversized layers and assign them to the cores of --hw; report the per-core budget.

    Exit code 1 when the mapping does not fit the hardware."""
    from talon import ir
    from talon.graph import allocate, get_spec
    from talon.graph import partition as run_partition

    _graph_output(output)
    spec = get_spec(hw)
    with _working(f"partitioning {file} onto {spec.name}", disable=as_json):
        graph = _read(file)
        with warnings.catch_warnings():  # too few cores: reported below as a violation
            warnings.simplefilter("ignore", UserWarning)
            mapped = run_partition(graph, spec, algorithm, _activity(graph, activity), seed=seed)
        resources = allocate(mapped, spec)
    meta = mapped.partition_metadata
    if output is not None:
        ir.write(output, mapped)
    doc = {
        "file": str(file), "hardware": spec.name, "algorithm": algorithm, "num_cores_used": meta["num_cores_used"],
        "num_cores": spec.num_cores, "split_layers": {k: len(v) for k, v in meta["slices"].items()},
        "metrics": meta["metrics"], "fits_hardware": resources.fits_hardware, "violations": resources.violations,
        "peak_core_utilization": resources.peak_core_utilization, "cores": _core_rows(resources),
        "output": None if output is None else str(output),
    }  # fmt: skip
    if as_json:
        _emit_json(doc)
    else:
        _print_partition(file, spec, meta, resources, output)
    if not resources.fits_hardware:
        raise SystemExit(EXIT_FINDINGS)


def _print_partition(file, spec, meta, resources, output) -> None:
    console = _console()
    m = meta["metrics"]
    console.print(
        f"{file.name} on {spec.name}: {meta['num_cores_used']} of {spec.num_cores} cores ({meta['algorithm']}), "
        f"cut {m['cut_connections']}/{m['connections']} connections, {m['cut_spikes']:,.1f} of "
        f"{m['total_spikes']:,.1f} spikes/step cross cores",
        highlight=False,
    )
    for name, slices in meta["slices"].items():
        console.print(_text(f"split {name} into {len(slices)} slices"))
    table = _table("per-core budget", "core", "neurons", "synapses", "SRAM bytes", "utilization",
                   right=("neurons", "synapses", "SRAM bytes", "utilization"))  # fmt: skip
    for row in _core_rows(resources):
        table.add_row(str(row["core"]), f"{row['neurons']:,}", f"{row['synapses']:,}", f"{row['sram_bytes']:,}",
                      f"{row['utilization']:.2%}")  # fmt: skip
    console.print(table)
    verdict = "fits" if resources.fits_hardware else f"does NOT fit ({len(resources.violations)} violations)"
    console.print(f"peak core utilization {resources.peak_core_utilization:.2%}: {verdict}", highlight=False)
    for v in resources.violations[:10]:
        where = "chip" if v["core"] is None else f"core {v['core']}"  # the core count is the chip's
        console.print(_text(f"  {where}: {v['resource']} {v['used']:,} > {v['limit']:,} ({v['ratio']:.2f}x)"))
    if output is not None:
        console.print(_text(f"wrote {output}"))


@main.command(name="compile")
@_file_argument
@click.option(
    "--hw",
    default=None,
    help="Map onto this hardware first (preset or spec .json); the descriptor carries the mapping.",
)
@click.option("--target", default="cpu", show_default=True, help="Backend to compile for.")
@click.option(
    "--precision", type=click.Choice(["fp32", "fp16", "int16", "int8", "int4"]), default="fp32", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the descriptor JSON here.")
@_json_option
@_reports_errors
def compile_command(
    file: Path, hw: str | None, target: str, precision: str, output: Path | None, as_json: bool
) -> None:
    """Compile FILE to a hardware descriptor (JSON execution plan; with --hw also cores, placement, routes)."""
    from talon.backend import get_backend, list_backends

    if target != "cpu":
        available = ", ".join(b for b in list_backends() if b == "cpu")
        _fail(f"--target {target!r} cannot be compiled by this command yet (available: {available})")
    _refuse_overwriting_inputs(output, file, hw)
    descriptor = get_backend("cpu").compile(_read(file), precision=precision, hw_spec=hw)
    if output is not None:
        descriptor.to_json(output)
    mapping = descriptor.data.get("mapping")
    doc = {
        "file": str(file), "target": target, "precision": precision, "output": None if output is None else str(output),
        "ops": sum(len(c["ops"]) for c in descriptor.schedule), "memory": descriptor.memory,
        "mapping": None if mapping is None else {
            "hardware": mapping["spec"]["name"], "num_cores_used": mapping["num_cores_used"],
            "routing": mapping["routing"]["summary"], "fits_hardware": mapping["resources"]["fits_hardware"],
        },
    }  # fmt: skip
    if as_json:
        _emit_json(doc)
        return
    console = _console()
    console.print(
        f"{file.name}: {doc['ops']} ops, {precision}, peak memory {descriptor.memory['peak_bytes']:,} B",
        highlight=False,
    )
    if mapping is not None:
        r = mapping["routing"]["summary"]
        console.print(
            f"mapped on {mapping['spec']['name']}: {_plural(mapping['num_cores_used'], 'core')}, "
            f"{r['total_compressed_entries']} routing entries ({r['total_entries']} before compression), "
            f"{r['spike_hops']:,.1f} spike-hops/step",
            highlight=False,
        )
    if output is not None:
        console.print(_text(f"wrote {output}"))


@main.command()
@_file_argument
@_hw_option
@_algorithm_option
@click.option("--steps", "n_steps", type=click.IntRange(min=1), default=20, show_default=True)
@click.option(
    "--precision", type=click.Choice(["fp32", "fp16", "int16", "int8", "int4"]), default="fp32", show_default=True
)
@_seed_option
@_json_option
@_reports_errors
def pipeline(file: Path, hw: str, algorithm: str, n_steps: int, precision: str, seed: int, as_json: bool) -> None:
    """load -> lint -> partition -> place -> route -> allocate -> compile -> simulate, one summary.

    The mapped graph is simulated and checked against the unmapped one (identical outputs).
    Exit code 1 when lint finds errors, the mapping does not fit or the outputs differ."""
    import numpy as np

    from talon.backend import get_backend
    from talon.graph import allocate, get_spec, partition, place, route
    from talon.sdk.lint import lint_file

    spec = get_spec(hw)
    rows: list[tuple[str, str, bool]] = []
    ok = True
    stages = ["load", "lint", "partition", "place", "route", "allocate", "compile", "simulate"]
    from rich.progress import Progress

    from talon._terminal import console

    stderr = console(stderr=True)  # on a terminal only: a pipe got a blank first line of stdout
    with Progress(console=stderr, transient=True, disable=as_json or not stderr.is_terminal) as progress:
        task = progress.add_task("pipeline", total=len(stages))

        def done(stage: str, text: str, passed: bool = True) -> None:
            nonlocal ok
            ok = ok and passed
            rows.append((stage, text, passed))
            progress.advance(task)

        graph, lint = lint_file(file)  # lint relies on ir.read's validation of the file
        done("load", f"{len(graph.nodes)} nodes, {len(graph.edges)} edges")
        done("lint", f"{len(lint.errors)} errors, {len(lint.issues) - len(lint.errors)} other findings", lint.is_valid)
        with warnings.catch_warnings():  # too many cores: a failed stage below, not a Python warning
            warnings.simplefilter("ignore", UserWarning)
            mapped = partition(graph, spec, algorithm, seed=seed)
        meta = mapped.partition_metadata
        cores_fit = meta["num_cores_used"] <= spec.num_cores
        done("partition", f"{_plural(meta['num_cores_used'], 'core')}"
                          f"{'' if cores_fit else f' (the chip has {spec.num_cores})'}, "
                          f"{_plural(len(meta['slices']), 'layer')} split, "
                          f"cut ratio {meta['metrics']['cut_ratio']:.3f}",
             cores_fit)  # fmt: skip
        backend = get_backend("cpu")
        if cores_fit:
            placed = place(mapped, spec, seed=seed)
            done(
                "place",
                f"{placed.total_hop_distance:,.1f} spike-hops/step, {placed.improvement:.1%} better than identity",
            )
            route(mapped, spec)
            r = mapped.routing.summary()
            fine = not (r["table_violations"] or r["feedback_violations"])
            done("route", f"{r['total_compressed_entries']} entries (max {r['max_entries_per_router']}/router)", fine)
        else:  # more cores than mesh positions: nothing can be placed, routed or compiled for this chip
            skipped = f"skipped: {meta['num_cores_used']} cores do not fit the {spec.num_cores} of {spec.name}"
            done("place", skipped, False)
            done("route", skipped, False)
        resources = allocate(mapped, spec)
        done("allocate", f"peak core utilization {resources.peak_core_utilization:.2%}", resources.fits_hardware)
        if cores_fit:
            descriptor = backend.compile(mapped, precision=precision)
            done("compile", f"{sum(len(c['ops']) for c in descriptor.schedule)} ops, {precision}")
        else:
            done("compile", skipped, False)
        before = backend.simulate(graph, n_steps=n_steps, precision=precision)
        after = backend.simulate(mapped, n_steps=n_steps, precision=precision)
        same = all(np.array_equal(after.outputs[k], v) for k, v in before.outputs.items()) and after.outputs_valid
        done("simulate", f"{after.total_spikes:,} spikes in {n_steps} steps; outputs "
                         f"{'identical to' if same else 'DIFFER from'} the unmapped graph", same)  # fmt: skip
    if as_json:
        _emit_json({"file": str(file), "hardware": spec.name, "ok": ok,
                    "stages": [{"stage": s, "result": t, "ok": p} for s, t, p in rows]})  # fmt: skip
    else:
        table = _table(f"{file.name} on {spec.name}", "stage", "result", "ok")
        for stage, text, passed in rows:
            table.add_row(stage, _text(text), "yes" if passed else "NO")
        _console().print(table)
    if not ok:
        raise SystemExit(EXIT_FINDINGS)
