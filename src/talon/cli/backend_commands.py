"""Commands that run a graph on a backend: simulate, energy."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from talon._terminal import layer_progress
from talon.cli._common import (
    EXIT_FINDINGS,
    _console,
    _echo_report,
    _emit_json,
    _file_argument,
    _json_option,
    _read,
    _refuse_overwriting_inputs,
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
    help="Sensor width and height (--events): a flat Input's layout; an image Input must match it. "
    "Default: the size the event file records.",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
    help="Write the graph outputs [T, B, ...] to this HDF5 file, chunk by chunk as the run makes them.",
)  # fmt: skip
@_json_option
@_reports_errors
@click.pass_context
def simulate(
    ctx, file: Path, n_steps: int, precision: str, events_file, bin_us: int, sensor_size, output, as_json: bool
) -> None:
    """Simulate FILE on the CPU backend (seeded default stimulus, or --events); report spikes per layer.

    With --events, step k holds the events of [t0 + k*bin_us, t0 + (k+1)*bin_us); the run covers
    the whole recording unless --steps is given. A flat Input needs the sensor's width and height:
    the event file's own (.h5, .aedat4, .raw headers) or --sensor-size. With -o the outputs are
    written to an HDF5 file (dataset outputs/NAME per Output node) as the run goes, not held.
    """
    from talon.backend import get_backend

    _refuse_overwriting_inputs(output, file, events_file)
    if events_file is None:
        given = [f"--{name.replace('_', '-')}" for name in ("bin_us", "sensor_size")
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]  # fmt: skip
        if given:
            raise click.UsageError(f"{' and '.join(given)}: only with --events REC (the recording it describes)")
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
    with contextlib.ExitStack() as stack:
        progress = stack.enter_context(layer_progress(f"simulating {n_steps:,} steps", disable=as_json))
        writer = None if output is None else stack.enter_context(_OutputFile(output, n_steps, precision))
        result = get_backend("cpu").simulate(
            graph, inputs, n_steps=n_steps, precision=precision, progress=progress, on_outputs=writer
        )
        if writer is not None:
            writer.finish(result)
    doc: dict[str, Any] = {
        "file": str(file), "timesteps_run": result.timesteps_run, "precision": result.precision,
        "outputs_valid": result.outputs_valid, "spike_counts": result.spike_counts,
        "default_stimulus": result.used_default_stimulus,
    }  # fmt: skip
    if event_doc is not None:
        doc["events"] = event_doc
    if output is not None:
        doc["output_file"] = str(output)
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


class _OutputFile:
    """The HDF5 file of ``talon simulate -o``: ``outputs/NAME`` float32 ``[T, B, *shape]`` per Output
    node, filled chunk by chunk (``simulate(on_outputs=...)``), and the run's ``precision``,
    ``timesteps_run``, ``outputs_valid`` and ``spike_counts`` (JSON) as attributes of the root.
    Written to a temporary file renamed over the target when the run has succeeded."""

    def __init__(self, path: Path, steps: int, precision: str) -> None:
        self.path, self.steps, self.precision = path, steps, precision

    def __enter__(self):
        from talon.ir import hdf5_output
        from talon.ir.atomic import atomic_output

        self._stack = contextlib.ExitStack()
        with self._stack:  # a failure here unwinds what was opened (the temporary file goes)
            self._fh = self._stack.enter_context(open(self._stack.enter_context(atomic_output(self.path)), "r+b"))
            # through a Python file object: a disk that fills is an OSError, never libhdf5's crash
            self.file = self._stack.enter_context(hdf5_output.create(self._fh))
            self.group = self.file.create_group("outputs")
            self._reserved = 1 << 20  # libhdf5's metadata and chunk indexes
            self._stack = self._stack.pop_all()
        return self

    def __call__(self, start: int, stop: int, outputs: dict) -> None:
        import numpy as np

        from talon.ir import hdf5_output
        from talon.ir.atomic import write_error

        for name, y in outputs.items():
            if name not in self.group:
                if "/" in name:
                    raise click.ClickException(f"output node {name!r}: a name with '/' cannot be an HDF5 dataset")
                ds = self.group.create_dataset(name, (self.steps, *y.shape[1:]), "float32", chunks=True)
                # every chunk the dataset will have, allocated on the disk before libhdf5 writes one
                chunks = [-(-n // c) * c for n, c in zip(ds.shape, ds.chunks, strict=True)]
                self._reserved += int(np.prod(chunks, dtype=np.int64)) * 4
                hdf5_output.reserve(self._fh, self._reserved, self.path)
            self.group[name][start:stop] = y
        try:
            hdf5_output.check(self.file)
        except OSError as exc:
            raise write_error(exc, self.path) from None

    def finish(self, result) -> None:
        import json

        attrs = self.file.attrs
        attrs.update(precision=self.precision, timesteps_run=result.timesteps_run, outputs_valid=result.outputs_valid)
        attrs["spike_counts"] = json.dumps(result.spike_counts)

    def __exit__(self, *exc) -> None:
        from talon.ir.atomic import write_error

        try:
            self._stack.__exit__(*exc)  # closes the HDF5 file (libhdf5 writes its metadata), then renames
        except OSError as failure:
            if exc[0] is not None:
                raise
            raise write_error(failure, self.path) from None


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

    graph = _read(file)
    with layer_progress(f"simulating {n_steps:,} steps", disable=as_json) as progress:
        prof = get_backend("cpu").profile(
            graph, n_steps=n_steps, energy_preset=preset, precision=precision, progress=progress
        )
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
        _echo_report(prof.summary())
    if not prof.simulation.outputs_valid:  # energy of a run whose outputs are NaN/inf is not a result
        raise SystemExit(EXIT_FINDINGS)
