"""FPGA commands: ``talon csim`` (g++ C simulation of the generated HLS project, compared with the
CPU backend) and ``talon compile-fpga`` (write the HLS project)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from talon.cli._common import (
    EXIT_FINDINGS,
    _console,
    _emit_json,
    _fail,
    _file_argument,
    _json_option,
    _read,
    _reports_errors,
    _table,
    _text,
    main,
)

_fpga_precision = click.option(
    "--precision", type=click.Choice(["int16", "int8", "int4"]), default="int16", show_default=True,
    help="Fixed-point datapath (the CPU backend's integer formats).",
)  # fmt: skip
_fpga_strategy = click.option(
    "--strategy", type=click.Choice(["latency", "resource"], case_sensitive=False), default="latency",
    show_default=True, help="hls4ml strategy: weights in registers (latency) or a BRAM ROM (resource).",
)  # fmt: skip
_fpga_reuse = click.option(
    "--reuse", "reuse_factor", type=click.IntRange(min=1), default=1, show_default=True,
    help="Reuse factor (multiply rounds per weight-layer evaluation).",
)  # fmt: skip


def _load_inputs(path: Path | None, graph):
    """``--inputs``: a .npy array (one Input) or a .npz with one array per Input node name."""
    if path is None:
        return None
    import numpy as np

    if path.suffix == ".npz":
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    if path.suffix == ".npy":
        return np.load(path)
    _fail(f"--inputs {str(path)!r}: expected a .npy array or a .npz archive of arrays named by Input node")
    return None


def _status(as_json: bool, message: str):
    return contextlib.nullcontext() if as_json else _console().status(message)


@main.command()
@_file_argument
@click.option(
    "--steps", "n_steps", type=click.IntRange(min=1), default=None,
    help="Timesteps (default: the inputs' T, else 100).",
)  # fmt: skip
@_fpga_precision
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Input arrays (.npy, or .npz by Input name); default: the seeded default stimulus.")  # fmt: skip
@click.option("--compare/--no-compare", default=True, show_default=True, help="Also run the CPU backend and compare.")
@_fpga_strategy
@_fpga_reuse
@_json_option
@_reports_errors
def csim(
    file: Path,
    n_steps: int | None,
    precision: str,
    inputs_path: Path | None,
    compare: bool,
    strategy: str,
    reuse_factor: int,
    as_json: bool,
) -> None:
    """C-simulate FILE's HLS project with g++ and compare spikes and outputs with the CPU backend."""
    import numpy as np

    from talon.backend import get_backend

    graph = _read(file)
    inputs = _load_inputs(inputs_path, graph)
    with _status(as_json, "generating the HLS project and compiling it with g++ ..."):
        fpga = get_backend("fpga").simulate(
            graph, inputs, n_steps, precision=precision, strategy=strategy, reuse_factor=reuse_factor
        )
    doc: dict[str, Any] = {
        "file": str(file), "precision": precision, "strategy": strategy.lower(), "reuse_factor": reuse_factor,
        "timesteps_run": fpga.timesteps_run,
        "batch_size": fpga.batch_size, "outputs_valid": fpga.outputs_valid, "spike_counts": fpga.spike_counts,
        "csim_seconds": round(fpga.wall_time_s, 3), "default_stimulus": fpga.used_default_stimulus,
    }  # fmt: skip
    identical = True
    cpu = None
    if compare:
        cpu = get_backend("cpu").simulate(graph, inputs, n_steps, precision=precision)
        same_outputs = {name: bool(np.array_equal(fpga.outputs[name], y)) for name, y in cpu.outputs.items()}
        identical = cpu.spike_counts == fpga.spike_counts and all(same_outputs.values())
        doc["cpu_spike_counts"] = cpu.spike_counts
        doc["identical_outputs"] = same_outputs
        doc["identical"] = identical
    if as_json:
        _emit_json(doc)
    else:
        columns = ("spiking node", "C-sim spikes") + (("CPU spikes",) if cpu else ())
        table = _table(f"{file.name}: C simulation, {fpga.timesteps_run} steps, {precision}", *columns,
                       right=columns[1:])  # fmt: skip
        for name, count in fpga.spike_counts.items():
            row = [_text(name), f"{count:,}"] + ([f"{cpu.spike_counts.get(name, 0):,}"] if cpu else [])
            table.add_row(*row)
        _console().print(table)
        if cpu is not None:
            click.echo(f"identical to the CPU backend ({precision}): {'yes' if identical else 'NO'}")
    if not fpga.outputs_valid or not identical:
        raise SystemExit(EXIT_FINDINGS)


@main.command("compile-fpga")
@_file_argument
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory of the HLS project (replaced if it exists).")  # fmt: skip
@_fpga_precision
@click.option("--part", default=None, help="FPGA part (default: xczu9eg-ffvb1156-2-i, the ZCU102).")
@click.option("--project", "project_name", default="snn_demo", show_default=True, help="Top function / project name.")
@click.option("--clock", "clock_period", type=float, default=5.0, show_default=True, help="Clock period in ns.")
@_fpga_reuse
@_fpga_strategy
@click.option("--inputs", "inputs_path", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Calibration inputs (.npy, or .npz by Input name); default: the default stimulus.")  # fmt: skip
@_json_option
@_reports_errors
def compile_fpga(file: Path, output_dir: Path, precision: str, part: str | None, project_name: str,
                 clock_period: float, reuse_factor: int, strategy: str, inputs_path: Path | None,
                 as_json: bool) -> None:  # fmt: skip
    """Write FILE's HLS project (firmware, parameters, testbench, build_prj.tcl) to a directory."""
    _write_hls_project(file, output_dir, precision, part, project_name, clock_period, reuse_factor, strategy,
                       inputs_path, as_json, {})  # fmt: skip


def _write_hls_project(file, output_dir, precision, part, project_name, clock_period, reuse_factor, strategy,
                       inputs_path, as_json, head: dict[str, Any]) -> None:  # fmt: skip
    """``compile-fpga`` and ``compile --target fpga``: ``head`` leads the JSON document (the target)."""
    from talon.backend import get_backend

    graph = _read(file)
    calibration = _load_inputs(inputs_path, graph)
    with _status(as_json, "quantizing and generating the HLS project ..."):
        desc = get_backend("fpga").compile(
            graph, output_dir=output_dir, calibration_inputs=calibration, project_name=project_name, part=part,
            clock_period=clock_period, default_precision=precision, default_reuse_factor=reuse_factor,
            strategy=strategy,
        )  # fmt: skip
    est, hls = desc["estimate"], desc["hls"]
    if as_json:
        _emit_json({**head, "file": str(file), "output_dir": str(output_dir), "precision": precision,
                    "strategy": hls["strategy"], "reuse_factor": hls["reuse_factor"], "hls": hls,
                    "estimate": est})  # fmt: skip
        return
    table = _table(
        f"HLS project {output_dir} ({precision})", "node", "kind", "BRAM_18K", "DSP", "cycles",
        right=("BRAM_18K", "DSP", "cycles"),
    )  # fmt: skip
    for row in est["layers"]:
        table.add_row(_text(row["node"]), row["kind"], str(row["bram_18k"]), str(row["dsp"]), str(row["cycles"]))
    total = est["total"]
    table.add_row("total", "", str(total["bram_18k"]), str(total["dsp"]), str(total["cycles_per_step"]))
    _console().print(table)
    click.echo(
        f"part {hls['part']}, clock {clock_period:g} ns, {hls['strategy']} strategy, reuse factor {hls['reuse_factor']}"
    )
    click.echo(f"estimated latency: {total['latency_us_per_step']:.3f} us per timestep (analytic model, docs/fpga.md)")


# ---- `talon compile --target fpga` ----------------------------------------------------------------
# `talon compile` belongs to talon/cli/mapping_commands.py (cpu by default); this extends that same
# command with the FPGA target instead of registering a second one: `--target fpga -o DIR` writes the
# HLS project exactly as compile-fpga does. compile-fpga's own options (--part, --project, --clock,
# --reuse, --strategy, --inputs) are copied onto `compile` from compile-fpga's definition, so the two
# commands cannot drift apart; they default to None there, so that giving one with another target is
# refused, and take compile-fpga's defaults with --target fpga (--precision too: int16 unless given).

_FPGA_ONLY_OPTIONS = ("part", "project_name", "clock_period", "reuse_factor", "strategy", "inputs_path")


def _fpga_only_option(source: click.Option) -> click.Option:
    default = "" if source.default is None else f" Default: {source.default}."
    return click.Option([*source.opts, source.name], type=source.type, default=None,
                        help=f"[--target fpga] {source.help}{default}")  # fmt: skip


def _extend_compile() -> None:
    import functools

    from click.core import ParameterSource

    from talon.cli import mapping_commands  # noqa: F401  (registers `compile` first)

    cmd = main.commands.get("compile")
    if cmd is None or getattr(cmd, "_fpga_target", False):
        return
    fpga_params = {p.name: p for p in compile_fpga.params}
    cmd.params.extend(_fpga_only_option(fpga_params[name]) for name in _FPGA_ONLY_OPTIONS)
    for param in cmd.params:
        if param.name == "target":
            param.help = "Backend to compile for: cpu (descriptor JSON) or fpga (HLS project directory)."
        if param.name == "output":  # the HLS project is a directory (replaced if it exists)
            param.type = click.Path(path_type=Path)
            param.help = "Write the descriptor JSON here (--target fpga: the HLS project directory, replaced)."
    original = cmd.callback

    @functools.wraps(original)
    @_reports_errors
    def callback(*, file, target, precision, output, as_json, **rest):
        fpga_options = {name: rest.pop(name) for name in _FPGA_ONLY_OPTIONS}
        if target != "fpga":
            given = [fpga_params[name].opts[0] for name, value in fpga_options.items() if value is not None]
            if given and target == "cpu":
                _fail(f"{', '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --target fpga only")
            if target != "cpu":
                _fail(f"--target {target!r} is not a backend talon compiles for (available: cpu, fpga)")
            if output is not None and output.is_dir():
                _fail(f"-o {str(output)!r} is a directory; --target cpu writes the descriptor JSON to a file")
            return original(file=file, target=target, precision=precision, output=output, as_json=as_json,
                            **rest)  # fmt: skip
        if rest.get("hw") is not None:
            _fail("--hw maps onto a many-core chip; it does not apply to --target fpga")
        if output is None:
            _fail("--target fpga needs -o DIR, the directory of the HLS project")
        ctx = click.get_current_context()
        if ctx.get_parameter_source("precision") == ParameterSource.DEFAULT:
            precision = fpga_params["precision"].default
        if precision not in ("int16", "int8", "int4"):
            _fail(f"--target fpga compiles integer datapaths: --precision int16, int8 or int4, not {precision}")
        settings = {name: fpga_params[name].default if value is None else value
                    for name, value in fpga_options.items()}  # fmt: skip
        _write_hls_project(file=file, output_dir=output, precision=precision, as_json=as_json,
                           head={"target": "fpga"}, **settings)  # fmt: skip

    cmd.callback = callback
    cmd._fpga_target = True


_extend_compile()
