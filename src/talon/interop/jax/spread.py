"""Neuron coefficients prepared on the host, so that a neuron update reads as few arrays as it can.

A neuron's coefficients (``beta, g, c, theta, …`` of :mod:`.neurons`) have the layer's shape,
``(C,)`` per channel, or are scalars; the update broadcasts them over ``[B, *shape]``. ``run``
and ``step`` pass each concrete coefficient in the cheapest form that holds the same values,
made by numpy and cached while the same arrays (and batch size) come back:

* **uniform** (every element has the same bits — a layer imported from Spyx or snnTorch with a
  scalar ``beta``, the default ``v_leak = 0``, ``v_reset = 0``): a 0-d array
  (:func:`uniform_on_host`). The fused update then reads one number instead of a per-neuron
  array for it, as ``spyx.nn.LIF`` (whose ``beta`` and threshold are scalars) does.
* **identity**: a ``g`` of exactly 1 or a ``c`` of exactly ``+0.0`` on every neuron (the
  Spyx and snnTorch LIF: ``g = r/tau = 1``, ``c = v_leak/tau = 0``) is passed as None, which
  ``jit`` sees as a different structure (it compiles that update once more): the update then
  leaves out the product ``g*x`` (``1*x == x`` for every float) and the sum ``+ c`` (the sum it
  would be added to is never ``-0.0``; see :func:`.neurons._decay`). Spyx's LIF has neither.
* otherwise, for the layers of at most :data:`MAX_NEURONS` neurons (per sample): **spread** to
  ``[B, *shape]`` (in the layout the engine keeps the layer in). XLA on CPU compiles a
  broadcasting update into a kernel that LLVM takes several times as long to optimise as the
  same update on operands of one shape (a 10-neuron LIF: ~90–140 ms of CPU time against
  ~25–30 ms, measured kernel by kernel with ``TF_CPP_VMODULE=ir_compiler=2``), and XLA then also
  copies the whole update into the kernel that stacks the step's output. Larger layers (128 or
  256 neurons, an 8-channel 16×16 convolution's) compiled as fast with broadcasting
  coefficients, and reading ``B`` copies of each coefficient every step made their run slower,
  so they keep them as they are.
* the **bias** of a dense layer (Affine) of at most :data:`MAX_NEURONS` outputs, spread to
  ``[B, out]`` likewise: XLA adds it inside the next neuron's update kernel, and a broadcast
  ``[out]`` bias there made LLVM take three to four times as long on that kernel (the SCNN's
  10-neuron LIF, ``docs/jax.md`` §8) — the same effect as broadcasting coefficients.

Exactness: a scalar or a broadcast copies values; every neuron is multiplied and added with the
same coefficient value in the same order as before, so the results are the same bits ("uniform"
compares bits, so ``-0.0`` next to ``+0.0`` is not uniform). A traced parameter (``jax.grad`` of
``run``) is neither: it broadcasts in the graph as before. A coefficient that stops being
uniform (training) gives arrays of another shape, which ``jit`` compiles once more.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

MAX_NEURONS = 64  # layers up to this size (per sample) get spread coefficients


def spreads(shape: tuple[int, ...]) -> bool:
    """Whether a neuron layer of this per-sample shape gets its coefficients spread."""
    return int(np.prod(shape, dtype=np.int64)) <= MAX_NEURONS


def engine_shape(shape: tuple[int, ...], channels_last: bool) -> tuple[int, ...]:
    """A layer's per-sample shape in the layout the engine keeps it (channels-last or as given)."""
    return (*shape[1:], shape[0]) if channels_last and len(shape) >= 2 else tuple(shape)


def spread_on_host(value, shape: tuple[int, ...], batch: int, channels_last: bool):
    """``value`` (a coefficient in the engine's layout: layer-shaped, ``(C,)`` or scalar)
    broadcast to ``[batch, *engine_shape]`` as a contiguous array on ``value``'s device."""
    host = np.asarray(value)
    if host.ndim == 1 and len(shape) >= 2 and not channels_last:  # (C,) over [C, *spatial]
        host = host.reshape(host.shape + (1,) * (len(shape) - 1))
    full = np.ascontiguousarray(np.broadcast_to(host, (batch, *engine_shape(shape, channels_last))))
    if isinstance(value, jax.Array):
        return jax.device_put(full, value.sharding)
    return jax.device_put(full)


IDENTITIES = {"g": 1.0, "c": 0.0}  # coefficients whose product or sum can be left out at this value


def is_identity(name: str, value) -> bool:
    """Whether the coefficient ``name`` is :data:`IDENTITIES`' value (the same bits: ``+0.0``,
    not ``-0.0``) on every neuron."""
    if name not in IDENTITIES:
        return False
    host = np.asarray(value)
    if not host.size:
        return False
    kind = np.dtype(f"u{host.dtype.itemsize}")
    target = np.array(IDENTITIES[name], host.dtype).view(kind)
    return bool(np.all(host.reshape(-1).view(kind) == target))


def uniform_on_host(value):
    """``value`` as a 0-d array on its device when all its elements have the same bits (a
    coefficient shared by the whole layer), else None."""
    host = np.asarray(value)
    if host.ndim == 0:
        return None
    bits = host.reshape(-1).view(np.dtype(f"u{host.dtype.itemsize}"))
    if not bits.size or not np.all(bits == bits[0]):
        return None
    scalar = np.array(host.reshape(-1)[0], dtype=host.dtype)  # 0-d (np.ascontiguousarray makes 1-d)
    if isinstance(value, jax.Array):
        return jax.device_put(scalar, value.sharding)
    return jax.device_put(scalar)


def with_spread(params: dict, spread: Mapping[str, Mapping[str, Any]] | None) -> dict:
    """``params`` with the spread coefficients of ``spread`` (``{path: {name: array}}``) in place
    of the broadcasting ones."""
    if not spread:
        return params
    out = dict(params)
    for path, arrays in spread.items():
        out[path] = {**params[path], **arrays}
    return out
