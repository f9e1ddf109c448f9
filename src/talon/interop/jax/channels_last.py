"""Convolution chains run channels-last inside the JAX engine.

talon's layout is channels-first (``[B, C, H, W]``); XLA's CPU convolutions, pools and the
elementwise neuron updates after them are fastest channels-last (``[B, H, W, C]``, Spyx's
layout): on a conv -> LIF -> sum-pool layer a step took a fifth less time. The engine therefore
keeps the values (and neuron states) of a *chain* channels-last: :func:`channels_last_paths`
picks every convolution, and every neuron, pool or parameterless elementwise node whose inputs
all come from the chain. Values cross into and out of the chain by a transpose on the edge
(:func:`arrive`) — an Input's step slice, where XLA fuses the transpose into the slicing (a
transposed copy of the whole input before the time loop measured the same run time and ~15 %
more XLA compile time) — and a graph output and the neuron states of the chain are transposed
back once, at the end of a ``run`` (the state at its start too, unless it is the engine's
cached initial state, which is made channels-last on the host). What a caller sees is always
in talon's layout.

Exactness: a transpose moves values without touching them, the neuron coefficients are the
same numbers laid out channels-last (:func:`coefficient_axes`), and a node after the chain
(e.g. the Flatten before a Linear) reads it back in talon's order, so every sum keeps its terms
and their order. The convolution itself is the same cross-correlation; XLA's CPU kernels sum its
terms in the same order in both layouts (tests/interop/test_jax_channels_last.py compares both
layouts bit for bit on arbitrary floats).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import layers
from .plan import BOUNDARY, NEURON, OP, Plan


def channels_last_paths(plan: Plan) -> frozenset[str]:
    """The flat nodes whose values the engine keeps channels-last (see the module docstring).

    A convolution is in when one of its consumers is; a neuron, pool, elementwise node or
    subgraph boundary (an Output included) when all its incoming edges are ordinary (not
    recurrent, not a port of a multi-output node) edges from nodes that are in. Only values with
    spatial axes (rank >= 2 without the batch) are concerned.
    """
    consumers: dict[str, list[str]] = {p: [] for p in plan.nodes}
    for path, flat in plan.nodes.items():
        for edge in flat.inputs:
            consumers[edge.src].append(path)
    chain: set[str] = set()
    for path in plan.order:
        flat = plan.nodes[path]
        if len(flat.shape) < 2 or flat.kind not in (NEURON, OP, BOUNDARY):
            continue
        convolution = flat.kind == OP and layers.is_convolution(flat.node)
        follows = (flat.kind != OP or layers.runs_channels_last(flat.node)) and _all_from(plan, path, chain)
        if convolution or follows:
            chain.add(path)
    # a convolution none of whose consumers joined the chain stays channels-first
    chain -= {p for p in chain if layers.is_convolution(plan.nodes[p].node) and not set(consumers[p]) & chain}
    return frozenset(chain)


def _all_from(plan: Plan, path: str, sources: set[str]) -> bool:
    """Whether ``path`` has incoming edges, all ordinary edges (not recurrent, no port) from ``sources``."""
    edges = plan.nodes[path].inputs
    return bool(edges) and all(e.src in sources and not e.recurrent and e.port is None for e in edges)


def to_last(x, rank: int):
    """``[*lead, C, *spatial]`` -> ``[*lead, *spatial, C]`` for a value of (unbatched) ``rank``."""
    return jnp.moveaxis(x, x.ndim - rank, -1)


def to_first(x, rank: int):
    """Inverse of :func:`to_last`."""
    return jnp.moveaxis(x, -1, x.ndim - rank)


def to_first_on_host(value: jax.Array, rank: int) -> jax.Array:
    """:func:`to_first` made by numpy, back on ``value``'s device (by
    ``jnp.asarray``, a third of ``jax.device_put``'s fixed cost, when that is the default device)."""
    moved = np.ascontiguousarray(np.moveaxis(np.asarray(value), -1, value.ndim - rank))
    out = jnp.asarray(moved)
    return out if out.devices() == value.devices() else jax.device_put(moved, value.sharding)


def arrive(value, rank: int, src_last: bool, dst_last: bool):
    """``value`` (of unbatched ``rank``) moved from its source's layout to its consumer's."""
    if src_last == dst_last or rank < 2:
        return value
    return to_last(value, rank) if dst_last else to_first(value, rank)


def coefficient_axes(param: Any, rank: int) -> tuple[int, ...] | None:
    """The axes that lay a layer-shaped coefficient (``rank`` axes, channels first) out
    channels-last, or None for a per-channel ``(C,)``, scalar or otherwise broadcast one."""
    return (*range(1, rank), 0) if np.ndim(param) == rank >= 2 else None
