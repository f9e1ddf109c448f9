"""A talon graph flattened for execution: subgraphs inlined, every edge resolved once.

``docs/semantics.md`` §2 evaluates a subgraph "as if its nodes were inlined", with its recurrent
edges determined inside it. :func:`flatten` does that inlining: each node gets a dotted path
(``"rnn.lif"``), a subgraph's Input and Output nodes become pass-through nodes, and every edge
keeps the recurrent flag ``Graph.recurrent_mask()`` gave it in its own graph. A node's incoming
edges keep edge order (the order in which fan-in is summed or concatenated).

:func:`components` groups the flat nodes into strongly connected components in execution order:
the sequence runner evaluates an acyclic node over all timesteps at once and scans each cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ... import ir
from ...ir.errors import GraphValidationError

INPUT, BOUNDARY, NEURON, DELAY, OP = "input", "boundary", "neuron", "delay", "op"


@dataclass(frozen=True)
class Edge:
    """One incoming edge of a flat node."""

    key: str  # unique name, used for the state of a recurrent edge
    src: str  # path of the source node
    port: int | None  # section of a multi-output source (ChannelSplit), else None
    recurrent: bool  # carries the source's value of the previous step
    shape: tuple[int, ...]


@dataclass
class FlatNode:
    path: str
    node: ir.Node
    kind: str
    inputs: list[Edge] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, ...]:
        """Output shape (the first output of a multi-output node)."""
        return tuple(self.node.output_shape)


@dataclass
class Plan:
    nodes: dict[str, FlatNode]  # in flattening order
    order: list[str]  # a topological order of the non-recurrent edges
    inputs: dict[str, str]  # top-level Input name -> path
    outputs: dict[str, str]  # top-level Output name -> path

    @property
    def recurrent_edges(self) -> list[Edge]:
        return [e for n in self.order for e in self.nodes[n].inputs if e.recurrent]


def _kind(node: ir.Node, top_level: bool) -> str:
    from .neurons import STATEFUL

    if isinstance(node, ir.Input):
        return INPUT if top_level else BOUNDARY
    if isinstance(node, ir.Output):
        return BOUNDARY
    if isinstance(node, STATEFUL):
        return NEURON
    if isinstance(node, ir.Delay):
        return DELAY
    return OP


def flatten(graph: ir.Graph) -> Plan:
    """Inline every subgraph of ``graph`` and resolve its edges (see the module docstring)."""
    if not isinstance(graph, ir.Graph):
        raise TypeError(f"expected a talon.ir.Graph, got {type(graph).__name__}")
    nodes: dict[str, FlatNode] = {}
    _flatten_into(graph, "", nodes, top_level=True)
    for flat in nodes.values():
        if flat.kind != INPUT and not flat.inputs:
            raise GraphValidationError(
                f"node {flat.path!r} ({type(flat.node).__name__}) has no incoming edge; every node but an "
                "Input needs one to be executed"
            )
        if flat.node.output_type is None:
            raise GraphValidationError(f"node {flat.path!r}: its shape could not be inferred; give the Input a shape")
    plan = Plan(
        nodes=nodes,
        order=_topological(nodes),
        inputs={n: n for n in graph.input_nodes},
        outputs={n: n for n in graph.output_nodes},
    )
    if not plan.inputs:
        raise GraphValidationError("the graph has no Input node")
    if not plan.outputs:
        raise GraphValidationError("the graph has no Output node")
    return plan


def _flatten_into(graph: ir.Graph, prefix: str, nodes: dict[str, FlatNode], top_level: bool):
    """Add ``graph``'s nodes under ``prefix``; return the paths of its (Input, Output) nodes."""
    entry: dict[str, str] = {}  # subgraph node name -> path of its Input node
    exit_: dict[str, str] = {}  # subgraph node name -> path of its Output node
    for name, node in graph.nodes.items():
        path = prefix + name
        if isinstance(node, ir.Graph):
            (inner_in,), (inner_out,) = node.input_nodes, node.output_nodes
            _flatten_into(node, path + ".", nodes, top_level=False)
            entry[name], exit_[name] = f"{path}.{inner_in}", f"{path}.{inner_out}"
        else:
            nodes[path] = FlatNode(path, node, _kind(node, top_level))
    mask = graph.recurrent_mask()
    for idx, (src, dst) in enumerate(graph.edges):
        src_node = graph.nodes[src]
        port = graph.out_edges(src).index(idx) if src_node.is_multi_output else None
        shape = graph.edge_shape(idx)
        if shape is None:
            raise GraphValidationError(f"edge ({src!r}, {dst!r}): its shape could not be inferred")
        src_path = exit_.get(src, prefix + src)
        dst_path = entry.get(dst, prefix + dst)
        target = nodes[dst_path]
        key = f"{src_path}->{dst_path}#{len(target.inputs)}"
        target.inputs.append(Edge(key, src_path, port, bool(mask[idx]), tuple(shape)))


def _topological(nodes: dict[str, FlatNode]) -> list[str]:
    index = {p: i for i, p in enumerate(nodes)}
    indegree = dict.fromkeys(nodes, 0)
    forward: dict[str, list[str]] = {p: [] for p in nodes}
    for path, flat in nodes.items():
        for edge in flat.inputs:
            if not edge.recurrent:
                indegree[path] += 1
                forward[edge.src].append(path)
    ready = sorted((p for p, d in indegree.items() if d == 0), key=index.get)
    order: list[str] = []
    while ready:
        path = ready.pop(0)
        order.append(path)
        for nxt in forward[path]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
                ready.sort(key=index.get)
    if len(order) != len(nodes):
        stuck = [p for p in nodes if p not in order]
        raise GraphValidationError(f"the non-recurrent edges form a cycle through {stuck}; this is a bug in talon")
    return order


def components(plan: Plan) -> list[list[str]]:
    """Strongly connected components of the flat graph (all edges), in execution order.

    Each component lists its nodes in ``plan.order``. A component of one node with no edge to
    itself is acyclic.
    """
    succ: dict[str, list[str]] = {p: [] for p in plan.nodes}
    for path, flat in plan.nodes.items():
        for edge in flat.inputs:
            succ[edge.src].append(path)
    comp_of = _tarjan(list(plan.order), succ)
    position = {p: i for i, p in enumerate(plan.order)}
    groups: dict[int, list[str]] = {}
    for path in plan.order:
        groups.setdefault(comp_of[path], []).append(path)
    # order components: Kahn over the condensation, ties by first node position
    deps: dict[int, set[int]] = {c: set() for c in groups}
    for path, flat in plan.nodes.items():
        for edge in flat.inputs:
            a, b = comp_of[edge.src], comp_of[path]
            if a != b:
                deps[b].add(a)
    done: set[int] = set()
    result: list[list[str]] = []
    pending = sorted(groups, key=lambda c: position[groups[c][0]])
    while pending:
        for c in pending:
            if deps[c] <= done:
                result.append(groups[c])
                done.add(c)
                pending.remove(c)
                break
    return result


def fuse(plan: Plan) -> tuple[list[str], list[str], list[str]]:
    """Split the nodes into ``(before, loop, after)`` for the fused sequence schedule.

    ``loop`` holds every neuron, every node on a cycle, and every node on a path from one of
    those to another (all edges count): the nodes that must be evaluated step by step, in
    ``plan.order``. ``before`` holds the nodes no ``loop`` node feeds (they depend only on the
    inputs), ``after`` the rest (they depend on the loop, but feed none of it); both in
    :func:`components` order, so that a recurrent edge's source comes before its target.
    """
    succ: dict[str, list[str]] = {p: [] for p in plan.nodes}
    pred: dict[str, list[str]] = {p: [] for p in plan.nodes}
    for path, flat in plan.nodes.items():
        for edge in flat.inputs:
            succ[edge.src].append(path)
            pred[path].append(edge.src)
    comps = components(plan)
    core = {p for comp in comps if is_cyclic(plan, comp) for p in comp}
    core |= {p for p, flat in plan.nodes.items() if flat.kind == NEURON}
    downstream = _reach(core, succ)  # fed by the core (core nodes on a cycle included)
    upstream = _reach(core, pred)  # feeding the core
    loop = core | (downstream & upstream)
    before = [p for comp in comps for p in comp if p not in loop and p not in downstream]
    after = [p for comp in comps for p in comp if p not in loop and p in downstream]
    return before, [p for p in plan.order if p in loop], after


def _reach(start: set[str], links: dict[str, list[str]]) -> set[str]:
    """The nodes reachable from ``start`` in one or more steps along ``links``."""
    seen: set[str] = set()
    todo = [n for s in start for n in links[s]]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(links[node])
    return seen


def is_cyclic(plan: Plan, component: list[str]) -> bool:
    members = set(component)
    return len(component) > 1 or any(e.src in members for e in plan.nodes[component[0]].inputs)


def _tarjan(order: list[str], succ: dict[str, list[str]]) -> dict[str, int]:
    """Iterative Tarjan: node -> component id."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comp: dict[str, int] = {}
    counter = 0
    n_comp = 0
    for root in order:
        if root in index:
            continue
        work = [(root, iter(succ[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ[nxt])))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp[member] = n_comp
                    if member == node:
                        break
                n_comp += 1
    return comp
