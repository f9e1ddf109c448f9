"""``talon events info|convert|frames``: event files (.h5, .raw EVT 2.0/3.0, .npy) from the command line."""

from __future__ import annotations

from pathlib import Path

import click

from talon.cli._common import _console, _emit_json, _fail, _json_option, _reports_errors, _table, main

_in_file = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


@main.group()
def events() -> None:
    """Event files: summary, conversion between formats, frames."""


@events.command()
@_in_file
@_json_option
@_reports_errors
def info(file: Path, as_json: bool) -> None:
    """Summarise an event file: format, events, ON share, time span, rate, sensor size."""
    from talon.io import event_file_info

    summary = event_file_info(file)
    if as_json:
        _emit_json(summary.to_dict())
        return
    table = _table(f"{file.name}", "property", "value")
    size = summary.sensor_size
    rows = [
        ("format", summary.format),
        ("events", f"{summary.n_events:,}"),
        ("ON events", f"{summary.n_on:,}"),
        ("earliest t (µs)", "—" if summary.t_first is None else f"{summary.t_first:,}"),
        ("latest t (µs)", "—" if summary.t_last is None else f"{summary.t_last:,}"),
        ("duration (µs)", f"{summary.duration_us:,}"),
        ("events/s", "—" if summary.events_per_second is None else f"{summary.events_per_second:,.0f}"),
        ("sensor (W x H)", "—" if size is None else f"{size[0]} x {size[1]}"),
        ("time-sorted", "yes" if summary.time_sorted else "no (sort: talon events convert --sort)"),
    ]
    for key, value in rows:
        table.add_row(key, value)
    _console().print(table)


@events.command()
@_in_file
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sort", is_flag=True, help="Sort the events by time first (needed for unsorted .npy input).")
@click.option(
    "--evt", type=click.Choice(["2.0", "3.0"]), default="3.0", show_default=True, help="EVT version of a .raw OUT."
)
@click.option("--sensor", nargs=2, type=click.IntRange(min=1), default=None, help="Sensor WIDTH HEIGHT to record.")
@_json_option
@_reports_errors
def convert(file: Path, out: Path, sort: bool, evt: str, sensor, as_json: bool) -> None:
    """Convert event file FILE to OUT; the kinds come from the extensions (.h5, .raw, .npy)."""
    from talon.io import read_events, write_events
    from talon.io.files import event_file_info

    events = read_events(file)
    size = tuple(sensor) if sensor else event_file_info(file).sensor_size
    write_events(out, events, size, sort=sort, evt=evt)
    doc = {"input": str(file), "output": str(out), "events": int(events.size), "sensor_size": size}
    if as_json:
        _emit_json(doc)
    else:
        click.echo(f"wrote {events.size:,} events to {out}")


@events.command()
@_in_file
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--n-frames", type=click.IntRange(min=1), help="Equal time bins.")
@click.option("--time-window", "time_window", type=click.IntRange(min=1), help="Microseconds per frame.")
@click.option("--event-count", type=click.IntRange(min=1), help="Events per frame.")
@click.option(
    "--include-incomplete",
    is_flag=True,
    help="With --time-window / --event-count: keep the last, shorter frame (tonic drops it and its events).",
)
@click.option("--sensor", nargs=2, type=click.IntRange(min=1), default=None, help="Sensor WIDTH HEIGHT.")
@_json_option
@_reports_errors
def frames(
    file: Path, out: Path, n_frames, time_window, event_count, include_incomplete, sensor, as_json: bool
) -> None:
    """Accumulate FILE's events into frames [T, 2, H, W] (tonic ToFrame semantics), saved as OUT (.npy);
    says how many events the frames hold (a last incomplete frame is dropped unless --include-incomplete)."""
    import numpy as np

    from talon.io import events_to_frames, read_events
    from talon.io.files import event_file_info
    from talon.ir.atomic import atomic_output

    if sum(v is not None for v in (n_frames, time_window, event_count)) != 1:
        _fail("give exactly one of --n-frames, --time-window, --event-count")
    if out.suffix.lower() != ".npy":
        _fail(f"{out}: frames are written as a .npy file")
    if include_incomplete and n_frames is not None:
        _fail("--include-incomplete applies to --time-window and --event-count, not to --n-frames")
    events = read_events(file)
    size = tuple(sensor) if sensor else event_file_info(file).sensor_size
    result = events_to_frames(
        events, size, n_frames, time_window=time_window, event_count=event_count, include_incomplete=include_incomplete
    )
    with atomic_output(out) as tmp, open(tmp, "wb") as fh:
        np.save(fh, result)
    framed = int(result.sum(dtype=np.int64))
    doc = {
        "input": str(file),
        "output": str(out),
        "shape": list(result.shape),
        "events": int(events.size),
        "framed_events": framed,
    }
    if as_json:
        _emit_json(doc)
    else:
        click.echo(f"wrote frames {list(result.shape)} (T, P, H, W) to {out}")
        if framed < events.size:
            why = (
                "tonic's equal time bins are floor(duration / N) µs long and end before the last event"
                if n_frames is not None
                else "the last, incomplete frame was dropped (tonic's rule); --include-incomplete keeps it"
            )
            click.echo(f"the frames hold {framed:,} of {events.size:,} events: {why}")
