"""One entry point for event files of any supported kind, chosen by extension.

``.h5`` / ``.hdf5`` (talon or DSEC layout, :mod:`talon.io.h5`), ``.raw`` (Prophesee EVT 2.0 /
3.0, :mod:`talon.io.prophesee`), ``.npy`` (a saved event array in any layout
:func:`~talon.io.events.as_events` converts), ``.aedat4`` (read only: its event stream,
:mod:`talon.io.aedat4`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from talon.ir.atomic import atomic_output
from talon.ir.paths import check_path

from .events import EventFormatError, as_events, sensor_extent, sort_events
from .h5 import H5EventReader, write_h5
from .npy import npy_events, open_npy
from .prophesee import raw_info, read_raw, write_raw

H5_SUFFIXES = (".h5", ".hdf5")
SUFFIXES = (*H5_SUFFIXES, ".raw", ".npy", ".aedat4")


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise EventFormatError(f"{path}: unknown event file type {suffix!r}; use one of {', '.join(SUFFIXES)}")
    return "h5" if suffix in H5_SUFFIXES else suffix[1:]


def read_events(path, *, max_bytes: int | None = None) -> np.ndarray:
    """Every event of ``path`` as :data:`~talon.io.events.EVENT_DTYPE`.

    ``max_bytes``: the decode budget of compressed files (``.h5``, ``.raw``, ``.aedat4``; default
    :func:`talon.io.budget.default_event_budget` of the file's size, :mod:`talon.io.budget`)."""
    path = check_path(path, "read_events: the event file to read")
    kind = _kind(path)
    if path.is_dir():
        raise EventFormatError(f"{path} is a directory, not a regular event file")
    if not path.is_file():
        raise FileNotFoundError(f"no such event file: {path}")
    if kind == "h5":
        with H5EventReader(path, max_bytes=max_bytes) as reader:
            return reader.read_all()
    if kind == "raw":
        return read_raw(path, max_bytes=max_bytes)
    if kind == "aedat4":
        from .aedat4 import read_aedat4

        return read_aedat4(path, max_bytes=max_bytes).events
    return npy_events(open_npy(path), path)


def write_events(path, events, sensor_size=None, *, sort: bool = False, evt: str = "3.0") -> None:
    """Write events to ``path`` (kind by extension; ``evt`` picks EVT 2.0 / 3.0 for ``.raw``), atomically."""
    path = check_path(path, "write_events: the event file to write")
    kind = _kind(path)
    events = as_events(events)
    if kind == "aedat4":
        raise EventFormatError(f"{path}: talon reads AEDAT4 but does not write it; write .h5, .raw or .npy")
    if kind == "h5":
        write_h5(path, events, sensor_size, sort=sort)
    elif kind == "raw":
        write_raw(path, sort_events(events) if sort else events, version=evt, sensor_size=sensor_size)
    else:
        with atomic_output(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, sort_events(events) if sort else events)


@dataclass
class EventFileInfo:
    """Summary of an event file: counts, time span (µs), rate (events per second), sensor size.

    ``t_first`` / ``t_last`` are the earliest and latest timestamps, whatever the order of the
    events in the file (``time_sorted`` says whether it is non-decreasing), so that
    ``duration_us = t_last - t_first`` and ``events_per_second = n_events / duration`` hold for an
    unsorted file too.
    """

    path: str
    format: str
    n_events: int
    n_on: int
    t_first: int | None
    t_last: int | None
    duration_us: int
    events_per_second: float | None
    sensor_size: tuple[int, int] | None
    time_sorted: bool

    def to_dict(self) -> dict:
        return asdict(self)


def recorded_sensor_size(path) -> tuple[int, int] | None:
    """The ``(width, height)`` an event file records in its header (``.h5``, ``.aedat4``, ``.raw``), else None."""
    path = check_path(path, "recorded_sensor_size: the event file")
    return _format_and_sensor_size(path, _kind(path))[1]


def _format_and_sensor_size(path: Path, kind: str) -> tuple[str, tuple[int, int] | None]:
    if kind == "h5":
        with H5EventReader(path) as reader:
            return "hdf5 events", reader.sensor_size
    if kind == "aedat4":
        from .aedat4 import AEDAT4Reader

        return "AEDAT4", AEDAT4Reader(path).sensor_size
    if kind == "raw":
        fields, _ = raw_info(path)
        size = (int(fields["width"]), int(fields["height"])) if "width" in fields and "height" in fields else None
        return f"Prophesee EVT {fields['evt']}", size
    return {"npy": "numpy events"}.get(kind, ""), None


def event_file_info(path) -> EventFileInfo:
    """Read ``path`` and summarise it."""
    path = check_path(path, "event_file_info: the event file")
    kind = _kind(path)
    events = read_events(path)
    fmt, size = _format_and_sensor_size(path, kind)
    if size is None and events.size:
        size = sensor_extent(events)
    t = events["t"]
    first, last = (int(t.min()), int(t.max())) if t.size else (None, None)
    duration = last - first if t.size else 0  # Python ints: a damaged file's span can pass int64
    return EventFileInfo(
        path=str(path), format=fmt, n_events=int(events.size), n_on=int(events["p"].sum()),
        t_first=first, t_last=last, duration_us=duration,
        events_per_second=(events.size / (duration * 1e-6)) if duration > 0 else None,
        sensor_size=size, time_sorted=bool(t.size < 2 or np.all(t[1:] >= t[:-1])),
    )  # fmt: skip
