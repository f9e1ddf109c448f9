"""Event streams as network inputs: time-binned spike counts ``[T, 1, *shape]`` for ``simulate`` and the executors.

Step ``k`` holds the events with ``t_start + k * bin_us <= t < t_start + (k + 1) * bin_us``
(``t_start`` defaults to the first event). The Input node's shape decides the layout:

* ``(2, H, W)`` — one channel per polarity (0 OFF, 1 ON), pixel ``[y, x]``;
* ``(1, H, W)`` or ``(H, W)`` — both polarities summed;
* ``(N,)`` — flattened ``(2, H, W)`` when ``N = 2 * H * W``, flattened ``(H, W)`` when ``N = H * W``
  (``H, W`` from ``sensor_size``, required for this case).

A ``sensor_size`` ``(W, H)`` given with an image Input must match its pixels (``talon simulate
--events`` passes the size the file records), else ``EventFormatError``.

Counts are float32 (several events of one pixel in one step add up; ``binary=True`` clips to 1).
Events beyond the last step (when ``n_steps`` is given) are not used; :func:`events_to_stimulus`
reports how many in ``StimulusInfo.unused_events``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .events import EventFormatError, as_events, check_pixels


@dataclass
class StimulusInfo:
    n_steps: int
    bin_us: int
    t_start: int
    used_events: int
    unused_events: int


def _layout(shape: tuple[int, ...], sensor_size) -> tuple[int, int, bool]:
    """(height, width, separate polarities) for an Input of ``shape``; a ``sensor_size`` given with an
    image Input must be its ``(W, H)``: a recording of another sensor would land in a corner of it."""
    if len(shape) in (2, 3) and (len(shape) == 2 or shape[0] in (1, 2)):
        height, width = shape[-2:]
        if sensor_size is not None and (int(sensor_size[0]), int(sensor_size[1])) != (width, height):
            raise EventFormatError(
                f"the recording's sensor is {int(sensor_size[0])}x{int(sensor_size[1])} (width x height) but the "
                f"Input of shape {list(shape)} takes {width}x{height} pixels: give a recording of that sensor, "
                "or crop or downsample the events to it first"
            )
        return height, width, len(shape) == 3 and shape[0] == 2
    if len(shape) == 1:
        if sensor_size is None:
            raise EventFormatError(
                f"a flat Input of shape {list(shape)} needs the sensor size (width, height): pass sensor_size= "
                "(CLI: --sensor-size W H)"
            )
        width, height = int(sensor_size[0]), int(sensor_size[1])
        if shape[0] == 2 * width * height:
            return height, width, True
        if shape[0] == width * height:
            return height, width, False
        raise EventFormatError(
            f"Input of shape {list(shape)} matches neither 2*W*H={2 * width * height} nor W*H={width * height} "
            f"for sensor {width}x{height}"
        )
    raise EventFormatError(f"cannot feed events to an Input of shape {list(shape)}; use (2, H, W), (H, W) or (N,)")


def events_to_stimulus(
    events,
    shape,
    bin_us: int,
    *,
    n_steps: int | None = None,
    t_start: int | None = None,
    sensor_size=None,
    binary: bool = False,
) -> tuple[np.ndarray, StimulusInfo]:
    """``(float32 [T, 1, *shape], info)`` of time-binned events for an Input of ``shape``."""
    if isinstance(bin_us, bool) or int(bin_us) != bin_us or bin_us < 1:
        raise EventFormatError(f"bin_us must be a positive integer number of microseconds, got {bin_us!r}")
    bin_us = int(bin_us)
    events = as_events(events)
    shape = tuple(int(s) for s in shape)
    height, width, by_polarity = _layout(shape, sensor_size)
    check_pixels(events)
    if events.size and (events["x"].max() >= width or events["y"].max() >= height):
        raise EventFormatError(
            f"events reach x={int(events['x'].max())}, y={int(events['y'].max())}, outside the Input's "
            f"{width}x{height} pixels (shape {list(shape)})"
        )
    t = events["t"]
    start = (int(t.min()) if t.size else 0) if t_start is None else int(t_start)
    step = (t - start) // bin_us
    if n_steps is None:
        if not t.size:
            raise EventFormatError("no events: give n_steps for an empty recording (CLI: --steps N)")
        n_steps = int(step.max()) + 1
    if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 1:
        raise EventFormatError(f"n_steps must be a positive integer, got {n_steps!r}")
    n_steps = int(n_steps)
    used = (step >= 0) & (step < n_steps)
    channels = 2 if by_polarity else 1
    flat = ((step[used] * channels + (events["p"][used] if by_polarity else 0)) * height + events["y"][used]) * width
    flat = flat + events["x"][used]
    counts = np.bincount(flat.astype(np.int64), minlength=n_steps * channels * height * width).astype(np.float32)
    if binary:
        np.minimum(counts, 1.0, out=counts)
    stimulus = counts.reshape(n_steps, 1, *shape)
    info = StimulusInfo(n_steps, bin_us, start, int(used.sum()), int(events.size - used.sum()))
    return stimulus, info


def stimulus_for_graph(graph, events, bin_us: int, *, n_steps=None, sensor_size=None, binary=False):
    """``({input name: [T, 1, *shape]}, info)`` for a graph with one Input node."""
    names = list(graph.input_nodes)
    if len(names) != 1:
        raise EventFormatError(f"an event stream feeds a graph with one Input node; this one has {len(names)}: {names}")
    array, info = events_to_stimulus(
        events, graph.nodes[names[0]].shape, bin_us, n_steps=n_steps, sensor_size=sensor_size, binary=binary
    )
    return {names[0]: array}, info
