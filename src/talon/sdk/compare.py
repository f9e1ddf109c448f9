"""Structural and numerical comparison of two graphs.

A difference is one of three kinds:

* **structural**: nodes added or removed, node order, node type, a non-array parameter (stride,
  reset mode ...), an array's shape or dtype, ``input_type`` / ``output_type``, edges or their order;
* **numerical**: array values of equal shape and dtype that differ; within tolerance when
  ``|a - b| <= atol + rtol * |b|`` everywhere (NaN equals NaN), as ``numpy.allclose``;
* **metadata**: graph or node metadata (compared independently of dict order).

``identical`` means no difference of any kind (bit-exact); ``equivalent`` means structurally equal
with every array within tolerance (metadata may differ).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from talon.ir import Graph, Node
from talon.ir.fingerprint import canonical_bytes

from ._common import GraphLike, enum_value, jsonable, load_graph

__all__ = ["GraphDiff", "NodeDiff", "assert_graphs_equal", "compare_graphs", "compare_nodes"]


@dataclass
class NodeDiff:
    """How node ``name`` differs.

    ``status`` is ``added``, ``removed``, ``modified`` or ``unchanged`` (bit-exact); ``changes``
    describe each difference (``'weight: max_diff=3.32e-02'``); ``weight_diff`` is the largest
    absolute difference over the node's comparable arrays (None if none was compared);
    ``within_tolerance`` is True when every compared array is within tolerance; ``structural``,
    ``values_changed`` and ``metadata_changed`` say which kinds of difference were found.
    """

    name: str
    status: str
    changes: list[str] = field(default_factory=list)
    weight_diff: float | None = None
    within_tolerance: bool = True
    structural: bool = False
    values_changed: bool = False
    metadata_changed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self.__dict__)


@dataclass
class GraphDiff:
    """The result of :func:`compare_graphs` (see the module docstring for the three kinds)."""

    identical: bool
    structural_match: bool
    numerical_match: bool
    metadata_match: bool
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_modified: list[str]
    nodes_unchanged: list[str]
    edges_added: list[tuple[str, str]]
    edges_removed: list[tuple[str, str]]
    node_order_changed: bool
    edge_order_changed: bool
    max_weight_diff: float
    mean_weight_diff: float
    node_diffs: list[NodeDiff]
    atol: float
    rtol: float

    @property
    def equivalent(self) -> bool:
        return self.structural_match and self.numerical_match

    @property
    def summary(self) -> str:
        if self.identical:
            return "Graphs are identical"
        head = "Equivalent within tolerance" if self.equivalent else "Differences"
        parts = [
            f"{len(self.nodes_modified)} node(s) modified",
            f"{len(self.nodes_added)} added",
            f"{len(self.nodes_removed)} removed",
            f"{len(self.edges_added)} edge(s) added",
            f"{len(self.edges_removed)} removed",
        ]
        extra = []
        if self.node_order_changed:
            extra.append("node order changed")
        if self.edge_order_changed:
            extra.append("edge order changed")
        if not self.metadata_match:
            extra.append("metadata differs")
        text = f"{head}: {', '.join(parts)}; max weight difference {self.max_weight_diff:.2e}"
        return text + (f"; {', '.join(extra)}" if extra else "")

    def changes(self) -> list[str]:
        """One line per difference, ``node: change``."""
        lines = [f"{d.name}: {c}" for d in self.node_diffs for c in d.changes]
        lines += [f"edge added: {e}" for e in self.edges_added] + [f"edge removed: {e}" for e in self.edges_removed]
        if self.node_order_changed:
            lines.append("node order changed")
        if self.edge_order_changed:
            lines.append("edge order changed")
        return lines

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "node_diffs"}
        out.update(equivalent=self.equivalent, summary=self.summary)
        out["node_diffs"] = [d.to_dict() for d in self.node_diffs if d.status != "unchanged"]
        return jsonable(out)


_ABSENT = object()


class _Stats:
    def __init__(self):
        self.max = 0.0
        self.sum = 0.0
        self.count = 0


def _check_tol(atol: float, rtol: float) -> None:
    for name, v in (("atol", atol), ("rtol", rtol)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")


def _array_change(diff: NodeDiff, key: str, x: np.ndarray, y: np.ndarray, atol: float, rtol: float, stats: _Stats):
    if x.dtype != y.dtype or x.shape != y.shape:
        diff.changes.append(f"{key}: {x.dtype}{list(x.shape)} -> {y.dtype}{list(y.shape)}")
        diff.structural = True
        return
    stats.count += x.size
    if np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes():
        if x.size and diff.weight_diff is None:
            diff.weight_diff = 0.0
        return
    a, b = x.astype(np.float64), y.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        d_all = np.abs(a - b)
    # equal values (infinities included: inf - inf is nan) differ by 0; nan against a number by inf
    d_all = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, np.where(np.isnan(d_all), np.inf, d_all))
    d = float(d_all.max())
    stats.max = max(stats.max, d)
    stats.sum += float(d_all.sum())
    ok = bool(np.allclose(a, b, atol=atol, rtol=rtol, equal_nan=True))
    diff.changes.append(f"{key}: max_diff={d:.2e}" + ("" if ok else " (beyond tolerance)"))
    diff.values_changed = True
    diff.within_tolerance &= ok
    diff.weight_diff = d if diff.weight_diff is None else max(diff.weight_diff, d)


def _equal(x: Any, y: Any) -> bool:
    """Equal canonical forms (fingerprint rules: ``1 != 1.0``, ``0.0 != -0.0``, NaN equals NaN)."""
    if type(x) is type(y) and (
        (type(x) in _PLAIN and x == y) or (isinstance(x, Enum) and x is y) or (type(x) is dict and not x and not y)
    ):
        return True  # the common cases, decided without building the canonical forms
    return canonical_bytes(x, "metadata") == canonical_bytes(y, "metadata")


_PLAIN = (str, int, type(None))


def _node_diff(name: str, a: Node | None, b: Node | None, atol: float, rtol: float, stats: _Stats) -> NodeDiff:
    if a is None or b is None:
        return NodeDiff(name, "added" if a is None else "removed", structural=True)
    if isinstance(a, Graph) != isinstance(b, Graph):
        return NodeDiff(name, "modified", [f"type: {type(a).__name__} -> {type(b).__name__}"], structural=True)
    if isinstance(a, Graph):
        inner = _compare(a, b, atol, rtol, stats)
        diffs = [d.weight_diff for d in inner.node_diffs if d.weight_diff is not None]
        changes = inner.changes()
        if not _equal(a.metadata, b.metadata):
            changes.append("metadata differs")
        return NodeDiff(
            name,
            "unchanged" if inner.identical else "modified",
            changes,
            max(diffs) if diffs else None,
            inner.numerical_match,
            not inner.structural_match,
            any(d.values_changed for d in inner.node_diffs),
            not inner.metadata_match,
        )
    diff = NodeDiff(name, "unchanged")
    if type(a).__name__ != type(b).__name__:  # e.g. Affine -> SpikingAffine: the common fields still compare
        diff.changes.append(f"type: {type(a).__name__} -> {type(b).__name__}")
        diff.structural = True
    pa, pb = a.params(), b.params()
    for key in list(pa) + [k for k in pb if k not in pa]:
        x, y = pa.get(key, _ABSENT), pb.get(key, _ABSENT)
        if x is _ABSENT or y is _ABSENT:
            diff.changes.append(f"{key}: {'added' if x is _ABSENT else 'removed'}")
            diff.structural = True
        elif isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
            _array_change(diff, key, x, y, atol, rtol, stats)
        elif not _equal(x, y):
            diff.changes.append(f"{key}: {_show(x)} -> {_show(y)}")
            diff.structural = True
    for attr in ("input_type", "output_type"):
        x, y = _types(getattr(a, attr)), _types(getattr(b, attr))
        if x != y:
            diff.changes.append(f"{attr}: {_show(x)} -> {_show(y)}")
            diff.structural = True
    if not _equal(a.metadata, b.metadata):
        diff.changes.append("metadata differs")
        diff.metadata_changed = True
    if diff.changes:
        diff.status = "modified"
    return diff


def _types(types) -> dict[str, list[int]] | None:
    return None if types is None else {k: [int(d) for d in v] for k, v in types.items()}


def _show(value: Any) -> str:
    """A value in a change message: an array as ``dtype[shape]``, anything else as JSON (a change
    list is part of ``talon compare --json``, which carries no Python reprs)."""
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}"
    try:
        return json.dumps(jsonable(enum_value(value)), allow_nan=False)
    except TypeError:  # a custom node's parameter of a type JSON does not know
        return type(value).__name__


def compare_nodes(name: str, a: Node | None, b: Node | None, atol: float = 1e-6, rtol: float = 1e-5) -> NodeDiff:
    """Compare two versions of node ``name`` (None means absent: ``added`` / ``removed``)."""
    _check_tol(atol, rtol)
    for side, node in (("a", a), ("b", b)):
        if node is not None and not isinstance(node, Node):
            raise TypeError(f"{side} must be a talon.ir Node or None, got {type(node).__name__}")
    if a is None and b is None:
        raise ValueError(f"node {name!r}: at least one of a and b must be a node")
    return _node_diff(name, a, b, atol, rtol, _Stats())


def _compare(a: Graph, b: Graph, atol: float, rtol: float, stats: _Stats) -> GraphDiff:
    names = list(a.nodes) + [n for n in b.nodes if n not in a.nodes]
    diffs = [_node_diff(n, a.nodes.get(n), b.nodes.get(n), atol, rtol, stats) for n in names]
    ca, cb = Counter(a.edges), Counter(b.edges)
    added_left, removed_left = cb - ca, ca - cb
    edges_added = []
    for e in b.edges:
        if added_left[e] > 0:
            edges_added.append(e)
            added_left[e] -= 1
    edges_removed = []
    for e in a.edges:
        if removed_left[e] > 0:
            edges_removed.append(e)
            removed_left[e] -= 1
    common = [n for n in a.nodes if n in b.nodes]
    node_order_changed = common != [n for n in b.nodes if n in a.nodes]
    edge_order_changed = ca == cb and a.edges != b.edges
    by_status = {s: [d.name for d in diffs if d.status == s] for s in ("added", "removed", "modified", "unchanged")}
    structural = not (
        by_status["added"]
        or by_status["removed"]
        or edges_added
        or edges_removed
        or node_order_changed
        or edge_order_changed
        or any(d.structural for d in diffs)
    )
    numerical = all(d.within_tolerance for d in diffs)
    metadata_match = _equal(a.metadata, b.metadata) and not any(d.metadata_changed for d in diffs)
    identical = structural and not by_status["modified"] and _equal(a.metadata, b.metadata)
    return GraphDiff(
        identical=identical,
        structural_match=structural,
        numerical_match=numerical,
        metadata_match=metadata_match,
        nodes_added=by_status["added"],
        nodes_removed=by_status["removed"],
        nodes_modified=by_status["modified"],
        nodes_unchanged=by_status["unchanged"],
        edges_added=edges_added,
        edges_removed=edges_removed,
        node_order_changed=node_order_changed,
        edge_order_changed=edge_order_changed,
        max_weight_diff=stats.max,
        mean_weight_diff=stats.sum / stats.count if stats.count else 0.0,
        node_diffs=diffs,
        atol=atol,
        rtol=rtol,
    )


def compare_graphs(a: GraphLike, b: GraphLike, atol: float = 1e-6, rtol: float = 1e-5) -> GraphDiff:
    """Compare graph ``a`` with graph ``b`` (either may be a ``.t1c`` path).

    ``nodes_added`` are in ``b`` only, ``nodes_removed`` in ``a`` only. ``max_weight_diff`` and
    ``mean_weight_diff`` are over every element of every array pair of equal shape and dtype
    (``mean`` = sum of ``|a - b|`` / element count; 0 when nothing is compared).
    """
    _check_tol(atol, rtol)
    ga, gb = load_graph(a, "a"), load_graph(b, "b")
    return _compare(ga, gb, float(atol), float(rtol), _Stats())


def assert_graphs_equal(
    a: GraphLike,
    b: GraphLike,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    check_weights: bool = True,
    check_metadata: bool = False,
) -> None:
    """Raise ``AssertionError`` listing the differences unless ``a`` and ``b`` are structurally
    equal with (``check_weights``) every array within tolerance and (``check_metadata``) equal
    metadata."""
    diff = compare_graphs(a, b, atol, rtol)
    failed = (
        not diff.structural_match
        or (check_weights and not diff.numerical_match)
        or (check_metadata and not diff.metadata_match)
    )
    if failed:
        lines = diff.changes()
        shown = "\n  ".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else "")
        raise AssertionError(f"{diff.summary}\n  {shown}")
