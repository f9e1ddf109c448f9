"""Run a TALON IR graph as a PyTorch module.

:class:`GraphExecutor` is an ``nn.Module`` whose children are named after the graph's nodes (a
name that is not an identifier as ``talon.ir.names`` says: layer index ``'0'`` becomes ``n_0``). Its
per-step forward is **generated once** with ``torch.fx`` (straight-line code, no graph walking per
call) following ``docs/semantics.md``: fan-in summed in edge order, Skip/Concat merges, output *i*
of a ChannelSplit along its *i*-th outgoing edge, recurrent edges delivering the previous step's
value. Calls:

* ``out = executor(x)`` — one timestep from zero state (``return_state=False``);
* ``out, state = executor(x, state)`` — one timestep, state ``{}``/``None`` at the start
  (``return_state=True``); ``state`` maps each stateful node to its state (membrane ``v``, or
  ``(v, i)`` for current-based neurons) and carries the recurrent-edge values in ``state.edges``;
  built with ``return_state=False`` it refuses a state (``out, state = ...`` would split the output);
* ``outs, state = executor.run_sequence(xs)`` — time-major ``[T, B, ...]`` input; in an acyclic
  graph each node runs through all timesteps before the next (the neurons in one loop, a Linear
  as one product per step into one output), bit for bit what stepping computes
  (``talon.bridge.sequence_products``; ``products="time_batched"`` trades that for speed).

With several Input nodes, pass one tensor per Input (in node order); with several Output nodes
the output is a tuple (in node order).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import fx, nn

from talon import ir
from talon._compiled import planned_work
from talon.ir.graph import recurrent_edge_mask, topological_order
from talon.ir.names import attribute_base

from . import sequence_workspace
from .modules import ConcatModule, NeuronModule, SkipModule
from .sequence import releases_input, run_neuron_sequence
from .sequence_plan import run_sequence_share
from .sequence_products import Products, check_products, run_stateless_sequence
from .state_check import check_state


class ExecutorState(dict):
    """Per-node state, keyed by node name; ``.edges`` holds the recurrent edges' last values."""

    def __init__(self, *args: Any, edges: dict[int, torch.Tensor] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.edges = {} if edges is None else edges


def _attr_name(name: str, taken: set[str]) -> str:
    """The unique attribute of node ``name`` (``talon.ir.names``: ``fc1`` stays, ``'0'`` becomes ``n_0``)."""
    base = attribute_base(name)
    out, k = base, 1
    while out in taken or hasattr(nn.Module, out):
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def _add_recurrent(x: torch.Tensor | None, rec: torch.Tensor | None) -> torch.Tensor:
    """``x + rec`` where a recurrent value may not exist yet (None at t = 0: zero)."""
    if rec is None:
        if x is None:
            raise RuntimeError(
                "a node whose only inputs are recurrent edges needs known shapes; build it from an IR graph"
            )
        return x
    return rec if x is None else x + rec


def _declared_shape(graph: ir.Graph | None, name: str) -> tuple[int, ...] | None:
    """The per-sample shape of Input node ``name`` (None when not known: no graph, no type)."""
    node = graph.nodes.get(name) if graph is not None else None
    shape = getattr(node, "output_shape", None) if isinstance(node, ir.Input) else None
    return None if shape is None else tuple(int(d) for d in shape)


def _is_stateful(module: nn.Module) -> bool:
    return isinstance(module, (NeuronModule, GraphExecutor)) or getattr(module, "_is_stateful", False)


def _merges_inputs(module: nn.Module) -> bool:
    return isinstance(module, (SkipModule, ConcatModule)) or getattr(module, "_merges_inputs", False)


def _state_refused(executor: GraphExecutor, state: Any) -> str:
    """Why a call with a state is refused by an executor built with ``return_state=False``: it
    returns only the output, which ``out, state = executor(x, state)`` would split along its first
    axis (its batch rows, or a cyclic executor's per-step list) without an error."""
    given = "None" if state is None else f"a {type(state).__name__} of {len(state)} node(s)"
    if isinstance(executor, CyclicGraphExecutor):
        build = "CyclicGraphExecutor(modules, edges, ..., return_state=True)"
        rest = "call executor(x) to run from rest"
    else:
        build = "ir_to_torch(graph, return_state=True) or GraphExecutor(modules, edges, return_state=True)"
        rest = "call executor(x) for one step from rest, or executor.step(x, state=state) for (outputs, state)"
    return (
        f"this {type(executor).__name__} was built with return_state=False and was called with a state ({given}): "
        "it returns only the output, so `out, state = executor(x, state)` would split the output into 'out' and "
        f"'state'. To carry the state, build it with {build} (or set executor.return_state = True); else {rest}"
    )


class GraphExecutor(nn.Module):
    """Executes a graph of modules; see the module docstring for the call conventions.

    ``GraphExecutor(modules, edges, return_state=False)``: ``modules`` maps node names to
    modules; names that appear only in ``edges`` (``input``/``output``) become identities. Input
    nodes are the nodes without incoming edges, outputs those without outgoing edges, unless the
    executor is built from an IR graph (``GraphExecutor.from_graph`` / ``ir_to_torch``), which
    also records the graph for an exact re-export and the shapes of recurrent edges.
    """

    def __init__(
        self,
        modules: Mapping[str, nn.Module],
        edges: Sequence[tuple[str, str]],
        return_state: bool = False,
        *,
        graph: ir.Graph | None = None,
        input_nodes: Sequence[str] | None = None,
        output_nodes: Sequence[str] | None = None,
    ):
        super().__init__()
        self.edges = [tuple(e) for e in edges]
        names = list(modules)
        for s, d in self.edges:
            for end in (s, d):
                if end not in names:
                    names.append(end)
        incoming = {n: 0 for n in names}
        outgoing = {n: 0 for n in names}
        for s, d in self.edges:
            outgoing[s] += 1
            incoming[d] += 1
        self.node_names = names
        self.input_nodes = list(input_nodes) if input_nodes is not None else [n for n in names if not incoming[n]]
        self.output_nodes = list(output_nodes) if output_nodes is not None else [n for n in names if not outgoing[n]]
        self.return_state = return_state
        self.graph = graph
        self._attr: dict[str, str] = {}
        taken: set[str] = set()
        for name in names:
            if isinstance(modules.get(name), GraphExecutor) and not modules[name].return_state:
                raise ValueError(
                    f"node {name!r} is a {type(modules[name]).__name__} built with return_state=False; as a node of "
                    "another executor it must return its state for the outer executor to carry: build it with "
                    "return_state=True (or set its return_state = True)"
                )
            attr = _attr_name(name, taken)
            self._attr[name] = attr
            self.add_module(attr, modules.get(name, nn.Identity()))
        self._recurrent = recurrent_edge_mask(names, self.edges, self.input_nodes)
        self._order = topological_order(names, self.edges, self._recurrent)
        self._incoming: dict[str, list[int]] = {n: [] for n in names}  # edge indices, in edge order
        self._outgoing: dict[str, list[int]] = {n: [] for n in names}
        for i, (s, d) in enumerate(self.edges):
            self._outgoing[s].append(i)
            self._incoming[d].append(i)
        self._edge_shapes = {
            i: graph.edge_shape(i) for i, rec in enumerate(self._recurrent) if rec and graph is not None
        }
        self._input_shapes = {n: _declared_shape(graph, n) for n in self.input_nodes}
        self._dtype_cache: list[torch.dtype | None] | None = None
        self._step_fn = self._generate_step()

    @classmethod
    def from_graph(cls, graph: ir.Graph, return_state: bool = False, node_map=None, dtype: Any = None) -> GraphExecutor:
        """Build the executor of an IR graph (one module per node, see ``node_to_module``), computing
        in ``dtype`` (default float32, see ``bridge.from_ir.executor_dtype``)."""
        from .from_ir import nodes_to_modules

        return cls(
            nodes_to_modules(graph, node_map, dtype), graph.edges, return_state, graph=graph,
            input_nodes=graph.input_nodes, output_nodes=graph.output_nodes,
        )  # fmt: skip

    @property
    def is_cyclic(self) -> bool:
        return any(self._recurrent)

    def module_of(self, name: str) -> nn.Module:
        """The child module of node ``name``."""
        return getattr(self, self._attr[name])

    # ---- code generation ---------------------------------------------------------------------

    def _generate_step(self):
        g = fx.Graph()
        inputs = {n: g.placeholder(self._attr[n] + "_in") for n in self.input_nodes}
        state = g.placeholder("state")
        edge_values = g.placeholder("edge_values")
        out_positions, incoming = self._outgoing, self._incoming
        env: dict[str, fx.Node] = {}
        new_state: dict[str, fx.Node] = {}

        def value_along(i: int) -> fx.Node:
            src = self.edges[i][0]
            module = self.module_of(src)
            if getattr(module, "_is_multi_output", False):
                return g.call_function(operator.getitem, (env[src], out_positions[src].index(i)))
            return env[src]

        for name in self._order:
            module = self.module_of(name)
            attr = self._attr[name]
            forward_in = [value_along(i) for i in incoming[name] if not self._recurrent[i]]
            recurrent_in = [g.call_method("get", (edge_values, i)) for i in incoming[name] if self._recurrent[i]]
            if name in inputs:
                x = inputs[name]
            elif _merges_inputs(module):
                ordered = []
                for i in incoming[name]:
                    ordered.append(recurrent_in.pop(0) if self._recurrent[i] else forward_in.pop(0))
                env[name] = g.call_module(attr, tuple(ordered))
                continue
            else:
                x = None
                for v in forward_in:
                    x = v if x is None else g.call_function(operator.add, (x, v))
                for v in recurrent_in:
                    x = g.call_function(_add_recurrent, (x, v))
                if x is None:
                    raise ValueError(f"node {name!r} has no incoming edge and is not an input node")
            if isinstance(module, nn.Identity):
                env[name] = x
            elif _is_stateful(module):
                result = g.call_module(attr, (x, g.call_method("get", (state, name))))
                env[name] = g.call_function(operator.getitem, (result, 0))
                new_state[name] = g.call_function(operator.getitem, (result, 1))
            else:
                env[name] = g.call_module(attr, (x,))
        new_edges = {i: value_along(i) for i, rec in enumerate(self._recurrent) if rec}
        g.output((tuple(env[n] for n in self.output_nodes), new_state, new_edges))
        code = g.python_code(root_module="self")
        namespace = dict(code.globals)
        exec(compile(code.src, f"<talon GraphExecutor {id(self):x}>", "exec"), namespace)
        self._step_source = code.src
        return namespace["forward"]

    # ---- input checks (once per call, never per step) ------------------------------------------

    def _apply(self, fn, recurse: bool = True):
        self._dtype_cache = None  # .to(), .double() ... change the dtype the inputs must have
        return super()._apply(fn, recurse)

    def _compute_dtype(self) -> torch.dtype | None:
        """The floating dtype of the executor's parameters (buffers when it has none); None for an
        executor built from raw modules (they may mix dtypes) or without floating tensors."""
        if self._dtype_cache is None:
            tensors = itertools.chain(self.parameters(), self.buffers()) if self.graph is not None else ()
            self._dtype_cache = [next((t.dtype for t in tensors if t.is_floating_point()), None)]
        return self._dtype_cache[0]

    def _check_inputs(self, xs: Sequence[Any], lead: int) -> None:
        """``xs`` are one tensor per Input node, ``[B, *shape]`` (``lead = 1``, a step) or
        ``[T, B, *shape]`` (``lead = 2``, a sequence) with the Input node's shape, one ``B`` (and
        ``T``) for all, in the executor's dtype; else a ``TypeError``/``ValueError`` naming the input."""
        if len(xs) != len(self.input_nodes):
            raise TypeError(
                f"expected {len(self.input_nodes)} input {'sequence' if lead == 2 else 'tensor'}(s) "
                f"(one per Input node: {self.input_nodes}), got {len(xs)}"
            )
        cache = self._dtype_cache
        dtype = cache[0] if cache is not None else self._compute_dtype()
        leading = None
        for name, x in zip(self.input_nodes, xs, strict=True):
            if not isinstance(x, torch.Tensor):
                layout = "[B, ...]" if lead == 1 else "[T, B, ...] (time-major)"
                raise TypeError(f"input {name!r}: expected a torch.Tensor {layout}, got {type(x).__name__}")
            size = tuple(x.shape)  # a tuple slices ~5x faster than a torch.Size
            shape = self._input_shapes[name]
            if len(size) < lead or (shape is not None and size[lead:] != shape):
                self._shape_error(name, size, shape, lead)
            if leading is None:
                leading = (name, size[:lead])
            elif size[:lead] != leading[1]:
                raise ValueError(
                    f"input {name!r} has {'batch' if lead == 1 else 'steps and batch'} {list(size[:lead])}, "
                    f"input {leading[0]!r} {list(leading[1])}: they must be the same"
                )
            if dtype is not None and x.dtype != dtype:
                hint = (
                    f", or import the graph with ir_to_torch(graph, dtype={x.dtype})" if x.is_floating_point() else ""
                )
                raise TypeError(
                    f"input {name!r} is {x.dtype} but the executor computes in {dtype}: pass x.to({dtype}){hint}"
                )
        if lead == 2 and leading is not None and leading[1][0] == 0:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"run_sequence takes time-major inputs [T, B, ...] with T >= 1 step; got {shapes}")

    @staticmethod
    def _shape_error(name: str, size: tuple[int, ...], shape: tuple[int, ...] | None, lead: int):
        want = ("[B, " if lead == 1 else "[T, B, ") + ", ".join(map(str, shape or ("...",))) + "]"
        hint = ""
        if shape is not None and size[lead - 1 :] == shape:
            hint = f"; add the batch dimension: x.unsqueeze({lead - 1})"
        raise ValueError(f"input {name!r}: expected a tensor {want}, got {list(size)}{hint}")

    # ---- calls ------------------------------------------------------------------------------

    def _split_args(self, args: tuple) -> tuple[tuple[torch.Tensor, ...], Mapping | None]:
        n = len(self.input_nodes)
        if len(args) == n + 1 and (args[-1] is None or isinstance(args[-1], Mapping)):
            if not self.return_state:
                raise TypeError(_state_refused(self, args[-1]))
            return args[:n], args[-1]
        if len(args) != n:
            raise TypeError(
                f"expected {n} input tensor(s) (for {self.input_nodes}) and an optional state, "
                f"got {len(args)} arguments"
            )
        return args, None

    def _edge_defaults(self, state: Mapping | None, like: torch.Tensor) -> dict[int, torch.Tensor | None]:
        edges = dict(getattr(state, "edges", {}) or {})
        for i, shape in self._edge_shapes.items():
            if i not in edges and shape is not None:
                edges[i] = like.new_zeros((like.shape[0], *shape))
        return edges

    def step(
        self, *inputs: torch.Tensor, state: Mapping | None = None
    ) -> tuple[tuple[torch.Tensor, ...], ExecutorState]:
        """One timestep of inputs ``[B, ...]``: returns (outputs tuple in output-node order, new state)."""
        self._check_inputs(inputs, 1)
        check_state(self, state, inputs[0].shape[0], self._compute_dtype())
        return self._step(inputs, state)

    def _step(self, inputs: Sequence[torch.Tensor], state: Mapping | None) -> tuple[tuple, ExecutorState]:
        state = {} if state is None else state
        outs, new_state, new_edges = self._step_fn(self, *inputs, state, self._edge_defaults(state, inputs[0]))
        return outs, ExecutorState(new_state, edges=new_edges)

    def forward(self, *args: Any):
        inputs, state = self._split_args(args)
        self._check_inputs(inputs, 1)
        if state is not None:
            check_state(self, state, inputs[0].shape[0], self._compute_dtype())
        outs, new_state = self._step(inputs, state)
        out = outs[0] if len(outs) == 1 else outs
        return (out, new_state) if self.return_state else out

    def run_sequence(self, *xs: Any, state: Mapping | None = None, products: Products = "per_step"):
        """Run time-major inputs ``[T, B, ...]``; returns (outputs ``[T, B, ...]``, final state).

        The state may follow the inputs, as in ``executor(x, state)``: ``run_sequence(xs, state)``.

        Acyclic graphs run node by node through all ``T`` steps; cyclic graphs step the generated
        code ``T`` times. With ``products="per_step"`` (default) the outputs and state equal, bit
        for bit, ``T`` calls of ``step`` at the same torch thread count. ``products="time_batched"``
        runs each stateless node once on all ``T * B`` rows: faster, but a product may differ in
        the last bit (BLAS sums in another order over more rows), and a membrane within rounding
        of its threshold may then spike differently.
        """
        check_products(products)
        n = len(self.input_nodes)
        if len(xs) == n + 1 and (xs[-1] is None or isinstance(xs[-1], Mapping)):
            if state is not None:
                raise TypeError("run_sequence got the state twice (positionally and as state=)")
            xs, state = xs[:n], xs[-1]
        self._check_inputs(xs, 2)
        check_state(self, state, xs[0].shape[1], self._compute_dtype())
        state = {} if state is None else state
        if self.is_cyclic or any(
            isinstance(self.module_of(n), GraphExecutor) and self.module_of(n).is_cyclic for n in self.node_names
        ):
            return self._run_steps(xs, state)
        with planned_work(run_sequence_share(self, xs, state)):  # a long run starts numba at its first layer
            return self._run_batched(xs, state, products)

    def _run_steps(self, xs, state):
        per_step = []
        for t in range(xs[0].shape[0]):
            outs, state = self._step([x[t] for x in xs], state)
            per_step.append(outs)
        stacked = tuple(torch.stack([o[k] for o in per_step]) for k in range(len(self.output_nodes)))
        return (stacked[0] if len(stacked) == 1 else stacked), state

    def _run_batched(self, xs, state, products: Products):
        env: dict[str, Any] = {}
        new_state = ExecutorState()

        def along(i: int) -> torch.Tensor:
            src = self.edges[i][0]
            value = env[src]
            return value[self._outgoing[src].index(i)] if isinstance(value, tuple) else value

        given = dict(zip(self.input_nodes, xs, strict=True))
        reuse = _BufferReuse(self)
        for name in self._order:
            module = self.module_of(name)
            ins = [along(i) for i in self._incoming[name]]
            if name in given:
                x = given[name]
            elif _merges_inputs(module):
                env[name] = run_stateless_sequence(module, ins, products)
                reuse.ran(name, releases_input=False, env=env)
                continue
            else:
                x = ins[0]
                for extra in ins[1:]:
                    x = x + extra
            releases = len(ins) == 1 and releases_input(module, x, state.get(name))
            if isinstance(module, nn.Identity):
                env[name] = x
            elif isinstance(module, GraphExecutor):
                env[name], new_state[name] = module.run_sequence(x, state=state.get(name), products=products)
            elif _is_stateful(module):
                env[name], new_state[name] = run_neuron_sequence(module, x, state.get(name))
            else:
                env[name] = run_stateless_sequence(module, [x], products)
            reuse.ran(name, releases_input=releases, env=env)
        outs = tuple(env[n] for n in self.output_nodes)
        return (outs[0] if len(outs) == 1 else outs), new_state

    # ---- export -----------------------------------------------------------------------------

    def to_graph(self) -> ir.Graph:
        """The IR graph this executor computes now (current weights; see ``bridge.to_ir``)."""
        from .to_ir import executor_to_graph

        return executor_to_graph(self)


class _BufferReuse:
    """Gives a node's sequence output back to ``sequence_workspace`` once every consumer has run,
    when nothing can still read it: the node allocated it (a Linear's products, a neuron's
    output), it is not an output of the graph, and every consumer has it as its only input and
    keeps no reference to it (``releases_input``: an exact Linear, a neuron's in-place loop)."""

    def __init__(self, executor: GraphExecutor):
        self.executor = executor
        self.waiting = {n: len(executor._outgoing[n]) for n in executor.node_names}
        self.kept = set(executor.output_nodes) | set(executor.input_nodes)  # never given back
        self.retaining: set[str] = set()  # producers with a consumer that may keep a reference

    def ran(self, name: str, releases_input: bool, env: dict) -> None:
        ex = self.executor
        for i in ex._incoming[name]:
            src = ex.edges[i][0]
            if not releases_input:
                self.retaining.add(src)
            self.waiting[src] -= 1
            if self.waiting[src] == 0 and src not in self.kept and src not in self.retaining:
                module = ex.module_of(src)
                if type(module) is nn.Linear or (_is_stateful(module) and not isinstance(module, GraphExecutor)):
                    sequence_workspace.release(env[src])  # ignored unless the workspace handed it out
                    env[src] = None  # every reader has run


class CyclicGraphExecutor(GraphExecutor):
    """Run a recurrent graph for ``timesteps`` internal steps per call on the same input.

    ``outputs, state = CyclicGraphExecutor(modules, edges, timesteps=3, output_nodes=['lif1'])(x, {})``
    returns one output per internal step (a list of tensors; a list of tuples with several
    output nodes). Feedback edges carry the previous internal step's value (docs/semantics.md).
    """

    def __init__(self, modules, edges, timesteps: int = 3, output_nodes: Sequence[str] | None = None,
                 return_state: bool = True, **kwargs):  # fmt: skip
        if int(timesteps) < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        super().__init__(modules, edges, return_state, output_nodes=output_nodes, **kwargs)
        self.timesteps = int(timesteps)

    def forward(self, *args: Any):
        inputs, state = self._split_args(args)
        self._check_inputs(inputs, 1)
        if state is not None:
            check_state(self, state, inputs[0].shape[0], self._compute_dtype())
        outputs = []
        for _ in range(self.timesteps):
            outs, state = self._step(inputs, state)
            outputs.append(outs[0] if len(outs) == 1 else outs)
        return (outputs, state) if self.return_state else outputs
