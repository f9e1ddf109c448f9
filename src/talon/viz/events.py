"""Event (spike) views: binning helpers, a self-contained event page, frame playback.

Events are a structured numpy array with fields ``x``, ``y`` (optional for 1-D sensors), ``t``
(or ``ts``) and ``p`` (or ``pol``) — tonic's layout (``x, y`` int16, ``t`` int64 µs, ``p`` bool)
and talon.io's both fit. ``p > 0`` is ON, anything else OFF (so 0/1, False/True and -1/+1 work).

Sensor sizes: a pair is ``(H, W)`` (the TALON docs), or ``(width, height)`` — the order of
``talon.io`` (``H5EventReader.sensor_size``, ``read_events``) and tonic — with ``sensor_order="WH"``;
a triple is always tonic's ``(W, H, P)``. Without one, ``H = max(y) + 1`` and ``W = max(x) + 1``.
Events outside the sensor are refused, and when they would fit the pair read the other way round
the error says so.

Time bins: ``n`` equal bins over ``[t_min, t_max]``: ``bin = min(floor((t - t_min) · n / span), n - 1)``
with ``span = t_max - t_min`` (1 when all events share one time).
"""

from __future__ import annotations

import base64
import html
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from .display import TEMP_GRAPHS_DIR, _temp_page, page_path, write_text_atomic
from .render import fill, json_for_script, load_asset, load_template, script_text

TONIC_AVAILABLE = importlib.util.find_spec("tonic") is not None
PIL_AVAILABLE = importlib.util.find_spec("PIL") is not None
MAX_RASTER_POINTS = 200_000


def _field(events: np.ndarray, *names: str, required: bool = True) -> np.ndarray | None:
    for name in names:
        if name in events.dtype.names:
            return np.asarray(events[name])
    if required:
        raise ValueError(
            f"events need a field {' or '.join(map(repr, names))}; this array has fields {list(events.dtype.names)}"
        )
    return None


def event_fields(events: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray]:
    """``(x, y or None, t, on)`` of a structured event array, validated."""
    events = np.asarray(events)
    if events.dtype.names is None:
        raise ValueError(
            "events must be a structured numpy array with fields x, (y,) t, p — e.g. "
            "np.zeros(n, dtype=[('x','<i2'),('y','<i2'),('t','<i8'),('p','?')]) (tonic's layout)"
        )
    if events.ndim != 1:
        raise ValueError(f"events must be a 1-d structured array, got shape {events.shape}")
    x = _field(events, "x")
    y = _field(events, "y", required=False)
    t = _field(events, "t", "ts", "timestamp")
    p = _field(events, "p", "pol", "polarity")
    for name, arr in (("x", x), ("y", y)):
        if arr is not None and arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0):
            raise ValueError(f"event field {name} must hold non-negative integer pixel coordinates")
    if t.size and t.dtype.kind in "f" and not np.all(np.isfinite(t)):
        raise ValueError("event times t must be finite")
    return x.astype(np.int64), None if y is None else y.astype(np.int64), t, np.asarray(p) > 0


SENSOR_ORDERS = ("HW", "WH")


def sensor_hw(events: Any, sensor_size: Any = None, sensor_order: str = "HW") -> tuple[int, int]:
    """``(H, W)`` from ``sensor_size`` (a pair in ``sensor_order``: ``"HW"`` or ``"WH"``; tonic's
    ``(W, H, P)``) or from the events."""
    if sensor_order not in SENSOR_ORDERS:
        raise ValueError(
            f"sensor_order must be 'HW' (sensor_size=(height, width), the default) or 'WH' "
            f"((width, height), as talon.io and tonic give it), got {sensor_order!r}"
        )
    x, y, _, _ = event_fields(events)
    if sensor_size is None:
        h = int(y.max()) + 1 if y is not None and y.size else 1
        w = int(x.max()) + 1 if x.size else 1
        return h, w
    size = tuple(int(s) for s in sensor_size)
    if len(size) == 2:
        h, w = size if sensor_order == "HW" else size[::-1]
    elif len(size) == 3:
        w, h = size[0], size[1]
    else:
        raise ValueError(
            f"sensor_size must be (H, W), (W, H) with sensor_order='WH', or tonic's (W, H, P), got {sensor_size!r}"
        )
    x_max, y_max = (int(x.max()), int(y.max()) if y is not None else 0) if x.size else (0, 0)
    if x.size and (x_max >= w or y_max >= h):
        if len(size) == 3:
            read_as = f"tonic's (W, H, P): W={w}, H={h}"
        else:
            read_as = f"read as (H, W): H={h}, W={w}" if sensor_order == "HW" else f"read as (W, H): W={w}, H={h}"
        hint = ""
        if len(size) == 2 and x_max < h and y_max < w:  # the pair fits the other way round
            hint = (
                "; they fit it as (width, height), the order of talon.io and tonic: pass sensor_order='WH'"
                if sensor_order == "HW"
                else "; they fit it as (height, width): drop sensor_order='WH'"
            )
        raise ValueError(f"events reach x={x_max}, y={y_max} outside sensor_size {size} ({read_as}){hint}")
    return h, w


def time_bins(t: np.ndarray, n: int) -> np.ndarray:
    """The bin of each time (module docstring)."""
    if n < 1:
        raise ValueError(f"the number of time bins must be >= 1, got {n}")
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    t0 = t.min()
    span = float(t.max() - t0) or 1.0
    bins = np.floor((t - t0).astype(np.float64) * n / span).astype(np.int64)
    return np.minimum(bins, n - 1)


def events_to_frames(
    events: Any, sensor_size: Any = None, n_frames: int = 30, *, sensor_order: str = "HW"
) -> np.ndarray:
    """Event counts per time bin, polarity and pixel: ``(n_frames, 2, H, W)`` int32 (channel 0 OFF,
    1 ON). ``sensor_order="WH"`` reads a pair ``sensor_size`` as talon.io's ``(width, height)``."""
    x, y, t, on = event_fields(events)
    h, w = sensor_hw(events, sensor_size, sensor_order)
    b = time_bins(t, n_frames)
    yy = np.zeros_like(x) if y is None else y
    flat = ((b * 2 + on.astype(np.int64)) * h + yy) * w + x
    counts = np.bincount(flat, minlength=n_frames * 2 * h * w)
    return counts.reshape(n_frames, 2, h, w).astype(np.int32)


def events_to_grid(events: Any, sensor_size: Any = None, n_bins: int = 9, *, sensor_order: str = "HW") -> np.ndarray:
    """``(n_bins, H, W, 3)`` uint8 RGB images (ON red, OFF blue, white background; intensity
    scaled by the largest count), like tonic's ``plot_event_grid``; ``sensor_order`` as for
    :func:`events_to_frames`."""
    frames = events_to_frames(events, sensor_size, n_bins, sensor_order=sensor_order).astype(np.float64)
    peak = frames.max() or 1.0
    off, on = frames[:, 0] / peak, frames[:, 1] / peak
    rgb = np.ones(frames.shape[:1] + frames.shape[2:] + (3,))
    rgb[..., 1] -= np.clip(on + off, 0, 1)
    rgb[..., 0] -= off
    rgb[..., 2] -= on
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def neuron_index(events: Any, sensor_size: Any = None, *, sensor_order: str = "HW") -> np.ndarray:
    """Each event's neuron: ``x`` for 1-D events, else the pixel index ``y · W + x``."""
    x, y, _, _ = event_fields(events)
    if y is None:
        return x
    _, w = sensor_hw(events, sensor_size, sensor_order)
    return y * w + x


def events_to_raster(
    events: Any, n_neurons: int, time_bins_: int, sensor_size: Any = None, *, sensor_order: str = "HW"
) -> np.ndarray:
    """Binary raster ``(time_bins, n_neurons)`` uint8: 1 where the neuron had an event in the bin.

    A neuron is the pixel index ``y · W + x``, so events of a 2-D sensor (some ``y > 0``) need
    ``sensor_size``: a width guessed from the events (``max(x) + 1``) would renumber every pixel of a
    recording whose events never reach the last column.
    """
    _, y, t, _ = event_fields(events)
    if sensor_size is None and y is not None and y.size and int(y.max()) > 0:
        raise ValueError(
            "events_to_raster numbers pixels y * W + x: pass sensor_size= for events of a 2-D sensor "
            "(the width cannot be taken from the events, which need not reach the last column)"
        )
    idx = neuron_index(events, sensor_size, sensor_order=sensor_order)
    if idx.size and idx.max() >= n_neurons:
        raise ValueError(f"an event has neuron index {int(idx.max())} but n_neurons={n_neurons}")
    raster = np.zeros((time_bins_, n_neurons), dtype=np.uint8)
    raster[time_bins(t, time_bins_), idx] = 1
    return raster


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def _frames_doc(frames: np.ndarray) -> dict[str, Any]:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[:, None]
    if frames.ndim != 4:
        raise ValueError(f"frames must be (N, H, W) or (N, P, H, W), got shape {frames.shape}")
    if frames.shape[1] > 2:  # tonic ToFrame on an (N, H, W) sensor? refuse rather than guess
        raise ValueError(f"frames have {frames.shape[1]} polarity channels; expected 1 or 2 (N, P, H, W)")
    f32 = frames.astype(np.float32)
    return {"shape": list(frames.shape), "data": _b64(f32), "max": float(np.abs(f32).max()) if f32.size else 0.0}


def _page(document: dict[str, Any], title: str) -> str:
    return fill(
        load_template("events.html"),
        {
            "TITLE": html.escape(title),  # text, also an "&amp;" typed in it
            "CSS": load_asset("events.css"),
            "DATA": json_for_script(document),
            "SCRIPT": script_text(load_asset("events.js"), "events.js"),
        },
    )


def events_document(
    events: Any, sensor_size: Any = None, n_frames: int = 30, n_grid_bins: int = 9, *, sensor_order: str = "HW"
) -> dict[str, Any]:
    """The JSON the event page draws: frames, grid, a raster sample and statistics."""
    _, y, t, on = event_fields(events)
    if t.size == 0:
        raise ValueError("no events to show (the array is empty)")
    h, w = sensor_hw(events, sensor_size, sensor_order)
    idx = neuron_index(events, (h, w))
    order = np.argsort(t, kind="stable")
    step = max(1, int(np.ceil(t.size / MAX_RASTER_POINTS)))
    sample = order[::step]
    t0, t1 = float(t.min()), float(t.max())
    duration = t1 - t0
    return {
        "sensor": [h, w],
        "frames": _frames_doc(events_to_frames(events, (h, w), n_frames)),
        "grid": _frames_doc(events_to_frames(events, (h, w), n_grid_bins)),
        "raster": {
            "t": _b64((t[sample] - t.min()).astype(np.float64)),
            "n": _b64(idx[sample].astype(np.int32)),
            "on": _b64(on[sample].astype(np.uint8)),
            "count": int(sample.size),
            "every": step,
            "neurons": int(h * w if y is not None else w),
        },
        "stats": {
            "events": int(t.size),
            "on": int(on.sum()),
            "off": int(t.size - on.sum()),
            "t_start_us": t0,
            "t_end_us": t1,
            "duration_us": duration,
            "rate_ev_per_s": float(t.size / (duration * 1e-6)) if duration > 0 else None,
        },
    }


def export_events_html(
    events: Any,
    output_path: str | os.PathLike,
    sensor_size: Any = None,
    title: str = "Spike Visualization",
    n_frames: int = 30,
    n_grid_bins: int = 9,
    *,
    sensor_order: str = "HW",
) -> Path:
    """Write the event page (playable animation, time-binned grid, raster with an auto-scaled time
    axis, statistics) to ``output_path``; return the path. Times are in microseconds;
    ``sensor_order`` as for :func:`events_to_frames`."""
    output_path = page_path(output_path, "export_events_html")
    document = events_document(events, sensor_size, n_frames, n_grid_bins, sensor_order=sensor_order)
    return write_text_atomic(output_path, _page({"mode": "events", "title": title, **document}, title))


def plot_events(
    events: Any,
    sensor_size: Any = None,
    title: str = "Spike Visualization",
    n_frames: int = 30,
    n_grid_bins: int = 9,
    open_browser: bool = True,
    *,
    sensor_order: str = "HW",
) -> Path:
    """Write the event page to ``TEMP_GRAPHS_DIR`` and open it in the browser; return the path."""
    import webbrowser

    path = export_events_html(
        events, _temp_page(title), sensor_size, title, n_frames, n_grid_bins, sensor_order=sensor_order
    )
    print(f"Visualization written to: {path}")
    if open_browser:
        webbrowser.open(path.resolve().as_uri())
    return path


def export_frames_html(frames: Any, output_path: str | os.PathLike, title: str = "Frame Visualization") -> Path:
    """Write a playback page for frames ``(N, H, W)`` or ``(N, P, H, W)`` (tonic ``ToFrame``)."""
    output_path = page_path(output_path, "export_frames_html")
    document = {"mode": "frames", "title": title, "frames": _frames_doc(np.asarray(frames))}
    return write_text_atomic(output_path, _page(document, title))


def plot_frames(frames: Any, title: str = "Frame Visualization", open_browser: bool = True) -> Path:
    """Write the frame playback page to ``TEMP_GRAPHS_DIR`` and open it; return the path."""
    import webbrowser

    path = export_frames_html(frames, _temp_page(title), title)
    print(f"Visualization written to: {path}")
    if open_browser:
        webbrowser.open(path.resolve().as_uri())
    return path


__all__ = [
    "PIL_AVAILABLE",
    "TEMP_GRAPHS_DIR",
    "TONIC_AVAILABLE",
    "event_fields",
    "events_to_frames",
    "events_to_grid",
    "events_to_raster",
    "export_events_html",
    "export_frames_html",
    "plot_events",
    "plot_frames",
]
