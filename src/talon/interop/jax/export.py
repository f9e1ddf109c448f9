"""Write a JAX engine's (trained) parameters back into a talon graph, exactly or not at all.

Weights go back under their IR names, keeping the IR dtype when the value survives the cast
(a float64 weight trained in float32 stays float64) and the compute dtype otherwise.

Neuron coefficients are inverted to time constants in float64::

    tau = 1 / (1 - beta)     r = g * tau     v_leak = c * tau      (LIF, LI; tau_mem for Cuba*)
    tau_syn = 1 / (1 - alpha)     w_in = gs * tau_syn               (CubaLIF, CubaLI)
    r = g                                                           (IF, Integrator)
    tau = 1 / k              r, v_leak as they are                  (LIF, LI with integration 'euler')

and the result is checked (:mod:`.timeconst`): recomputing the coefficients the way every engine
does (float64, one cast) must give back the trained values bit for bit, or
:class:`~talon.ir.ConversionError` names the node and the value. Coefficients that did not change
keep the original parameters untouched.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from ... import ir
from ...ir.errors import ConversionError
from .neurons import STATEFUL, coefficients, is_euler
from .timeconst import time_constant, time_constant_of_rate


def to_graph(graph: ir.Graph, params: Mapping, initial: Mapping, dtype: np.dtype) -> ir.Graph:
    """A copy of ``graph`` with the parameters ``params`` (same structure as ``initial``)."""
    if not isinstance(params, Mapping) or set(params) != set(initial):
        raise ValueError(
            f"params must have the structure of JaxGraph.params (nodes {sorted(initial)}), "
            f"got {sorted(params) if isinstance(params, Mapping) else type(params).__name__}"
        )
    values = {}
    for path, expected in initial.items():
        given = params[path]
        if not isinstance(given, Mapping) or set(given) != set(expected):
            raise ValueError(f"params[{path!r}] must have the keys {sorted(expected)}")
        values[path] = {}
        for name, ref in expected.items():
            arr = np.asarray(given[name])
            if arr.shape != np.shape(ref):
                raise ValueError(f"params[{path!r}][{name!r}] has shape {arr.shape}, expected {np.shape(ref)}")
            values[path][name] = arr.astype(dtype, copy=False)
    return _rebuild(graph, "", values, dtype)


def _rebuild(graph: ir.Graph, prefix: str, values: dict, dtype) -> ir.Graph:
    nodes = {}
    for name, node in graph.nodes.items():
        path = prefix + name
        if isinstance(node, ir.Graph):
            nodes[name] = _rebuild(node, path + ".", values, dtype)
        elif path in values:
            nodes[name] = _updated(node, path, values[path], dtype)
        else:
            nodes[name] = copy.deepcopy(node)
    return ir.Graph(nodes, list(graph.edges), copy.deepcopy(graph.metadata))


def _updated(node: ir.Node, path: str, new: dict[str, np.ndarray], dtype) -> ir.Node:
    if isinstance(node, STATEFUL):
        changes = _neuron_params(node, path, new, dtype)
    else:
        changes = {name: _keep_dtype(getattr(node, name), arr) for name, arr in new.items()}
    if not changes:
        return copy.deepcopy(node)
    fields = {**node.params(), **changes}
    try:
        return type(node)(**fields, metadata=copy.deepcopy(node.metadata))
    except ValueError as exc:
        raise ConversionError(
            f"node {path!r}: the trained parameters do not make a valid {type(node).__name__}: {exc}"
        ) from None


def _keep_dtype(original, new: np.ndarray) -> np.ndarray:
    """``new`` in the dtype of ``original`` when the cast is lossless, else as it is."""
    original = np.asarray(original)
    if original.dtype.kind == "f" and original.dtype != new.dtype:
        cast = new.astype(original.dtype)
        if np.array_equal(cast.astype(new.dtype), new, equal_nan=True):
            return cast
    return new.copy()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def _neuron_params(node: ir.Node, path: str, new: dict, dtype) -> dict:
    old = coefficients(node, dtype)
    changed = {k for k in new if not _same(new[k], old[k])}
    out: dict[str, np.ndarray] = {}
    if is_euler(node):  # k = 1/tau, r, v_leak: the node keeps integration='euler'
        if "k" in changed:
            try:
                out["tau"] = time_constant_of_rate(new["k"], dtype)
            except ValueError as exc:
                raise ConversionError(f"node {path!r}: the trained parameters have no exact tau: {exc}") from None
        for name in ("r", "v_leak"):
            if name in changed:
                out[name] = _keep_dtype(getattr(node, name), new[name])
    elif {"beta", "g", "c"} & changed:
        if isinstance(node, (ir.IF, ir.Integrator)):  # g = r
            out["r"] = _keep_dtype(node.r, new["g"])
        else:
            tau = "tau" if isinstance(node, (ir.LIF, ir.LI)) else "tau_mem"
            inverted = _invert(path, new["beta"], (new["g"], new["c"]), tau, dtype)
            out.update(zip((tau, "r", "v_leak"), inverted, strict=True))
    if {"alpha", "gs"} & changed:
        inverted = _invert(path, new["alpha"], (new["gs"],), "tau_syn", dtype)
        out.update(zip(("tau_syn", "w_in"), inverted, strict=True))
    if "theta" in changed:
        out["v_threshold"] = _keep_dtype(node.v_threshold, new["theta"])
    if "v_reset" in changed:
        out["v_reset"] = _keep_dtype(node.v_reset, new["v_reset"])
    return out


def _invert(path: str, decay: np.ndarray, gains: tuple[np.ndarray, ...], name: str, dtype) -> list[np.ndarray]:
    try:
        return time_constant(decay, gains, dtype)
    except ValueError as exc:
        raise ConversionError(f"node {path!r}: the trained parameters have no exact {name}: {exc}") from None
