"""What :class:`~talon.interop.jax.executor.JaxGraph` accepts from its caller, checked before any tracing.

``params``, ``state`` and inputs are the caller's (trained, saved, loaded, edited), so they are
checked here and a mismatch is reported naming the parameter, state entry or input, rather than as
a shape or dtype error from inside XLA (``dot_general requires contracting dimensions …``, ``scan
body function carry input and carry output must have equal types …``):

* ``params``: the structure of ``JaxGraph.params`` (the same nodes and names), each leaf an array
  (or array-like, or a tracer) of the shape of ``JaxGraph.params``'s and a real numeric dtype
  (floating, integer or bool: it is cast to the engine's dtype, as before). A complex, string or
  object value is refused: casting it would drop its imaginary part or fail inside the jit.
* ``state``: the structure and shapes of ``init_state(B)`` and the engine's dtype (a state of
  another dtype cannot be carried through ``lax.scan``).
* inputs: array-likes of a real numeric dtype (a complex input would lose its imaginary part).

Parameter checks run when the parameters are prepared (once per new set of parameters, not per call).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _shape_and_dtype(value: Any, where: str) -> tuple[tuple[int, ...], Any]:
    """``(shape, dtype)`` of an array, tracer or array-like (converted only when it has neither)."""
    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape is None or dtype is None:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where} is not an array: {exc}") from None
        shape, dtype = arr.shape, arr.dtype
    return tuple(shape), dtype


def is_real_numeric(dtype: Any) -> bool:
    """Floating (bfloat16 too), integer or bool."""
    try:
        return any(jnp.issubdtype(dtype, kind) for kind in (jnp.floating, jnp.integer, jnp.bool_))
    except TypeError:
        return False


def check_params(params: Any, expected: Mapping[str, Mapping[str, Any]], structure: Any) -> None:
    """``params`` must have the nodes, names, shapes and a real numeric dtype of ``expected``
    (``JaxGraph.params``, whose tree structure is ``structure``)."""
    if not (isinstance(params, dict) and jax.tree.structure(params) == structure):
        if not isinstance(params, Mapping) or set(params) != set(expected):
            given = sorted(params, key=str) if isinstance(params, Mapping) else type(params).__name__
            raise ValueError(
                f"params must have the structure of JaxGraph.params (nodes {sorted(expected)}), got {given}"
            )
        for path, names in expected.items():
            if not isinstance(params[path], Mapping) or set(params[path]) != set(names):
                raise ValueError(f"params[{path!r}] must have the keys {sorted(names)}")
    for path, names in expected.items():
        given = params[path]
        for name, reference in names.items():
            where = f"params[{path!r}][{name!r}]"
            shape, dtype = _shape_and_dtype(given[name], where)
            want = tuple(np.shape(reference))
            if shape != want:
                raise ValueError(
                    f"{where} has shape {list(shape)}, expected {list(want)} (the shape of JaxGraph.params); "
                    "to run other weights, build a JaxGraph of a graph that has them"
                )
            if not is_real_numeric(dtype):
                raise TypeError(f"{where} has dtype {dtype}; parameters are real numbers (float, int or bool)")


def check_state(state: Any, want: Any, batch: int, dtype: np.dtype) -> None:
    """``state`` must have the structure and shapes ``want`` (``init_state(batch)``'s, a pytree of
    shape tuples) and the engine's ``dtype``."""
    hint = "pass the state returned by init_state, step or run for inputs of the same batch size"
    try:
        given = jax.tree.map(lambda a: tuple(np.shape(a)), state)
    except Exception as exc:  # not a pytree of arrays
        raise ValueError(f"state must be the structure returned by init_state/step/run: {exc}") from None
    if jax.tree.structure(given) != jax.tree.structure(want) or given != want:
        raise ValueError(
            f"state does not match init_state({batch}) for this input batch of {batch}: expected the nodes "
            f"{sorted(want['nodes'])} and edges {sorted(want['edges'])} with batch {batch}; {hint}"
        )
    if all(getattr(leaf, "dtype", None) == dtype for leaf in jax.tree.leaves(state)):
        return  # (the paths are worked out only to name a wrong leaf)
    for key_path, leaf in jax.tree_util.tree_leaves_with_path(state):
        leaf_dtype = getattr(leaf, "dtype", None)
        if leaf_dtype is None or leaf_dtype != dtype:
            where = "state" + jax.tree_util.keystr(key_path)
            shown = leaf_dtype if leaf_dtype is not None else type(leaf).__name__
            raise TypeError(f"{where} is {shown}, but this engine runs {dtype}; {hint} (or cast it to {dtype})")


CALLS = "step(params, state, x) and run(params, x, state=None)"


def check_call(call: str, x: Any, input_names: list[str], state: Any = (), needs_state: bool = False) -> None:
    """Refuse, before anything else, arguments in another order than :data:`CALLS` (a state where
    the input goes) and a missing state for ``step`` (which, unlike ``run``, has no default)."""
    # (states are dicts: a dict check costs ~50 ns where an isinstance of Mapping costs ~300 on an array)
    if isinstance(x, dict) and set(x) == {"nodes", "edges"} and set(x) != set(input_names):
        raise TypeError(
            f"JaxGraph.{call} got a state (a dict of 'nodes' and 'edges') where the input x goes: the calls are {CALLS}"
        )
    if needs_state and state is None:  # (an empty dict is a state that does not match: check_state says so)
        raise TypeError(
            "JaxGraph.step got None as the state: pass "
            "model.init_state(batch_size) at t = 0, then the state step returned (run(params, x) starts from "
            "init_state by itself)"
        )


def as_input(name: str, value: Any, dtype: np.dtype) -> jax.Array:
    """Input ``name`` as a jax array of ``dtype``; refuses what is not a real numeric array."""
    if isinstance(value, jax.Array) and value.dtype == dtype:
        return value  # passes as it is (jnp.asarray would dispatch a conversion)
    source_dtype = getattr(value, "dtype", None)
    if source_dtype is None:
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"input {name!r} cannot be converted to an array: {exc}") from None
        source_dtype = value.dtype
    if not is_real_numeric(source_dtype):
        raise TypeError(f"input {name!r} has dtype {source_dtype}; inputs are real numbers (float, int or bool)")
    return jnp.asarray(value, dtype=dtype)
