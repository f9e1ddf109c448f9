"""Bit-exact structural comparison of graphs (nodes compare by identity otherwise)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .graph import Graph
from .node import Node


def graph_differences(a: Graph, b: Graph, *, metadata: bool = True) -> list[str]:
    """List every difference between two graphs; empty means identical.

    Arrays must match bit for bit (dtype, shape and bytes; NaN equals NaN); node order, edge
    order, types, input/output types and (unless ``metadata=False``) metadata all count.
    """
    diffs: list[str] = []
    _graph(a, b, "graph", diffs, metadata)
    return diffs


def _graph(a: Graph, b: Graph, where: str, diffs: list[str], metadata: bool) -> None:
    if list(a.nodes) != list(b.nodes):
        diffs.append(f"{where}: node names/order differ: {list(a.nodes)} vs {list(b.nodes)}")
    if a.edges != b.edges:
        diffs.append(f"{where}: edges differ: {a.edges} vs {b.edges}")
    if metadata:
        _value(a.metadata, b.metadata, f"{where} metadata", diffs)
    for name in a.nodes.keys() & b.nodes.keys():
        _node(a.nodes[name], b.nodes[name], f"{where} node {name!r}", diffs, metadata)


def _node(a: Node, b: Node, where: str, diffs: list[str], metadata: bool) -> None:
    if type(a).__name__ != type(b).__name__:
        diffs.append(f"{where}: type {type(a).__name__} vs {type(b).__name__}")
        return
    if isinstance(a, Graph):
        _graph(a, b, where, diffs, metadata)
        return
    pa, pb = a.params(), b.params()
    for key in pa.keys() | pb.keys():
        _value(pa.get(key), pb.get(key), f"{where} {key}", diffs)
    for attr in ("input_type", "output_type"):
        _value(getattr(a, attr), getattr(b, attr), f"{where} {attr}", diffs)
    if metadata:
        _value(a.metadata, b.metadata, f"{where} metadata", diffs)


def _value(x: Any, y: Any, where: str, diffs: list[str]) -> None:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
            diffs.append(f"{where}: {type(x).__name__} vs {type(y).__name__}")
        elif x.dtype != y.dtype or x.shape != y.shape:
            diffs.append(f"{where}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
        elif np.ascontiguousarray(x).tobytes() != np.ascontiguousarray(y).tobytes():
            diffs.append(f"{where}: values differ (max |diff| {_maxdiff(x, y)})")
    elif isinstance(x, dict) and isinstance(y, dict):
        if list(x) != list(y):
            diffs.append(f"{where}: keys {list(x)} vs {list(y)}")
        for k in x.keys() & y.keys():
            _value(x[k], y[k], f"{where}[{k!r}]", diffs)
    elif isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        if type(x) is not type(y) or len(x) != len(y):
            diffs.append(f"{where}: {x!r} vs {y!r}")
        else:
            for i, (u, v) in enumerate(zip(x, y, strict=True)):
                _value(u, v, f"{where}[{i}]", diffs)
    elif type(x) is not type(y) and not (isinstance(x, str) and isinstance(y, str)):
        diffs.append(f"{where}: {x!r} ({type(x).__name__}) vs {y!r} ({type(y).__name__})")
    elif x != y and not (isinstance(x, float) and np.isnan(x) and np.isnan(y)):
        diffs.append(f"{where}: {x!r} vs {y!r}")


def _maxdiff(x: np.ndarray, y: np.ndarray) -> str:
    try:
        return f"{float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))):.3g}"
    except (TypeError, ValueError):
        return "?"
