"""Measured event-processing throughput, in the units its names say.

``benchmark_throughput`` times, on ``n_events`` random events: framing them
(:func:`~talon.io.formats.events_to_frames`), drawing RGB grids and, optionally, rate-encoding
the frames. ``events_per_sec`` = events framed per second of wall time; ``event_fps`` =
frames produced per second; ``rgb_fps`` = RGB grid images per second; ``encoding_fps`` =
encoded frames per second. (The TALON documentation prints ~25 billion events/s for 100 000
events in ~0.01 s, off by a factor of ~2500; 100 000 events / 0.01 s is 1e7 events/s.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .encoding import rate_encode
from .formats import events_to_frames, events_to_grid
from .streaming import generate_random_events


@dataclass
class ThroughputResult:
    events_per_sec: float
    event_fps: float
    rgb_fps: float
    encoding_fps: float | None
    total_events: int
    duration_sec: float
    sensor_size: tuple[int, int]

    def summary(self) -> str:
        lines = [
            f"Events:        {self.total_events:,} on a {self.sensor_size[0]}x{self.sensor_size[1]} sensor",
            f"Framing time:  {self.duration_sec * 1e3:.3f} ms",
            f"Events/sec:    {self.events_per_sec:,.0f}",
            f"Event FPS:     {self.event_fps:,.0f}",
            f"RGB FPS:       {self.rgb_fps:,.0f}",
        ]
        if self.encoding_fps is not None:
            lines.append(f"Encoding FPS:  {self.encoding_fps:,.0f}")
        return "\n".join(lines)


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def benchmark_throughput(
    n_events: int = 100_000,
    sensor_size=(28, 28),
    include_encoding: bool = False,
    *,
    n_frames: int = 10,
    repeats: int = 5,
    seed: int = 0,
) -> ThroughputResult:
    """Time framing (and grids, encoding) of ``n_events`` random events; best of ``repeats`` runs."""
    events = generate_random_events(n_events, sensor_size, seed=seed)
    frames = events_to_frames(events, sensor_size, n_frames)
    frame_s = _best_of(lambda: events_to_frames(events, sensor_size, n_frames), repeats)
    grid_s = _best_of(lambda: events_to_grid(events, sensor_size, n_frames), repeats)
    encoding_fps = None
    if include_encoding:
        enc_s = _best_of(lambda: rate_encode(frames.astype("float32") / max(frames.max(), 1), 1, seed=seed), repeats)
        encoding_fps = n_frames / enc_s
    return ThroughputResult(
        events_per_sec=n_events / frame_s, event_fps=n_frames / frame_s, rgb_fps=n_frames / grid_s,
        encoding_fps=encoding_fps, total_events=int(n_events), duration_sec=frame_s,
        sensor_size=(int(sensor_size[0]), int(sensor_size[1])),
    )  # fmt: skip
