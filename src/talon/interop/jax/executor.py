"""The JAX engine: a talon graph as pure, jit-compiled functions of ``(params, state, x)``.

``JaxGraph(graph)`` lowers the graph once (subgraphs inlined, see :mod:`.plan`) and offers

* ``step(params, state, x) -> (y, state)``: one timestep on a batch ``x[B, *shape]``;
* ``run(params, x, state=None) -> (y, state)``: a time-major sequence ``x[T, B, *shape]``;
* ``init_state(batch_size)``, ``params`` (the initial parameters), ``to_graph(params)``.

Both are ``jax.jit``-compiled pure functions (no hidden state), differentiable through the
surrogate spike of :mod:`.spike`, so ``jax.grad`` trains a graph. They follow
``docs/semantics.md``: the nodes of a step are evaluated in topological order, fan-in is summed
in edge order, a recurrent edge delivers its source's value of the previous step. The spike that
drives a reset is differentiated as each neuron's ``reset_gradient`` says (``JaxGraph(graph,
reset_gradient=...)`` overrides it for every neuron; :mod:`.reset_gradient`), and every spike with
its neuron's ``surrogate`` (``JaxGraph(graph, surrogate=...)``, a surrogate text or a callable
``x -> sigma'(x)``, overrides it for every neuron; :mod:`.spike`).

``run`` has three schedules. ``"stepwise"`` is the reference; the other two compute the same
operations, but a product XLA runs on all ``T*B`` samples at once may sum in another order than on
``B`` (as a BLAS does), so they can differ from it in the last bit — and a membrane within rounding
of its threshold can then spike differently:

* ``"stepwise"`` (default): one ``lax.scan`` of ``step`` over time, like ``spyx.nn.run``;
* ``"fused"``: the nodes that only depend on the inputs (e.g. the first Linear or convolution)
  and those after the last neuron that feed no neuron run on all ``T*B`` samples at once, the
  rest — every neuron, every cycle, and what lies between them — is one ``lax.scan``;
* ``"layerwise"``: node by node over the whole sequence — a stateless node that is not on a
  cycle is applied to all ``T*B`` samples at once (one matrix product per Linear instead of
  ``T``), a neuron is a ``lax.scan`` of its own update, and every cycle of the graph (a recurrent
  layer) is one ``lax.scan`` of its nodes.

On a loaded 2-core CPU both whole-sequence schedules measured slower than the step-wise one
(``docs/jax.md`` §8), hence the default.

Convolution chains (a convolution and the neurons, pools and elementwise nodes fed only by it)
run channels-last inside, on the layout XLA's CPU kernels are fastest on (:mod:`.channels_last`;
``channels_last=False`` keeps every array channels-first); their pools of spikes sum their
windows as sums of strided slices, which XLA fuses with their neighbours (:mod:`.spike_pools`).
Inputs, outputs, states and traces are in talon's layout either way, and the results are the
same bits.

What does not change from call to call is prepared outside the compiled function, where it
costs microseconds instead of an XLA kernel to compile: the weights are read in the layout
XLA's CPU kernels want (``[in, out]`` for a matrix product, spatial-first for a convolution),
transposed by numpy and cached while the same weight array comes back
(:func:`.layers.relayout`); a run from the initial state gets it as a cached device array
instead of filling zeros in the graph; a neuron coefficient shared by its whole layer comes as a
scalar, and the other coefficients of small neuron layers, and the biases of small dense
layers, come spread over the batch (:mod:`.spread`: an update on operands of one shape compiles
several times faster); all of it
is kept for the last concrete parameter arrays (:mod:`.call_cache`). ``run`` calls its compiled
function on the flat tuple of its arguments, and a loop of ``run(params, x)`` calls repeats the
last call's prepared arguments with the new input (:mod:`.run_call`).

Parameters are a dict ``{node path: {name: array}}`` (``"rnn.lif"`` inside a subgraph): the
weights of stateless nodes under their IR names, and for neurons the per-step coefficients
``beta, g, c, alpha, gs, theta, v_reset`` of :mod:`.neurons` (``k, r, v_leak`` instead of
``beta, g, c`` for a LIF / LI with ``integration='euler'``), computed in float64 from the IR
parameters and cast once. The state is ``{"nodes": {path: {"v": …, "i": …} or {"history": …}},
"edges": {key: value}}`` (recurrent edges).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ... import ir
from ...ir.coefficients import check_coefficients_fit
from ...ir.errors import UnsupportedModuleError
from . import layers
from .arguments import as_input, check_call, check_params, check_state
from .call_cache import PreparedCalls, on_cpu
from .channels_last import arrive, channels_last_paths, coefficient_axes, to_first, to_first_on_host, to_last
from .deferred import deferred_updates
from .delay_carry import delay_order, unstack_delays, wait_for
from .neurons import SPIKING, coefficients, exact_zero, make_step, per_neuron, state_keys
from .plan import BOUNDARY, DELAY, INPUT, NEURON, components, flatten, fuse, is_cyclic
from .products import edge_is_plain, plain_values
from .reset_gradient import check_override
from .run_call import RunCalls
from .spike import Surrogate, make_spike
from .spike_pools import spike_fed_pools
from .spread import is_identity, spread_on_host, spreads, uniform_on_host, with_spread
from .whole_sequence import WholeSequenceSchedules, port

MODES = ("stepwise", "fused", "layerwise")


class JaxGraph(WholeSequenceSchedules):
    """A talon graph compiled to JAX (see the module docstring)."""

    def __init__(
        self,
        graph: ir.Graph,
        *,
        surrogate: Surrogate | None = None,
        dtype: Any = "float32",
        channels_last: bool = True,
        reset_gradient: str | None = None,
    ):
        if not isinstance(graph, ir.Graph):
            kind = type(graph).__name__
            raise TypeError(f"JaxGraph expects a talon.ir.Graph, got {kind}; read a .t1c file with talon.ir.read(path)")
        self.graph = graph
        # None: each neuron's own reset_gradient; 'detached' / 'through' for all (see .reset_gradient)
        self.reset_gradient = check_override(reset_gradient)
        self.dtype = _check_dtype(dtype)
        ir.warn_non_finite(graph, "JaxGraph")  # its parameters are the caller's to fix or retrain
        self.plan = flatten(graph)
        # the nodes whose values and states are kept channels-last inside (see .channels_last)
        self.channels_last: frozenset[str] = channels_last_paths(self.plan) if channels_last else frozenset()
        # None: each neuron's own surrogate (its node's field); a text or callable for all (see .spike)
        if surrogate is not None and not callable(surrogate):
            surrogate = ir.canonical_surrogate(surrogate, "JaxGraph")
        self.surrogate = surrogate
        self._spikes: dict[tuple[str, Any], Any] = {}
        # per node, which incoming values are never a multiplication (no rounding in sums, .products)
        plain = plain_values(self.plan)
        self._plain = {p: [edge_is_plain(e, plain) for e in f.inputs] for p, f in self.plan.nodes.items()}
        # pools of spikes in a channels-last chain whose window sums are sums of strided slices
        # (see .spike_pools)
        self._sliced_pools = spike_fed_pools(self.plan, self.dtype) & self.channels_last
        self._fns: dict[str, Any] = {}
        self._delays: dict[str, np.ndarray] = {}
        params: dict[str, dict[str, np.ndarray]] = {}
        for path, flat in self.plan.nodes.items():
            node = flat.node
            if flat.kind == NEURON:
                check_coefficients_fit(f"node {path!r}", coefficients(node, np.float64), self.dtype)
                params[path] = coefficients(node, self.dtype)
                spike = self._spike(node) if isinstance(node, SPIKING) else None
                merged_plain = len(flat.inputs) > 1 or all(self._plain[path])  # a sum, or a plain value
                self._fns[path] = make_step(node, spike, path in self.channels_last, merged_plain, self.reset_gradient)
            elif flat.kind == DELAY:
                self._delays[path] = np.broadcast_to(per_neuron(node.delay, len(flat.shape) + 1), flat.shape)
            elif flat.kind not in (INPUT, BOUNDARY):
                built = self._build_stateless(path, node)
                if built[0]:
                    params[path] = built[0]
                self._fns[path] = built[1]
        self.params: dict[str, dict[str, jax.Array]] = jax.device_put(params)
        self._relayout = self._relayout_plan(params)
        # (path, name) -> (array, relaid array) of the last call
        self._moved: dict[tuple[str, str], tuple[Any, Any]] = {}
        # (path, batch) -> (the layer's coefficients, as the update reads them) (see _spreads)
        self._spread: dict[tuple[str, int], tuple[dict, dict]] = {}
        # the dense layers whose bias is passed spread over the batch, like small layers' coefficients
        self._spread_biases = [p for p, f in self.plan.nodes.items() if layers.adds_bias(f.node) and spreads(f.shape)]
        self._neuron_shapes = {p: tuple(f.shape) for p, f in self.plan.nodes.items() if f.kind == NEURON}
        self._neuron_layouts = {p: (s, spreads(s), p in self.channels_last) for p, s in self._neuron_shapes.items()}
        # neuron states kept channels-last, and their rank (channels and spatial axes)
        self._last_states = {
            p: len(f.shape) for p, f in self.plan.nodes.items() if p in self.channels_last and f.kind == NEURON
        }
        self._initial: dict[int, dict] = {}  # batch size -> init_state
        self._calls = PreparedCalls()  # the host-side preparation of the last parameters (see _prepared)
        # whether run has channels-last results to move back to talon's layout (see _finish_on_host)
        self._any_last = bool(self._last_states or self.channels_last & set(self.plan.outputs.values()))
        before, loop, after = fuse(self.plan)
        self._schedules = {
            "layerwise": [(comp, is_cyclic(self.plan, comp)) for comp in components(self.plan)],
            "fused": [([p], False) for p in before] + ([(loop, True)] if loop else []) + [([p], False) for p in after],
        }
        self._params_structure = jax.tree.structure(self.params)
        self._input_shapes = {name: tuple(self.plan.nodes[p].shape) for name, p in self.plan.inputs.items()}
        self._defer_updates = True  # (.deferred; the tests compare with False)
        self._step_jit = jax.jit(self._step)
        self._runs = RunCalls(self._run)  # run's compiled functions, and its last call (see .run_call)

    def __repr__(self) -> str:
        return f"JaxGraph({len(self.plan.nodes)} nodes, dtype={np.dtype(self.dtype).name})"

    # ---- public API -------------------------------------------------------------------------

    @property
    def input_names(self) -> list[str]:
        return list(self.plan.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.plan.outputs)

    def init_state(self, batch_size: int) -> dict:
        """The state at ``t = 0`` for a batch of ``batch_size``: zeros, except the membranes of
        neurons with a ``v_init``."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        return self._state_of(int(batch_size), jnp)

    def _state_of(self, batch: int, xp) -> dict:
        """The initial state made with the array module ``xp`` (``jax.numpy`` or ``numpy``)."""
        nodes: dict[str, dict] = {}
        for path, flat in self.plan.nodes.items():
            shape = (batch, *flat.shape)
            if flat.kind == NEURON:
                nodes[path] = {k: xp.zeros(shape, self.dtype) for k in state_keys(flat.node)}
                v_init = getattr(flat.node, "v_init", None)
                if v_init is not None:  # the membrane starts at v_init (docs/semantics.md)
                    v0 = per_neuron(np.asarray(v_init, np.float64).astype(self.dtype), len(shape))
                    nodes[path]["v"] = xp.broadcast_to(xp.asarray(v0, self.dtype), shape)
            elif flat.kind == DELAY and self._max_delay(path):
                nodes[path] = {"history": xp.zeros((self._max_delay(path), *shape), self.dtype)}
        edges = {e.key: xp.zeros((batch, *e.shape), self.dtype) for e in self.plan.recurrent_edges}
        return {"nodes": nodes, "edges": edges}

    def step(self, params: Mapping, state: Mapping, x) -> tuple[Any, dict]:
        """One timestep: ``x`` is ``[B, *shape]`` (a dict by Input name for several inputs).

        Returns ``(y, new_state)``; ``y`` is an array, or a dict by Output name when the graph
        has several outputs.
        """
        check_call("step", x, self.input_names, state, needs_state=True)
        inputs = self._inputs(x, time=False)
        batch = next(iter(inputs.values())).shape[0]
        self._check_state(state, batch)
        (slim, moved, spread), _ = self._prepared(params, batch)
        outputs, new_state = self._step_jit(slim, moved, spread, state, inputs)
        return self._outputs(outputs), new_state

    def run(self, params: Mapping, x, state: Mapping | None = None, *, record: bool = False, mode: str = "stepwise"):
        """Run a time-major sequence ``x[T, B, *shape]`` (a dict by Input name for several inputs).

        Returns ``(y, final_state)`` with ``y[T, B, ...]``; with ``record=True`` also the neuron
        states after every step, ``{path: {"v": [T, B, ...], "i": ...}}``. ``state`` defaults to
        ``init_state(B)``. ``mode`` is ``"stepwise"``, ``"fused"`` or ``"layerwise"`` (see the
        module docstring); all three give the same results.
        """
        if state is None:  # the last call again, with another x? (see .run_call)
            repeated = self._runs.repeat(params, x, record, mode)
            if repeated is not None:
                return self._run_results(*repeated, record)
        arguments, flags = self._run_arguments(params, x, state, record, mode)
        result, function, leaves, out_tree = self._runs.call(arguments, *flags)
        host = flags[-1]
        if state is None and len(self.plan.inputs) == 1:
            self._runs.remember(params, x, record, mode, function, leaves, out_tree, host, placed=self._any_last)
        return self._run_results(result, host, record)

    def _run_arguments(self, params: Mapping, x, state, record, mode: str) -> tuple[tuple, tuple]:
        """The checked and prepared arguments of ``run``'s compiled function, ``((params, moved,
        spread, state, inputs), (record, mode, state_inside, host))`` (see :meth:`_run`)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        check_call("run", x, self.input_names)
        inputs = self._inputs(x, time=True)
        batch = next(iter(inputs.values())).shape[1]
        (slim, moved, spread), params_on_cpu = self._prepared(params, batch)
        inside = state is None and bool(self._last_states)  # the cached initial state is laid out as inside
        if state is None:
            state = self._initial_state(batch)
        else:
            self._check_state(state, batch)
        host = self._finish_on_host(params_on_cpu, None if state is self._initial.get(batch) else state, inputs)
        return (slim, moved, spread, state, inputs), (bool(record), mode, inside, host)

    def _lower_run(self, params: Mapping, x, state=None, *, record: bool = False, mode: str = "stepwise"):
        """``run``'s compiled function for these arguments, lowered (``.compile().as_text()`` is its
        module; for tests and benchmarks)."""
        return self._runs.lower(*self._run_arguments(params, x, state, record, mode))

    def _run_results(self, result: tuple, host: bool, record):
        """``run``'s return value from its compiled function's ``(outputs, final, trace)``."""
        outputs, final, trace = result
        if host:
            outputs, final, trace = self._outside(outputs, final, lead=2, trace=trace, xp=np)
        return (self._outputs(outputs), final, trace) if record else (self._outputs(outputs), final)

    def _finish_on_host(self, params_on_cpu: bool, state, inputs) -> bool:
        """Whether ``run`` moves channels-last results back to talon's layout with numpy after the
        compiled function (on the CPU, where the call has finished when it returns and numpy
        transposes a state in microseconds, while XLA compiles a transpose kernel for tens of
        milliseconds) rather than inside it (traced arguments, other devices). ``state`` is None
        for the engine's cached initial state (on the CPU)."""
        return self._any_last and params_on_cpu and on_cpu(jax.tree.leaves((state, inputs)))

    def to_graph(self, params: Mapping) -> ir.Graph:
        """A copy of the graph carrying ``params`` (e.g. after training); see :mod:`.export`.

        Raises :class:`~talon.ir.ConversionError` when a trained neuron coefficient has no exact
        time-constant form.
        """
        from .export import to_graph

        return to_graph(self.graph, params, self.params, self.dtype)

    # ---- per-call preparation, outside the compiled functions -------------------------------

    def _prepared(self, params, batch: int) -> tuple[tuple[dict, dict, dict], bool]:
        """``((slim, moved, spread), params on the CPU)`` for ``params`` (validated): see
        :meth:`_relayouts`, :meth:`_spreads`, :meth:`_slim`, :func:`.call_cache.on_cpu`; kept for
        the last concrete parameters (:class:`.call_cache.PreparedCalls`)."""

        def prepare(params):
            self._check_params(params)
            moved = self._relayouts(params)
            spread = self._spreads(params, moved, batch)
            return (self._slim(params, moved, spread), moved, spread), on_cpu(jax.tree.leaves(params))

        return self._calls.get(params, batch, prepare)

    def _slim(self, params: Mapping, moved: Mapping, spread: Mapping) -> dict:
        """``params`` without the arrays the compiled functions do not read: those a relaid array
        of ``moved`` or a prepared coefficient of ``spread`` stands for (every array passed to a
        ``jit`` function costs dispatch time on every call, read or not)."""
        slim = {}
        for path, arrays in params.items():
            replaced = set(spread.get(path, ()))
            for name, new_name, _ in self._relayout.get(path, ()):
                if moved[path][new_name] is not None:
                    replaced.add(name)
            slim[path] = {name: a for name, a in arrays.items() if name not in replaced} if replaced else arrays
        return slim

    def _initial_state(self, batch: int) -> dict:
        """``init_state(batch)`` built with numpy in the layout ``run`` keeps inside (the states of
        channels-last neurons channels-last), moved to the device once and cached (jax arrays are
        immutable): a run from the initial state compiles no kernel filling or transposing it."""
        if batch not in self._initial:
            state = self._state_of(batch, np)
            for path in self._last_states:
                state["nodes"][path] = {k: np.moveaxis(v, 1, -1) for k, v in state["nodes"][path].items()}
            with jax.ensure_compile_time_eval():  # concrete arrays even when run is traced (they are cached)
                self._initial[batch] = jax.device_put(jax.tree.map(np.ascontiguousarray, state))
        return self._initial[batch]

    def _relayout_plan(self, params: dict) -> dict[str, list[tuple[str, str, tuple[int, ...]]]]:
        """``{path: [(name, new name, axes)]}``: the parameters read as ``param.transpose(axes)``,
        stored under the new name — the weights of :func:`.layers.relayout`, and the layer-shaped
        coefficients of channels-last neurons (under their own name)."""
        plan: dict[str, list[tuple[str, str, tuple[int, ...]]]] = {}
        for path, flat in self.plan.nodes.items():
            if path not in params:
                continue
            moves = []
            weight = layers.relayout(flat.node)
            if weight is not None:
                moves.append(("weight", *weight))
            if flat.kind == NEURON and path in self.channels_last:
                for name, value in params[path].items():
                    axes = coefficient_axes(value, len(flat.shape))
                    if axes is not None:
                        moves.append((name, name, axes))
            if moves:
                plan[path] = moves
        return plan

    def _relayouts(self, params: Mapping) -> dict[str, dict[str, Any]]:
        """``{path: {new name: param in the layout the engine reads}}`` (:meth:`_relayout_plan`),
        made on the host and cached while the same array comes back; None for a traced parameter
        (it is transposed in the graph)."""
        out: dict[str, dict[str, Any]] = {}
        for path, moves in self._relayout.items():
            entry = out[path] = {}
            for name, new_name, axes in moves:
                value = params[path][name]
                if isinstance(value, jax.core.Tracer):
                    entry[new_name] = None
                    continue
                cached = self._moved.get((path, name))
                if cached is not None and cached[0] is value:
                    entry[new_name] = cached[1]
                    continue
                with jax.ensure_compile_time_eval():  # a concrete array even when run is traced
                    entry[new_name] = layers.relayout_on_host(value, axes)
                if isinstance(value, jax.Array):  # immutable: safe to cache by identity
                    self._moved[(path, name)] = (value, entry[new_name])
        return out

    def _spreads(self, params: Mapping, moved: Mapping, batch: int) -> dict[str, dict[str, Any]]:
        """``{path: {name: coefficient as the compiled update reads it}}`` for the concrete neuron
        coefficients (:mod:`.spread`): a uniform one as a scalar, one of a small layer spread over
        ``[batch, *shape]``; and the bias of a small dense layer spread over ``[batch, out]``
        (:func:`.layers.adds_bias`); made on the host and cached, per layer, while the same arrays
        come back."""
        out: dict[str, dict[str, Any]] = {}
        for path, (shape, small, last) in self._neuron_layouts.items():
            values = params[path]
            cached = self._spread.get((path, batch))
            if (
                cached is not None
                and len(cached[0]) == len(values)
                and all(values.get(k) is v for k, v in cached[0].items())
            ):
                if cached[1]:
                    out[path] = cached[1]
                continue
            entry, cacheable = {}, True
            for name, value in values.items():
                source = moved.get(path, {}).get(name, value)  # channels-last layer-shaped: relaid
                if source is None or isinstance(value, jax.core.Tracer):
                    cacheable = False
                    continue
                if is_identity(name, value):  # None: the update leaves the product or sum out
                    entry[name] = None
                    cacheable &= isinstance(value, jax.Array)
                    continue
                with jax.ensure_compile_time_eval():  # a concrete array even when run is traced
                    prepared = uniform_on_host(value)
                    if prepared is None and small:
                        prepared = spread_on_host(source, shape, batch, last)
                if prepared is not None:
                    entry[name] = prepared
                cacheable &= isinstance(value, jax.Array)  # immutable: safe to cache by identity
            if cacheable:
                self._spread[(path, batch)] = (dict(values), entry)
            if entry:
                out[path] = entry
        for path in self._spread_biases:
            bias = params[path]["bias"]
            cached = self._spread.get((path, batch))
            if cached is not None and cached[0]["bias"] is bias:
                out[path] = cached[1]
            elif not isinstance(bias, jax.core.Tracer):
                with jax.ensure_compile_time_eval():  # a concrete array even when run is traced
                    out[path] = {"bias": spread_on_host(bias, tuple(np.shape(bias)), batch, False)}
                if isinstance(bias, jax.Array):  # immutable: safe to cache by identity
                    self._spread[(path, batch)] = ({"bias": bias}, out[path])
        return out

    # ---- lowering ---------------------------------------------------------------------------

    def _spike(self, node: ir.Node):
        """The spike function of a spiking node: its comparison, and its surrogate (or the override)."""
        key = (node.comparison.value, node.surrogate if self.surrogate is None else self.surrogate)
        if key not in self._spikes:
            self._spikes[key] = make_spike(*key)
        return self._spikes[key]

    def _build_stateless(self, path: str, node: ir.Node):
        sliced = path in self._sliced_pools
        if path in self.channels_last:
            return layers.build(node, self.dtype, channels_last=True, sliced_sums=sliced)
        if isinstance(node, ir.Threshold):
            spike = self._spike(node)
            params = {"threshold": np.ascontiguousarray(np.asarray(node.threshold).astype(self.dtype))}
            return params, lambda p, x: spike(x, per_neuron(p["threshold"], x.ndim))
        built = layers.build(node, self.dtype)
        if built is None:
            raise UnsupportedModuleError(
                f"node {path!r}: the JAX engine has no implementation of {type(node).__name__}; "
                "it runs the talon.ir primitives (see talon.ir.list_primitives())"
            )
        return built

    def _check_state(self, state, batch: int) -> None:
        """``state`` must have the structure, the batch size and the dtype of ``init_state(batch)``."""
        cache = self.__dict__.setdefault("_state_shapes", {})
        if batch not in cache:
            cache[batch] = jax.tree.map(lambda a: tuple(a.shape), jax.eval_shape(lambda: self.init_state(batch)))
        check_state(state, cache[batch], batch, self.dtype)

    def _check_params(self, params) -> None:
        check_params(params, self.params, self._params_structure)

    def _max_delay(self, path: str) -> int:
        return int(self._delays[path].max()) if self._delays[path].size else 0

    def _inputs(self, x, time: bool) -> dict[str, jax.Array]:
        lead = 2 if time else 1
        names = self.input_names
        if isinstance(x, Mapping):
            if set(x) != set(names):
                raise ValueError(f"inputs must be given for exactly the Input nodes {names}, got {sorted(x)}")
            given = dict(x)
        elif len(names) == 1:
            given = {names[0]: x}
        else:
            raise ValueError(f"the graph has several Input nodes {names}: pass a dict of arrays by name")
        out = {}
        for name, value in given.items():
            arr = as_input(name, value, self.dtype)
            expected = self._input_shapes[name]
            if arr.ndim != lead + len(expected) or tuple(arr.shape[lead:]) != expected:
                layout = "[T, B, " if time else "[B, "
                raise ValueError(
                    f"input {name!r}: expected shape {layout}{', '.join(map(str, expected))}], got {tuple(arr.shape)}"
                )
            out[self.plan.inputs[name]] = arr
        return out

    def _outputs(self, outputs: dict):
        if len(self.plan.outputs) == 1:
            return next(iter(outputs.values()))
        return {name: outputs[path] for name, path in self.plan.outputs.items()}

    # ---- one step over a set of nodes ---------------------------------------------------------

    def _eval(self, paths: list[str], params, state, inputs: dict, external: dict, zero, ordered=None):
        """Evaluate ``paths`` (in topological order) for one step.

        Edges from outside ``paths`` read ``external[edge.key]`` (already delayed if recurrent);
        recurrent edges inside read ``state["edges"]``. Returns (values, node states, edge states).
        ``ordered`` (see :meth:`_step_order`) evaluates the readers of carried one-step Delays
        first and makes the neurons that compute those Delays' next values wait for them, and
        updates the membranes of the neurons outputting their previous spike last (:mod:`.deferred`).
        """
        members = set(paths)
        values: dict[str, Any] = {}
        node_state: dict[str, dict] = {}
        waits: dict[str, list[str]] = {}
        deferred: dict[str, list[str]] = {}
        pending: dict[str, Any] = {}
        if ordered is not None:  # the one-step Delays' values are read before their sources run
            # (and the deferred neurons' updates come last)
            paths, waits, deferred = ordered
            for path in self._delays:
                history = state["nodes"].get(path, {}).get("history")
                if history is not None and path in members and history.ndim == 1 + len(self.plan.nodes[path].shape):
                    values[path] = history
        for path in paths:
            flat = self.plan.nodes[path]
            zero_here = wait_for(zero, [values[r] for r in waits[path]]) if path in waits else zero
            if flat.kind == INPUT:
                values[path] = inputs[path]
                continue
            incoming = []
            for edge in flat.inputs:
                if edge.src not in members:
                    value = external[edge.key]
                elif edge.recurrent:
                    value = state["edges"][edge.key]
                else:
                    value = port(values[edge.src], edge.port)
                incoming.append(self._arrive(edge, path, value))
            x = layers.merge(flat.node, incoming, path, zero, self._plain[path])
            if flat.kind == NEURON and path in deferred:  # its spike now, its update at the end
                values[path], pending[path] = self._fns[path](params[path], state["nodes"][path], x, zero, defer=True)
            elif flat.kind == NEURON:
                values[path], node_state[path] = self._fns[path](params[path], state["nodes"][path], x, zero_here)
            elif flat.kind == DELAY:
                values[path], delay_state = self._delay_step(path, state, x)
                node_state.update(delay_state)
            elif flat.kind == BOUNDARY:
                values[path] = x
            else:
                values[path] = self._fns[path](params.get(path, {}), x)
        for path in reversed(pending):  # after every reader of their spikes (.deferred)
            # a neuron reading the spikes is waited for through its new state (made by now)
            read = [node_state[r] if self.plan.nodes[r].kind == NEURON else values[r] for r in deferred[path]]
            node_state[path] = pending[path](wait_for(zero, read + [values[r] for r in waits.get(path, [])]))
        edge_state = {
            e.key: self._edge_value(e, port(values[e.src], e.port))
            for p in paths
            for e in self.plan.nodes[p].inputs
            if e.recurrent and e.src in members
        }
        return values, node_state, edge_state

    def _arrive(self, edge, dst: str, value):
        """An edge's value in its consumer's layout. A recurrent edge's value is in talon's layout
        (it is part of the state a caller sees), another edge's in its source's."""
        src_last = edge.src in self.channels_last and not edge.recurrent
        return arrive(value, len(edge.shape), src_last, dst in self.channels_last)

    def _edge_value(self, edge, value):
        """The value of a recurrent edge from its source's layout to talon's."""
        return arrive(value, len(edge.shape), edge.src in self.channels_last, False)

    def _delay_step(self, path: str, state, x):
        depth = self._max_delay(path)
        if depth == 0:
            return x, {}
        history = state["nodes"][path]["history"]  # history[k] = input at step -1-k
        if history.ndim == x.ndim:  # a one-step delay carried unstacked through a scan (_unstack_delays)
            return history, {path: {"history": x}}
        if self._uniform_delay(path):  # no stacking: the oldest entry leaves, x enters
            kept = [history[: depth - 1]] if depth > 1 else []
            return history[depth - 1], {path: {"history": jnp.concatenate([x[None], *kept])}}
        stacked = jnp.concatenate([x[None], history])
        lag = jnp.broadcast_to(jnp.asarray(self._delays[path])[None, None], (1, *x.shape))
        out = jnp.take_along_axis(stacked, lag, axis=0)[0]
        return out, {path: {"history": stacked[:depth]}}

    def _uniform_delay(self, path: str) -> bool:
        delays = self._delays[path]
        return bool(delays.size) and bool(np.all(delays == delays.reshape(-1)[0]))

    def _step(self, params, moved, spread, state, inputs):
        params = with_spread(layers.with_relayouts(self._relayout, params, moved), spread)
        inputs, state = self._inside(inputs, state, lead=1, state_inside=False)
        outputs, new = self._one_step(params, state, inputs, exact_zero(self.dtype))
        return self._outside(outputs, new, lead=1)[:2]

    def _inside(self, inputs: dict, state: dict, lead: int, state_inside: bool):
        """Inputs and state as the engine keeps them: channels-last Inputs and neuron states
        transposed (``lead`` = 2 for sequences, 1 for one step), unless the state already is."""
        inputs = {p: to_last(x, x.ndim - lead) if p in self.channels_last else x for p, x in inputs.items()}
        if self._last_states and not state_inside:
            nodes = dict(state["nodes"])
            for path, rank in self._last_states.items():
                nodes[path] = {k: to_last(v, rank) for k, v in nodes[path].items()}
            state = {**state, "nodes": nodes}
        return inputs, state

    def _outside(self, outputs: dict, state: dict, lead: int, trace: dict | None = None, xp=jnp):
        """Outputs, final state and trace back in talon's layout (the inverse of :meth:`_inside`),
        in the graph (``xp=jnp``) or by numpy on the host (``xp=np``, on concrete arrays)."""
        back = to_first if xp is jnp else to_first_on_host
        outputs = {p: back(y, y.ndim - lead) if p in self.channels_last else y for p, y in outputs.items()}
        if self._last_states:
            nodes = dict(state["nodes"])
            trace = None if trace is None else dict(trace)
            for path, rank in self._last_states.items():
                nodes[path] = {k: back(v, rank) for k, v in nodes[path].items()}
                if trace is not None and path in trace:
                    trace[path] = {k: back(v, rank) for k, v in trace[path].items()}
            state = {**state, "nodes": nodes}
        return outputs, state, trace

    def _one_step(self, params, state, inputs, zero, ordered=None):
        values, node_state, edge_state = self._eval(self.plan.order, params, state, inputs, {}, zero, ordered)
        outputs = {p: values[p] for p in self.plan.outputs.values()}
        return outputs, {"nodes": node_state, "edges": edge_state}

    # ---- sequences --------------------------------------------------------------------------

    def _run(
        self, params, moved, spread, state, inputs, record: bool, mode: str, state_inside: bool = False, host=False
    ):
        params = with_spread(layers.with_relayouts(self._relayout, params, moved), spread)
        inputs, state = self._inside(inputs, state, lead=2, state_inside=state_inside)
        zero = exact_zero(self.dtype)  # once, outside the loops
        if mode == "stepwise":
            outputs, final, trace = self._run_stepwise(params, state, inputs, record, zero)
        else:
            outputs, final, trace = self._run_sequences(self._schedules[mode], params, state, inputs, record, zero)
        trace = dict(trace) if record else None
        if host:  # left to run(), on the host
            return outputs, final, trace
        return self._outside(outputs, final, lead=2, trace=trace)

    def _run_stepwise(self, params, state, inputs, record: bool, zero):
        ordered = self._step_order()

        def body(carry, x_t):
            outputs, new = self._one_step(params, carry, x_t, zero, ordered)
            return new, (outputs, new["nodes"] if record else None)

        final, (outputs, nodes) = jax.lax.scan(body, self._unstack_delays(state, 0), inputs)
        return outputs, self._unstack_delays(final, None), (self._trace(nodes) if record else None)

    def _one_step_delays(self) -> list[str]:
        """The Delays whose every element delays by exactly one step: their history is carried
        unstacked (:mod:`.delay_carry`). A Delay mixing 0 and 1 (``max == 1``) is not one of them:
        its 0-lag elements pass the current input, so it takes the general path."""
        return [p for p in self._delays if self._max_delay(p) == 1 and self._uniform_delay(p)]

    def _step_order(self):
        """``(paths, waits, deferred)`` for a step of the step-wise scan, or None (the plan's order):
        :func:`.delay_carry.delay_order` and :func:`.deferred.deferred_updates`."""
        order = delay_order(self.plan, set(self._one_step_delays()))
        deferrable = {p for p, fn in self._fns.items() if getattr(fn, "defers", False)}
        # a sliced pool and a Flatten are cheap enough for XLA to recompute in the update's kernel
        see_through = self._sliced_pools | {p for p, f in self.plan.nodes.items() if isinstance(f.node, ir.Flatten)}
        deferred = deferred_updates(self.plan, deferrable, see_through) if self._defer_updates else {}
        if order is None and not deferred:
            return None
        paths, waits = order if order is not None else (self.plan.order, {})
        return paths, waits, deferred

    def _unstack_delays(self, state: dict, axis: int | None) -> dict:
        """See :func:`.delay_carry.unstack_delays`."""
        return unstack_delays(state, self._one_step_delays(), axis)

    def _trace(self, nodes: dict) -> dict:
        return {p: s for p, s in nodes.items() if self.plan.nodes[p].kind == NEURON}


def _check_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a floating type, got {dt}")
    if dt.itemsize == 8 and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs 64-bit JAX: jax.config.update('jax_enable_x64', True)")
    return dt
