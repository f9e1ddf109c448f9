"""Questions about a graph: one node's details, paths, sub-graphs, type patterns, per-type totals."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from talon import ir
from talon.ir import Graph, Node
from talon.ir.counting import count_node
from talon.ir.graph import SEP, check_edges, walk

from ._common import GraphLike, enum_value, load_graph, rebuild, require_node, resolve_node, shallow_copy_node

__all__ = ["extract_subgraph", "find_pattern", "get_node_statistics", "inspect_node", "trace_path"]


def _array_stats(arr: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {"shape": tuple(int(d) for d in arr.shape), "dtype": arr.dtype.name}
    values = arr.astype(np.float64).reshape(-1) if arr.dtype.kind in "biuf" else np.zeros(0)
    finite = values[np.isfinite(values)]
    if finite.size:
        out.update(mean=float(finite.mean()), std=float(finite.std()), min=float(finite.min()), max=float(finite.max()))
    else:
        out.update(mean=None, std=None, min=None, max=None)
    out["nonfinite"] = int(values.size - finite.size)
    return out


def _parent_and_local(graph: Graph, name: str) -> tuple[Graph, str]:
    """The graph that directly holds node ``name`` (qualified) and the node's local name."""
    resolve_node(graph, name)  # raises UnknownNodeError with a helpful message
    if name in graph.nodes:
        return graph, name
    head, _, rest = name.partition(SEP)
    return _parent_and_local(graph.nodes[head], rest)


def inspect_node(graph: GraphLike, name: str) -> dict[str, Any]:
    """Details of node ``name`` (``outer.inner`` reaches into a subgraph).

    Returns ``{name, type, inputs, outputs, parameters, shapes, attributes, metadata}``:
    ``inputs`` / ``outputs`` are the predecessor / successor names in edge order (qualified like
    ``name``), ``parameters`` maps each array parameter to ``{shape, dtype, mean, std, min, max,
    nonfinite}`` (statistics over the finite values), ``shapes`` holds ``input_type`` and
    ``output_type``, ``attributes`` the non-array parameters. Raises :class:`UnknownNodeError`
    (a ``KeyError``) for an unknown name.
    """
    graph = load_graph(graph)
    parent, local = _parent_and_local(graph, name)
    node = parent.nodes[local]
    qual = name[: len(name) - len(local)]
    recurrent = {e for e, r in zip(parent.edges, parent.recurrent_mask(), strict=True) if r}
    info: dict[str, Any] = {
        "name": name,
        "type": type(node).__name__,
        "inputs": [f"{qual}{s}" for s, d in parent.edges if d == local],
        "outputs": [f"{qual}{d}" for s, d in parent.edges if s == local],
        "recurrent_inputs": [f"{qual}{s}" for s, d in parent.edges if d == local and (s, d) in recurrent],
        "parameters": {},
        "shapes": {
            "input_type": _types(node.input_type),
            "output_type": _types(node.output_type),
        },
        "attributes": {},
        "metadata": copy.deepcopy(node.metadata),
    }
    if isinstance(node, Graph):
        info["attributes"] = {"nodes": list(node.nodes), "edges": [list(e) for e in node.edges]}
        return info
    for key, value in node.stored_params().items():
        if isinstance(value, np.ndarray):
            info["parameters"][key] = _array_stats(value)
        else:
            info["attributes"][key] = enum_value(value)
    return info


def _types(types) -> dict[str, list[int]] | None:
    return None if types is None else {k: [int(d) for d in v] for k, v in types.items()}


def trace_path(graph: GraphLike, src: str, dst: str, *, limit: int | None = 10_000) -> list[list[str]]:
    """Every simple path (no node twice) from ``src`` to ``dst`` along the edges, recurrent edges
    included, in edge order; ``[[src]]`` when ``src == dst``.

    Raises :class:`UnknownNodeError` for an unknown name and ``ValueError`` when more than
    ``limit`` paths exist (None: no limit).
    """
    graph = load_graph(graph)
    check_edges(graph)
    for end in (src, dst):
        require_node(graph, end)
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for s, d in graph.edges:
        if d not in succ[s]:
            succ[s].append(d)
    if src == dst:
        return [[src]]
    paths: list[list[str]] = []
    path, on_path = [src], {src}
    stack = [iter(succ[src])]
    while stack:
        nxt = next(stack[-1], None)
        if nxt is None:
            stack.pop()
            on_path.discard(path.pop())
        elif nxt == dst:
            paths.append([*path, dst])
            if limit is not None and len(paths) > limit:
                raise ValueError(f"more than {limit} paths from {src!r} to {dst!r}; raise limit (or None)")
        elif nxt not in on_path and _reaches(succ, nxt, dst, on_path):
            path.append(nxt)
            on_path.add(nxt)
            stack.append(iter(succ[nxt]))
    return paths


def _reaches(succ: dict[str, list[str]], start: str, dst: str, blocked: set[str]) -> bool:
    """Whether ``dst`` can be reached from ``start`` without visiting ``blocked``.

    Extending a path only when this holds makes every dead end visible before it is walked: each
    path found costs O(len · (V + E)), so ``limit`` paths cost polynomial time (a plain depth-first
    enumeration is exponential on ladder graphs even when few paths reach ``dst``)."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in succ[todo.pop()]:
            if nxt == dst:
                return True
            if nxt not in seen and nxt not in blocked:
                seen.add(nxt)
                todo.append(nxt)
    return False


def extract_subgraph(graph: GraphLike, node_names: Iterable[str], *, add_boundaries: bool = False) -> Graph:
    """The graph induced by ``node_names``: those nodes (in graph order) and the edges between them.

    With ``add_boundaries=True`` every cut edge gets a boundary node so the result can run on
    its own: an edge entering the selection from ``s`` to ``d`` becomes an Input ``d__in{k}`` of
    the edge's shape, an edge leaving it from ``s`` to ``d`` an Output ``s__out{k}`` (one per
    cut edge, in edge order, so arities, Concat order and ChannelSplit sections are kept). Node
    order: the new Inputs, their Delays (below), the selection in graph order, the new Outputs.

    Every boundary Input is fed what the edge's source produced *at the same step*. A cut
    **recurrent** edge carried its source's value of the *previous* step (zero at t = 0), so its
    Input is followed by a ``Delay`` of one step (``d__in{k}_delay``, ``y[t] = x[t-1]``, zero at
    t = 0 — exactly the recurrent edge's semantics): fed the source's trace of the whole graph, the
    part computes the whole graph's values. Each boundary node's metadata ``"talon.cut_edge"`` and
    the graph's ``metadata["cut_edges"]`` record ``{source, target, recurrent, boundary, delay}``
    for every cut edge (also without boundaries, ``boundary`` and ``delay`` then None); an Output
    of a cut recurrent edge reports the source's value of the step, which the outside target read
    one step later.
    Raises :class:`UnknownNodeError` for an unknown name and ``GraphValidationError`` when the
    induced graph is invalid (try ``add_boundaries=True``) or when an edge inside the selection
    would change from or to a recurrent (one-step delayed) edge in the extracted graph. Only the
    part is validated (its nodes are copies): the rest of the graph contributes its edges (every
    one must name a known node), the recurrent flags and the cut edges' shapes.
    """
    graph = load_graph(graph)
    check_edges(graph)
    if isinstance(node_names, str):
        node_names = [node_names]
    wanted = set()
    for n in node_names:
        require_node(graph, n)
        wanted.add(n)
    # copies of the selected nodes only: the part is validated below, the rest of the graph is not read
    selected: dict[str, Node] = {
        n: rebuild(node) if isinstance(node, Graph) else shallow_copy_node(node)
        for n, node in graph.nodes.items()
        if n in wanted
    }
    inputs: dict[str, Node] = {}
    delays: dict[str, Node] = {}
    outputs: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    inside_flags: list[bool | None] = []  # the original recurrent flag of each edge kept inside
    cut_edges: list[dict[str, Any]] = []
    recurrent = graph.recurrent_mask()
    taken = set(graph.nodes)  # names in use, the new boundary nodes' included
    for i, (s, d) in enumerate(graph.edges):
        if s in wanted and d in wanted:
            edges.append((s, d))
            inside_flags.append(recurrent[i])
        elif s in wanted or d in wanted:
            cut = {"source": s, "target": d, "recurrent": recurrent[i], "boundary": None, "delay": None}
            cut_edges.append(cut)
            if not add_boundaries:
                continue
            shape = graph.edge_shape(i)
            if shape is None:
                raise ir.GraphValidationError(f"edge ({s!r}, {d!r}) has no known shape; cannot add a boundary")
            if d in wanted:
                cut["boundary"] = name = _fresh(taken, f"{d}__in")
                inputs[name] = ir.Input(np.array(shape), metadata={CUT_EDGE_KEY: cut})
                taken.add(name)
                if recurrent[i]:
                    delay = f"{name}_delay"
                    cut["delay"] = delay = delay if delay not in taken else _fresh(taken, f"{delay}_")
                    delays[delay] = ir.Delay(np.ones(tuple(shape), np.int64), metadata={CUT_EDGE_KEY: cut})
                    taken.add(delay)
                    edges.extend([(name, delay), (delay, d)])
                    inside_flags.extend([None, None])
                else:
                    edges.append((name, d))
                    inside_flags.append(None)
            else:
                cut["boundary"] = name = _fresh(taken, f"{s}__out")
                outputs[name] = ir.Output(np.array(shape), metadata={CUT_EDGE_KEY: cut})
                taken.add(name)
                edges.append((s, name))
                inside_flags.append(None)
    nodes = {**inputs, **delays, **selected, **outputs}
    metadata = copy.deepcopy(graph.metadata)
    metadata["extracted_from"] = list(selected)  # in graph order
    metadata["cut_edges"] = copy.deepcopy(cut_edges)
    try:
        part = Graph(nodes, edges, metadata)
    except ir.GraphValidationError as exc:
        hint = "" if add_boundaries else " (add_boundaries=True adds Input/Output nodes for the cut edges)"
        raise ir.GraphValidationError(f"the extracted graph is invalid: {exc}{hint}") from None
    for (s, d), before, after in zip(edges, inside_flags, part.recurrent_mask(), strict=True):
        if before is not None and before != after:
            raise ir.GraphValidationError(
                f"the extracted graph would run differently: its edge ({s!r}, {d!r}) "
                f"{'carries' if before else 'does not carry'} the previous step's value in the whole graph but "
                f"{'does' if after else 'would not'} in the part (docs/semantics.md: recurrent edges are found by "
                "a depth-first search from the Inputs); select the nodes of the loop together with its entry"
            )
    return part


CUT_EDGE_KEY = "talon.cut_edge"


def _fresh(taken, stem: str) -> str:
    k = 0
    while f"{stem}{k}" in taken:
        k += 1
    return f"{stem}{k}"


_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _parse_pattern(pattern: str) -> list[set[str] | None]:
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError("a pattern is a non-empty string such as 'Conv2d->LIF->MaxPool2d'")
    known = set(ir.list_primitives()) | {"Input", "Output", "Graph"}
    steps: list[set[str] | None] = []
    for part in pattern.split("->"):
        part = part.strip()
        if part == "*":
            steps.append(None)
            continue
        alternatives = {a.strip() for a in part.split("|")}
        for a in alternatives:
            if not _TOKEN.match(a):
                raise ValueError(f"bad pattern step {part!r} in {pattern!r}: use type names, 'A|B' or '*'")
            if a not in known:
                known_list = ", ".join(sorted(known))
                raise ValueError(f"unknown node type {a!r} in pattern {pattern!r}; known types: {known_list}")
        steps.append(alternatives)
    return steps


def find_pattern(graph: GraphLike, pattern: str) -> list[tuple[str, ...]]:
    """Chains of nodes whose types match ``pattern``, following edges.

    ``pattern`` is type names joined by ``->``; a step may be ``A|B`` (either type) or ``*`` (any
    node). Types match by exact name (``Conv2d`` does not match ``SConv``). Returns each match as
    a tuple of node names (qualified inside subgraphs, which are searched too), ordered by the
    first node's position, without duplicates. Unknown type names raise ``ValueError``.
    """
    steps = _parse_pattern(pattern)
    graph = load_graph(graph)
    check_edges(graph)
    matches: list[tuple[str, ...]] = []
    _find(graph, steps, "", matches)
    return matches


def _find(graph: Graph, steps: list[set[str] | None], prefix: str, out: list[tuple[str, ...]]) -> None:
    succ: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for s, d in graph.edges:
        if d not in succ[s]:
            succ[s].append(d)

    def fits(name: str, step: set[str] | None) -> bool:
        return step is None or type(graph.nodes[name]).__name__ in step

    seen: set[tuple[str, ...]] = set()
    for start in graph.nodes:
        if not fits(start, steps[0]):
            continue
        partial = [[start]]
        for step in steps[1:]:
            partial = [[*p, n] for p in partial for n in succ[p[-1]] if fits(n, step)]
        for p in partial:
            t = tuple(f"{prefix}{n}" for n in p)
            if t not in seen:
                seen.add(t)
                out.append(t)
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            _find(node, steps, f"{prefix}{name}{SEP}", out)


def get_node_statistics(graph: GraphLike) -> dict[str, dict[str, Any]]:
    """Per node type, in order of first appearance: ``{count, nodes, total_params}`` over every
    nesting level (``total_params`` counts array elements, neuron parameters included)."""
    graph = load_graph(graph)
    out: dict[str, dict[str, Any]] = {}
    for name, node, _ in walk(graph):
        entry = out.setdefault(type(node).__name__, {"count": 0, "nodes": [], "total_params": 0})
        entry["count"] += 1
        entry["nodes"].append(name)
        entry["total_params"] += count_node(node).params
    return out
