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
@_json_option
@_reports_errors
def simulate(file: Path, n_steps: int, precision: str, as_json: bool) -> None:
    """Simulate FILE on the CPU backend with its seeded default stimulus; report spikes per layer."""
    from talon.backend import get_backend

    result = get_backend("cpu").simulate(_read(file), n_steps=n_steps, precision=precision)
    doc: dict[str, Any] = {
        "file": str(file), "timesteps_run": result.timesteps_run, "precision": result.precision,
        "outputs_valid": result.outputs_valid, "spike_counts": result.spike_counts,
        "default_stimulus": result.used_default_stimulus,
    }  # fmt: skip
    if result.quantization is not None:
        doc["spike_agreement_with_fp32"] = result.quantization.spike_agreement
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
        }  # fmt: skip
        _emit_json({"file": str(file), **fields})
        return
    click.echo(_printable(prof.summary(), keep_newlines=True))
