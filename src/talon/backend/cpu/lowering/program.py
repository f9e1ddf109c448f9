"""The lowered form of a graph that the CPU engine executes.

``lower(graph)`` inlines subgraphs (node paths ``"sub.node"``), resolves every edge to the value
it carries (output *k* of a ChannelSplit is the value on its *k*-th outgoing edge), marks the
edges that deliver the previous step (``Graph.recurrent_mask()`` of the graph the edge belongs to,
docs/semantics.md §2) and groups the operations into **components**:

* an acyclic component is one operation; it runs over the whole ``[T, B, ...]`` sequence at once
  (stateless layers as one batched call, neurons as one loop over time);
* a cyclic component (a strongly connected set of operations, e.g. ``lif -> w_rec -> lif``) runs
  step by step, its operations in topological order, a delayed edge reading the value of ``t - 1``.

Both schedules compute exactly the per-step semantics: a node's output at step ``t`` depends only on
inputs at steps ``<= t``, so evaluating one node for all steps before the next is the same
computation as interleaving them.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from talon import ir

from ...errors import BackendError


@dataclass(frozen=True)
class ValueRef:
    """An operation input: value ``value``, of the same step or (``delayed``) of the previous one."""

    value: int
    delayed: bool = False


@dataclass
class Value:
    """A tensor produced once per step: ``shape`` excludes batch and time."""

    id: int
    name: str  # the producing node path, with ":k" for output k of a multi-output node
    shape: tuple[int, ...]
    producer: int  # index of the producing op


@dataclass
class Op:
    """One IR node of the inlined graph."""

    index: int
    path: str
    node: ir.Node
    inputs: list[ValueRef]  # one per incoming edge, in edge order
    outputs: list[int]  # value ids; several for a ChannelSplit
    external: bool = False  # a top-level Input: its value comes from the caller
    graph_output: bool = False  # a top-level Output: its value is a graph output

    @property
    def kind(self) -> str:
        return type(self.node).__name__

    @property
    def in_shape(self) -> tuple[int, ...] | None:
        return self.node.input_shape


@dataclass
class Component:
    ops: list[int]
    cyclic: bool


@dataclass
class Program:
    ops: list[Op]
    values: list[Value]
    components: list[Component]
    inputs: dict[str, int] = field(default_factory=dict)  # top-level Input name -> value id
    outputs: dict[str, int] = field(default_factory=dict)  # top-level Output name -> value id

    def op(self, path: str) -> Op:
        for op in self.ops:
            if op.path == path:
                return op
        raise KeyError(path)

    def consumers(self) -> dict[int, list[int]]:
        """value id -> indices of the ops that read it (once per reading op)."""
        out: dict[int, list[int]] = {v.id: [] for v in self.values}
        for op in self.ops:
            for vid in dict.fromkeys(r.value for r in op.inputs):
                out[vid].append(op.index)
        return out


def lower_checked(graph: ir.Graph) -> tuple[Program | None, list[str]]:
    """``lower(graph)`` for a backend's ``validate``: the program (None if it cannot be lowered) and the
    structural errors — no Input node, no Output node, or what lowering refused."""
    errors = []
    if not graph.input_nodes:
        errors.append("the graph has no Input node")
    if not graph.output_nodes:
        errors.append("the graph has no Output node")
    try:
        return lower(graph), errors
    except BackendError as exc:
        return None, [*errors, str(exc)]


def lower(graph: ir.Graph) -> Program:
    """Inline, resolve and schedule ``graph`` (see the module docstring)."""
    if not isinstance(graph, ir.Graph):
        raise BackendError(f"expected a talon.ir.Graph, got {type(graph).__name__}")
    builder = _Builder()
    builder.add_graph(graph, prefix="", top=True)
    builder.connect()
    ops, values = builder.ops, builder.values
    components = _schedule(ops, values)
    program = Program(ops, values, components)
    for op in ops:
        if op.external:
            program.inputs[op.path] = op.outputs[0]
        if op.graph_output:
            program.outputs[op.path] = op.outputs[0]
    return program


class _Builder:
    """Creates one op per inlined node, then resolves edges to value references."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.values: list[Value] = []
        self.by_path: dict[str, Op] = {}
        # (dst op, src op, src port, delayed) in the order edges are found, per destination
        self.pending: list[tuple[Op, Op, int, bool]] = []

    def add_graph(self, graph: ir.Graph, prefix: str, top: bool) -> tuple[Op | None, Op | None]:
        entry: dict[str, tuple[Op, Op]] = {}  # node name -> (op receiving its inputs, op producing its output)
        for name, node in graph.nodes.items():
            path = prefix + name
            if isinstance(node, ir.Graph):
                if len(node.input_nodes) != 1 or len(node.output_nodes) != 1:
                    raise BackendError(
                        f"subgraph {path!r} needs exactly one Input and one Output node to be executed, it has "
                        f"{len(node.input_nodes)} and {len(node.output_nodes)}"
                    )
                first, last = self.add_graph(node, path + ".", top=False)
                entry[name] = (first, last)
                continue
            op = self._new_op(path, node, top)
            entry[name] = (op, op)
        mask = graph.recurrent_mask()
        for i, ((src, dst), delayed) in enumerate(zip(graph.edges, mask, strict=True)):
            src_op = entry[src][1]
            port = graph.out_edges(src).index(i) if graph.nodes[src].is_multi_output else 0
            self.pending.append((entry[dst][0], src_op, port, delayed))
        if top:
            return None, None
        inner_in = entry[graph.input_nodes[0]][0]
        inner_out = entry[graph.output_nodes[0]][1]
        return inner_in, inner_out

    def _new_op(self, path: str, node: ir.Node, top: bool) -> Op:
        if path in self.by_path:
            raise BackendError(
                f"node path {path!r} is used twice once subgraphs are inlined (a top-level node name contains "
                "a '.' that collides with a subgraph node); rename one of them"
            )
        shapes = node.output_shapes()
        if not shapes:
            raise BackendError(f"node {path!r} ({type(node).__name__}) has no known output shape; is it connected?")
        op = Op(len(self.ops), path, node, [], [])
        op.external = top and isinstance(node, ir.Input)
        op.graph_output = top and isinstance(node, ir.Output)
        for k, shape in enumerate(shapes):
            name = path if len(shapes) == 1 else f"{path}:{k}"
            value = Value(len(self.values), name, tuple(int(d) for d in shape), op.index)
            self.values.append(value)
            op.outputs.append(value.id)
        self.ops.append(op)
        self.by_path[path] = op
        return op

    def connect(self) -> None:
        for dst, src, port, delayed in self.pending:
            dst.inputs.append(ValueRef(src.outputs[port], delayed))
        for op in self.ops:
            if not op.inputs and not op.external and op.node.input_shape is None:
                raise BackendError(f"node {op.path!r} ({op.kind}) has no incoming edge and no declared input shape")


def _schedule(ops: list[Op], values: list[Value]) -> list[Component]:
    """Strongly connected components in dependency order; ops of a cyclic one in topological order."""
    n = len(ops)
    succ: list[list[int]] = [[] for _ in range(n)]
    for op in ops:
        for ref in op.inputs:
            succ[values[ref.value].producer].append(op.index)
    comp_of = _tarjan(n, succ)
    n_comp = max(comp_of) + 1 if n else 0
    members: list[list[int]] = [[] for _ in range(n_comp)]
    for i, c in enumerate(comp_of):
        members[c].append(i)
    # topological order of the ops along same-step edges (delayed edges may point backwards)
    order = _topological(ops, values)
    position = {op_index: k for k, op_index in enumerate(order)}
    cyclic = [len(m) > 1 for m in members]
    comp_succ: list[set[int]] = [set() for _ in range(n_comp)]
    indeg = [0] * n_comp
    for a in range(n):
        for b in succ[a]:
            ca, cb = comp_of[a], comp_of[b]
            if ca == cb:
                cyclic[ca] = True  # includes self-loops
            elif cb not in comp_succ[ca]:
                comp_succ[ca].add(cb)
                indeg[cb] += 1
    first = [min(position[i] for i in m) for m in members]
    heap = [(first[c], c) for c in range(n_comp) if indeg[c] == 0]
    heapq.heapify(heap)
    result = []
    while heap:
        _, c = heapq.heappop(heap)
        result.append(Component(sorted(members[c], key=position.__getitem__), cyclic[c]))
        for d in comp_succ[c]:
            indeg[d] -= 1
            if indeg[d] == 0:
                heapq.heappush(heap, (first[d], d))
    return result


def _topological(ops: list[Op], values: list[Value]) -> list[int]:
    indeg = [0] * len(ops)
    succ: list[list[int]] = [[] for _ in ops]
    for op in ops:
        for ref in op.inputs:
            if not ref.delayed:
                src = values[ref.value].producer
                succ[src].append(op.index)
                indeg[op.index] += 1
    heap = [i for i, k in enumerate(indeg) if k == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        i = heapq.heappop(heap)
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(heap, j)
    if len(order) != len(ops):
        stuck = [ops[i].path for i in range(len(ops)) if indeg[i] > 0]
        raise BackendError(f"the same-step edges form a cycle through {stuck}; this graph cannot be scheduled")
    return order


def _tarjan(n: int, succ: list[list[int]]) -> list[int]:
    """Component index of every vertex (iterative Tarjan)."""
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    comp = [-1] * n
    stack: list[int] = []
    counter = 0
    n_comp = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack[v] = True
            recurse = False
            for k in range(i, len(succ[v])):
                w = succ[v][k]
                if index[w] == -1:
                    work.append((v, k + 1))
                    work.append((w, 0))
                    recurse = True
                    break
                if on_stack[w]:
                    low[v] = min(low[v], index[w])
            if recurse:
                continue
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp[w] = n_comp
                    if w == v:
                        break
                n_comp += 1
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comp
