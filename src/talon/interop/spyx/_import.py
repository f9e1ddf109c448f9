"""talon -> Spyx: :func:`from_ir` builds a ``spyx.nn.Sequential`` that computes exactly what a graph does.

Only graphs Spyx can express are accepted: a chain ``Input -> ... -> Output`` of nodes that each
have a Spyx layer with the same arithmetic (the inverse of :mod:`._export`'s table). A neuron
must have Spyx's dynamics (``comparison='>'``, subtractive reset applied with the input,
``spike_timing='pre'``; or no reset with ``'post'`` for PSU_LIF), unit input gain
(``r/tau == 1``), no leak drive and the decay order (``integration='decay'``); anything else
raises :class:`~talon.ir.ConversionError` naming the node and the field, instead of building a
model that behaves differently. Spyx differentiates every reset through its spike: a neuron with
``reset_gradient='detached'`` is converted (the values are the same) with a
:class:`ResetGradientWarning` saying that Spyx will train it with ``'through'``. Each neuron's
activation is ``spyx.axn.custom`` with the node's ``surrogate`` as its backward, so the Spyx model
trains with the graph's surrogate gradient.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ... import ir
from ...ir.errors import ConversionError
from ..jax._deps import require
from ..jax.neurons import coefficients
from ._layout import Layout


class ResetGradientWarning(UserWarning):
    """The Spyx model differentiates its reset otherwise than the graph's ``reset_gradient`` says."""


def channels_first(x: Any, leading: int = 2) -> Any:
    """Spyx data ``[*lead, H, W, C]`` -> talon ``[*lead, C, H, W]`` (``leading`` = number of time/batch axes).

    1-d samples are returned unchanged.
    """
    np_like = _array_module(x)
    return x if x.ndim - leading < 2 else np_like.moveaxis(x, -1, leading)


def channels_last(x: Any, leading: int = 2) -> Any:
    """Inverse of :func:`channels_first`."""
    np_like = _array_module(x)
    return x if x.ndim - leading < 2 else np_like.moveaxis(x, leading, -1)


def _array_module(x):
    return np if isinstance(x, np.ndarray) else require("jax.numpy")


def _activation(where: str, node: ir.Node) -> Any:
    """The ``spyx.axn`` activation of a neuron: Spyx's Heaviside forward with the node's ``surrogate``
    as its backward (``axn.custom``; the formulas of :mod:`talon.interop.jax.spike`)."""
    from ..jax.spike import surrogate_derivative

    axn = require("spyx.axn")
    surrogate = ir.resolve_surrogate(node.surrogate, node.v_threshold)  # Spyx's activation sees v - theta only
    if ir.reads_threshold(surrogate):
        raise ConversionError(
            f"{where}: surrogate {node.surrogate!r}: its derivative reads each neuron's threshold, "
            "which a Spyx activation is not given (one threshold for the layer, or another surrogate, converts)"
        )
    return axn.custom(surrogate_derivative(surrogate), axn.heaviside)


def from_ir(graph: ir.Graph) -> Any:
    """Build a ``spyx.nn.Sequential`` equivalent to ``graph`` (channels-last, like every Spyx model).

    Run it with ``spyx.nn.run(model, channels_last(x))`` where ``x`` is the graph's
    ``[T, B, *shape]`` input. Raises :class:`~talon.ir.ConversionError` naming the node when the
    graph is not a chain or a node has no exact Spyx equivalent.
    """
    if not isinstance(graph, ir.Graph):
        raise TypeError(f"from_ir expects a talon.ir.Graph, got {type(graph).__name__}")
    snn = require("spyx.nn")
    nnx = require("flax.nnx")
    chain, input_shape = _chain(graph)
    builder = _Builder(Layout.from_talon(input_shape), snn, nnx)
    i = 0
    while i < len(chain):
        name, node = chain[i]
        following = chain[i + 1][1] if i + 1 < len(chain) else None
        if isinstance(node, ir.LI) and isinstance(following, ir.Threshold):
            builder.psu_from_pair(name, node, chain[i + 1][0], following)
            i += 2
            continue
        builder.add(name, node)
        i += 1
    if not builder.modules:
        raise ConversionError("the graph has no layer Spyx can run (only pass-through nodes)")
    return snn.Sequential(*builder.modules)


def _chain(graph: ir.Graph) -> tuple[list[tuple[str, ir.Node]], tuple[int, ...]]:
    if len(graph.input_nodes) != 1 or len(graph.output_nodes) != 1:
        raise ConversionError(
            f"a Spyx Sequential has one input and one output; the graph has Input nodes {graph.input_nodes} "
            f"and Output nodes {graph.output_nodes}"
        )
    if not graph.is_dag:
        raise ConversionError(
            f"the graph has recurrent edges {graph.recurrent_edges} outside a recurrent-layer subgraph; Spyx "
            "recurrence lives inside RIF/RLIF/RCuBaLIF (see talon.interop.spyx.to_ir for the subgraph form)"
        )
    (start,), (end,) = graph.input_nodes, graph.output_nodes
    chain, current = [], start
    while current != end:
        successors = graph.successors(current)
        if len(successors) != 1:
            raise ConversionError(
                f"node {current!r} has {len(successors)} outgoing edges; a Spyx Sequential is a chain "
                "Input -> ... -> Output"
            )
        (current,) = successors
        if len(graph.predecessors(current)) != 1:
            raise ConversionError(
                f"node {current!r} has {len(graph.predecessors(current))} incoming edges; not a chain"
            )
        if current != end:
            chain.append((current, graph.nodes[current]))
    if len(chain) + 2 != len(graph.nodes):
        stray = set(graph.nodes) - {start, end} - {n for n, _ in chain}
        raise ConversionError(f"nodes {sorted(stray)} are not on the Input -> Output chain")
    return chain, graph.nodes[start].shape


def _f32(arr) -> np.ndarray:
    return np.asarray(arr).astype(np.float32)


class _Builder:
    def __init__(self, layout: Layout, snn, nnx):
        self.layout, self.snn, self.nnx = layout, snn, nnx
        self.jnp = require("jax.numpy")
        self.rngs = nnx.Rngs(0)  # every parameter is overwritten below
        self.modules: list[Any] = []

    def add(self, name: str, node: ir.Node) -> None:
        where = f"node {name!r} ({type(node).__name__})"
        if isinstance(node, (ir.Dropout, ir.HybridRegion)) or (
            isinstance(node, ir.Skip) and node.skip_type != "concatenate"
        ):
            return  # the identity on a single input: nothing to run
        handlers = [
            (ir.Affine, self._dense),
            (ir.Linear, self._dense),
            ((ir.Conv1d, ir.Conv2d), self._conv),
            (ir.SepConv2d, self._sepconv),
            (ir.SumPool2d, self._sumpool),
            (ir.Flatten, self._flatten),
            (ir.Graph, self._recurrent),
            ((ir.LIF, ir.IF, ir.CubaLIF), self._spiking),
            (ir.LI, self._li),
        ]
        _require_decay(where, node)
        for cls, handler in handlers:
            if isinstance(node, cls):
                handler(where, node)
                return
        raise ConversionError(f"{where}: Spyx has no layer that computes a {type(node).__name__}")

    # ---- stateless ------------------------------------------------------------------------

    def _dense(self, where: str, node) -> None:
        if self.layout.rank != 1:
            raise ConversionError(
                f"{where}: on a {self.layout.talon_shape} input it acts on the last (spatial) axis; a Spyx "
                "Linear acts on channels. Flatten first"
            )
        n_out, n_in = node.weight.shape
        bias = isinstance(node, ir.Affine)
        kernel = self.layout.dense_in_rows(_f32(node.weight))
        layer = self.nnx.Linear(
            n_in, n_out, use_bias=bias, kernel_init=self._given(kernel),
            bias_init=self._given(_f32(node.bias) if bias else None), rngs=self.rngs,
        )  # fmt: skip
        self.modules.append(layer)
        self.layout = Layout((n_out,))

    def _conv(self, where: str, node) -> None:
        nd = 1 if isinstance(node, ir.Conv1d) else 2
        if self.layout.rank != nd + 1:
            raise ConversionError(f"{where}: expects a {nd + 1}-d input, got {self.layout.talon_shape}")
        as_tuple = (lambda v: (v,)) if nd == 1 else tuple
        self.modules.append(
            self._conv_layer(
                node.weight,
                node.bias,
                as_tuple(node.stride),
                as_tuple(node.padding),
                as_tuple(node.dilation),
                node.groups,
            )
        )
        c, *spatial = node.output_shape
        self.layout = Layout((*spatial, c))

    def _conv_layer(self, weight, bias, stride, padding, dilation, groups):
        c_out, c_in_per_group, *kernel = weight.shape
        hwio = np.ascontiguousarray(np.moveaxis(_f32(weight), (0, 1), (-1, -2)))  # OIHW -> HWIO
        return self.nnx.Conv(
            c_in_per_group * groups, c_out, tuple(kernel), tuple(stride),
            padding=[(p, p) for p in padding], kernel_dilation=tuple(dilation), feature_group_count=groups,
            use_bias=True, kernel_init=self._given(hwio), bias_init=self._given(_f32(bias)), rngs=self.rngs,
        )  # fmt: skip

    def _given(self, value):
        """A flax initializer returning ``value`` (no random draw to compile and then overwrite)."""
        jnp = self.jnp

        def init(key, shape, dtype=jnp.float32):
            if tuple(shape) != value.shape:
                raise AssertionError(f"flax asked for {shape}, talon has {value.shape}")
            return jnp.asarray(value, dtype)

        return init

    def _sepconv(self, where: str, node: ir.SepConv2d) -> None:
        if self.layout.rank != 3:
            raise ConversionError(f"{where}: expects a 3-d input, got {self.layout.talon_shape}")
        c_in = node.depthwise_weight.shape[0]
        self.modules.append(
            self._conv_layer(node.depthwise_weight, node.depthwise_bias, node.stride, node.padding, node.dilation, c_in)
        )
        self.modules.append(self._conv_layer(node.pointwise_weight, node.pointwise_bias, (1, 1), (0, 0), (1, 1), 1))
        c, *spatial = node.output_shape
        self.layout = Layout((*spatial, c))

    def _sumpool(self, where: str, node: ir.SumPool2d) -> None:
        lax = require("jax.lax")
        if self.layout.rank != 3:
            raise ConversionError(f"{where}: expects a 3-d input, got {self.layout.talon_shape}")
        spatial = self.layout.spyx_shape[:-1]
        if all(p == 0 for p in node.padding):
            padding = "VALID"
        else:
            same = lax.padtype_to_pads(spatial, node.kernel_size, node.stride, "SAME")
            windows_equal = all(
                lo == p and (n + lo + hi - k) // s == (n + 2 * p - k) // s
                for (lo, hi), p, n, k, s in zip(same, node.padding, spatial, node.kernel_size, node.stride, strict=True)
            )
            if not windows_equal:
                raise ConversionError(
                    f"{where}: padding {node.padding} is neither 'VALID' nor Spyx's 'SAME' {[tuple(p) for p in same]} "
                    f"for this input; Spyx's SumPool offers only those two"
                )
            padding = "SAME"
        self.modules.append(self.snn.SumPool(tuple(node.kernel_size), tuple(node.stride), padding))
        c, *out_spatial = node.output_shape
        self.layout = Layout((*out_spatial, c))

    def _flatten(self, where: str, node: ir.Flatten) -> None:
        rank = self.layout.rank
        if node.start_dim not in (0, -rank) or node.end_dim not in (-1, rank - 1):
            raise ConversionError(
                f"{where}: start_dim={node.start_dim}, end_dim={node.end_dim}; Spyx's Flatten flattens every "
                "axis (start_dim=0, end_dim=-1)"
            )
        self.modules.append(self.snn.Flatten())
        self.layout = self.layout.flattened()

    # ---- neurons ------------------------------------------------------------------------------

    def _value(self, arr: np.ndarray) -> Any:
        """A layer-shaped parameter as Spyx holds it: a float when uniform, else a channels-last array."""
        arr = _f32(arr)
        if arr.size and np.all(arr == arr.reshape(-1)[0]):
            return float(arr.reshape(-1)[0])
        return self.jnp.asarray(self.layout.to_spyx(np.ascontiguousarray(arr)))

    def _broadcast(self, arr, shape) -> np.ndarray:
        """A parameter (layer-shaped, per-channel ``(C,)`` or scalar) broadcast to the layer's talon shape."""
        arr = _f32(arr)
        if arr.ndim == 1 and len(shape) > 1 and arr.shape[0] == shape[0] and arr.shape != tuple(shape):
            arr = arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
        return np.broadcast_to(arr, shape)

    def _coefficients(self, where: str, node) -> dict[str, Any]:
        shape = tuple(node.input_shape)
        k = {name: self._broadcast(v, shape) for name, v in coefficients(node, np.float32).items()}
        if "g" in k and not np.all(k["g"] == 1.0):
            gain = float(k["g"][k["g"] != 1.0][0])
            raise ConversionError(
                f"{where}: its input gain r/tau is {gain}, not 1; Spyx neurons add the input "
                "unscaled (V = beta V + x). Scale the preceding weights instead (that is not bit-exact, so talon "
                "does not do it for you)"
            )
        if "c" in k and not np.all(k["c"] == 0.0):
            raise ConversionError(f"{where}: v_leak is not 0; Spyx neurons have no leak drive")
        if "gs" in k and not np.all(k["gs"] == 1.0):
            raise ConversionError(f"{where}: its synaptic gain w_in/tau_syn is not 1; Spyx adds the input unscaled")
        for decay in ("beta", "alpha"):
            if decay in k and not np.all((k[decay] >= 0) & (k[decay] <= 1)):
                raise ConversionError(f"{where}: a decay {decay} outside [0, 1]; Spyx clips decays to [0, 1]")
        return k

    def _check_dynamics(self, where: str, node, *, spike_timing: str, reset_timing: str | None) -> None:
        wanted = {"comparison": ">", "reset_mode": "subtract", "spike_timing": spike_timing}
        if reset_timing is not None:
            wanted["reset_timing"] = reset_timing
        for field, value in wanted.items():
            if getattr(node, field) != value:
                raise ConversionError(
                    f"{where}: {field}={getattr(node, field).value!r}, but Spyx's neuron has {field}={value!r} "
                    f"(Spyx: spike = V > threshold on the state before the update, subtractive reset applied with "
                    f"the input)"
                )
        if node.reset_gradient != ir.ResetGradient.THROUGH:
            warnings.warn(
                f"{where}: reset_gradient={node.reset_gradient.value!r}, but Spyx differentiates its reset through "
                "the spike ('through'): the Spyx model computes the same values and trains with Spyx's gradients, "
                "not the graph's (docs/semantics.md §3.1)",
                ResetGradientWarning,
                stacklevel=4,
            )

    def _spiking(self, where: str, node) -> None:
        _require_zero_start(where, node)
        snn, shape = self.snn, self.layout.spyx_shape
        if node.reset_mode == "none":
            if isinstance(node, ir.CubaLIF):
                raise ConversionError(
                    f"{where}: a CubaLIF without reset has no Spyx equivalent (PSU_LIF has no synaptic current, "
                    "CuBaLIF always resets)"
                )
            if node.spike_timing != "post" or node.comparison != ">":
                raise ConversionError(
                    f"{where}: a neuron without reset maps to Spyx's PSU_LIF, which spikes on V > threshold after the "
                    "update (spike_timing='post', comparison='>')"
                )
            k = self._coefficients(where, node)
            beta = k.get("beta", np.ones(tuple(node.input_shape), np.float32))
            layer = snn.PSU_LIF(
                shape, beta=1.0, threshold=self._value(k["theta"]), activation=_activation(where, node), rngs=self.rngs
            )
            self.modules.append(self._with_params(layer, beta=beta))
            return
        cuba = isinstance(node, ir.CubaLIF)
        self._check_dynamics(where, node, spike_timing="pre", reset_timing="delayed_pre_decay" if cuba else "delayed")
        k = self._coefficients(where, node)
        theta = self._value(k["theta"])
        if isinstance(node, ir.IF):
            self.modules.append(snn.IF(shape, threshold=theta, activation=_activation(where, node)))
        elif isinstance(node, ir.LIF):
            layer = snn.LIF(shape, beta=1.0, threshold=theta, activation=_activation(where, node), rngs=self.rngs)
            self.modules.append(self._with_params(layer, beta=k["beta"]))
        else:
            self._require_flat(where, "CuBaLIF")
            layer = snn.CuBaLIF(
                shape, alpha=1.0, beta=1.0, threshold=theta, activation=_activation(where, node), rngs=self.rngs
            )
            self.modules.append(self._with_params(layer, alpha=k["alpha"], beta=k["beta"]))

    def _li(self, where: str, node: ir.LI) -> None:
        k = self._coefficients(where, node)
        layer = self.snn.LI(self.layout.spyx_shape, beta=1.0, rngs=self.rngs)
        self.modules.append(self._with_params(layer, beta=k["beta"]))

    def psu_from_pair(self, name: str, li: ir.LI, thr_name: str, thr: ir.Threshold) -> None:
        """``LI -> Threshold('>')`` (Spyx's own NIR form of PSU_LIF) is one PSU_LIF."""
        where = f"nodes {name!r}, {thr_name!r} (LI, Threshold)"
        _require_decay(where, li)
        if thr.comparison != ">":
            raise ConversionError(
                f"{where}: Threshold comparison {thr.comparison.value!r}; PSU_LIF spikes on V > threshold"
            )
        k = self._coefficients(where, li)
        theta = self._value(self._broadcast(thr.threshold, tuple(li.input_shape)))
        layer = self.snn.PSU_LIF(self.layout.spyx_shape, beta=1.0, threshold=theta, rngs=self.rngs)
        self.modules.append(self._with_params(layer, beta=k["beta"]))

    def _with_params(self, layer, **decays):  # the constructors got placeholder decays of 1.0
        """Set the decays of a Spyx neuron (a scalar Param when uniform, as Spyx's own constructor makes)."""
        for attr, value in decays.items():
            setattr(layer, attr, self.nnx.Param(self.jnp.asarray(self._value(value), self.jnp.float32)))
        return layer

    def _require_flat(self, where: str, what: str) -> None:
        if self.layout.rank != 1:
            raise ConversionError(
                f"{where}: Spyx's {what} runs on 1-d layers only (its state concatenates V and I and its initial "
                f"state doubles every axis); this layer has shape {self.layout.talon_shape}"
            )

    def _recurrent(self, where: str, sub: ir.Graph) -> None:
        neuron_name, neuron, weight = _recurrent_parts(where, sub)
        where = f"{where[:-1]}, {neuron_name}: {type(neuron).__name__})"
        _require_decay(where, neuron)
        _require_zero_start(where, neuron)
        self._require_flat(where, "recurrent layers")
        cuba = isinstance(neuron, ir.CubaLIF)
        if neuron.reset_mode == "none":
            raise ConversionError(f"{where}: Spyx's recurrent neurons reset by subtraction")
        self._check_dynamics(
            where, neuron, spike_timing="post", reset_timing="delayed_pre_decay" if cuba else "delayed"
        )
        k = self._coefficients(where, neuron)
        if np.any(k["theta"] < 0):
            raise ConversionError(f"{where}: a negative threshold; Spyx's recurrent neurons would spike at t = 0")
        snn, shape = self.snn, self.layout.spyx_shape
        theta = self._value(k["theta"])
        if isinstance(neuron, ir.IF):
            layer, decays = snn.RIF(shape, threshold=theta, activation=_activation(where, neuron), rngs=self.rngs), {}
        elif isinstance(neuron, ir.LIF):
            layer, decays = (
                snn.RLIF(shape, threshold=theta, activation=_activation(where, neuron), rngs=self.rngs),
                {"beta": k["beta"]},
            )
        else:
            layer, decays = (
                snn.RCuBaLIF(shape, threshold=theta, activation=_activation(where, neuron), rngs=self.rngs),
                {"alpha": k["alpha"], "beta": k["beta"]},
            )
        layer = self._with_params(layer, **decays)
        layer.recurrent_w = self.nnx.Param(self.jnp.asarray(self.layout.recurrent_to_spyx(_f32(weight.weight))))
        self.modules.append(layer)


def _require_decay(where: str, node: ir.Node) -> None:
    """Refuse ``integration='euler'``: Spyx's layers compute the decay order ``beta*V + x``."""
    if isinstance(node, (ir.LIF, ir.LI)) and node.integration == ir.Integration.EULER:
        raise ConversionError(
            f"{where}: integration='euler' (u = v + (1/tau)((v_leak - v) + r x)), but Spyx's neurons compute "
            "the decay order beta*V + x, which rounds differently in float32; use integration='decay'"
        )


def _require_zero_start(where: str, node: ir.Node) -> None:
    """Refuse a non-zero ``v_init`` (Spyx's initial state is all zeros), multi-spike neurons and a
    membrane floor (Spyx has neither)."""
    if node.v_init is not None and np.any(np.asarray(node.v_init) != 0):
        raise ConversionError(f"{where}: v_init is not 0, but Spyx starts every membrane at 0; use v_init=None")
    if node.multi_spike:
        raise ConversionError(f"{where}: spike_mode='multi', but Spyx's neurons emit one spike per step at most")
    if node.v_min is not None:
        raise ConversionError(f"{where}: v_min (a membrane floor), but Spyx's neurons have none; use v_min=None")
    if getattr(node, "synapse", "decay") == "input_first":
        raise ConversionError(f"{where}: synapse='input_first', but Spyx's CuBaLIF decays the current before the input")


def _recurrent_parts(where: str, sub: ir.Graph) -> tuple[str, ir.Node, ir.Linear]:
    """Check ``sub`` is the recurrent-layer form written by to_ir; return (neuron name, neuron, w_rec)."""
    kinds: dict[type, list[str]] = {}
    for n, node in sub.nodes.items():
        known = (ir.Input, ir.Output, ir.Linear, ir.Delay, ir.IF, ir.LIF, ir.CubaLIF)
        kind = next((c for c in known if isinstance(node, c)), None)
        kinds.setdefault(kind, []).append(n)
    neurons = kinds.get(ir.IF, []) + kinds.get(ir.LIF, []) + kinds.get(ir.CubaLIF, [])
    form = (
        "input -> neuron (spike_timing='post') -> delay (1 step) -> output with neuron -> Linear w_rec -> neuron, "
        "the form talon.interop.spyx.to_ir writes for RIF/RLIF/RCuBaLIF"
    )
    singles = all(len(kinds.get(c, [])) == 1 for c in (ir.Input, ir.Output, ir.Linear, ir.Delay))
    if None in kinds or len(sub.nodes) != 5 or len(neurons) != 1 or not singles:
        raise ConversionError(f"{where}: Spyx runs a subgraph only as a recurrent layer: {form}")
    (i,), (o,), (w,), (d,), (n,) = kinds[ir.Input], kinds[ir.Output], kinds[ir.Linear], kinds[ir.Delay], neurons
    if sorted(sub.edges) != sorted([(i, n), (n, w), (w, n), (n, d), (d, o)]):
        raise ConversionError(f"{where}: its edges {sub.edges} are not {form}")
    if not np.all(sub.nodes[d].delay == 1):
        raise ConversionError(f"{where}: its Delay must be one step for every neuron ({form})")
    weight = sub.nodes[w]
    if weight.weight.shape[0] != weight.weight.shape[1]:
        raise ConversionError(f"{where}: w_rec must be square, got {weight.weight.shape}")
    return n, sub.nodes[n], weight
