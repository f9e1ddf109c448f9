"""How ``JaxGraph.run`` calls its compiled function: flat arguments, and a repeated call found again.

``run``'s compiled function takes the prepared parameters, the state and the inputs — a dozen
arrays in nested dicts for a small model — and returns the outputs and the final state, in dicts
too. ``jax.jit`` flattens its argument pytrees (sorting every dict's keys), checks their
structure and unflattens its results on every call: with the static arguments, ~10 us of a call
that computes for 50 us at ``T = 1`` (the benchmark's recurrent model, measured against
``spyx.nn.run``, docs/jax.md §8). So the function is compiled as a function of the flat list of
its argument leaves that returns the flat list of its result leaves (:meth:`RunCalls.function`,
one ``jax.jit`` per argument structure and static choice): the same operations on the same
arrays, the same compiled module, only passed as a tuple.

And the Python of ``run`` before that call — the checks of the inputs and the parameters, their
preparation (:mod:`.call_cache`), the initial state — costs as much again on every call. The
common case of a loop of ``run(params, x)`` calls repeats the last call but for the values of
``x``: the same parameter arrays, no state, an input of the same type, shape, dtype and
placement. :meth:`RunCalls.repeat` recognises exactly that — one flatten of the parameters and
an identity comparison of their leaves, as :class:`.call_cache.PreparedCalls` does, and the
input's type, shape, dtype (and placement, when the results are moved on the host) — and calls
the function it called last, with the prepared arrays it passed last. Anything else (a changed
or new parameter array, numpy parameters, which a caller may change in place, traced ones, a
state, an input of another shape or dtype, a numpy input, several inputs) takes the full path,
which checks and prepares everything, so a wrong argument is refused as before.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

from .call_cache import is_concrete


@dataclass(frozen=True)
class _Repeatable:
    """What :meth:`RunCalls.repeat` compares a call with, and what it calls again."""

    treedef: Any  # of the parameter pytree
    leaves: list  # the parameter arrays (concrete jax.Arrays)
    x_type: type
    shape: tuple[int, ...]
    dtype: Any
    sharding: Any  # None when the input's placement does not matter (results not moved on the host)
    record: bool
    mode: str
    function: Callable
    prefix: tuple  # the leaves passed before the input's
    out_tree: Any
    host: bool


class RunCalls:
    """The compiled functions of ``run(*leaves)`` by argument structure, and the last repeatable call."""

    def __init__(self, run: Callable):
        self._run = run  # JaxGraph._run(params, moved, spread, state, inputs, record, mode, state_inside, host)
        self._functions: dict[tuple, tuple[Callable, list]] = {}
        self._last: _Repeatable | None = None

    def function(self, in_tree, record: bool, mode: str, inside: bool, host: bool) -> tuple[Callable, list]:
        """``(f, out_trees)``: ``f(*leaves)`` is the ``jax.jit`` of ``run`` on the arguments
        ``in_tree.unflatten(leaves)``, returning the leaves of its result, whose structure is
        ``out_trees[0]`` once ``f`` has been called (traced)."""
        key = (in_tree, record, mode, inside, host)
        entry = self._functions.get(key)
        if entry is None:
            out_trees: list = []

            def run_leaves(*leaves):
                result = self._run(*in_tree.unflatten(leaves), record=record, mode=mode, state_inside=inside, host=host)
                flat, out_tree = jax.tree.flatten(result)
                out_trees[:] = [out_tree]
                return tuple(flat)

            entry = self._functions[key] = (jax.jit(run_leaves), out_trees)
        return entry

    def call(self, arguments: tuple, record: bool, mode: str, inside: bool, host: bool):
        """``run(*arguments)`` through :meth:`function`: ``(result, function, leaves, out_tree)``."""
        leaves, in_tree = jax.tree.flatten(arguments)
        function, out_trees = self.function(in_tree, record, mode, inside, host)
        result = function(*leaves)
        return out_trees[0].unflatten(result), function, leaves, out_trees[0]

    def lower(self, arguments: tuple, flags: tuple):
        """The :meth:`function` for ``arguments``, lowered on them (not called)."""
        leaves, in_tree = jax.tree.flatten(arguments)
        return self.function(in_tree, *flags)[0].lower(*leaves)

    def remember(self, params, x, record: bool, mode: str, function, leaves: list, out_tree, host: bool, placed: bool):
        """Keep the call just made from the initial state for :meth:`repeat`, when it can repeat:
        concrete parameter arrays and a concrete input passed as it is, the last of ``leaves``.
        ``placed``: whether a repeat must also find the input on the same devices. (A call that
        cannot repeat leaves the last one remembered: its arrays are immutable.)"""
        param_leaves, treedef = jax.tree.flatten(params)
        if not (param_leaves and all(map(is_concrete, param_leaves)) and is_concrete(x) and leaves[-1] is x):
            return
        self._last = _Repeatable(
            treedef, param_leaves, type(x), tuple(x.shape), x.dtype, x.sharding if placed else None,
            bool(record), mode, function, tuple(leaves[:-1]), out_tree, host,
        )  # fmt: skip

    def repeat(self, params, x, record, mode) -> tuple[Any, bool] | None:
        """``(result, host)`` of the last remembered call made again on the input ``x``, if
        ``run(params, x, record=record, mode=mode)`` (no state) repeats it; else None."""
        last = self._last
        if (
            last is None
            or type(x) is not last.x_type
            or x.shape != last.shape
            or x.dtype != last.dtype
            or bool(record) is not last.record
            or mode != last.mode
            or (last.sharding is not None and x.sharding != last.sharding)
        ):
            return None
        leaves, treedef = jax.tree.flatten(params)
        if treedef != last.treedef or not all(map(operator.is_, leaves, last.leaves)):  # (same treedef: as many)
            return None
        return last.out_tree.unflatten(last.function(*last.prefix, x)), last.host
