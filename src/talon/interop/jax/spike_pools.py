"""Sum and average pools over spikes, written as sums of strided slices.

A pool whose input is the 0/1 spikes of a spiking neuron sums at most ``kh * kw`` ones per
window: small integers, which floating point adds exactly in any order. Its window sums can then
be written as the sum of ``kh * kw`` strided slices of the (zero-padded) input, one per window
offset, instead of a ``reduce_window``: the same numbers, bit for bit, but elementwise
operations XLA fuses with their neighbours — on the SCNN of ``docs/jax.md`` §8 the spike
comparison, the pool and the transpose of the pooled spikes to talon's channels-first order
before a ``Flatten`` became one loop kernel instead of three (a spike kernel, a pool kernel and
a transposing copy).

Only where the sum is exact in any order: a pool with one ordinary (not recurrent) incoming
edge from a single-spike spiking neuron (possibly through subgraph boundaries), whose window
holds at most ``2**(mantissa bits + 1)`` cells, so that every partial sum is an integer the
dtype represents. Every other pool keeps ``lax.reduce_window``, whose summation order this
module does not reproduce. The engine slices only the pools of its channels-last chains
(:mod:`.channels_last`): on a channels-first graph the changed kernels made XLA sum the gradient
of a per-channel neuron coefficient (a reduction over the batch and the spatial axes) in
another order, off by one in the last bit.

Gradients: non-overlapping windows (stride >= window, no dilation) give every input cell one
output cell, so the cotangent reaching a cell is that output's cotangent plus zeros for the
slices that do not contain it, as in the ``reduce_window`` transpose (both turn a ``-0.0``
cotangent into ``+0.0``). Overlapping windows sum several cotangents, in an order this module
does not control, so they keep ``reduce_window`` too.
"""

from __future__ import annotations

import numpy as np
from jax import lax

from ... import ir
from .neurons import SPIKING
from .plan import BOUNDARY, NEURON, Plan


def spike_fed_pools(plan: Plan, dtype) -> frozenset[str]:
    """The SumPool2d / AvgPool2d nodes of ``plan`` whose window sums may be sliced (see the
    module docstring)."""
    limit = 2 ** (np.finfo(dtype).nmant + 1)
    out = set()
    for path, flat in plan.nodes.items():
        node = flat.node
        if not isinstance(node, (ir.SumPool2d, ir.AvgPool2d)):
            continue
        cells = int(np.prod(node.kernel_size))
        disjoint = all(s >= k for s, k in zip(node.stride, node.kernel_size, strict=True))
        dilated = any(d != 1 for d in getattr(node, "dilation", (1, 1)))
        if cells <= limit and disjoint and not dilated and _spikes_arrive(plan, path):
            out.add(path)
    return frozenset(out)


def _spikes_arrive(plan: Plan, path: str) -> bool:
    """Whether the value arriving at ``path`` is the 0/1 spikes of a single-spike neuron."""
    seen = set()
    while path not in seen:
        seen.add(path)
        edges = plan.nodes[path].inputs
        if len(edges) != 1 or edges[0].recurrent or edges[0].port is not None:
            return False
        source = plan.nodes[edges[0].src]
        if source.kind == NEURON:
            return isinstance(source.node, SPIKING) and not source.node.multi_spike
        if source.kind != BOUNDARY:
            return False
        path = source.path
    return False


def sliced_window_sum(x, window, strides, pads):
    """``lax.reduce_window(x, 0, add, window, strides, pads)`` for non-dilated windows, as the
    sum of one strided slice per window offset (in row-major offset order) of ``x`` padded with
    zeros. Equal to the ``reduce_window`` bit for bit when every sum is exact (small integers)."""
    if any(lo or hi for lo, hi in pads):
        x = lax.pad(x, np.zeros((), x.dtype), [(lo, hi, 0) for lo, hi in pads])
    shape = x.shape
    out = [(n - k) // s + 1 for n, k, s in zip(shape, window, strides, strict=True)]
    total = None
    for offset in np.ndindex(*window):
        limit = [o + (m - 1) * s + 1 for o, m, s in zip(offset, out, strides, strict=True)]
        term = lax.slice(x, offset, limit, strides)
        total = term if total is None else total + term
    return total
