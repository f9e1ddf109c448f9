"""Write a JAX engine's (trained) parameters back into a talon graph, exactly or not at all.

Weights go back under their IR names, keeping the IR dtype when the value survives the cast
(a float64 weight trained in float32 stays float64) and the compute dtype otherwise.

Neuron coefficients are inverted to time constants exactly, or refused naming the node, by
:func:`talon.ir.coefficients.fields_from_coefficients` (shared with the PyTorch executor's export).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from ... import ir
from ...ir.coefficients import STATEFUL, fields_from_coefficients, keep_dtype
from ...ir.errors import ConversionError


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
        changes = fields_from_coefficients(node, f"node {path!r}", new, dtype)
    else:
        changes = {name: keep_dtype(getattr(node, name), arr) for name, arr in new.items()}
    if not changes:
        return copy.deepcopy(node)
    fields = {**node.params(), **changes}
    try:
        return type(node)(**fields, metadata=copy.deepcopy(node.metadata))
    except ValueError as exc:
        raise ConversionError(
            f"node {path!r}: the trained parameters do not make a valid {type(node).__name__}: {exc}"
        ) from None
