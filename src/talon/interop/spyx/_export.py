"""Spyx -> talon: :func:`to_ir` converts a ``spyx.nn.Sequential`` into a talon graph, exactly.

Each Spyx layer becomes the talon node that computes the same thing (``docs/jax.md`` has the
table). Neurons keep Spyx's own discrete dynamics: the spike is taken from the state *before*
the update (``spike_timing='pre'``), ``V > threshold`` (``comparison='>'``), the reset subtracts
the threshold and is applied with the input of the same step (``reset_timing='delayed'``) — or
before the decay for CuBaLIF (``'delayed_pre_decay'``) — and each decay ``beta`` (clipped to
``[0, 1]`` as Spyx does on every call) becomes ``tau = r = 1/(1 - beta)`` in float64, so that the
engines' ``1 - 1/tau`` and ``r/tau`` give back ``beta`` and exactly ``1.0`` in float32. Spyx's
autograd differentiates its reset ``- s·threshold`` through the spike: ``reset_gradient='through'``.
Each neuron's ``spyx.axn`` activation becomes its ``surrogate`` (``superspike(k)``, ``arctan(k)``,
``triangular(k)`` -> ``triangle(alpha=1.0, k)``, ``boxcar``, ``tanh(k)``, ``custom()`` -> ``linear``),
checked against ``jax.grad`` of the activation; another ``custom`` backward is warned about and recorded.

A recurrent layer (RIF, RLIF, RCuBaLIF) computes ``s_t = H(V_{t-1} - theta)`` and feeds ``s_t @ W``
into the same step's update. A talon recurrent edge is one step late, so a ``'pre'`` spike fed
back through it would arrive a step too late. The layer therefore becomes a subgraph::

    input -> neuron(spike_timing='post') -> delay(1) -> output,   neuron -> w_rec -> neuron

The neuron's ``'post'`` spike of step t-1 is ``H(V_{t-1} - theta)`` — Spyx's ``s_t`` — which is
what the recurrent edge delivers at step t, and the one-step Delay turns the emitted spikes back
into Spyx's ``s_t``. (At t = 0 both give 0, which needs ``threshold >= 0``.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ... import ir
from ...ir.errors import ConversionError, UnsupportedModuleError
from ...ir.timeconst import time_constant
from ..jax._deps import require
from ._layout import Layout

SUPPORTED = (
    "flax.nnx.Linear, flax.nnx.Conv (1-d, 2-d), spyx.nn.SumPool, spyx.nn.Flatten, and the neurons IF, LIF, "
    "CuBaLIF, LI, RIF, RLIF, RCuBaLIF, PSU_LIF (AssociativeLIF)"
)
# Spyx subtracts its spike `s·θ` without stopping its gradient: reset_gradient='through'
SPYX_DYNAMICS = {"reset_mode": "subtract", "spike_timing": "pre", "comparison": ">", "reset_gradient": "through"}


def to_ir(model: Any, input_shape: Any) -> ir.Graph:
    """Convert a Spyx model to a talon graph that computes exactly the same thing.

    ``model``: a ``spyx.nn.Sequential`` (nested Sequentials are flattened) or a single layer.
    ``input_shape``: the per-sample input shape as Spyx sees it (channels-last, no batch), e.g.
    ``(128,)`` or ``(28, 28, 1)``; ``{"input": shape}`` is accepted too.

    The graph is channels-first (talon's convention, like NIR): an ``(H, W, C)`` Spyx input is a
    ``(C, H, W)`` graph input, and so are spatial outputs; conv kernels, per-neuron parameters and
    the dense weight after a Flatten are permuted to match. Node ``layer_<i>`` is the Sequential's
    layer ``i``. Raises :class:`~talon.ir.UnsupportedModuleError` for a layer talon cannot
    represent and :class:`~talon.ir.ConversionError` when a layer's configuration cannot be
    represented exactly, naming the layer.
    """
    nnx = require("flax.nnx")
    require("spyx.nn")
    shape = _input_shape(input_shape)
    layers = _layers(model, nnx)
    builder = _Builder(Layout(shape))
    for name, layer in layers:
        builder.add(name, layer)
    if builder.layout.permuted:
        raise ConversionError(
            f"the model ends with flattened features (after {builder.flatten_name!r}) that no Linear layer reorders: "
            "Spyx flattens (H, W, C) and talon (C, H, W), and talon has no transpose node; end the model with "
            "a layer after the Flatten that mixes the features (e.g. nnx.Linear), or drop the final Flatten"
        )
    graph = builder.finish()
    _check_against_spyx(model, shape, graph)
    return graph


def _input_shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, Mapping):
        if len(value) != 1:
            raise ValueError(f"input_shape: give one shape (or {{'input': shape}}), got {dict(value)!r}")
        value = next(iter(value.values()))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        shape = tuple(int(d) for d in np.asarray(value).reshape(-1))
    except (TypeError, ValueError):
        raise ValueError(f"input_shape must be a tuple of positive ints, got {value!r}") from None
    if not shape or any(d < 1 for d in shape) or np.asarray(value).dtype.kind not in "iu":
        raise ValueError(f"input_shape must be a tuple of positive ints (no batch axis), got {value!r}")
    return shape


def _layers(model: Any, nnx) -> list[tuple[str, Any]]:
    def walk(obj, prefix: str) -> list[tuple[str, Any]]:
        if isinstance(obj, nnx.Sequential):
            out = []
            for i, layer in enumerate(obj.layers):
                out.extend(walk(layer, f"{prefix}_{i}"))
            return out
        return [(prefix, obj)]

    if isinstance(model, nnx.Sequential):
        if not model.layers:
            raise ValueError("the Sequential has no layers")
        return walk(model, "layer")
    return [("layer_0", model)]


class _Builder:
    """Appends talon nodes for Spyx layers to a chain, tracking the tensor's layout."""

    def __init__(self, layout: Layout):
        self.layout = self.input_layout = layout
        self.nodes: dict[str, ir.Node] = {"input": ir.Input(np.array(layout.talon_shape))}
        self.edges: list[tuple[str, str]] = []
        self.prev = "input"
        self.flatten_name: str | None = None
        self.snn = require("spyx.nn")
        self.nnx = require("flax.nnx")

    def finish(self) -> ir.Graph:
        self.nodes["output"] = ir.Output(np.array(self.layout.talon_shape))
        self.edges.append((self.prev, "output"))
        meta = {
            "source": "spyx",
            "spyx_version": str(require("spyx").__version__),
            "spyx_input_shape": tuple(self.input_layout.spyx_shape),
            "note": "channels-first (C, H, W); the Spyx model is channels-last (H, W, C)",
        }
        return ir.Graph(self.nodes, self.edges, metadata=meta)

    def _append(self, name: str, node: ir.Node, layer: Any) -> None:
        node.metadata = {**node.metadata, "spyx_layer": type(layer).__name__}
        self.nodes[name] = node
        self.edges.append((self.prev, name))
        self.prev = name

    def add(self, name: str, layer: Any) -> None:
        snn, nnx = self.snn, self.nnx
        where = f"{name} ({type(layer).__name__})"
        phasor = require("spyx.phasor")
        if isinstance(layer, phasor.ResonateFire):
            raise UnsupportedModuleError(
                f"{where}: ResonateFire is a complex-valued resonate-and-fire neuron (pole exp(dt (-lambda + i "
                "omega))); talon IR has no oscillatory primitive, so it cannot be represented without losing its "
                "dynamics"
            )
        if isinstance(layer, snn.ALIF):
            raise UnsupportedModuleError(f"{where}: adaptive-threshold neurons have no talon IR primitive")
        if isinstance(layer, snn.ActivityRegularization):
            raise UnsupportedModuleError(
                f"{where}: it only counts spikes for a training loss; remove it from the Sequential before export"
            )
        handlers = [
            (nnx.Linear, self._linear),
            (nnx.Conv, self._conv),
            (snn.SumPool, self._sumpool),
            (snn.Flatten, self._flatten),
            ((snn.RIF, snn.RLIF, snn.RCuBaLIF), self._recurrent),
            (snn.PSU_LIF, self._psu),
            ((snn.IF, snn.LIF, snn.CuBaLIF, snn.LI), self._neuron),
        ]
        for cls, handler in handlers:
            if isinstance(layer, cls):
                handler(name, layer, where)
                return
        raise UnsupportedModuleError(f"{where}: no talon equivalent; supported layers: {SUPPORTED}")

    # ---- stateless layers -----------------------------------------------------------------

    def _linear(self, name: str, layer, where: str) -> None:
        _check_float32(layer, where)
        kernel = _array(layer.kernel, where, "kernel")
        n_in, n_out = kernel.shape
        if self.layout.spyx_shape[-1] != n_in:
            raise ConversionError(
                f"{where}: expects {n_in} input features, its input has shape {self.layout.spyx_shape}"
            )
        bias = _array(layer.bias, where, "bias") if layer.bias is not None else None
        if self.layout.rank == 1:
            weight = self.layout.dense_in_columns(kernel.T)
            node = ir.Affine(weight, bias) if bias is not None else ir.Linear(weight)
            self._append(name, node, layer)
            self.layout = Layout((n_out,))
            return
        # a Linear on a (..., C) tensor mixes channels only: a 1x1 convolution in talon
        if self.layout.rank not in (2, 3):
            raise ConversionError(f"{where}: talon has no convolution for a {self.layout.rank}-d input")
        weight = kernel.T.reshape((n_out, n_in) + (1,) * (self.layout.rank - 1))
        cls = ir.Conv1d if self.layout.rank == 2 else ir.Conv2d
        self._append(name, cls(weight, bias), layer)
        self.layout = Layout((*self.layout.spyx_shape[:-1], n_out))

    def _conv(self, name: str, layer, where: str) -> None:
        lax = require("jax.lax")
        _check_float32(layer, where)
        if layer.conv_general_dilated is not lax.conv_general_dilated:
            raise ConversionError(f"{where}: a custom conv_general_dilated cannot be represented")
        kernel_size = tuple(layer.kernel_size)
        nd = len(kernel_size)
        if nd not in (1, 2) or self.layout.rank != nd + 1:
            raise ConversionError(
                f"{where}: talon has Conv1d and Conv2d; this is a {nd}-d convolution on an input of shape "
                f"{self.layout.spyx_shape}"
            )
        strides, in_dil, dilation = (
            _per_axis(v, nd) for v in (layer.strides, layer.input_dilation, layer.kernel_dilation)
        )
        if any(d != 1 for d in in_dil):
            raise ConversionError(
                f"{where}: input_dilation {in_dil} (a transposed convolution) has no talon equivalent"
            )
        kernel = _array(layer.kernel, where, "kernel")
        channels = self.layout.spyx_shape[-1]
        if kernel.shape[-2] * int(layer.feature_group_count) != channels:
            raise ConversionError(
                f"{where}: expects {kernel.shape[-2] * layer.feature_group_count} input channels, its input has "
                f"shape {self.layout.spyx_shape}"
            )
        if layer.mask is not None:  # flax multiplies the kernel by the mask in float32 before the convolution
            kernel = (kernel * np.asarray(layer.mask, np.float32)).astype(np.float32)
        spatial = self.layout.spyx_shape[:-1]
        span = tuple(d * (k - 1) + 1 for k, d in zip(kernel_size, dilation, strict=True))
        pads = _explicit_padding(layer.padding, spatial, span, strides, where)
        padding = _symmetric(pads, spatial, span, strides, where)
        weight = np.ascontiguousarray(np.moveaxis(kernel, (-1, -2), (0, 1)))  # HWIO -> OIHW
        bias = _array(layer.bias, where, "bias") if layer.bias is not None else None
        cls = ir.Conv1d if nd == 1 else ir.Conv2d
        geometry = (strides[0], padding[0], dilation[0]) if nd == 1 else (strides, padding, dilation)
        node = cls(weight, bias, *geometry, groups=int(layer.feature_group_count))
        node.infer_types([self.layout.talon_shape])
        self._append(name, node, layer)
        c, *out_spatial = node.output_shape
        self.layout = Layout((*out_spatial, c))

    def _sumpool(self, name: str, layer, where: str) -> None:
        lax = require("jax.lax")
        if self.layout.rank != 3:
            raise ConversionError(
                f"{where}: talon's SumPool2d pools (H, W, C) inputs, got shape {self.layout.spyx_shape}"
            )
        ndim = 4
        window = _spyx_window(layer.window_shape, ndim, layer.channel_axis, where)
        strides = _spyx_window(layer.strides, ndim, layer.channel_axis, where)
        if window[0] != 1 or window[-1] != 1 or strides[0] != 1 or strides[-1] != 1:
            raise ConversionError(
                f"{where}: its window {window} / strides {strides} reach across the batch or channel axis; "
                "talon's SumPool2d pools the spatial axes only (use channel_axis=-1)"
            )
        if layer.padding not in ("SAME", "VALID"):
            raise ConversionError(f"{where}: padding must be 'SAME' or 'VALID', got {layer.padding!r}")
        spatial = self.layout.spyx_shape[:-1]
        pads = lax.padtype_to_pads(spatial, window[1:3], strides[1:3], layer.padding)
        padding = _symmetric([tuple(p) for p in pads], spatial, window[1:3], strides[1:3], where)
        node = ir.SumPool2d(kernel_size=window[1:3], stride=strides[1:3], padding=padding)
        node.infer_types([self.layout.talon_shape])
        self._append(name, node, layer)
        c, *out_spatial = node.output_shape
        self.layout = Layout((*out_spatial, c))

    def _flatten(self, name: str, layer, where: str) -> None:
        self._append(name, ir.Flatten(start_dim=0, end_dim=-1), layer)
        if self.layout.rank >= 2:
            self.flatten_name = name
        self.layout = self.layout.flattened()

    # ---- neurons ------------------------------------------------------------------------------

    def _neuron_arrays(self, layer, where: str, *decays: str) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Spyx-clipped decays and the threshold, as float32 arrays in talon layout."""
        hidden = tuple(getattr(layer, "hidden_shape", None) or layer.layer_shape)
        if hidden != self.layout.spyx_shape:
            raise ConversionError(
                f"{where}: its hidden shape {hidden} is not the shape of its input {self.layout.spyx_shape}"
            )
        out = []
        for attr in decays:
            value = np.clip(_array(getattr(layer, attr), where, attr), 0.0, 1.0)  # as Spyx, on every call
            out.append(self._per_neuron(value, where, attr))
        theta = None
        if hasattr(layer, "threshold"):
            _check_heaviside(layer, where)
            theta = self._per_neuron(np.asarray(layer.threshold).astype(np.float32), where, "threshold")
        return out, theta

    def _per_neuron(self, value: np.ndarray, where: str, attr: str) -> np.ndarray:
        try:
            return self.layout.to_talon(np.asarray(value, np.float32))
        except ValueError:
            raise ConversionError(
                f"{where}: {attr} of shape {np.shape(value)} does not broadcast to the layer shape "
                f"{self.layout.spyx_shape}"
            ) from None

    def _tau(self, decay: np.ndarray, where: str, attr: str) -> np.ndarray:
        try:
            tau, _ = time_constant(decay, (np.ones_like(decay),), np.float32)
        except ValueError as exc:
            raise ConversionError(f"{where}: {attr}: {exc}") from None
        return tau

    def _spiking(self, layer, where: str, **timing) -> ir.Node:
        snn = self.snn
        if isinstance(layer, (snn.IF, snn.RIF)):
            _, theta = self._neuron_arrays(layer, where)
            return ir.IF(v_threshold=theta, r=np.ones_like(theta), **{**SPYX_DYNAMICS, **timing},
                         **_surrogate(layer, where))  # fmt: skip
        if isinstance(layer, (snn.LIF, snn.RLIF)):
            (beta,), theta = self._neuron_arrays(layer, where, "beta")
            tau = self._tau(beta, where, "beta")
            dynamics = {**SPYX_DYNAMICS, **timing}
            return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros_like(theta), v_threshold=theta, **dynamics,
                          **_surrogate(layer, where))  # fmt: skip
        (alpha, beta), theta = self._neuron_arrays(layer, where, "alpha", "beta")
        if self.layout.rank != 1:
            raise ConversionError(
                f"{where}: Spyx's CuBaLIF keeps (V, I) concatenated on the last axis and its initial_state "
                f"doubles every axis, so it only runs on 1-d layers; this one has shape {self.layout.spyx_shape}"
            )
        tau_syn, tau_mem = self._tau(alpha, where, "alpha"), self._tau(beta, where, "beta")
        dynamics = {**SPYX_DYNAMICS, **timing, "reset_timing": "delayed_pre_decay"}
        return ir.CubaLIF(
            tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem.copy(), w_in=tau_syn.copy(),
            v_leak=np.zeros_like(theta), v_threshold=theta, **dynamics, **_surrogate(layer, where),
        )  # fmt: skip

    def _neuron(self, name: str, layer, where: str) -> None:
        if isinstance(layer, self.snn.LI):
            (beta,), _ = self._neuron_arrays(layer, where, "beta")
            tau = self._tau(beta, where, "beta")
            node = ir.LI(tau=tau, r=tau.copy(), v_leak=np.zeros_like(beta))
        else:
            node = self._spiking(layer, where, reset_timing="delayed")
        self._append(name, node, layer)

    def _psu(self, name: str, layer, where: str) -> None:
        # V = beta V + x; s = H(V - theta) on the new V; no reset
        (beta,), theta = self._neuron_arrays(layer, where, "beta")
        tau = self._tau(beta, where, "beta")
        node = ir.LIF(
            tau=tau, r=tau.copy(), v_leak=np.zeros_like(beta), v_threshold=theta,
            reset_mode="none", reset_timing="immediate", spike_timing="post", comparison=">",
            **_surrogate(layer, where),
        )  # fmt: skip
        self._append(name, node, layer)

    def _recurrent(self, name: str, layer, where: str) -> None:
        if self.layout.rank != 1:
            raise ConversionError(f"{where}: recurrent layers need a 1-d input, got shape {self.layout.spyx_shape}")
        neuron = self._spiking(layer, where, reset_timing="delayed", spike_timing="post")
        if np.any(neuron.v_threshold < 0):
            raise ConversionError(
                f"{where}: a negative threshold makes Spyx spike at t = 0 from the zero state, which the "
                "recurrent-edge form (zero at t = 0) cannot reproduce"
            )
        w = _array(layer.recurrent_w, where, "recurrent_w")
        n = self.layout.spyx_shape[0]
        if w.shape != (n, n):
            raise ConversionError(f"{where}: recurrent_w has shape {w.shape}, expected {(n, n)}")
        shape = np.array(self.layout.talon_shape)
        sub = ir.Graph(
            {
                "input": ir.Input(shape),
                "neuron": neuron,
                "w_rec": ir.Linear(self.layout.recurrent_to_talon(w)),
                "delay": ir.Delay(delay=np.ones(self.layout.talon_shape, np.int64)),
                "output": ir.Output(shape),
            },
            [("input", "neuron"), ("neuron", "w_rec"), ("w_rec", "neuron"), ("neuron", "delay"), ("delay", "output")],
            metadata={"spyx_layer": type(layer).__name__},
        )
        self.nodes[name] = sub
        self.edges.append((self.prev, name))
        self.prev = name


# ---- helpers ----------------------------------------------------------------------------------


def _array(value, where: str, attr: str) -> np.ndarray:
    if isinstance(value, require("flax.nnx").Variable):
        value = value[...]
    arr = np.array(value)  # an owned, writable copy (numpy views of JAX arrays are read-only)
    if arr.dtype != np.float32:
        raise ConversionError(f"{where}: {attr} has dtype {arr.dtype}; talon converts float32 Spyx models")
    return arr


def _check_float32(layer, where: str) -> None:
    dtype = getattr(layer, "dtype", None)
    if dtype is not None and np.dtype(dtype) != np.float32:
        raise ConversionError(f"{where}: computes in {np.dtype(dtype)}; talon converts float32 Spyx models")
    if getattr(layer, "preferred_element_type", None) is not None:
        raise ConversionError(f"{where}: preferred_element_type is set; talon converts plain float32 layers")
    lax = require("jax.lax")
    if hasattr(layer, "dot_general") and layer.dot_general is not lax.dot_general:
        raise ConversionError(f"{where}: a custom dot_general (e.g. quantization) cannot be represented")


def _check_heaviside(layer, where: str) -> None:
    """A Spyx neuron's activation must spike exactly on ``x > 0`` (the forward of every spyx.axn surrogate)."""
    jnp = require("jax.numpy")
    probe = jnp.array([-1.0, -1e-30, 0.0, 1e-30, 1.0], jnp.float32)
    try:
        got = np.asarray(layer.spike(probe))
    except Exception as exc:  # a custom activation may fail on the probe
        raise ConversionError(f"{where}: its activation could not be evaluated ({exc})") from None
    if got.shape != probe.shape or not np.array_equal(got, [0, 0, 0, 1, 1]):
        raise ConversionError(
            f"{where}: its activation's forward pass is not the Heaviside step H(x) = [x > 0] "
            "(talon neurons spike on v > threshold); use a spyx.axn surrogate"
        )


# spyx.axn factory -> the TALON IR surrogate of its backward (the numbers its closure holds)
_SPYX_SURROGATES = {
    "superspike": lambda c: ir.format_surrogate("superspike", k=float(c["k"])),
    "arctan": lambda c: ir.format_surrogate("arctan", k=float(c["k_pi"]) / math.pi),
    "triangular": lambda c: ir.format_surrogate("triangle", alpha=1.0, k=float(c["k"])),
    "boxcar": lambda c: ir.format_surrogate("boxcar", width=2 * float(c["k"]), height=float(c["h"])),
    "tanh": lambda c: ir.format_surrogate("tanh", k=float(c["k"])),
}


def _activation_parts(activation) -> tuple[Any, dict] | None:
    """``(bwd, its closure numbers)`` of a ``spyx.axn`` activation: ``jax.jit`` of the
    ``jax.custom_gradient`` of ``custom(bwd, fwd)``'s ``f``; None for anything else."""
    import inspect

    try:
        wrapped = activation.__wrapped__.__wrapped__  # jit -> custom_gradient -> its wrapper
        fun = inspect.getclosurevars(wrapped).nonlocals["fun"]
        bwd = inspect.getclosurevars(fun).nonlocals["bwd"]
        return bwd, dict(inspect.getclosurevars(bwd).nonlocals) if bwd.__closure__ else {}
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def _surrogate(layer, where: str) -> dict:
    """``{"surrogate": text}`` for the ``spyx.axn`` activation the layer trains with, checked against
    ``jax.grad`` of the activation on probe points; for one TALON IR cannot state (a ``custom`` backward),
    a warning and ``metadata['spyx_activation']`` (the node then keeps the default ``atan(alpha=2.0)``)."""
    import warnings

    parts = _activation_parts(layer.spike)
    text, described = None, getattr(layer.spike, "__name__", type(layer.spike).__name__)
    if parts is not None:
        bwd, closure = parts
        name = bwd.__qualname__.split(".<locals>.")[0]
        described = f"{bwd.__qualname__}({', '.join(f'{k}={v!r}' for k, v in closure.items())})"
        try:
            if isinstance(getattr(bwd, "talon_surrogate", None), str):  # a model talon's from_ir built
                text = bwd.talon_surrogate
            elif bwd.__module__ == "spyx.axn" and name in _SPYX_SURROGATES:
                text = _SPYX_SURROGATES[name](closure)
            elif bwd.__module__ == "spyx.axn" and name == "<lambda>" and bwd.__qualname__ == "<lambda>":
                text = "linear"  # custom()'s default backward, lambda x: x (the gradient g*x)
        except (KeyError, TypeError, ValueError):
            text = None
        if text is not None and not _jax_backward_matches(layer.spike, text):
            text = None
    if text is not None:
        return {"surrogate": text}
    warnings.warn(
        f"{where}: its activation's surrogate gradient ({described}) has no TALON IR form: the forward is exact, "
        f"but talon's engines train this neuron with {ir.DEFAULT_SURROGATE} (docs/jax.md); recorded in the node's "
        "metadata['spyx_activation']",
        UserWarning,
        stacklevel=2,
    )
    return {"metadata": {"spyx_activation": described}}


def _jax_backward_matches(activation, surrogate: str) -> bool:
    """Whether ``jax.grad`` of the activation is talon's ``surrogate`` on probe points (float32 rounding)."""
    jax, jnp = require("jax"), require("jax.numpy")
    from ..jax.spike import surrogate_derivative

    x = jnp.asarray([-40.0, -3.0, -1.0, -0.7, -0.3, -0.1, -0.02, 0.0, 0.02, 0.1, 0.3, 0.7, 1.0, 3.0, 40.0], jnp.float32)
    try:
        got = np.asarray(jax.vmap(jax.grad(lambda v: activation(v)))(x))
    except Exception:  # a custom activation may fail on the probe
        return False
    want = np.asarray(surrogate_derivative(surrogate)(x))
    return bool(np.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True))


def _per_axis(value, nd: int) -> tuple[int, ...]:
    if value is None:
        value = 1
    if isinstance(value, (int, np.integer)):
        return (int(value),) * nd
    return tuple(int(v) for v in value)


def _explicit_padding(padding, spatial, span, strides, where: str) -> list[tuple[int, int]]:
    lax = require("jax.lax")
    canonicalize = require("flax.nnx.nn.linear").canonicalize_padding
    try:
        pads = canonicalize(padding, len(spatial))
    except ValueError as exc:
        raise ConversionError(f"{where}: {exc}") from None
    if isinstance(pads, str):
        if pads not in ("SAME", "VALID", "SAME_LOWER"):
            raise ConversionError(
                f"{where}: padding {pads!r} (wrap-around, reflection or causal) has no talon equivalent; "
                "talon convolutions pad with zeros on both sides"
            )
        return [tuple(p) for p in lax.padtype_to_pads(spatial, span, strides, pads)]
    return [(int(lo), int(hi)) for lo, hi in pads]


def _symmetric(pads, spatial, span, strides, where: str) -> tuple[int, ...]:
    """The symmetric talon padding whose windows are exactly those of the (low, high) padding, or raise."""
    out = []
    for (lo, hi), n, k, s in zip(pads, spatial, span, strides, strict=True):
        if lo < 0 or hi < 0 or (n + lo + hi - k) // s != (n + 2 * lo - k) // s or n + 2 * lo < k:
            raise ConversionError(
                f"{where}: padding ({lo}, {hi}) on an axis of {n} (window {k}, stride {s}) is asymmetric; talon "
                "pads both sides equally — give explicit symmetric padding or a size that makes 'SAME' symmetric"
            )
        out.append(lo)
    return tuple(out)


def _spyx_window(size, ndim: int, channel_axis, where: str) -> tuple[int, ...]:
    """``spyx.nn._infer_shape``: the full window (or strides) Spyx's sum_pool uses on a rank-``ndim`` batch."""
    if channel_axis and not 0 <= abs(channel_axis) < ndim:
        raise ConversionError(f"{where}: invalid channel_axis {channel_axis} for a rank-{ndim} input")
    if channel_axis and channel_axis < 0:
        channel_axis = ndim + channel_axis
    if isinstance(size, (int, np.integer)):
        return (1, *(int(size) if d != channel_axis else 1 for d in range(1, ndim)))
    size = tuple(int(s) for s in size)
    if len(size) < ndim:
        spatial = [d for d in range(ndim) if d != 0 and d != channel_axis]
        if len(size) == len(spatial):
            window = [1] * ndim
            for axis, s in zip(spatial, size, strict=True):
                window[axis] = s
            return tuple(window)
        return (1,) * (ndim - len(size)) + size
    if len(size) != ndim:
        raise ConversionError(f"{where}: window {size} does not fit a rank-{ndim} input")
    return size


def _check_against_spyx(model, shape: tuple[int, ...], graph: ir.Graph) -> None:
    """Trace the Spyx model on the input shape (no computation) and compare the output shape."""
    jax = require("jax")
    snn = require("spyx.nn")
    runnable = model if hasattr(model, "initial_state") else snn.Sequential(model)
    try:
        out = jax.eval_shape(lambda x: snn.run(runnable, x)[0], jax.ShapeDtypeStruct((1, 1, *shape), np.float32))
    except Exception as exc:
        raise ConversionError(f"the Spyx model does not run on inputs of shape {shape}: {exc}") from None
    expected = Layout.from_talon(graph.nodes["output"].shape).spyx_shape
    if tuple(out.shape[2:]) != expected:  # a bug in the conversion, not in the model
        raise ConversionError(f"internal error: Spyx gives outputs of shape {out.shape[2:]}, the graph {expected}")
