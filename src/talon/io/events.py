"""The event array: one dtype for every talon.io function, and converters from the other layouts.

``EVENT_DTYPE = [("x", int16), ("y", int16), ("t", int64), ("p", bool)]`` — a structured numpy
array, one row per event: pixel column ``x``, row ``y``, timestamp ``t`` in microseconds and
polarity ``p`` (True = ON, brightness increased). It is tonic's layout (``tonic.datasets.DVSGesture``
uses these field types), so tonic transforms apply to talon events unchanged.

The TALON documentation publishes two other layouts; :func:`as_events` converts both, and any
array or column mapping with fields ``x``, ``y``, ``t``/``ts``/``timestamp``, ``p``/``pol``/
``polarity``:

* ``t int64, x int16, y int16, p int8`` with ``p`` 0 = OFF / 1 = ON (the architecture page);
* ``t float64, x int32, y int32, p int32`` with ``p`` −1 = OFF / +1 = ON (``talon.io.h5`` tutorial).

Conversion is exact or refuses: timestamps that are not whole microseconds, coordinates outside
int16, or polarities other than {0, 1} / {−1, +1} / bool raise :class:`EventFormatError`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])

_TIME_NAMES = ("t", "ts", "timestamp", "timestamps")
_POL_NAMES = ("p", "pol", "polarity", "polarities")
_INT16 = np.iinfo(np.int16)


class EventFormatError(ValueError):
    """Events, or an event file, that cannot be read or converted exactly."""


def empty_events(n: int = 0) -> np.ndarray:
    """``n`` zeroed events of :data:`EVENT_DTYPE`."""
    return np.zeros(int(n), dtype=EVENT_DTYPE)


def concatenate_events(parts) -> np.ndarray:
    """The events of ``parts`` one after the other: ``np.concatenate(parts)``, byte for byte, but faster.

    numpy concatenates a packed structured dtype such as :data:`EVENT_DTYPE` field by field; this
    copies each part's bytes into one preallocated array (one ``memcpy`` per part; a strided part is
    made contiguous first). Every part goes through :func:`as_events`; no parts give no events.
    """
    arrays = [as_events(part) for part in parts]
    out = np.empty(sum(a.size for a in arrays), dtype=EVENT_DTYPE)
    raw, pos = out.view(np.uint8), 0
    for a in arrays:
        raw[pos : pos + a.nbytes] = np.ascontiguousarray(a).view(np.uint8)
        pos += a.nbytes
    return out


def make_events(x, y, t, p) -> np.ndarray:
    """Events from four equally long columns (converted exactly, see :func:`as_events`)."""
    return as_events({"x": x, "y": y, "t": t, "p": p})


def as_events(events, *, copy: bool = False) -> np.ndarray:
    """``events`` as an :data:`EVENT_DTYPE` array (the input itself when it already is one and ``copy`` is False).

    Accepts a structured array or a mapping of columns with the field names listed in the module
    docstring. ``y`` may be missing (a 1-D sensor: ``y = 0``). Polarity ``p`` may be bool,
    {0, 1} or {−1, +1}; timestamps must be whole numbers (floats are accepted when integral).
    """
    if isinstance(events, np.ndarray) and events.dtype == EVENT_DTYPE:
        if events.ndim != 1:
            raise EventFormatError(f"events must be a 1-D array, got shape {events.shape}")
        return events.copy() if copy else events
    columns = _columns(events)
    n = {len(c) for c in columns.values()}
    if len(n) != 1:
        raise EventFormatError(f"event columns have different lengths {sorted(n)}")
    out = np.empty(n.pop(), dtype=EVENT_DTYPE)
    for name in ("x", "y"):
        col = columns.get(name)
        out[name] = 0 if col is None else _coordinate(name, col)
    out["t"] = _timestamps(columns["t"])
    out["p"] = _polarity(columns["p"])
    return out


def check_pixels(events: np.ndarray) -> None:
    """Refuse negative pixel addresses: an :data:`EVENT_DTYPE` array is taken as it is by
    :func:`as_events`, and a negative ``x`` / ``y`` would index from the far edge of a frame or be
    lost by an encoder instead of failing."""
    for name in ("x", "y"):
        col = events[name]
        if col.size and col.min() < 0:
            k = int(np.argmax(col < 0))
            raise EventFormatError(f"event {k} has {name}={int(col[k])}: pixel addresses must be non-negative")


def _columns(events) -> dict[str, np.ndarray]:
    if isinstance(events, np.ndarray) and events.dtype.names:
        if events.ndim != 1:
            raise EventFormatError(f"events must be a 1-D array, got shape {events.shape}")
        source = {name: events[name] for name in events.dtype.names}
    elif isinstance(events, Mapping):
        source = {str(k): np.asarray(v) for k, v in events.items()}
    else:
        raise EventFormatError(
            "events must be a structured numpy array or a mapping of columns with fields x, y, t, p; "
            f"got {type(events).__name__}"
        )
    columns: dict[str, np.ndarray] = {}
    for canonical, names in (("x", ("x",)), ("y", ("y",)), ("t", _TIME_NAMES), ("p", _POL_NAMES)):
        found = [n for n in names if n in source]
        if len(found) > 1:
            raise EventFormatError(f"events have several {canonical} fields {found}; keep one")
        if found:
            col = np.asarray(source[found[0]])
            if col.ndim != 1:
                raise EventFormatError(f"event field {found[0]!r} must be 1-D, got shape {col.shape}")
            columns[canonical] = col
    missing = [c for c in ("x", "t", "p") if c not in columns]
    if missing:
        raise EventFormatError(f"events lack field(s) {missing}; fields present: {sorted(source)}")
    return columns


def _coordinate(name: str, col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "f":
        if col.size and not np.all(np.isfinite(col) & (col == np.round(col))):
            raise EventFormatError(f"event field {name!r} holds non-integer coordinates")
    elif col.dtype.kind not in "iub":
        raise EventFormatError(f"event field {name!r} must be numeric, got dtype {col.dtype}")
    if col.size and (col.min() < 0 or col.max() > _INT16.max):
        raise EventFormatError(
            f"event field {name!r} spans [{col.min()}, {col.max()}], outside the pixel range [0, {_INT16.max}]"
        )
    return col.astype(np.int16)


def _timestamps(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "f":
        if col.size and not np.all(np.isfinite(col) & (col == np.round(col))):
            raise EventFormatError("timestamps must be whole microseconds; these have fractions (or NaN)")
        if col.size and np.abs(col).max() >= 2.0**53:
            raise EventFormatError("float timestamps at or beyond 2**53 µs are not exact; store them as int64")
    elif col.dtype.kind == "u" and col.dtype.itemsize == 8 and col.size and col.max() > np.iinfo(np.int64).max:
        raise EventFormatError("timestamps exceed int64")
    elif col.dtype.kind not in "iu":
        raise EventFormatError(f"timestamps must be numeric, got dtype {col.dtype}")
    return col.astype(np.int64)


def _polarity(col: np.ndarray) -> np.ndarray:
    if col.dtype.kind == "b":
        return col
    if col.dtype.kind not in "iuf":
        raise EventFormatError(f"polarity must be bool or numeric, got dtype {col.dtype}")
    values = np.unique(col)
    if np.all(np.isin(values, (0, 1))):
        return col == 1
    if np.all(np.isin(values, (-1, 1))):
        return col == 1
    raise EventFormatError(f"polarity values {values[:6].tolist()} are neither {{0, 1}} nor {{-1, +1}}")


def polarity_sign(events: np.ndarray) -> np.ndarray:
    """Polarity as int8 ``+1`` (ON) / ``-1`` (OFF), the ``talon.io.h5`` tutorial's convention."""
    return np.where(as_events(events)["p"], np.int8(1), np.int8(-1))


def is_time_sorted(events: np.ndarray) -> bool:
    """Whether timestamps never decrease."""
    t = as_events(events)["t"]
    return bool(t.size < 2 or np.all(t[1:] >= t[:-1]))


def first_unsorted(t: np.ndarray) -> int | None:
    """Index of the first timestamp smaller than its predecessor, or None."""
    bad = np.flatnonzero(t[1:] < t[:-1])
    return None if bad.size == 0 else int(bad[0]) + 1


def sort_events(events: np.ndarray) -> np.ndarray:
    """Events in time order; events with equal timestamps keep their order (stable sort)."""
    events = as_events(events)
    return events[np.argsort(events["t"], kind="stable")]


def sensor_extent(events: np.ndarray) -> tuple[int, int]:
    """``(width, height)`` just large enough for the events' coordinates (``(0, 0)`` when empty)."""
    events = as_events(events)
    if events.size == 0:
        return (0, 0)
    return int(events["x"].max()) + 1, int(events["y"].max()) + 1
