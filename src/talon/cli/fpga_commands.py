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
    from talon.backend import get_backend

    graph = _read(file)
    calibration = _load_inputs(inputs_path, graph)
    with _status(as_json, "quantizing and generating the HLS project ..."):
        desc = get_backend("fpga").compile(
            graph, output_dir=output_dir, calibration_inputs=calibration, project_name=project_name, part=part,
            clock_period=clock_period, default_precision=precision, default_reuse_factor=reuse_factor,
            strategy=strategy,
        )  # fmt: skip
    est = desc["estimate"]
    if as_json:
        _emit_json({"file": str(file), "output_dir": str(output_dir), "hls": desc["hls"], "estimate": est})
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
        f"part {desc['hls']['part']}, clock {clock_period:g} ns, {strategy.lower()} strategy, "
        f"reuse factor {reuse_factor}"
    )
    click.echo(f"estimated latency: {total['latency_us_per_step']:.3f} us per timestep (analytic model, docs/fpga.md)")


# ---- `talon compile --target fpga` ----------------------------------------------------------------
# `talon compile` belongs to talon/cli/mapping_commands.py (cpu by default); this extends that same
# command with the FPGA target instead of registering a second one: `--target fpga -o DIR` writes the
# HLS project (as compile-fpga does), `--part` names the FPGA part; every other target goes to the
# original command unchanged.


def _extend_compile() -> None:
    import functools

    from talon.cli import mapping_commands  # noqa: F401  (registers `compile` first)

    cmd = main.commands.get("compile")
    if cmd is None or getattr(cmd, "_fpga_target", False):
        return
    cmd.params.append(click.Option(["--part"], default=None, help="FPGA part for --target fpga."))
    for param in cmd.params:
        if param.name == "target":
            param.help = "Backend to compile for: cpu (descriptor JSON) or fpga (HLS project directory)."
    original = cmd.callback

    @functools.wraps(original)
    @_reports_errors
    def callback(*, file, target, precision, output, as_json, part, **rest):
        if target != "fpga":
            if part is not None:
                _fail("--part applies to --target fpga only")
            return original(file=file, target=target, precision=precision, output=output, as_json=as_json,
                            **rest)  # fmt: skip
        if rest.get("hw") is not None:
            _fail("--hw maps onto a many-core chip; it does not apply to --target fpga")
        if output is None:
            _fail("--target fpga needs -o DIR, the directory of the HLS project")
        if precision not in ("int16", "int8", "int4"):
            _fail(f"--target fpga compiles integer datapaths: --precision int16, int8 or int4, not {precision}")
        ctx = click.get_current_context()
        ctx.invoke(
            compile_fpga, file=file, output_dir=output, precision=precision, part=part, project_name="snn_demo",
            clock_period=5.0, reuse_factor=1, strategy="latency", inputs_path=None, as_json=as_json,
        )  # fmt: skip

    cmd.callback = callback
    cmd._fpga_target = True


_extend_compile()
