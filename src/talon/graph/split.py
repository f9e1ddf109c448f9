"""Layer splitting: a layer that exceeds a core becomes per-core slices that are ordinary IR nodes.

A **unit** is a weight layer (Affine, SpikingAffine, Linear, Conv1d, Conv2d, SConv with
``groups=1``) or a channel-wise layer, followed by the chain of channel-wise layers it alone feeds
(neurons, Threshold, ReLU, Dropout, pooling, Delay) — what one core computes for a range of output
channels (rows of a dense layer). A unit that does not fit a core is cut along its output
channels into ``k`` slices of nearly equal size; slice ``i`` of a weight layer holds rows
``[lo, hi)`` of the weight and bias, slice ``i`` of a channel-wise layer the same rows of every
per-neuron parameter. The slices' outputs are joined by a ``Concat`` that takes the name of the
unit's last node, so every consumer (and every ``Output``) reads exactly what it read before.

Why the result simulates bit-identically (``docs/mapping.md``):

* every output element of a slice is computed from the same inputs, weights and parameters by the
  same per-element arithmetic as in the unsplit layer; Concat and ChannelSplit move values only;
* a channel-wise unit fed by several edges receives them through ``Concat -> ChannelSplit``, so
  slice ``i`` still sums edge by edge, in the original order;
* in a recurrent loop every split unit has a single entry node (a passthrough ``Skip`` or the
  ``Concat`` of its inputs) and a single exit (the joining ``Concat``): the depth-first search of
  docs/semantics.md then marks exactly the edges that correspond to the original recurrent edges
  (checked after building; an internal error otherwise);
* fixed point: slices carry ``metadata["talon.slice"] = {"of", "start", "stop"}`` and the CPU
  backend calibrates a sliced layer's ranges over all its slices together, so the formats are the
  unsplit layer's.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields

import numpy as np

from .. import ir
from .errors import MappingError
from .resources import Cost, add, node_cost

SLICE_KEY = "talon.slice"
ROLE_KEY = "talon.mapping_role"  # "entry" / "exit" / "split" nodes added by the splitter

CHANNELWISE = (
    ir.LIF, ir.IF, ir.LI, ir.CubaLIF, ir.CubaLI, ir.Integrator, ir.Threshold, ir.ReLU, ir.Dropout,
    ir.MaxPool2d, ir.AvgPool2d, ir.SumPool2d, ir.Delay,
)  # fmt: skip
SPLITTABLE_WEIGHTS = (ir.Affine, ir.Linear, ir.Conv1d, ir.Conv2d)


@dataclass
class Unit:
    """A chain of nodes one core computes for a range of channels."""

    nodes: list[str]
    channels: int
    cost: Cost  # the whole unit
    in_cycle: bool = False
    parts: list[tuple[int, int]] = field(default_factory=list)

    @property
    def head(self) -> str:
        return self.nodes[0]

    @property
    def tail(self) -> str:
        return self.nodes[-1]


def _splittable_head(node: ir.Node) -> bool:
    if isinstance(node, (ir.SDConv, ir.SepConv2d)):
        return False
    if isinstance(node, SPLITTABLE_WEIGHTS):
        if isinstance(node, (ir.Conv1d, ir.Conv2d)) and node.groups != 1:
            return False
        return node.input_shape is not None and (
            not isinstance(node, (ir.Affine, ir.Linear)) or len(node.input_shape) == 1
        )
    return _channelwise(node)


def _channelwise(node: ir.Node) -> bool:
    return isinstance(node, CHANNELWISE) and node.output_shape is not None and len(node.output_shape) >= 1


def strongly_connected(graph: ir.Graph) -> set[str]:
    """Names of the nodes on a cycle (in a strongly connected component of size > 1, or a self-loop)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    names = list(graph.nodes)
    index = {n: i for i, n in enumerate(names)}
    if not graph.edges:
        return set()
    src = np.array([index[s] for s, _ in graph.edges])
    dst = np.array([index[d] for _, d in graph.edges])
    adj = coo_matrix((np.ones(len(src)), (src, dst)), shape=(len(names), len(names))).tocsr()
    _, labels = connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(labels)
    on_cycle = {names[i] for i in range(len(names)) if sizes[labels[i]] > 1}
    on_cycle |= {s for s, d in graph.edges if s == d}
    return on_cycle


def find_units(graph: ir.Graph, weight_bits: int, state_bits: int) -> list[Unit]:
    """Group the graph's splittable nodes into units (head + channel-wise chain), in node order."""
    out_deg: dict[str, list[str]] = {n: [] for n in graph.nodes}
    in_deg: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for s, d in graph.edges:
        out_deg[s].append(d)
        in_deg[d].append(s)
    cyclic = strongly_connected(graph)
    taken: set[str] = set()
    units = []
    for name in graph.topological_order():
        node = graph.nodes[name]
        if name in taken or not _splittable_head(node):
            continue
        chain, channels = [name], int(node.output_shape[0])
        cost = node_cost(node, weight_bits, state_bits)
        while len(out_deg[chain[-1]]) == 1:
            nxt = out_deg[chain[-1]][0]
            nxt_node = graph.nodes[nxt]
            if (
                nxt in taken or nxt in chain or len(in_deg[nxt]) != 1 or not _channelwise(nxt_node)
                or int(nxt_node.output_shape[0]) != channels or (nxt in cyclic) != (name in cyclic)
            ):  # fmt: skip
                break
            chain.append(nxt)
            cost = add(cost, node_cost(nxt_node, weight_bits, state_bits))
        taken.update(chain)
        units.append(Unit(chain, channels, cost, in_cycle=any(n in cyclic for n in chain)))
    return units


def plan_parts(unit: Unit, graph: ir.Graph, spec, weight_bits: int, state_bits: int) -> None:
    """Choose the unit's channel ranges: one part if it fits a core, else the fewest that do.

    Raises :class:`MappingError` naming the limit and the excess when a single channel (row) does
    not fit, or a neuron's fan-in exceeds ``max_fan_in``.
    """
    c = unit.cost
    head = graph.nodes[unit.head]
    if spec.max_fan_in is not None and c.fan_in > spec.max_fan_in:
        raise MappingError(
            f"node {unit.head!r} ({type(head).__name__}): each neuron sums {c.fan_in:,} inputs but a core accepts "
            f"a fan-in of {spec.max_fan_in:,} ({c.fan_in / spec.max_fan_in:.2f}x over); splitting the fan-in into "
            "partial sums is not supported (it would change the float rounding): use a spec with a larger "
            "max_fan_in or a smaller layer"
        )
    limits = [
        ("neurons", c.neurons, spec.max_neurons_per_core),
        ("synapses", c.synapses, spec.max_synapses_per_core),
        ("SRAM bytes", c.sram_bytes, spec.sram_bytes_per_core),
    ]
    if all(used <= cap for _, used, cap in limits):
        unit.parts = [(0, unit.channels)]
        return
    per_slice = unit.channels
    for what, used, cap in limits:
        per_channel = used / unit.channels
        if per_channel > cap:
            raise MappingError(
                f"node {unit.head!r} ({type(head).__name__}): one output channel needs {per_channel:,.0f} {what} "
                f"but a core holds {cap:,} ({per_channel / cap:.2f}x over); layers are split by output channel "
                "(spatial tiles are not supported): use a spec with larger cores or a smaller layer"
            )
        if per_channel:
            per_slice = min(per_slice, int(cap // per_channel))
    if unit.in_cycle and isinstance(head, SPLITTABLE_WEIGHTS):
        n_in = sum(1 for _, d in graph.edges if d == unit.head)
        if n_in != 1:
            raise MappingError(
                f"node {unit.head!r} ({type(head).__name__}) is in a recurrent loop, sums {n_in} inputs and exceeds "
                "a core; such a layer cannot be split exactly: put a Skip node before it to sum its inputs, or "
                "use a spec with larger cores"
            )
    k = math.ceil(unit.channels / per_slice)
    sizes = [unit.channels // k + (i < unit.channels % k) for i in range(k)]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    unit.parts = [(int(bounds[i]), int(bounds[i + 1])) for i in range(k)]


def slice_node(node: ir.Node, lo: int, hi: int, of: str) -> ir.Node:
    """A copy of ``node`` restricted to output channels (rows) ``[lo, hi)``."""
    channels = int(node.output_shape[0])
    kwargs = {}
    for f in fields(node):
        if f.name in ("input_type", "output_type", "metadata"):
            continue
        value = getattr(node, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == channels and value.size > 1:
            value = value[lo:hi]
        elif isinstance(node, ir.ReLU) and f.name == "features":
            value = None
        kwargs[f.name] = value
    metadata = dict(node.metadata)
    metadata[SLICE_KEY] = {"of": of, "start": lo, "stop": hi, "channels": channels}
    return type(node)(**kwargs, metadata=metadata)


def _copy(node: ir.Node) -> ir.Node:
    new = copy.copy(node)
    new.metadata = dict(node.metadata)
    return new


@dataclass
class SplitResult:
    graph: ir.Graph
    slices: dict[str, list[dict]]  # original node -> [{name, start, stop}]
    units: list[Unit]


def split_graph(graph: ir.Graph, spec, weight_bits: int, state_bits: int) -> SplitResult:
    """The graph with every unit that exceeds a core cut into slices (see the module docstring)."""
    units = find_units(graph, weight_bits, state_bits)
    for unit in units:
        plan_parts(unit, graph, spec, weight_bits, state_bits)
    split = {u.head: u for u in units if len(u.parts) > 1}
    member = {n: u for u in split.values() for n in u.nodes}
    taken = set(graph.nodes)

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    nodes: dict[str, ir.Node] = {}
    slice_names: dict[str, list[str]] = {}
    entry: dict[str, str] = {}  # head -> entry node fed by the unit's incoming edges
    internal: list[tuple[str, str]] = []
    in_edges: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for s, d in graph.edges:
        in_edges[d].append(s)
    slices_meta: dict[str, list[dict]] = {}
    for name, node in graph.nodes.items():
        unit = member.get(name)
        if unit is None:
            nodes[name] = _copy(node)
            continue
        if name != unit.head:
            continue
        head = graph.nodes[unit.head]
        k = len(unit.parts)
        weight_head = isinstance(head, SPLITTABLE_WEIGHTS)
        n_in = len(in_edges[unit.head])
        if weight_head and unit.in_cycle:
            entry[name] = fresh(f"{name}_in")
            nodes[entry[name]] = ir.Skip("passthrough", metadata={ROLE_KEY: "entry"})
        elif not weight_head:
            split_name = fresh(f"{name}_split")
            sections = [hi - lo for lo, hi in unit.parts] * n_in
            if n_in > 1:
                entry[name] = fresh(f"{name}_merge")
                nodes[entry[name]] = ir.Concat(num_inputs=n_in, dim=1, metadata={ROLE_KEY: "entry"})
                internal.append((entry[name], split_name))
            else:
                entry[name] = split_name
            nodes[split_name] = ir.ChannelSplit(sections, dim=1, metadata={ROLE_KEY: "split"})
            for _ in range(n_in):
                for i in range(k):
                    internal.append((split_name, f"@{name}:{i}"))  # resolved below
        for member_name in unit.nodes:
            slice_names[member_name] = []
            slices_meta[member_name] = []
            for lo, hi in unit.parts:
                sname = fresh(f"{member_name}_s{len(slice_names[member_name])}")
                nodes[sname] = slice_node(graph.nodes[member_name], lo, hi, member_name)
                slice_names[member_name].append(sname)
                slices_meta[member_name].append({"name": sname, "start": lo, "stop": hi})
        for a, b in zip(unit.nodes, unit.nodes[1:], strict=False):
            internal.extend(zip(slice_names[a], slice_names[b], strict=True))
        if weight_head and unit.in_cycle:
            internal.extend((entry[name], s) for s in slice_names[name])
        taken.discard(unit.tail)
        nodes[unit.tail] = ir.Concat(num_inputs=k, dim=1, metadata={ROLE_KEY: "exit"})
        internal.extend((s, unit.tail) for s in slice_names[unit.tail])
    internal = [
        (s, slice_names[d[1:].rsplit(":", 1)[0]][int(d.rsplit(":", 1)[1])]) if d.startswith("@") else (s, d)
        for s, d in internal
    ]

    edges: list[tuple[str, str]] = []
    origin: list[int | None] = []
    for index, (s, d) in enumerate(graph.edges):
        su, du = member.get(s), member.get(d)
        if su is not None and su is du and s != su.tail:
            continue  # inside a unit: added with the slices
        if du is None or d != du.head:
            edges.append((s, d))
            origin.append(index)
        elif d in entry:
            edges.append((s, entry[d]))
            origin.append(index)
        else:
            for sname in slice_names[d]:
                edges.append((s, sname))
                origin.append(index)
    edges.extend(internal)
    origin.extend([None] * len(internal))
    new = ir.Graph(nodes, edges, metadata=copy.deepcopy(graph.metadata))
    _check_recurrence(graph, new, origin)
    return SplitResult(new, slices_meta, units)


def _check_recurrence(original: ir.Graph, new: ir.Graph, origin: list[int | None]) -> None:
    before = {i for i, rec in enumerate(original.recurrent_mask()) if rec}
    after = [origin[i] for i, rec in enumerate(new.recurrent_mask()) if rec]
    if None in after or set(after) != before:
        raise MappingError(
            "internal error: splitting changed which edges are recurrent (one-step delays); "
            "please report this graph. Use a spec with larger cores to map it without splitting meanwhile."
        )
