"""The mapped graph as a graph of *vertices* (what occupies cores) and the spike traffic between them.

Vertices are the nodes that cost something on a core (weight layers, neurons, their slices) plus
the Input and Output nodes (spikes enter and leave the chip there). Every other node (Concat,
ChannelSplit, Flatten, pooling outside a unit, Skip ...) is *virtual*: it is wiring, and a spike
crosses it on the way from one vertex to another. A connection ``u -> w`` exists when a path of
virtual nodes carries part of ``u``'s output to ``w``; Concat, ChannelSplit, Flatten and the
channel-preserving nodes are followed channel-exactly, so slice ``i`` of a layer reaches only the
slices that read its channels.

Traffic of a connection = spikes per step of the part of ``u``'s output that reaches ``w``: the
measured rate when ``activity`` is given, else one event per element per step (worst case; graded
values are sent every step).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from .. import ir
from .resources import Cost, node_cost

_CHANNEL_PRESERVING = (
    ir.ReLU, ir.Dropout, ir.MaxPool2d, ir.AvgPool2d, ir.SumPool2d, ir.HybridRegion, ir.Upsample, ir.Scale, ir.Delay,
)  # fmt: skip


@dataclass
class VertexGraph:
    names: list[str]  # vertex names (graph nodes)
    index: dict[str, int]
    costs: list[Cost]
    src: np.ndarray  # connection arrays (vertex indices)
    dst: np.ndarray
    traffic: np.ndarray  # spikes per step
    recurrent: np.ndarray  # bool: the connection crosses a recurrent (one-step delayed) edge

    @property
    def n(self) -> int:
        return len(self.names)


def is_vertex(node: ir.Node, cost: Cost) -> bool:
    return isinstance(node, (ir.Input, ir.Output)) or not cost.free


def rates_of(graph: ir.Graph, activity) -> dict[str, float]:
    """Spikes per step of each node from ``activity``: a SimulationResult (spike counts / (T·B)) or
    a ``{node: spikes per step}`` dict. Slices of a split node share its rate by neuron count."""
    if activity is None:
        return {}
    if hasattr(activity, "spike_counts") and hasattr(activity, "timesteps_run"):
        steps = max(int(activity.timesteps_run) * int(activity.batch_size), 1)
        return {k: float(v) / steps for k, v in activity.spike_counts.items()}
    if isinstance(activity, dict):
        out = {}
        for k, v in activity.items():
            value = np.nan  # true, a string, None, an object: not a number of spikes
            if not isinstance(v, (bool, str, bytes)):
                with contextlib.suppress(TypeError, ValueError):
                    value = float(np.sum(np.asarray(v, np.float64)))
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"activity of node {k!r} must be a finite spike rate >= 0, got {v!r}")
            out[str(k)] = value
        return out
    raise TypeError(f"activity must be a SimulationResult or a dict of spikes per step, got {type(activity).__name__}")


def check_rate_names(graph: ir.Graph, flat: ir.Graph, rates: dict[str, float], where: str = "activity") -> None:
    """Refuse rates of nodes the mapped graph does not have: ``flat`` is ``graph`` with its subgraphs
    inlined, whose nodes are named ``rec.neuron`` (a rate of the subgraph ``rec`` itself would be ignored)."""
    unknown = sorted(set(rates) - set(flat.nodes))
    if not unknown:
        return
    name = unknown[0]
    if isinstance(graph.nodes.get(name), ir.Graph):
        inner = ", ".join(f"{name}.{n}" for n in graph.nodes[name].nodes)
        raise ValueError(f"{where} gives a rate for the subgraph {name!r}; give its nodes' rates instead ({inner})")
    raise ValueError(f"{where} names unknown nodes {unknown}; a subgraph's nodes are named like 'rec.neuron'")


def vertex_graph(
    graph: ir.Graph, weight_bits: int, state_bits: int, rates: dict[str, float] | None = None
) -> VertexGraph:
    """The vertices of ``graph`` and the channel-exact connections between them (module docstring)."""
    rates = rates or {}
    costs = {n: node_cost(node, weight_bits, state_bits) for n, node in graph.nodes.items()}
    names = [n for n, node in graph.nodes.items() if is_vertex(node, costs[n])]
    index = {n: i for i, n in enumerate(names)}
    out_edges: dict[str, list[int]] = {n: [] for n in graph.nodes}
    for i, (s, _) in enumerate(graph.edges):
        out_edges[s].append(i)
    recurrent = graph.recurrent_mask()
    in_order: dict[str, list[int]] = {n: [] for n in graph.nodes}
    for i, (_, d) in enumerate(graph.edges):
        in_order[d].append(i)

    def elements(name: str) -> int:
        shape = graph.nodes[name].output_shape
        return int(np.prod(shape)) if shape is not None else 0

    def own_rate(name: str) -> float:
        if name in rates:
            return rates[name]
        info = graph.nodes[name].metadata.get("talon.slice")
        if isinstance(info, dict) and info.get("of") in rates:
            return rates[info["of"]] * (info["stop"] - info["start"]) / max(int(info.get("channels", 1)), 1)
        return float(elements(name))

    memo: dict[str, tuple[np.ndarray, np.ndarray] | None] = {}

    def closure(d: str, visiting: frozenset = frozenset()):
        """Vertices reached from virtual node ``d`` whatever channels arrive (None when a
        ChannelSplit downstream makes the answer depend on the channels)."""
        if d in memo:
            return memo[d]
        node = graph.nodes[d]
        result = None
        if not isinstance(node, ir.ChannelSplit) and d not in visiting:
            targets, delays = [], []
            for oe in out_edges[d]:
                nxt = graph.edges[oe][1]
                if nxt in index:
                    targets.append(np.array([index[nxt]]))
                    delays.append(np.array([recurrent[oe]]))
                    continue
                sub = closure(nxt, visiting | {d})
                if sub is None:
                    break
                targets.append(sub[0])
                delays.append(sub[1] | recurrent[oe])
            else:
                result = (
                    np.concatenate(targets) if targets else np.zeros(0, np.int64),
                    np.concatenate(delays) if delays else np.zeros(0, bool),
                )
        memo[d] = result
        return result

    srcs, dsts, traffic, rec = [], [], [], []
    for u in names:
        shape = graph.nodes[u].output_shape
        channels = float(shape[0]) if shape else 1.0
        rate_u = own_rate(u)
        # (edge, [lo, hi) channels of the value on the edge, fraction of u's output, delayed)
        stack = [(e, 0.0, channels, 1.0, recurrent[e]) for e in out_edges[u]]
        hit_t, hit_f, hit_d = [], [], []
        while stack:
            e, lo, hi, fraction, delayed = stack.pop()
            d = graph.edges[e][1]
            node = graph.nodes[d]
            if d in index:
                hit_t.append(np.array([index[d]]))
                hit_f.append(np.array([fraction]))
                hit_d.append(np.array([delayed]))
                continue
            known = closure(d)
            if known is not None:
                hit_t.append(known[0])
                hit_f.append(np.full(known[0].size, fraction))
                hit_d.append(known[1] | delayed)
                continue
            lo, hi = _through(graph, node, d, e, lo, hi, in_order)
            if isinstance(node, ir.ChannelSplit) and node.dim == 1:
                start = 0
                for k, oe in enumerate(out_edges[d]):
                    size = node.split_sections[k]
                    a, b = max(lo, start), min(hi, start + size)
                    if a < b:
                        part = fraction * (b - a) / (hi - lo)
                        stack.append((oe, a - start, b - start, part, delayed or recurrent[oe]))
                    start += size
                continue
            for oe in out_edges[d]:
                stack.append((oe, lo, hi, fraction, delayed or recurrent[oe]))
        if not hit_t:
            continue
        targets, inverse = np.unique(np.concatenate(hit_t), return_inverse=True)
        fractions = np.bincount(inverse, weights=np.concatenate(hit_f), minlength=targets.size)
        delayed = np.bincount(inverse, weights=np.concatenate(hit_d).astype(float), minlength=targets.size) > 0
        srcs.append(np.full(targets.size, index[u], np.int64))
        dsts.append(targets)
        traffic.append(rate_u * np.minimum(fractions, 1.0))
        rec.append(delayed)

    def cat(parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    return VertexGraph(
        names, index, [costs[n] for n in names], cat(srcs, np.int64), cat(dsts, np.int64), cat(traffic, np.float64),
        cat(rec, bool),
    )  # fmt: skip


def _through(graph: ir.Graph, node: ir.Node, name: str, edge: int, lo: float, hi: float, in_order) -> tuple:
    """Map channels ``[lo, hi)`` arriving on ``edge`` to channels of ``node``'s output (of its input
    for a ChannelSplit); a node that mixes channels passes on its whole output."""
    shape_in = graph.edge_shape(edge)
    if isinstance(node, ir.Concat) or (isinstance(node, ir.Skip) and node.skip_type == ir.SkipType.CONCATENATE):
        axis = 0 if isinstance(node, ir.Skip) else node.dim - 1
        if axis == 0:
            offset = 0
            for e in in_order[name]:
                if e == edge:
                    break
                offset += int(graph.edge_shape(e)[0])
            return lo + offset, hi + offset
    if (
        isinstance(node, ir.Flatten) and shape_in is not None and len(shape_in) > 1
        and node.start_dim in (0, -len(shape_in)) and node.end_dim in (-1, len(shape_in) - 1)
    ):  # fmt: skip
        per = int(np.prod(shape_in[1:]))
        return lo * per, hi * per
    if isinstance(node, ir.ChannelSplit) and node.dim == 1:
        return lo, hi
    if isinstance(node, _CHANNEL_PRESERVING) or (
        isinstance(node, ir.Skip) and node.skip_type == ir.SkipType.PASSTHROUGH
    ):
        return lo, hi
    out = node.input_shape if isinstance(node, ir.ChannelSplit) else node.output_shape
    return 0.0, float(out[0]) if out else 1.0
