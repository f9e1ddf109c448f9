"""A one-step Delay carried through the step-wise ``lax.scan`` without copies.

The history ``[1, B, ...]`` of a one-step Delay is carried as its one entry ``[B, ...]``
(:func:`unstack_delays`: a reshape, free in XLA), so the delayed value is the very array the step
computed, not a stacked copy. Within a step, the nodes reading that history run before the
neuron's update that writes its next value (:func:`delay_order`), and the update is made to wait
for them (:func:`wait_for`): otherwise XLA keeps both alive and copies the history into and out of
the loop carry every step. Same operations, same bits: only the order XLA may run them in changes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .plan import BOUNDARY, NEURON


def delay_order(plan, delays: set[str]):
    """``(order, {neuron: [readers]})`` for a step of the scan over ``plan`` with the one-step
    Delays ``delays``, or None when no neuron writes what a node reads through them.

    ``order`` evaluates first every node that does not depend on the Delays' sources within the
    step; ``readers``, those among them reading a Delay directly (through Boundaries), are what
    each source neuron's update waits for."""
    nodes = plan.nodes
    sources = {nodes[e.src].kind == NEURON and e.src for d in delays for e in nodes[d].inputs} - {False}
    # what a step computes from the Delays' sources (a Delay's value is its history: not from them)
    late = set(sources)
    for path in plan.order:
        if any(not e.recurrent and e.src in late and e.src not in delays for e in nodes[path].inputs):
            late.add(path)
    passes = set(delays)  # the Delays and the Boundaries that pass their value on unchanged
    for path in plan.order:
        ins = [e.src for e in nodes[path].inputs if not e.recurrent]
        if nodes[path].kind == BOUNDARY and ins and all(s in passes for s in ins):
            passes.add(path)
    readers = [
        p for p in plan.order
        if p not in late and p not in passes and any(e.src in passes for e in nodes[p].inputs if not e.recurrent)
    ]  # fmt: skip
    if not sources or not readers:
        return None
    order = [p for p in plan.order if p not in late] + [p for p in plan.order if p in late]
    return order, {src: readers for src in sources}


def wait_for(zero, values):
    """``zero`` (a ``+0.0``) made data-dependent on ``values``: ``zero * (v == v)`` is ``+0.0``
    whatever ``v`` is (``v == v`` is 0 or 1, also for a NaN or an infinity), yet XLA must now
    run the kernels computing ``values`` before those using the zero. (An optimization barrier
    does not do it: XLA's CPU pipeline removes barriers before it orders a loop body.)"""
    for value in jax.tree.leaves(values):
        if value.size:
            first = jnp.ravel(value)[0]
            zero = zero * (first == first).astype(zero.dtype)
    return zero


def unstack_delays(state: dict, one_step: list[str], axis: int | None) -> dict:
    """``state`` with the history ``[1, B, ...]`` of each Delay of ``one_step`` carried as its one
    entry ``[B, ...]`` (``axis=0``), or back (``axis=None``)."""
    present = [p for p in one_step if p in state["nodes"]]
    if not present:
        return state
    nodes = dict(state["nodes"])
    for path in present:
        history = nodes[path]["history"]
        nodes[path] = {"history": history[0] if axis == 0 else history[None]}
    return {**state, "nodes": nodes}
