"""Spike encoders: values or frames to spike trains ``[n_steps, *shape]`` (float32 0/1).

* :func:`rate_encode` — Bernoulli spikes, ``P(spike) = clip(x * rate_scale, 0, 1)`` each step,
  drawn from ``numpy.random.default_rng(seed)``: the same seed gives the same spikes.
* :func:`latency_encode` — one spike per element at ``round(tau * ln(x / (x - threshold)))``
  (x clamped to ``threshold + epsilon``), or ``round(tau * (1 - x))`` when ``linear``; the
  formulas, options and rounding of ``snntorch.spikegen.latency`` (identical spikes). Spikes that
  fall beyond the last step are dropped (snnTorch raises instead).
* :func:`delta_encode` — ON / OFF events where a frame differs from the previous one by at least
  ``threshold``: ``[T-1, 2, *shape]``; channel 0 ON, 1 OFF. ``ON - OFF`` equals
  ``snntorch.spikegen.delta(x, threshold, padding=True, off_spike=True)[1:]``.
* :func:`temporal_encode` — a spike at each upward crossing of ``threshold`` by a signal ``[T, N]``.
"""

from __future__ import annotations

import numpy as np

from .events import EventFormatError


def _array(data, name: str = "data") -> np.ndarray:
    arr = np.asarray(data, dtype=np.float32)
    if arr.size and not np.all(np.isfinite(arr)):
        raise EventFormatError(f"{name} contains NaN or infinite values")
    return arr


def _steps(n_steps) -> int:
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise EventFormatError(f"n_steps must be a positive integer, got {n_steps!r}")
    return int(n_steps)


def rate_encode(data, n_steps: int, rate_scale: float = 1.0, *, seed: int | None = 0) -> np.ndarray:
    """Bernoulli spike trains ``[n_steps, *data.shape]`` with ``P = clip(data * rate_scale, 0, 1)``."""
    prob = np.clip(_array(data) * np.float32(rate_scale), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    return (rng.random((_steps(n_steps), *prob.shape), dtype=np.float32) < prob).astype(np.float32)


def latency_times(
    data,
    n_steps: int,
    tau: float = 5.0,
    *,
    threshold: float = 0.01,
    linear: bool = False,
    normalize: bool = False,
    first_spike_time: int = 0,
    epsilon: float = 1e-7,
) -> np.ndarray:
    """Spike time of every element (float32, before rounding), as ``snntorch.spikegen.latency_code``."""
    x = _array(data)
    n_steps = _steps(n_steps)
    if x.size and (x.min() < 0 or x.max() > 1):
        raise EventFormatError(f"latency_encode needs data in [0, 1], got [{x.min()}, {x.max()}]")
    if not 0 <= threshold <= 1:
        raise EventFormatError(f"threshold must be in [0, 1], got {threshold}")
    if linear:
        if normalize:
            tau = n_steps - 1 - first_spike_time
        return np.minimum(-tau * (x - 1), -tau * (threshold - 1)).astype(np.float32) + np.float32(first_spike_time)
    x = np.maximum(x, np.float32(threshold + epsilon))
    times = (tau * np.log(x / (x - np.float32(threshold)))).astype(np.float32)
    if first_spike_time > 0:
        times = times + np.float32(first_spike_time)
    if normalize:
        shifted = times - np.float32(first_spike_time)
        times = (shifted * np.float32(n_steps - first_spike_time - 1) / shifted.max() + first_spike_time).astype(
            np.float32
        )
    return times


def latency_encode(
    data,
    n_steps: int,
    tau: float = 5.0,
    *,
    threshold: float = 0.01,
    linear: bool = False,
    normalize: bool = False,
    clip: bool = False,
    first_spike_time: int = 0,
    epsilon: float = 1e-7,
) -> np.ndarray:
    """Time-to-first-spike code ``[n_steps, *data.shape]``: stronger inputs fire earlier, at most once.

    ``clip=True`` silences elements below ``threshold`` (otherwise they fire last, at the
    saturated time). Options and formulas as ``snntorch.spikegen.latency`` (module docstring).
    """
    n_steps = _steps(n_steps)
    times = latency_times(
        data, n_steps, tau, threshold=threshold, linear=linear, normalize=normalize,
        first_spike_time=first_spike_time, epsilon=epsilon,
    )  # fmt: skip
    step = np.round(times).astype(np.int64)
    fire = step <= n_steps - 1
    if clip:
        fire &= _array(data) >= threshold
    out = np.zeros((n_steps, *times.shape), dtype=np.float32)
    idx = np.nonzero(fire)
    out[(step[idx], *idx)] = 1.0
    return out


def delta_encode(frames, threshold: float = 0.1) -> np.ndarray:
    """ON/OFF change events ``[T-1, 2, *shape]`` of frames ``[T, *shape]`` (ON: rise >= threshold, OFF: fall)."""
    x = _array(frames, "frames")
    if x.ndim < 1 or x.shape[0] < 2:
        raise EventFormatError(f"delta_encode needs at least two frames along axis 0, got shape {list(x.shape)}")
    diff = x[1:] - x[:-1]
    on = diff >= np.float32(threshold)
    off = diff <= np.float32(-threshold)
    return np.stack([on, off], axis=1).astype(np.float32)


def temporal_encode(signal, threshold: float = 0.5) -> np.ndarray:
    """Spikes ``[T, N]`` where a signal ``[T, N]`` crosses ``threshold`` upwards (at ``t = 0``: starts at or above)."""
    x = _array(signal, "signal")
    if x.ndim != 2:
        raise EventFormatError(f"temporal_encode expects a signal [T, N], got shape {list(x.shape)}")
    above = x >= np.float32(threshold)
    crossing = above.copy()
    crossing[1:] &= ~above[:-1]
    return crossing.astype(np.float32)
