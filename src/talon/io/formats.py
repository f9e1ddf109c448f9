"""Dense representations of events: frames, voxel grids, rasters and RGB grids.

``sensor_size`` follows tonic: ``(width, height)`` or ``(width, height, polarities)``; outputs
are indexed ``[..., y, x]`` (rows, then columns), like tonic's.

**Frames** (:func:`events_to_frames`) are identical to ``tonic.transforms.ToFrame`` for the same
arguments (``time_window``, ``event_count``, ``n_time_bins`` (alias ``n_frames``), ``n_event_bins``,
``overlap``, ``include_incomplete``, ``start_time``, ``end_time``): the same slices, counted into
int16 ``[n_frames, P, H, W]`` arrays. Differences, where tonic is inconsistent: talon never
modifies the caller's array (tonic overwrites ``p`` with 0 for single-polarity sensors) and an
empty recording gives zero frames shaped ``[n, P, H, W]`` (tonic returns float64 ``[n, P, W, H]``).
Events must be sorted by time (as tonic assumes).

**Voxel grids** (:func:`events_to_voxel`) are identical to ``tonic.transforms.ToVoxelGrid``:
timestamps normalised to ``[0, n_time_bins]``, every event splitting its polarity (±1) between
its two neighbouring bins by linear interpolation, float64 ``[n_time_bins, 1, H, W]``, summed in
the same order as tonic so results match bit for bit. tonic's ``ToVoxelGrid`` maps polarity 0 to
−1 by assignment into the polarity field, which does nothing useful for a bool field (every
event counts +1); talon uses ON = +1, OFF = −1 for every polarity type.
"""

from __future__ import annotations

import numpy as np

from .events import EventFormatError, as_events, check_pixels


def _sensor(sensor_size, events: np.ndarray) -> tuple[int, int, int]:
    """``(width, height, polarities)``; None: just large enough for the events, two polarities."""
    check_pixels(events)
    if sensor_size is None:
        if events.size == 0:
            raise EventFormatError("sensor_size is required for an empty event array")
        return int(events["x"].max()) + 1, int(events["y"].max()) + 1, 2
    size = tuple(int(s) for s in sensor_size)
    if len(size) == 2:
        size = (*size, 2)
    if len(size) != 3 or min(size) < 1 or size[2] > 2:
        raise EventFormatError(
            f"sensor_size must be (width, height) or (width, height, polarities 1 or 2), got {sensor_size!r}"
        )
    if events.size and (events["x"].max() >= size[0] or events["y"].max() >= size[1]):
        raise EventFormatError(
            f"events reach x={int(events['x'].max())}, y={int(events['y'].max())}, outside sensor_size "
            f"(width {size[0]}, height {size[1]})"
        )
    return size


def _require_sorted(t: np.ndarray) -> None:
    if t.size > 1 and np.any(t[1:] < t[:-1]):
        raise EventFormatError("events are not sorted by time; sort them first (talon.io.sort_events)")


# ---- slicing (the windows tonic's slicers compute) ------------------------------------------------


def _time_window_slices(t, time_window, overlap, include_incomplete, start_time, end_time):
    stride = time_window - overlap
    if stride <= 0:
        raise EventFormatError(f"overlap ({overlap}) must be smaller than time_window ({time_window})")
    start = t[0] if start_time is None else start_time
    end = t[-1] if end_time is None else end_time
    duration = end - start
    rounding = np.ceil if include_incomplete else np.floor
    n = max(int(rounding((duration - time_window) / stride) + 1), 1)
    starts = np.arange(n) * stride + start
    return np.searchsorted(t, starts)[:n], np.searchsorted(t, starts + time_window)[:n]


def _event_count_slices(n_events, event_count, overlap, include_incomplete):
    count = min(event_count, n_events)
    stride = event_count - overlap
    if stride <= 0:
        raise EventFormatError(f"overlap ({overlap}) must be smaller than event_count ({event_count})")
    rounding = np.ceil if include_incomplete else np.floor
    n = int(rounding((n_events - count) / stride) + 1)
    starts = (np.arange(n) * stride).astype(int)
    return starts, starts + count


def _time_bin_slices(t, n_bins, overlap):
    if not overlap < 1:
        raise EventFormatError(f"overlap must be below 1 for bin slicing, got {overlap}")
    window = (t[-1] - t[0]) // n_bins * (1 + overlap)
    stride = window * (1 - overlap)
    starts = np.arange(n_bins) * stride + t[0]
    return np.searchsorted(t, starts), np.searchsorted(t, starts + window)


def _event_bin_slices(n_events, n_bins, overlap):
    if not overlap < 1:
        raise EventFormatError(f"overlap must be below 1 for bin slicing, got {overlap}")
    count = int(n_events // n_bins * (1 + overlap))
    stride = int(count * (1 - overlap))
    starts = np.arange(n_bins) * stride
    return starts, starts + count


def _gather(starts: np.ndarray, ends: np.ndarray, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """(event indices, frame index of each) for the slices ``[starts[i], ends[i])`` clipped to the array."""
    starts = np.clip(np.asarray(starts, dtype=np.int64), 0, n_events)
    ends = np.clip(np.asarray(ends, dtype=np.int64), 0, n_events)
    lengths = np.maximum(ends - starts, 0)
    total = int(lengths.sum())
    frame = np.repeat(np.arange(len(starts)), lengths)
    if total == 0:
        return np.zeros(0, dtype=np.int64), frame
    offsets = np.cumsum(lengths) - lengths
    index = np.arange(total, dtype=np.int64) - np.repeat(offsets - starts, lengths)
    return index, frame


def events_to_frames(
    events,
    sensor_size=None,
    n_frames: int | None = None,
    *,
    time_window: float | None = None,
    event_count: int | None = None,
    n_time_bins: int | None = None,
    n_event_bins: int | None = None,
    overlap: float = 0,
    include_incomplete: bool = False,
    start_time: float | None = None,
    end_time: float | None = None,
) -> np.ndarray:
    """Event counts per frame, polarity and pixel: int16 ``[n_frames, P, H, W]`` (tonic ``ToFrame``).

    Exactly one slicing: ``time_window`` (µs per frame), ``event_count`` (events per frame),
    ``n_frames``/``n_time_bins`` (equal time bins) or ``n_event_bins`` (equal event bins).
    """
    if n_frames is not None:
        if n_time_bins is not None:
            raise EventFormatError("give n_frames or n_time_bins, not both (they are the same)")
        n_time_bins = n_frames
    chosen = [v is not None for v in (time_window, event_count, n_time_bins, n_event_bins)]
    if sum(chosen) != 1:
        raise EventFormatError("give exactly one of time_window, event_count, n_frames (n_time_bins), n_event_bins")
    for name, value in (("event_count", event_count), ("n_frames", n_time_bins), ("n_event_bins", n_event_bins)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise EventFormatError(f"{name} must be a positive integer, got {value!r}")
    if time_window is not None and not time_window > 0:
        raise EventFormatError(f"time_window must be positive, got {time_window!r}")
    events = as_events(events)
    width, height, n_pol = _sensor(sensor_size, events)
    t = events["t"]
    _require_sorted(t)
    if events.size == 0:
        n = n_time_bins or n_event_bins or 1
        return np.zeros((n, n_pol, height, width), dtype=np.int16)
    if time_window is not None:
        starts, ends = _time_window_slices(t, time_window, overlap, include_incomplete, start_time, end_time)
    elif event_count is not None:
        starts, ends = _event_count_slices(len(events), int(event_count), overlap, include_incomplete)
    elif n_time_bins is not None:
        starts, ends = _time_bin_slices(t, int(n_time_bins), overlap)
    else:
        starts, ends = _event_bin_slices(len(events), int(n_event_bins), overlap)
    if n_pol == 1:
        if events["p"].any() and not events["p"].all():
            raise EventFormatError("sensor_size has one polarity, but the events contain both")
        pol = np.zeros(len(events), dtype=np.int64)
    else:
        pol = events["p"].astype(np.int64)
    index, frame = _gather(starts, ends, len(events))
    pixel = (pol * height + events["y"].astype(np.int64)) * width + events["x"].astype(np.int64)
    plane = n_pol * height * width
    flat = frame * plane + (pixel if index.size == len(events) and _is_identity(index) else pixel[index])
    counts = np.bincount(flat, minlength=len(starts) * plane)
    return counts.astype(np.int16).reshape(len(starts), n_pol, height, width)


def _is_identity(index: np.ndarray) -> bool:
    return bool(index[0] == 0 and index[-1] == index.size - 1 and np.all(np.diff(index) == 1))


def events_to_voxel(events, sensor_size, n_time_bins: int = 10) -> np.ndarray:
    """Voxel grid float64 ``[n_time_bins, 1, H, W]`` (tonic ``ToVoxelGrid``, Zhu et al. 2019).

    ``tn = n_time_bins * (t - t[0]) / (t[-1] - t[0])``; an event at ``tn`` adds
    ``p * (1 - frac(tn))`` to bin ``floor(tn)`` and ``p * frac(tn)`` to the next bin (when it
    exists), ``p = +1`` ON / ``-1`` OFF.
    """
    if isinstance(n_time_bins, bool) or int(n_time_bins) != n_time_bins or n_time_bins < 1:
        raise EventFormatError(f"n_time_bins must be a positive integer, got {n_time_bins!r}")
    n_time_bins = int(n_time_bins)
    events = as_events(events)
    width, height, _ = _sensor(sensor_size, events)
    plane = width * height
    if events.size == 0:
        return np.zeros((n_time_bins, 1, height, width))
    _require_sorted(events["t"])
    span = events["t"][-1] - events["t"][0]
    if span == 0:
        raise EventFormatError("all events share one timestamp: a voxel grid needs a time span")
    ts = n_time_bins * (events["t"].astype(float) - events["t"][0]) / span
    pols = np.where(events["p"], 1, -1)
    tis = ts.astype(int)
    dts = ts - tis
    pixel = events["x"].astype(int) + events["y"].astype(int) * width
    left = tis < n_time_bins
    right = (tis + 1) < n_time_bins
    # one bincount over [all left parts, all right parts]: the accumulation order of tonic's two np.add.at calls
    index = np.concatenate([pixel[left] + tis[left] * plane, pixel[right] + (tis[right] + 1) * plane])
    weight = np.concatenate([(pols * (1.0 - dts))[left], (pols * dts)[right]])
    grid = np.bincount(index, weights=weight, minlength=n_time_bins * plane)
    return grid.reshape(n_time_bins, 1, height, width)


def _time_bins(t: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each timestamp among ``n_bins`` equal bins over ``[t.min(), t.max()]`` (the last bin closed)."""
    t0, t1 = int(t.min()), int(t.max())
    if t1 == t0:
        return np.zeros(t.size, dtype=np.int64)
    return np.minimum((t - t0) * n_bins // (t1 - t0 + 1), n_bins - 1).astype(np.int64)


def events_to_raster(events, n_neurons: int, time_bins: int, *, width: int | None = None) -> np.ndarray:
    """Binary spike raster uint8 ``[time_bins, n_neurons]``: 1 where neuron ``y * width + x`` fired in the bin.

    Bins split ``[t_min, t_max]`` into ``time_bins`` equal integer-µs bins. ``width`` defaults to
    ``n_neurons`` (a 1-D sensor); events whose neuron index is ``>= n_neurons`` are refused.
    """
    events = as_events(events)
    for name, value in (("n_neurons", n_neurons), ("time_bins", time_bins)):
        if isinstance(value, bool) or int(value) != value or value < 1:
            raise EventFormatError(f"{name} must be a positive integer, got {value!r}")
    width = int(n_neurons if width is None else width)
    raster = np.zeros((int(time_bins), int(n_neurons)), dtype=np.uint8)
    if events.size == 0:
        return raster
    neuron = events["y"].astype(np.int64) * width + events["x"].astype(np.int64)
    if neuron.max() >= n_neurons:
        raise EventFormatError(f"event neuron index {int(neuron.max())} (y * {width} + x) >= n_neurons={n_neurons}")
    raster[_time_bins(events["t"], int(time_bins)), neuron] = 1
    return raster


def events_to_grid(events, sensor_size, n_bins: int) -> np.ndarray:
    """RGB images uint8 ``[n_bins, H, W, 3]`` over equal time bins: ON events red, OFF events blue.

    A pixel's channel is ``255 * count / max count`` of its polarity over all bins (0 when silent).
    """
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise EventFormatError(f"n_bins must be a positive integer, got {n_bins!r}")
    events = as_events(events)
    width, height, _ = _sensor(sensor_size, events)
    grid = np.zeros((int(n_bins), height, width, 3), dtype=np.uint8)
    if events.size == 0:
        return grid
    bins = _time_bins(events["t"], int(n_bins))
    flat = ((bins * 2 + events["p"]) * height + events["y"]) * width + events["x"]
    counts = np.bincount(flat, minlength=int(n_bins) * 2 * height * width).reshape(int(n_bins), 2, height, width)
    peak = max(int(counts.max()), 1)
    scaled = np.rint(counts * (255.0 / peak)).astype(np.uint8)
    grid[..., 0] = scaled[:, 1]
    grid[..., 2] = scaled[:, 0]
    return grid
