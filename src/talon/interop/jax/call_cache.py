"""The host-side preparation of ``run`` and ``step``, kept while the same parameter arrays come back.

Before every call of its compiled functions, :class:`~.executor.JaxGraph` validates the
parameter dict, looks up the relaid-out weights (:func:`.layers.relayout_on_host`) and the
prepared neuron coefficients (:mod:`.spread`), and checks whether the arrays live on the CPU
(where a channels-last state is moved back to talon's layout by numpy). Each step is cached by
array identity, but walking the dicts of a graph's parameters still cost tens of microseconds of
Python per call — the whole of a small model's per-call overhead over ``spyx.nn.run``, whose
``jit`` call validates nothing.

:class:`PreparedCalls` keeps the result for the last parameter pytree: one flatten (in C++) and
an identity comparison of its leaves find it again. Only pytrees of concrete ``jax.Array`` leaves
are kept — they are immutable, so the same leaves mean the same values; a numpy leaf (which a
caller may change in place) or a traced one (``jax.grad`` of ``run``) is prepared afresh on
every call, as before.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import jax


class PreparedCalls:
    """The preparation ``make(params)`` of the last concrete parameter pytree and batch size."""

    def __init__(self) -> None:
        self._last: tuple[int, Any, list, Any] | None = None

    def get(self, params, batch: int, make: Callable[[Any], Any]) -> Any:
        leaves, treedef = jax.tree.flatten(params)
        last = self._last
        if (
            last is not None
            and last[0] == batch
            and last[1] == treedef
            and len(last[2]) == len(leaves)
            and all(map(operator.is_, leaves, last[2]))
        ):
            return last[3]
        prepared = make(params)
        if leaves and all(is_concrete(a) for a in leaves):
            self._last = (batch, treedef, leaves, prepared)
        return prepared


def is_concrete(value) -> bool:
    """Whether ``value`` is an immutable array with values (a ``jax.Array`` that is no tracer)."""
    return isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer)


def on_cpu(leaves) -> bool:
    """Whether every leaf is concrete and every ``jax.Array`` among them lives on a CPU device."""
    if any(isinstance(a, jax.core.Tracer) for a in leaves):
        return False
    return all(d.platform == "cpu" for a in leaves if isinstance(a, jax.Array) for d in a.devices())
