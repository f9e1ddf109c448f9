"""``graph_to_dict``: the one contract between talon and the page (JSON, schema version 1).

::

    {"version": "1",
     "nodes": [{"id", "name", "type", "color", "shape", "icon",
                "input_type": {port: shape}, "output_type": {port: shape},
                "input_shape", "output_shape",                  # first port, or None
                "params": {name: {dtype, shape, size, min, max, mean}},
                "param_count", "config": {name: value}, "metadata": {...},
                "group": group id or None, "core_id": int or None,
                "cost": {"layer", "bytes", "macs", "spike_ops", "ops", "state_bytes", "counted",
                         "neurons", "synapses", "sram_bytes": {precision: bytes}}}],
     "edges": [{"source", "target", "shape", "recurrent": bool, "cross_core": bool}],
     "metadata": graph metadata (JSON-ready; the partition record once, as "partition_metadata"),
     "summary": {"node_count", "edge_count", "total_params", "type_counts",
                 "inputs": [{"id", "shape"}], "outputs": [{"id", "shape"}],
                 "cost": talon analyze / profile totals,
                 "cores": [core ids] (partitioned graphs only),
                 "mapping": per-core allocate budgets (partitioned graphs whose record names a spec)},
     "groups": [{"id", "type", "label", "nodes": [direct members], "parent", "shape", "fan_out", "merge"}],
     "node_to_group": {node id: innermost group id}}

A subgraph (a ``Graph`` used as a node) is flattened: its nodes get ids ``<subgraph>/<name>``
(``<subgraph>/<name>_2``, ``_3`` … when another node already has that id: the IR allows ``/`` in a
name, and every top-level node keeps its own name as its id) and ``name`` the node's own name,
and become one group of type ``"Subgraph"``; an edge into the subgraph enters its Input node and
an edge out of it leaves its Output node. Detected patterns (:mod:`talon.viz.patterns`) are the
other groups. ``params`` summarises every array parameter (``node.arrays()``, 0-d ones included,
as ``talon analyze`` counts them) and ``config`` holds the other parameters; ``total_params``
counts every element of every parameter array (weights, biases and neuron parameters), so it
equals ``talon.sdk.analyze_graph(graph).total_params``. ``recurrent`` marks the edges that close
a cycle (docs/semantics.md);
``cross_core`` the edges whose ends sit on different cores of a partitioned graph
(``node.core_id``, or the ``assignments`` of :func:`partition_info`). ``cost``, ``summary.cost``
and ``summary.mapping`` are :mod:`talon.viz.costs`' (``talon analyze``, ``talon profile`` and
``talon.graph.allocate`` numbers); ``graph_to_dict(graph, costs=False)`` leaves them out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from talon.ir import Graph, Node
from talon.ir.counting import count_graph

from .constants import DEFAULT_SHAPE, GROUP_SHAPES, NODE_ICONS, NODE_SHAPES, node_color
from .costs import core_budgets, graph_costs, node_costs
from .encode import encode_array, plain
from .patterns import PatternDetector

SCHEMA_VERSION = "1"


def _types(types) -> dict[str, list[int]]:
    return {} if not types else {str(k): [int(d) for d in v] for k, v in types.items()}


def _first(types: dict[str, list[int]]) -> list[int] | None:
    return next(iter(types.values()), None)


PARTITION_KEYS = ("talon.partition", "partition_metadata")  # graph.metadata keys talon.graph writes


def partition_info(graph: Graph) -> dict[str, Any] | None:
    """The mapping record of a partitioned graph: ``graph.partition_metadata`` (set by
    :func:`talon.graph.partition`), else ``graph.metadata["talon.partition"]`` (what survives a
    ``.t1c`` round trip), else ``graph.metadata["partition_metadata"]``; None when not partitioned."""
    meta = getattr(graph, "partition_metadata", None)
    for key in PARTITION_KEYS:
        if meta:
            break
        meta = graph.metadata.get(key)
    return meta or None


def partition_assignments(graph: Graph) -> dict[str, int]:
    """``{node: core}`` of a partitioned graph: ``node.core_id`` (or ``node.metadata["core_id"]``)
    where set, else the ``assignments`` of :func:`partition_info`."""
    meta = partition_info(graph) or {}
    cores = {str(k): int(v) for k, v in (meta.get("assignments") or {}).items() if v is not None}
    for name, node in graph.nodes.items():
        core = getattr(node, "core_id", None)
        if core is None and isinstance(node.metadata, dict):
            core = node.metadata.get("core_id")
        if core is not None:
            cores[name] = int(core)
    return cores


def drawn_node_count(graph: Graph) -> int:
    """The nodes the graph page draws: every non-subgraph node at every nesting level (a subgraph
    is drawn as its nodes, in a group)."""
    return sum(drawn_node_count(node) if isinstance(node, Graph) else 1 for node in graph.nodes.values())


def serialize_node(node: Node, name: str = "", display_name: str | None = None) -> dict[str, Any]:
    """One node as the page shows it: type, shapes, parameter summaries, configuration, colour, icon.

    ``name`` is the node's id on the page, ``display_name`` (default: ``name``) the name it shows."""
    type_name = type(node).__name__
    params: dict[str, Any] = {}
    config: dict[str, Any] = {}
    if not isinstance(node, Graph):
        for key, value in node.params().items():
            if isinstance(value, np.ndarray):  # 0-d arrays too: they are parameters for analyze_graph
                params[key] = encode_array(value)
            else:
                config[key] = plain(value)
    input_type, output_type = _types(node.input_type), _types(node.output_type)
    core = getattr(node, "core_id", None)
    return {
        "id": name,
        "name": name if display_name is None else display_name,
        "type": type_name,
        "color": node_color(type_name),
        "shape": NODE_SHAPES.get(type_name, DEFAULT_SHAPE),
        "icon": NODE_ICONS.get(type_name, ""),
        "input_type": input_type,
        "output_type": output_type,
        "input_shape": _first(input_type),
        "output_shape": _first(output_type),
        "params": params,
        "param_count": int(sum(p["size"] for p in params.values())),
        "config": config,
        "metadata": plain(node.metadata or {}),
        "group": None,
        "core_id": None if core is None else int(core),
    }


class _Flattener:
    def __init__(self, detect_patterns: bool):
        self.detect_patterns = detect_patterns
        self.nodes: list[dict] = []
        self.edges: list[dict] = []
        self.groups: list[dict] = []
        self.used_ids: set[str] = set()

    def _unique_id(self, wanted: str) -> str:
        gid, k = wanted, 1
        while gid in self.used_ids:
            k += 1
            gid = f"{wanted}_{k}"
        self.used_ids.add(gid)
        return gid

    def add_graph(self, graph: Graph, prefix: str, parent: str | None) -> tuple[dict[str, str], dict[str, str]]:
        """Add ``graph``'s nodes and edges; return, per node name, the id an incoming edge enters and
        the id an outgoing edge leaves (they differ for subgraphs)."""
        enter, leave = {}, {}
        local_group: dict[str, str | None] = {}
        if not prefix:  # top-level nodes keep their names; flattened ones yield on a clash
            self.used_ids.update(graph.nodes)
        ids: dict[str, str] = {}
        for name, node in graph.nodes.items():
            nid = ids[name] = name if not prefix else self._unique_id(prefix + name)
            if isinstance(node, Graph):
                gid = nid
                info = serialize_node(node, nid)
                self.groups.append(
                    {
                        "id": gid,
                        "type": "Subgraph",
                        "label": f"{name} (subgraph)",
                        "nodes": [],
                        "parent": parent,
                        "shape": GROUP_SHAPES["Subgraph"],
                        "input_type": info["input_type"],
                        "output_type": info["output_type"],
                    }
                )
                inner_enter, inner_leave = self.add_graph(node, nid + "/", gid)
                # a subgraph used as a node has one Input and one Output (Graph.arity_error)
                i_name = node.input_nodes[0] if len(node.input_nodes) == 1 else None
                o_name = node.output_nodes[0] if len(node.output_nodes) == 1 else None
                enter[name] = inner_enter.get(i_name, nid)
                leave[name] = inner_leave.get(o_name, nid)
                local_group[name] = gid
            else:
                entry = serialize_node(node, nid, display_name=name)
                entry["group"] = parent
                self.nodes.append(entry)
                enter[name] = leave[name] = nid
                local_group[name] = None
        for i, ((s, d), rec) in enumerate(zip(graph.edges, graph.recurrent_mask(), strict=True)):
            shape = graph.edge_shape(i)
            self.edges.append(
                {
                    "source": leave[s],
                    "target": enter[d],
                    "shape": None if shape is None else [int(x) for x in shape],
                    "recurrent": bool(rec),
                    "cross_core": False,
                }
            )
        if self.detect_patterns:
            self._add_patterns(graph, prefix, parent, local_group, ids)
        return enter, leave

    def _add_patterns(self, graph: Graph, prefix: str, parent: str | None, local_group, ids: dict[str, str]) -> None:
        # Larger patterns first, so a pattern nested in another becomes its child group.
        patterns = sorted(PatternDetector(graph).detect_all_patterns(), key=lambda p: -len(p.nodes))
        assigned: dict[str, str] = {}  # local node -> innermost pattern group so far
        for pattern in patterns:
            # a pattern must nest inside (or stay apart from) every larger pattern already made:
            # all its members sit in the same innermost group, or in none
            holders = {assigned.get(m) for m in pattern.nodes}
            if len(holders) != 1:
                continue
            (outer,) = holders
            gid = self._unique_id(prefix + pattern.group_id)
            self.groups.append(
                {
                    "id": gid,
                    "type": pattern.pattern_type,
                    "label": f"{pattern.pattern_type} {pattern.fan_out} → {pattern.merge}",
                    "nodes": [],
                    "parent": outer if outer is not None else parent,
                    "shape": GROUP_SHAPES[pattern.pattern_type],
                    "fan_out": ids[pattern.fan_out],
                    "merge": ids[pattern.merge],
                }
            )
            for m in pattern.nodes:
                assigned[m] = gid
        by_id = {n["id"]: n for n in self.nodes}
        by_group = {g["id"]: g for g in self.groups}
        for local, gid in assigned.items():
            sub = local_group.get(local)
            if sub is not None:  # a subgraph inside a pattern: re-parent the subgraph group
                by_group[sub]["parent"] = gid
            else:
                by_id[ids[local]]["group"] = gid


def graph_to_dict(graph: Graph, *, detect_patterns: bool = True, costs: bool = True) -> dict[str, Any]:
    """The page's JSON document for ``graph`` (schema in the module docstring); ``costs=False``
    leaves out what the nodes and cores cost (:mod:`talon.viz.costs`)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph_to_dict needs a talon.ir.Graph, got {type(graph).__name__}")
    if not graph.nodes:
        raise ValueError("graph_to_dict: the graph has no nodes; there is nothing to draw")
    flat = _Flattener(detect_patterns)
    flat.add_graph(graph, "", None)
    counted = count_graph(graph) if costs else None
    if counted is not None:
        records = node_costs(counted)
        if len(records) != len(flat.nodes):  # both walk the nesting levels in node order
            raise AssertionError(f"{len(records)} cost records for {len(flat.nodes)} drawn nodes")
        for entry, record in zip(flat.nodes, records, strict=True):
            entry["cost"] = record
    cores = partition_assignments(graph)
    by_id = {n["id"]: n for n in flat.nodes}
    for name, core in cores.items():
        if name in by_id:
            by_id[name]["core_id"] = core
    for edge in flat.edges:
        a, b = by_id[edge["source"]]["core_id"], by_id[edge["target"]]["core_id"]
        edge["cross_core"] = a is not None and b is not None and a != b
    groups_by_id = {g["id"]: g for g in flat.groups}
    for n in flat.nodes:
        if n["group"] is not None:
            groups_by_id[n["group"]]["nodes"].append(n["id"])
    for g in flat.groups:
        if g["parent"] is not None:
            groups_by_id[g["parent"]]["nodes"].append(g["id"])
    summary: dict[str, Any] = {
        "node_count": len(flat.nodes),
        "edge_count": len(flat.edges),
        "total_params": int(sum(n["param_count"] for n in flat.nodes)),
        "type_counts": dict(Counter(n["type"] for n in flat.nodes)),
        "inputs": [{"id": n, "shape": _first(_types(graph.nodes[n].output_type))} for n in graph.input_nodes],
        "outputs": [{"id": n, "shape": _first(_types(graph.nodes[n].input_type))} for n in graph.output_nodes],
    }
    # the partition record once, as partition_metadata (a .t1c file keeps it as talon.partition)
    metadata = plain({k: v for k, v in graph.metadata.items() if k not in PARTITION_KEYS})
    part = partition_info(graph)
    if part is not None:
        metadata["partition_metadata"] = plain(part)
    if cores:
        summary["cores"] = sorted(set(cores.values()))
    if counted is not None:
        summary["cost"] = graph_costs(counted)
        budgets = core_budgets(graph, part, cores) if part is not None and cores else None
        if budgets is not None:
            summary["mapping"] = plain(budgets)
    return {
        "version": SCHEMA_VERSION,
        "nodes": flat.nodes,
        "edges": flat.edges,
        "metadata": metadata,
        "summary": summary,
        "groups": flat.groups,
        "node_to_group": {n["id"]: n["group"] for n in flat.nodes if n["group"] is not None},
    }
