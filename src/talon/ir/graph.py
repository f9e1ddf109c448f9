"""The graph: Input, Output and Graph (which is itself a node, so graphs nest).

Semantics (``docs/semantics.md``):

* Edges are ``(src, dst)`` name pairs, kept in order. Several edges into a node are summed,
  unless the node merges otherwise (Skip concatenate, Concat: in edge order).
* A multi-output node (ChannelSplit) sends output *i* along its *i*-th outgoing edge.
* Cycles are allowed. The **recurrent edges** are found by a depth-first search that starts from
  the Input nodes (then any node not yet reached) in node order and follows outgoing edges in
  edge order; an edge to a node still on the search stack closes a cycle. A recurrent edge
  carries its source's value from the previous timestep (zero at t = 0).
"""

from __future__ import annotations

import contextvars
import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import GraphValidationError, ShapeError
from .node import Node, _fmt_types, _types_equal, register_node
from .types import Shape

#: incoming edges a shape error lists (the rest are counted)
SHOWN_EDGES = 8

# ids of nodes a reader has just built from a file and not handed out yet (see Graph.infer_shapes)
_FRESH_NODES: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar("talon_fresh_nodes", default=None)


class EdgeList(list):
    """A graph's edges: a ``list`` of ``(src, dst)`` pairs that also indexes them by node.

    :meth:`adjacency` returns ``(outgoing, incoming)``: dicts from a node name to the indices of
    the edges leaving / entering it, in edge order. It is built on first use, in one pass, and
    every list method that changes the list (``append``, ``edges[i] = ...``, ``del``, ``sort``,
    ...) drops it, so it always equals a scan of the list; ``Graph.in_edges`` and
    ``Graph.out_edges`` then cost O(result) instead of O(edges). (Changes that bypass the methods,
    such as ``list.append(edges, e)`` or ``heapq`` on the list, are not seen: do not make them.)
    Iterating costs what it costs on a list, but ``edges[i]`` on a list subclass takes a generic
    path in CPython (~10x a list's): a loop indexing every edge should index ``list(edges)``.
    """

    __slots__ = ("_index",)

    def adjacency(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """``(outgoing, incoming)`` edge indices by node name (see the class docstring); do not modify them."""
        index = getattr(self, "_index", None)
        if index is None:
            outgoing: dict[str, list[int]] = {}
            incoming: dict[str, list[int]] = {}
            for i, (s, d) in enumerate(self):
                outgoing.setdefault(s, []).append(i)
                incoming.setdefault(d, []).append(i)
            index = self._index = (outgoing, incoming)
        return index

    def __getstate__(self) -> None:  # copies and pickles hold the edges, never the index
        return None


def _dropping_index(method_name: str):
    method = getattr(list, method_name)

    def mutate(self, *args, **kwargs):
        self._index = None
        return method(self, *args, **kwargs)

    mutate.__name__ = mutate.__qualname__ = method_name
    mutate.__doc__ = method.__doc__
    return mutate


for _name in (
    "__init__", "__setitem__", "__delitem__", "__iadd__", "__imul__",
    "append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
):  # fmt: skip  # every method of list that changes the list
    setattr(EdgeList, _name, _dropping_index(_name))
del _name


class _Boundary(Node):
    """Input / Output: the shape is the node's one parameter; input and output shapes are equal."""

    _default_port = "input"

    def _setup(self, shape: Any, output_type: Any, metadata: dict | None) -> None:
        if shape is None and output_type is None:
            raise ValueError(f"{type(self).__name__} needs a shape, e.g. {type(self).__name__}(np.array([784]))")
        self.input_type = shape if shape is not None else output_type
        self.output_type = output_type
        self.metadata = {} if metadata is None else metadata
        self.__post_init__()

    @property
    def shape(self) -> Shape:
        return self.input_shape


@register_node
@dataclass(eq=False, init=False, repr=False)
class Input(_Boundary):
    """Graph entry: ``Input(np.array([784]))`` or ``Input(input_type={'input': np.array([784])})``."""

    _batch_check = "shapes"

    def __init__(self, input_type: Any = None, *, output_type: Any = None, metadata: dict | None = None):
        self._setup(input_type, output_type, metadata)

    def arity_error(self, n_in: int, n_out: int) -> str | None:
        return f"an Input node cannot have incoming edges ({n_in} found)" if n_in else None

    def __repr__(self) -> str:
        return f"Input({list(self.shape)})"


@register_node
@dataclass(eq=False, init=False, repr=False)
class Output(_Boundary):
    """Graph exit: ``Output(np.array([10]))``; incoming edges are summed and must have this shape."""

    _batch_check = "shapes"

    def __init__(self, output_type: Any = None, *, input_type: Any = None, metadata: dict | None = None):
        self._setup(input_type if input_type is not None else output_type, output_type, metadata)

    def arity_error(self, n_in: int, n_out: int) -> str | None:
        return f"an Output node cannot have outgoing edges ({n_out} found)" if n_out else None

    def __repr__(self) -> str:
        return f"Output({list(self.shape)})"


@register_node
class Graph(Node):
    """A graph of named nodes: ``Graph(nodes, edges, metadata=None)``.

    ``nodes`` is a dict ``{name: Node}`` (or a sequence of ``(name, node)`` pairs) whose order is
    kept; ``edges`` a list of ``(src, dst)`` pairs. The graph is validated on construction
    (unknown nodes, arity, shapes along every edge) and shapes are inferred; errors name the node
    or edge. A Graph with one Input and one Output can be used as a node of another graph.
    """

    def __init__(
        self,
        nodes: Mapping[str, Node] | Iterable[tuple[str, Node]],
        edges: Iterable[tuple[str, str]] = (),
        metadata: dict[str, Any] | None = None,
        *,
        validate: bool = True,
    ):
        self.nodes = _as_node_dict(nodes)
        self._edges = EdgeList(_as_edge_list(edges))
        if metadata is not None and not isinstance(metadata, dict):
            raise GraphValidationError(f"graph metadata must be a dict, got {type(metadata).__name__}")
        self.metadata = {} if metadata is None else metadata
        self.input_type = None
        self.output_type = None
        self._types_explicit = False
        if validate:
            self.validate()

    def __repr__(self) -> str:
        return f"Graph({len(self.nodes)} nodes, {len(self.edges)} edges)"

    # ---- structure ----------------------------------------------------------------------------

    @property
    def input_nodes(self) -> list[str]:
        """Names of the Input nodes, in node order."""
        return [n for n, node in self.nodes.items() if isinstance(node, Input)]

    @property
    def output_nodes(self) -> list[str]:
        """Names of the Output nodes, in node order."""
        return [n for n, node in self.nodes.items() if isinstance(node, Output)]

    @property
    def edges(self) -> EdgeList:
        """The ``(src, dst)`` pairs in order: a ``list`` (:class:`EdgeList`) that keeps an index of
        each node's edges for :meth:`in_edges` and :meth:`out_edges`."""
        return self._edges

    @edges.setter
    def edges(self, edges: Iterable[tuple[str, str]]) -> None:
        self._edges = edges if isinstance(edges, EdgeList) else EdgeList(edges)

    def in_edges(self, name: str) -> list[int]:
        """Indices into ``edges`` of the edges entering ``name``, in edge order (from the index: O(result))."""
        return list(self._edges.adjacency()[1].get(name, ()))

    def out_edges(self, name: str) -> list[int]:
        """Indices into ``edges`` of the edges leaving ``name``, in edge order (from the index: O(result))."""
        return list(self._edges.adjacency()[0].get(name, ()))

    def predecessors(self, name: str) -> list[str]:
        """Sources of the edges entering ``name``, in edge order (repeated for repeated edges)."""
        edges = self._edges
        return [edges[i][0] for i in edges.adjacency()[1].get(name, ())]

    def successors(self, name: str) -> list[str]:
        """Targets of the edges leaving ``name``, in edge order (repeated for repeated edges)."""
        edges = self._edges
        return [edges[i][1] for i in edges.adjacency()[0].get(name, ())]

    def recurrent_mask(self) -> list[bool]:
        """For each edge, whether it closes a cycle (carries the previous step's value)."""
        return recurrent_edge_mask(list(self.nodes), self.edges, self.input_nodes)

    @property
    def recurrent_edges(self) -> list[tuple[str, str]]:
        """The edges that close a cycle, in edge order."""
        return [e for e, rec in zip(self.edges, self.recurrent_mask(), strict=True) if rec]

    @property
    def is_dag(self) -> bool:
        return not any(self.recurrent_mask())

    def topological_order(self) -> list[str]:
        """Node names ordered so every non-recurrent edge points forward; ties keep node order."""
        return topological_order(list(self.nodes), self.edges, self.recurrent_mask())

    # ---- validation and shapes ----------------------------------------------------------------

    def validate(self) -> None:
        """Check the structure and infer every shape that can be inferred.

        Raises :class:`GraphValidationError` (or its subclass :class:`ShapeError`) naming the
        node or edge at fault.
        """
        n_in = dict.fromkeys(self.nodes, 0)
        n_out = dict.fromkeys(self.nodes, 0)
        for s, d in self.edges:
            for end in (s, d):
                if end not in self.nodes:
                    raise GraphValidationError(
                        f"edge ({s!r}, {d!r}) refers to unknown node {end!r}; nodes are: {', '.join(self.nodes)}"
                    )
            n_out[s] += 1
            n_in[d] += 1
        for name, node in self.nodes.items():
            problem = node.arity_error(n_in[name], n_out[name])
            if problem:
                raise GraphValidationError(f"node {name!r}: {problem}")
        self.infer_shapes()
        self.input_type = {n: self.nodes[n].input_type["input"] for n in self.input_nodes}
        self.output_type = {n: self.nodes[n].output_type["output"] for n in self.output_nodes}

    def edge_shape(self, index: int) -> Shape | None:
        """The shape carried by edge ``index`` (output *k* of a multi-output source), or None."""
        src, _ = self.edges[index]
        node = self.nodes[src]
        shapes = node.output_shapes()
        if not shapes:
            return None
        if node.is_multi_output:
            k = self.out_edges(src).index(index)
            return shapes[k] if k < len(shapes) else None
        return shapes[0]

    def infer_shapes(self) -> None:
        """Propagate shapes along the edges in topological order (two passes, for cycles)."""
        recurrent = self.recurrent_mask()
        order = topological_order(list(self.nodes), self.edges, recurrent)
        incoming: dict[str, list[int]] = {n: [] for n in self.nodes}
        for i, (_, d) in enumerate(self.edges):
            incoming[d].append(i)
        # output k of a multi-output node leaves along its k-th outgoing edge
        out_port: dict[int, int] = {}
        seen: dict[str, int] = {}
        for i, (s, _) in enumerate(self.edges):
            if self.nodes[s].is_multi_output:
                out_port[i] = seen.get(s, 0)
                seen[s] = out_port[i] + 1
        outputs: dict[str, list] = {}  # output shapes per node, dropped when infer_types changes them
        sources = [s for s, _ in self.edges]

        def edge_shapes(edge_ids: list[int]) -> list[Shape | None]:
            shapes = []
            for i in edge_ids:
                src = sources[i]
                out = outputs.get(src)
                if out is None:
                    out = outputs[src] = self.nodes[src].output_shapes()
                k = out_port.get(i, 0) if out_port else 0
                shapes.append(out[k] if k < len(out) else None)
            return shapes

        # infer_types is a function of the node's parameters and the shapes: a call with the shapes
        # of an earlier call in this validation (or, for nodes a reader has just built, of the
        # constructor's call with the declared input shapes) would set the same types, so it is skipped.
        inferred_from: dict[str, list] = {}
        fresh = _FRESH_NODES.get()
        if fresh is not None:
            for name in order:
                node = self.nodes[name]
                declared = getattr(node, "_declared_types", None)
                if id(node) in fresh and declared:
                    inferred_from[name] = [tuple(v.tolist()) for v in declared[0].values()]
                    if declared[1] is not None and declared[1] is node.output_type:
                        outputs[name] = [tuple(v.tolist()) for v in declared[1].values()]
        # Without recurrent edges every node follows all its sources in `order`, so when the first
        # pass refused nothing the final pass would see the same shapes and infer nothing new: it
        # is replaced by the comparison with the declared types on the shapes the first pass saw.
        seen_shapes: dict[str, list] | None = None if any(recurrent) else {}
        for final in (False, True):
            for name in order:
                node = self.nodes[name]
                edge_ids = incoming[name]
                if not edge_ids:
                    continue
                if final and seen_shapes is not None:
                    shapes = seen_shapes[name]
                else:
                    shapes = edge_shapes(edge_ids)
                    if seen_shapes is not None:
                        seen_shapes[name] = shapes
                known = [s for s in shapes if s is not None]
                if not known or (final and len(known) != len(shapes)):
                    continue
                declared = getattr(node, "_declared_types", None)
                try:
                    if inferred_from.get(name) != known:
                        node.infer_types(known)
                        outputs.pop(name, None)
                        inferred_from[name] = known
                    if (
                        final
                        and declared
                        and not (declared[0] is node.input_type and declared[1] is node.output_type)
                        and not (
                            _types_equal(declared[0], node.input_type) and _types_equal(declared[1], node.output_type)
                        )
                    ):
                        before_in, before_out = declared
                        raise ShapeError(
                            f"its declared input_type {_fmt_types(before_in)} / output_type "
                            f"{_fmt_types(before_out)} contradict the incoming shapes {[list(s) for s in known]}"
                        )
                except ShapeError as exc:
                    if (
                        not final
                    ):  # a partial first pass (inputs still unknown in a loop) may be wrong: the final pass decides
                        seen_shapes = None
                        continue
                    listed = [
                        f"({self.edges[i][0]!r} -> {name!r}: {list(s) if s else '?'})"
                        for i, s in zip(edge_ids[:SHOWN_EDGES], shapes[:SHOWN_EDGES], strict=True)
                    ]
                    if len(edge_ids) > SHOWN_EDGES:  # one readable line, even for a 1,000-way Concat
                        listed.append(f"... and {len(edge_ids) - SHOWN_EDGES} more")
                    edges = ", ".join(listed)
                    raise ShapeError(f"node {name!r} ({type(node).__name__}): {exc}; incoming edges: {edges}") from None

    # ---- use as a node ------------------------------------------------------------------------

    def arity_error(self, n_in: int, n_out: int) -> str | None:
        if n_in + n_out and (len(self.input_nodes) != 1 or len(self.output_nodes) != 1):
            return (
                "a subgraph used as a node needs exactly one Input and one Output node, it has "
                f"{len(self.input_nodes)} and {len(self.output_nodes)}"
            )
        return None

    def _input_ports(self, shapes: list[Shape]) -> dict[str, Shape]:
        (port,) = self.input_nodes
        expected = self.nodes[port].shape
        merged = super()._input_ports(shapes)["input"]
        if merged != expected:
            raise ShapeError(f"subgraph input {port!r} has shape {list(expected)}, got {list(merged)}")
        return {port: merged}

    def _output_ports(self, inputs: dict[str, Shape]) -> dict[str, Shape]:
        (port,) = self.output_nodes
        return {port: self.nodes[port].shape}


SEP = "."
"""Separator of qualified names: ``rnn.lif`` is node ``lif`` of the subgraph node ``rnn``."""


def walk(graph: Graph, prefix: str = "") -> Iterator[tuple[str, Node, int]]:
    """Yield ``(qualified_name, node, n_inputs)`` for every node at every nesting level.

    A subgraph used as a node is not yielded itself; its nodes are, named ``outer.inner``. The
    inner Input node of a subgraph receives the edges of the subgraph node, so its ``n_inputs``
    is the number of edges entering the subgraph node.
    """
    yield from _walk(graph, prefix, outer_fan_in=None)


def _walk(graph: Graph, prefix: str, outer_fan_in: int | None) -> Iterator[tuple[str, Node, int]]:
    fan_in = dict.fromkeys(graph.nodes, 0)
    for _, d in graph.edges:
        if d in fan_in:
            fan_in[d] += 1
    for name, node in graph.nodes.items():
        n_in = fan_in[name]
        if outer_fan_in is not None and isinstance(node, Input):
            n_in = outer_fan_in
        if isinstance(node, Graph):
            yield from _walk(node, f"{prefix}{name}{SEP}", n_in)
        else:
            yield f"{prefix}{name}", node, n_in


def check_edges(graph: Graph, where: str = "graph") -> None:
    """Raise GraphValidationError if an edge names a node the graph does not have (graphs built
    with ``validate=False`` can); structural algorithms (counting, the SDK's queries) need known
    endpoints."""
    for s, d in graph.edges:
        for end in (s, d):
            if end not in graph.nodes:
                raise GraphValidationError(
                    f"{where}: edge ({s!r}, {d!r}) refers to unknown node {end!r}; run lint_graph for a full report"
                )
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            check_edges(node, f"{where} subgraph {name!r}")


def recurrent_edge_mask(names: list[str], edges: list[tuple[str, str]], roots: list[str]) -> list[bool]:
    """The recurrent-edge rule of docs/semantics.md on plain names: depth-first search from
    ``roots`` then every other name (in order), outgoing edges in edge order; an edge to a node
    still on the stack closes a cycle."""
    if type(edges) is not list:  # a list subclass (EdgeList): indexing it below is ~10x slower than a list's
        edges = list(edges)
    out_by_node: dict[str, list[int]] = {n: [] for n in names}
    for i, (s, _) in enumerate(edges):
        out_by_node[s].append(i)
    mask = [False] * len(edges)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = finished
    for root in [*roots, *names]:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(out_by_node[root]))]
        while stack:
            node, it = stack[-1]
            for i in it:
                dst = edges[i][1]
                if state.get(dst) == 1:
                    mask[i] = True
                elif dst not in state:
                    state[dst] = 1
                    stack.append((dst, iter(out_by_node[dst])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return mask


def reachable(edges: list[tuple[str, str]], starts: list[str], *, reverse: bool = False) -> set[str]:
    """The names reachable from ``starts`` along ``edges`` (against them with ``reverse``), starts included."""
    adjacency: dict[str, list[str]] = {}
    for s, d in edges:
        a, b = (d, s) if reverse else (s, d)
        adjacency.setdefault(a, []).append(b)
    seen, stack = set(starts), list(starts)
    while stack:
        for nxt in adjacency.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def topological_order(names: list[str], edges: list[tuple[str, str]], recurrent: list[bool]) -> list[str]:
    """Kahn's algorithm over the non-recurrent edges; ties are broken by position in ``names``.

    That is the lexicographically smallest topological order, so when every non-recurrent edge
    already points forward in ``names`` (as in most graphs) it is ``names`` itself."""
    index = {n: i for i, n in enumerate(names)}
    for (s, d), rec in zip(edges, recurrent, strict=True):
        if not rec and index[s] >= index[d]:
            break
    else:
        return list(names)
    indegree = dict.fromkeys(names, 0)
    forward: dict[str, list[str]] = {n: [] for n in names}
    for (s, d), rec in zip(edges, recurrent, strict=True):
        if not rec:
            indegree[d] += 1
            forward[s].append(d)
    heap = [index[n] for n, k in indegree.items() if k == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        n = names[heapq.heappop(heap)]
        order.append(n)
        for d in forward[n]:
            indegree[d] -= 1
            if indegree[d] == 0:
                heapq.heappush(heap, index[d])
    return order


def _as_node_dict(nodes: Any) -> dict[str, Node]:
    items = nodes.items() if isinstance(nodes, Mapping) else nodes
    out: dict[str, Node] = {}
    try:
        pairs = list(items)
    except TypeError:
        raise GraphValidationError(f"nodes must be a dict of name -> Node, got {type(nodes).__name__}") from None
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise GraphValidationError(f"nodes must be (name, Node) pairs, got {pair!r}")
        name, node = pair
        if not isinstance(name, str) or not name:
            raise GraphValidationError(f"node names must be non-empty strings, got {name!r}")
        if not isinstance(node, Node):
            raise GraphValidationError(f"node {name!r} is a {type(node).__name__}, not a talon.ir Node")
        if name in out:
            raise GraphValidationError(f"duplicate node name {name!r}")
        out[name] = node
    return out


def _as_edge_list(edges: Any) -> list[tuple[str, str]]:
    out = []
    for edge in edges:
        if type(edge) is tuple and len(edge) == 2 and type(edge[0]) is str and type(edge[1]) is str:
            out.append(edge)
            continue
        if isinstance(edge, np.ndarray):
            edge = tuple(edge.tolist())
        if (
            not isinstance(edge, (tuple, list))
            or len(edge) != 2
            or not all(isinstance(e, (str, np.str_)) for e in edge)
        ):
            raise GraphValidationError(f"an edge is a (src, dst) pair of node names, got {edge!r}")
        out.append((str(edge[0]), str(edge[1])))
    return out
