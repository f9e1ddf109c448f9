"""Graph statistics: parameters, memory, operations, depth and width, per-layer breakdown.

The counting rules and totals are :mod:`talon.ir.counting`'s. Structure metrics (``node_count``,
``edge_count``, ``depth``, ``width``, input and output shapes) describe the top-level graph, where
a subgraph is one node; everything counted per layer (parameters, bytes, MACs, ``type_counts``,
``layers``) covers the nodes of every nesting level, named ``outer.inner``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from talon import ir
from talon.ir import Graph, Node
from talon.ir.counting import CONV_TYPES, DENSE_TYPES, SPIKING_TYPES, NodeCounts, count_graph, count_node
from talon.ir.graph import check_edges, topological_order

from ._common import GraphLike, enum_value, jsonable, load_graph

__all__ = [
    "GraphStats",
    "LayerStats",
    "analyze_graph",
    "analyze_node",
    "depth_and_width",
    "format_bytes",
    "format_number",
    "summarize",
]

LIF_TYPES = (ir.LIF, ir.CubaLIF)


@dataclass
class LayerStats:
    """Statistics of one node.

    ``params`` counts array elements (weights, biases and neuron parameters), ``bytes`` their real
    ``nbytes``; ``model_params`` counts a neuron parameter that is uniform across the layer once
    (:mod:`talon.ir.counting`); ``macs`` multiply-accumulates per sample and step, ``flops = 2 * macs``.
    ``input_shape`` / ``output_shape`` are the first port's shape (None when unknown);
    ``config`` holds the non-array parameters and the shape of each array (``weight_shape``).
    """

    name: str
    node_type: str
    params: int
    bytes: int
    input_shape: tuple[int, ...] | None
    output_shape: tuple[int, ...] | None
    macs: int
    flops: int
    config: dict[str, Any] = field(default_factory=dict)
    model_params: int | None = None

    def __post_init__(self) -> None:
        if self.model_params is None:  # built by hand: no neuron parameters to tell apart
            self.model_params = self.params

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


@dataclass
class GraphStats:
    """Statistics of a graph (see the module docstring for what recurses into subgraphs).

    * ``depth``: the longest path, in edges, ignoring recurrent edges (a chain of N nodes: N - 1);
    * ``width``: the largest number of nodes at one depth level (level = longest path from a
      node without non-recurrent incoming edges);
    * ``total_flops = 2 * total_macs``;
    * ``memory_breakdown``: parameter bytes per node type (types holding no arrays are omitted);
    * ``lif_count``: LIF and CubaLIF layers; ``affine_count``: Affine, SpikingAffine and Linear
      layers; ``conv_count``: Conv1d, Conv2d, SConv, SDConv and SepConv2d layers;
    * ``uncounted``: nodes whose MACs could not be counted (unknown shape or no rule), counted as 0;
    * ``total_params`` counts every stored array element, neuron parameters once per neuron, as the
      TALON documentation's formula does. The model's own count sits alongside:
      ``weight_params`` (every non-neuron array: weights, biases, …), ``neuron_params`` (stored
      neuron-parameter elements), ``neuron_constants`` (the same, a layer-uniform array counted
      once), ``model_params = weight_params + neuron_constants`` and ``model_bytes``. For a model
      whose layers share one decay (snnTorch ``Leaky(beta=0.9)``) ``weight_params`` is the
      framework's own parameter count and ``neuron_constants`` a few values per layer.
    """

    total_params: int
    total_bytes: int
    total_macs: int
    total_flops: int
    node_count: int
    edge_count: int
    recurrent_edge_count: int
    depth: int
    width: int
    type_counts: dict[str, int]
    layers: list[LayerStats]
    input_shapes: dict[str, tuple[int, ...] | None]
    output_shapes: dict[str, tuple[int, ...] | None]
    memory_breakdown: dict[str, int]
    lif_count: int
    affine_count: int
    conv_count: int
    subgraph_count: int
    spiking_neurons: int
    uncounted: list[str]
    weight_params: int
    neuron_params: int
    neuron_constants: int
    model_params: int
    model_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def analyze_node(name: str, node: Node, *, n_inputs: int = 1) -> LayerStats:
    """Statistics of ``node`` (named ``name``), which receives ``n_inputs`` incoming edges.

    A subgraph node is summed over its nodes. Raises ``TypeError`` for a non-node.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    if not isinstance(node, Node):
        raise TypeError(f"node {name!r} is a {type(node).__name__}, not a talon.ir Node")
    if isinstance(n_inputs, bool) or not isinstance(n_inputs, int) or n_inputs < 0:
        raise ValueError(f"n_inputs must be a non-negative int, got {n_inputs!r}")
    if isinstance(node, Graph):
        check_edges(node, f"subgraph {name!r}")
        totals = count_graph(node)
        return LayerStats(
            name=name,
            node_type="Graph",
            params=totals.total_params,
            bytes=totals.total_bytes,
            input_shape=node.input_shape,
            output_shape=node.output_shape,
            macs=totals.total_macs,
            flops=totals.total_flops,
            config={"nodes": len(node.nodes), "edges": len(node.edges)},
            model_params=totals.model_params,
        )
    return _layer(name, node, count_node(node, n_inputs))


def _layer(name: str, node: Node, counts: NodeCounts) -> LayerStats:
    config: dict[str, Any] = {}
    for key, value in node.stored_params().items():
        if hasattr(value, "shape") and hasattr(value, "dtype"):
            config[f"{key}_shape"] = tuple(int(d) for d in value.shape)
        else:
            config[key] = enum_value(value)
    return LayerStats(
        name=name,
        node_type=type(node).__name__,
        params=counts.params,
        bytes=counts.nbytes,
        input_shape=node.input_shape,
        output_shape=node.output_shape,
        macs=counts.macs,
        flops=2 * counts.macs,
        config=config,
        model_params=counts.model_params,
    )


def depth_and_width(graph: Graph) -> tuple[int, int]:
    """``(depth, width)`` of the top-level graph, recurrent edges ignored (see :class:`GraphStats`)."""
    return _depth_and_width(graph, graph.recurrent_mask())


def _depth_and_width(graph: Graph, recurrent: list[bool]) -> tuple[int, int]:
    if not graph.nodes:
        return 0, 0
    level = dict.fromkeys(graph.nodes, 0)
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for (s, d), rec in zip(graph.edges, recurrent, strict=True):
        if not rec:
            preds[d].append(s)
    for name in topological_order(list(graph.nodes), graph.edges, recurrent):
        if preds[name]:
            level[name] = 1 + max(level[p] for p in preds[name])
    per_level = Counter(level.values())
    return max(level.values()), max(per_level.values())


def analyze_graph(graph: GraphLike) -> GraphStats:
    """Statistics of a graph (or ``.t1c`` file): parameters, bytes, MACs and FLOPs, structure.

    ``total_params = sum(array.size)`` and ``total_bytes = sum(array.nbytes)`` over every node's
    arrays at every nesting level; ``total_macs`` follows :mod:`talon.ir.counting`;
    ``total_flops = 2 * total_macs``.
    """
    graph = load_graph(graph)
    totals = count_graph(graph)
    layers: list[LayerStats] = []
    type_counts: Counter[str] = Counter()
    memory: Counter[str] = Counter()
    lif = affine = conv = 0
    for name, node, counts in totals.layers:
        layer = _layer(name, node, counts)
        layers.append(layer)
        type_counts[layer.node_type] += 1
        if counts.nbytes:
            memory[layer.node_type] += counts.nbytes
        lif += isinstance(node, LIF_TYPES)
        affine += isinstance(node, DENSE_TYPES)
        conv += isinstance(node, CONV_TYPES)
    recurrent = totals.recurrent_mask  # computed once, by count_graph: depth, width and the count use it
    depth, width = _depth_and_width(graph, recurrent)
    return GraphStats(
        total_params=totals.total_params,
        total_bytes=totals.total_bytes,
        total_macs=totals.total_macs,
        total_flops=totals.total_flops,
        node_count=len(graph.nodes),
        edge_count=len(graph.edges),
        recurrent_edge_count=sum(recurrent),
        depth=depth,
        width=width,
        type_counts=dict(type_counts),
        layers=layers,
        input_shapes={n: graph.nodes[n].shape for n in graph.input_nodes},
        output_shapes={n: graph.nodes[n].shape for n in graph.output_nodes},
        memory_breakdown=dict(memory),
        lif_count=lif,
        affine_count=affine,
        conv_count=conv,
        subgraph_count=sum(1 for _ in _subgraphs(graph)),
        spiking_neurons=totals.spike_ops,
        uncounted=list(totals.uncounted),
        weight_params=totals.weight_params,
        neuron_params=totals.neuron_params,
        neuron_constants=totals.neuron_constants,
        model_params=totals.model_params,
        model_bytes=totals.model_bytes,
    )


def _subgraphs(graph: Graph):
    for node in graph.nodes.values():
        if isinstance(node, Graph):
            yield node
            yield from _subgraphs(node)


def summarize(graph: GraphLike, verbose: bool = False) -> str:
    """A text summary of :func:`analyze_graph` (``verbose`` adds one line per layer)."""
    stats = analyze_graph(graph)
    rule = "=" * 50
    lines = [
        "TALON IR Graph Summary",
        rule,
        f"Nodes: {stats.node_count}  |  Edges: {stats.edge_count}  |  Depth: {stats.depth}  |  Width: {stats.width}",
        f"Parameters: {format_number(stats.total_params)}  |  Memory: {format_bytes(stats.total_bytes)}  |  "
        f"FLOPs: {format_number(stats.total_flops)}",
        *model_line(stats),
        "",
        "Layer Types:",
        *(f"  {t}: {n}" for t, n in stats.type_counts.items()),
    ]
    spiking_layers = sum(1 for layer in stats.layers if layer.node_type in {t.__name__ for t in SPIKING_TYPES})
    if spiking_layers:
        lines.append(
            f"SNN: {spiking_layers} spiking neuron layer(s) ({stats.lif_count} LIF), "
            f"{format_number(stats.spiking_neurons)} neurons"
        )
    if stats.recurrent_edge_count:
        lines.append(f"Recurrent edges: {stats.recurrent_edge_count}")
    if stats.uncounted:
        lines.append(f"Not counted (unknown shape or type): {', '.join(stats.uncounted)}")
    if verbose:
        width = max([len(layer.name) for layer in stats.layers] + [4])
        lines += ["", "Layers:", f"  {'name':<{width}}  {'type':<14} {'output':<16} {'params':>12} {'MACs':>14}"]
        for layer in stats.layers:
            shape = "?" if layer.output_shape is None else str(list(layer.output_shape))
            lines.append(
                f"  {layer.name:<{width}}  {layer.node_type:<14} {shape:<16} {layer.params:>12,} {layer.macs:>14,}"
            )
    return "\n".join(lines)


def model_line(stats: GraphStats) -> list[str]:
    """The model's own parameter count, one line, when it differs from the stored count (see
    :class:`GraphStats`); no line otherwise."""
    if stats.model_params == stats.total_params:
        return []
    return [
        f"Model parameters: {stats.model_params:,} ({stats.weight_params:,} weights and biases + "
        f"{stats.neuron_constants:,} neuron constants)"
    ]


def _as_number(value: Any, what: str) -> int | float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{what} expects a number, got {type(value).__name__}")
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def format_number(n: float) -> str:
    """``500 -> '500'``, ``1500 -> '1,500'``, ``150000 -> '150.0K'``, ``1500000 -> '1.50M'``.

    Below 100,000 with thousands separators; then K (one decimal), M and B (two decimals).
    """
    x = _as_number(n, "format_number")
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    sign, a = ("-" if x < 0 else ""), abs(x)
    if a < 100_000:
        return f"{int(x):,}" if a == int(a) else f"{x:,.2f}"
    if round(a / 1e3, 1) < 1000:
        return f"{sign}{a / 1e3:.1f}K"
    if round(a / 1e6, 2) < 1000:
        return f"{sign}{a / 1e6:.2f}M"
    return f"{sign}{a / 1e9:.2f}B"


def format_bytes(n: float) -> str:
    """``500 -> '500 B'``, ``1024 -> '1.0 KB'``, ``1048576 -> '1.0 MB'`` (binary units, 1 KB = 1024 B)."""
    x = _as_number(n, "format_bytes")
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"format_bytes expects a non-negative byte count, got {n!r}")
    if x < 1024:
        return f"{int(x)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        x /= 1024
        if round(x, 1) < 1024 or unit == "TB":
            return f"{x:.1f} {unit}"
    raise AssertionError("unreachable")
