"""Commands that run a graph on a backend: simulate, energy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from talon.cli._common import (
    EXIT_FINDINGS,
    _console,
    _emit_json,
    _file_argument,
    _json_option,
    _printable,
    _read,
    _reports_errors,
    _table,
    _text,
    main,
)

# ---- CPU backend ----------------------------------------------------------------------------------

_precision_option = click.option(
    "--precision", type=click.Choice(["fp32", "fp16", "int16", "int8", "int4"]), default="fp32", show_default=True,
    help="Arithmetic of the simulation (fixed point for the int formats).",
)  # fmt: skip


class _EnergyPresetChoice(click.Choice):
    """The names of ``talon.backend.ENERGY_PRESETS``, loaded when needed (``talon -h`` stays instant)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self):
        from talon.backend import ENERGY_PRESETS

        return tuple(ENERGY_PRESETS)

    @choices.setter
    def choices(self, value) -> None:  # click.Choice.__init__ assigns it
        pass


_steps_option = click.option(
    "--steps", "n_steps", type=click.IntRange(min=1), default=100, show_default=True, help="Timesteps to run."
)


@main.command()
@_file_argument
@_steps_option
@_precision_option
@click.option(
    "--events", "events_file", type=click.Path(dir_okay=False, path_type=Path),
    help="Drive the Input with this event file (.h5, .raw, .npy, .aedat4) instead of the default stimulus.",
)  # fmt: skip
@click.option("--bin-us", type=click.IntRange(min=1), default=1000, show_default=True, help="µs per step (--events).")
@click.option(
    "--sensor-size", nargs=2, type=click.IntRange(min=1), default=None, metavar="W H",
    help="Sensor width and height for a flat Input (--events); default: the size the event file records.",
)  # fmt: skip
@_json_option
@_reports_errors
@click.pass_context
def simulate(
    ctx, file: Path, n_steps: int, precision: str, events_file, bin_us: int, sensor_size, as_json: bool
) -> None:
    """Simulate FILE on the CPU backend (seeded default stimulus, or --events); report spikes per layer.

    With --events, step k holds the events of [t0 + k*bin_us, t0 + (k+1)*bin_us); the run covers
    the whole recording unless --steps is given. A flat Input needs the sensor's width and height:
    the event file's own (.h5, .aedat4, .raw headers) or --sensor-size.
    """
    from talon.backend import get_backend

    graph, inputs, event_doc = _read(file), None, None
    if events_file is not None:
        from talon.io import read_events, recorded_sensor_size, stimulus_for_graph

        explicit = ctx.get_parameter_source("n_steps") is not click.core.ParameterSource.DEFAULT
        steps = n_steps if explicit else None
        events = read_events(events_file)
        size = tuple(sensor_size) if sensor_size else recorded_sensor_size(events_file)
        inputs, stim = stimulus_for_graph(graph, events, bin_us, n_steps=steps, sensor_size=size)
        n_steps = stim.n_steps
        event_doc = {"file": str(events_file), "bin_us": bin_us, "used": stim.used_events, "unused": stim.unused_events}
    result = get_backend("cpu").simulate(graph, inputs, n_steps=n_steps, precision=precision)
    doc: dict[str, Any] = {
        "file": str(file), "timesteps_run": result.timesteps_run, "precision": result.precision,
        "outputs_valid": result.outputs_valid, "spike_counts": result.spike_counts,
        "default_stimulus": result.used_default_stimulus,
    }  # fmt: skip
    if event_doc is not None:
        doc["events"] = event_doc
    if result.quantization is not None:
        doc["spike_agreement_with_fp32"] = result.quantization.spike_agreement
    if result.float_nodes:  # a fixed-point run's float32 decode (docs/backend.md §4.6)
        doc["float32_nodes"] = result.float_nodes
    if as_json:
        _emit_json(doc)
    else:
        table = _table(
            f"{file.name}: {result.timesteps_run} steps, {precision}", "neuron layer", "spikes", right=("spikes",)
        )
        for name, count in result.spike_counts.items():
            table.add_row(_text(name), f"{count:,}")
        _console().print(table)
        if result.quantization is not None:
            click.echo(f"spike agreement with fp32: {result.quantization.spike_agreement:.2%}")
        if result.float_nodes:
            click.echo(f"ran in float32 after the fixed-point decode boundary: {', '.join(result.float_nodes)}")
    if not result.outputs_valid:
        raise SystemExit(EXIT_FINDINGS)


@main.command()
@_file_argument
@_steps_option
@_precision_option
@click.option(
    "--preset", type=_EnergyPresetChoice(), default="45nm_cmos", show_default=True,
    help="Energy per operation (docs/backend.md §6).",
)  # fmt: skip
@_json_option
@_reports_errors
def energy(file: Path, n_steps: int, precision: str, preset: str, as_json: bool) -> None:
    """Profile FILE on the CPU backend: latency, operations from measured activity, memory, energy."""
    from talon.backend import get_backend

    prof = get_backend("cpu").profile(_read(file), n_steps=n_steps, energy_preset=preset, precision=precision)
    if as_json:
        fields = {k: v for k, v in vars(prof).items() if k != "simulation"}
        fields["layers"] = {name: vars(layer) for name, layer in prof.layers.items()}
        simulation = prof.simulation
        fields["simulation"] = {
            "timesteps_run": simulation.timesteps_run, "outputs_valid": simulation.outputs_valid,
            "spike_counts": simulation.spike_counts, "default_stimulus": simulation.used_default_stimulus,
            **({"float32_nodes": simulation.float_nodes} if simulation.float_nodes else {}),
        }  # fmt: skip
        _emit_json({"file": str(file), **fields})
    else:
        click.echo(_printable(prof.summary(), keep_newlines=True))
    if not prof.simulation.outputs_valid:  # energy of a run whose outputs are NaN/inf is not a result
        raise SystemExit(EXIT_FINDINGS)
