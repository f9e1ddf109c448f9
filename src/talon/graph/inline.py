"""Subgraphs inlined for mapping: a recurrent layer (snnTorch ``RLeaky``, Spyx ``RLIF``, a NIR RNN
subgraph) occupies cores with its nodes, so the mapper sees those nodes, not one opaque vertex.

``docs/semantics.md`` evaluates a subgraph "as if its nodes were inlined", with its recurrent
edges determined inside it. :func:`inline_subgraphs` builds that inlined graph as an ordinary IR
graph the CPU backend runs bit-identically:

* node ``inner`` of subgraph ``name`` becomes ``name.inner`` (the path the CPU backend reports
  its spikes under), nested subgraphs recursively (``outer.inner.lif``);
* the subgraph's Input and Output become a ``Skip``: ``passthrough`` for one incoming edge,
  ``residual`` (the sum, in edge order, as the subgraph node summed its inputs) for several;
* every edge keeps its endpoints' order of incoming and outgoing edges, so fan-in is summed in the
  same order and every recurrent edge (the subgraph's own feedback included — it is real traffic
  between cores) stays the one recurrent (one-step delayed) edge. This is checked after building:
  a graph whose recurrent edges the inlining would change is refused with :class:`MappingError`.
"""

from __future__ import annotations

import copy

from .. import ir
from .errors import MappingError

INLINED_KEY = "talon.inlined_from"  # metadata of a boundary Skip: {"subgraph", "boundary"}


def has_subgraphs(graph: ir.Graph) -> bool:
    return any(isinstance(node, ir.Graph) for node in graph.nodes.values())


def _boundary(subgraph: str, role: str, n_in: int) -> ir.Skip:
    kind = "passthrough" if n_in == 1 else "residual"
    return ir.Skip(kind, metadata={INLINED_KEY: {"subgraph": subgraph, "boundary": role}})


def inline_subgraphs(graph: ir.Graph) -> tuple[ir.Graph, dict[str, list[str]]]:
    """``(flat graph, {subgraph path: [paths of its inlined nodes]})``; ``graph`` itself when it has
    no subgraph. Raises :class:`MappingError` when the inlining would move a one-step delay."""
    if not has_subgraphs(graph):
        return graph, {}
    nodes, edges, expected, inlined = _flat_parts(graph, "")
    flat = ir.Graph(nodes, edges, metadata=copy.deepcopy(graph.metadata))
    actual = flat.recurrent_mask()
    moved = [i for i, (a, b) in enumerate(zip(actual, expected, strict=True)) if a != b]
    if moved:
        s, d = edges[moved[0]]
        raise MappingError(
            f"cannot inline the subgraphs for mapping exactly: the edge ({s!r}, {d!r}) would "
            f"{'stop being' if expected[moved[0]] else 'become'} a recurrent (one-step delayed) edge; put the "
            "loop's entry node first in the subgraph's node order, or map a graph without subgraphs"
        )
    return flat, inlined


def _put(nodes: dict[str, ir.Node], path: str, node: ir.Node) -> None:
    if path in nodes:
        raise MappingError(
            f"cannot inline the subgraphs for mapping: the inlined node {path!r} collides with a node of the same "
            "name; rename that node (or the subgraph)"
        )
    nodes[path] = node


def _flat_parts(graph: ir.Graph, prefix: str):
    """Nodes (path -> node), edges, their expected recurrent flags and the inlined node lists."""
    nodes: dict[str, ir.Node] = {}
    inner_edges: list[tuple[str, str]] = []
    inner_flags: list[bool] = []
    inlined: dict[str, list[str]] = {}
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    n_in = {n: 0 for n in graph.nodes}
    for _, d in graph.edges:
        n_in[d] += 1
    for name, node in graph.nodes.items():
        path = prefix + name
        if not isinstance(node, ir.Graph):
            new = copy.copy(node)
            new.metadata = dict(node.metadata)
            _put(nodes, path, new)
            continue
        sub_nodes, sub_edges, sub_flags, sub_inlined = _flat_parts(node, path + ".")
        (inner_in,), (inner_out,) = node.input_nodes, node.output_nodes
        entry[name], exit_[name] = f"{path}.{inner_in}", f"{path}.{inner_out}"
        sub_nodes[entry[name]] = _boundary(path, "input", n_in[name])
        sub_nodes[exit_[name]] = _boundary(path, "output", sum(1 for _, d in node.edges if d == inner_out))
        for sub_path, sub_node in sub_nodes.items():
            _put(nodes, sub_path, sub_node)
        inner_edges.extend(sub_edges)
        inner_flags.extend(sub_flags)
        inlined.update(sub_inlined)
        inlined[path] = list(sub_nodes)
    mask = graph.recurrent_mask()
    edges = [(exit_.get(s, prefix + s), entry.get(d, prefix + d)) for s, d in graph.edges]
    return nodes, edges + inner_edges, [bool(m) for m in mask] + inner_flags, inlined
