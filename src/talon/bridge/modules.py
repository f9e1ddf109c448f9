"""PyTorch modules for the TALON IR nodes that have no ``torch.nn`` equivalent.

Neuron modules implement ``docs/semantics.md`` exactly: their coefficients are computed in
float64 from the IR parameters (kept unchanged on the module for a bit-exact re-export) and cast
once to the compute dtype; each step evaluates ``(beta*v + g*x) + c`` and the reset variants in
the documented order. A call is one timestep: ``spike, state = module(x, state)`` with
``state=None`` at the start. Neuron parameters are fixed buffers; gradients flow to the inputs
through the surrogate spike (``talon.bridge.spike``), so the layers around them can be trained.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talon import ir
from talon.ir.types import ResetMode, ResetTiming, SkipType, SpikeTiming

from .spike import spike

# torch.fx.symbolic_trace of these modules records spike() as one call instead of tracing into
# its autograd.Function, which would silently drop the surrogate gradient
torch.fx.wrap("spike")


def _to_tensor(arr: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float64)).to(dtype)


def _layer_view(coef: torch.Tensor, layer_shape: tuple[int, ...] | None) -> torch.Tensor:
    """Shape a per-neuron coefficient to broadcast over ``[B, *layer_shape]`` (per-channel aware)."""
    if layer_shape is not None and coef.ndim == 1 and len(layer_shape) > 1 and coef.shape[0] == layer_shape[0]:
        return coef.reshape(coef.shape[0], *([1] * (len(layer_shape) - 1)))
    return coef


class NeuronModule(nn.Module):
    """Base of the stateful modules; wraps the IR node whose parameters it keeps verbatim."""

    node_type: ClassVar[type[ir.Node]]

    def __init__(self, node: ir.Node, dtype: torch.dtype = torch.float32):
        super().__init__()
        if not isinstance(node, self.node_type):
            raise TypeError(f"{type(self).__name__} needs an ir.{self.node_type.__name__}, got {type(node).__name__}")
        self.node = node
        self._layer_shape = node.input_shape
        for name, value in self._coefficients().items():
            self.register_buffer(name, _layer_view(_to_tensor(value, dtype), self._layer_shape), persistent=False)

    def _coefficients(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def to_node(self) -> ir.Node:
        """The IR node this module computes (its parameters are never changed by training)."""
        return self.node

    def __getattr__(self, name: str) -> Any:
        # IR parameters (tau, r, v_threshold ...) read as tensors, as in the TALON docs.
        try:
            return super().__getattr__(name)
        except AttributeError:
            node = self.__dict__.get("node")
            value = getattr(node, name, None) if node is not None and name in node.params() else None
            if isinstance(value, np.ndarray):
                return torch.from_numpy(value)
            if value is not None:
                return value
            raise

    def extra_repr(self) -> str:
        return repr(self.node)


def _lif_like_coefficients(tau, r, v_leak) -> dict[str, np.ndarray]:
    tau = np.asarray(tau, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"beta": 1.0 - 1.0 / tau, "gain": np.asarray(r, np.float64) / tau, "drive": np.asarray(v_leak) / tau}


def _euler_coefficients(node: ir.LIF | ir.LI) -> dict[str, np.ndarray]:
    """``k = 1/tau``, ``r`` and ``v_leak`` of ``u = v + k·((v_leak - v) + r·x)`` (integration 'euler')."""
    tau = np.asarray(node.tau, np.float64)
    return {"k": 1.0 / tau, "r_in": np.asarray(node.r, np.float64), "v_leak_e": np.asarray(node.v_leak, np.float64)}


def _euler_step(module: NeuronModule, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v + module.k * ((module.v_leak_e - v) + module.r_in * x)


def _cuba_coefficients(node: ir.CubaLIF | ir.CubaLI) -> dict[str, np.ndarray]:
    out = _lif_like_coefficients(node.tau_mem, node.r, node.v_leak)
    tau_syn = np.asarray(node.tau_syn, np.float64)
    out.update(alpha=1.0 - 1.0 / tau_syn, syn_gain=np.asarray(node.w_in, np.float64) / tau_syn)
    return out


class _Spiking(NeuronModule):
    """Threshold, reset and timing shared by LIF, IF and CubaLIF (docs/semantics.md §3.1)."""

    def __init__(self, node: ir.Node, dtype: torch.dtype = torch.float32):
        super().__init__(node, dtype)
        self.register_buffer("v_th", _layer_view(_to_tensor(node.v_threshold, dtype), self._layer_shape), False)
        self.register_buffer("v_rst", _layer_view(_to_tensor(node.v_reset, dtype), self._layer_shape), False)
        v0 = None if node.v_init is None else _layer_view(_to_tensor(node.v_init, dtype), self._layer_shape)
        self.register_buffer("v_init0", v0, False)
        floor = None if node.v_min is None else _layer_view(_to_tensor(node.v_min, dtype), self._layer_shape)
        self.register_buffer("v_floor", floor, False)
        self.multi_spike = node.multi_spike
        self.max_spikes = node.max_spikes
        self.inclusive = node.comparison.value == ">="
        self.reset_mode = node.reset_mode
        self.reset_timing = node.reset_timing
        self.spike_pre = node.spike_timing is SpikeTiming.PRE
        self._unit_gain = bool(np.all(self.gain.numpy() == 1))
        self._no_drive = bool(np.all(self.drive.numpy() == 0))

    def _initial(self, x: torch.Tensor) -> torch.Tensor:
        """The membrane at ``t = 0`` for a batch like ``x``: ``v_init`` (0 when the node has none)."""
        v = torch.zeros_like(x)
        return v if self.v_init0 is None else v + self.v_init0

    def _crossed(self, v: torch.Tensor) -> torch.Tensor:
        """Detached threshold crossing (drives resets; no gradient, like snnTorch's reset)."""
        return (v >= self.v_th if self.inclusive else v > self.v_th).to(v.dtype)

    def _reset(self, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.reset_mode is ResetMode.VALUE:
            return torch.where(z > 0, self.v_rst, v)
        if self.reset_mode is ResetMode.SUBTRACT:
            return v - z * self.v_th
        return v

    def _membrane(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        u = self.beta * v
        u = u + (x if self._unit_gain else self.gain * x)
        return u if self._no_drive else u + self.drive

    def _fire(self, v: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One spiking update of membrane ``v`` with drive ``x``; returns (spike, new v)."""
        timing = self.reset_timing
        if timing is ResetTiming.SNNTORCH_IMMEDIATE:
            z_prev = self._crossed(v)
            u = self._reset(self._membrane(v, x), z_prev)
            z = spike(u - self.v_th, self.inclusive)
            return z, u - (z.detach() - z_prev) * self.v_th
        if timing is not ResetTiming.IMMEDIATE:
            z_prev = self._crossed(v)
            out = spike(v - self.v_th, self.inclusive) if self.spike_pre else None
            if timing is ResetTiming.DELAYED_PRE_DECAY:
                v = self._reset(v, z_prev)
            u = self._membrane(v, x)
            if timing is ResetTiming.DELAYED:
                u = self._reset(u, z_prev)
            if out is None:
                out = spike(u - self.v_th, self.inclusive)
            return out, u
        u = self._membrane(v, x)
        z = spike(u - self.v_th, self.inclusive)
        if self.multi_spike:
            z = multi_spike_count(z, u, self.v_th, self.max_spikes)
        u = self._reset(u, z.detach())
        return z, u if self.v_floor is None else membrane_floor(u, self.v_floor)


def multi_spike_count(z: torch.Tensor, u: torch.Tensor, v_th: torch.Tensor, limit: int | None = None) -> torch.Tensor:
    """``spike_mode='multi'``: ``n = (u >= theta)·floor(u/theta)`` (docs/semantics.md §3.1) from the
    binary surrogate spike ``z = spike(u - theta, inclusive=True)``.

    Forward: the count ``n``, exactly (``z + (n - z)`` of small integers). Backward: straight
    through the first spike — the gradient is ``z``'s arc-tangent surrogate, the extra spikes
    ``n - z`` are detached (Sinabs' ``MultiSpike`` instead scales a surrogate of ``v``; the
    forward values are the same). ``limit`` is ``max_spikes``."""
    n = torch.where(z.detach() > 0, torch.floor(u.detach() / v_th), torch.zeros((), dtype=u.dtype))
    if limit is not None:  # max_spikes
        n = torch.clamp_max(n, limit)
    return z + (n - z.detach())


def membrane_floor(u: torch.Tensor, v_min: torch.Tensor) -> torch.Tensor:
    """The floor ``v_min``: ``max(u - v_min, 0) + v_min`` in that order (docs/semantics.md §3.1)."""
    return torch.clamp_min(u - v_min, 0) + v_min


class LIFModule(_Spiking):
    """Leaky integrate-and-fire (``ir.LIF``): ``spike, v = module(x, v)``.

    ``LIFModule(tau, r, v_leak, v_threshold, ...)`` takes the ``ir.LIF`` arguments, or wraps a
    node: ``LIFModule.from_node(node)``. ``.beta`` is ``1 - 1/tau``.
    """

    node_type = ir.LIF

    def __init__(self, tau=None, r=1.0, v_leak=0.0, v_threshold=1.0, *, node: ir.LIF | None = None,
                 dtype: torch.dtype = torch.float32, **dynamics):  # fmt: skip
        if node is None:
            if tau is None:
                raise TypeError("LIFModule needs tau (or node=ir.LIF(...))")
            node = ir.LIF(tau=_np(tau), r=_np(r), v_leak=_np(v_leak), v_threshold=_np(v_threshold), **dynamics)
        super().__init__(node, dtype)

    @classmethod
    def from_node(cls, node: ir.LIF, dtype: torch.dtype = torch.float32) -> LIFModule:
        return cls(node=node, dtype=dtype)

    def _coefficients(self):
        out = _lif_like_coefficients(self.node.tau, self.node.r, self.node.v_leak)
        return {**out, **_euler_coefficients(self.node)} if self.node.integration == "euler" else out

    def _membrane(self, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return _euler_step(self, v, x) if self.node.integration == "euler" else super()._membrane(v, x)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        v = self._initial(x) if state is None else state
        return self._fire(v, x)


class IFModule(_Spiking):
    """Integrate-and-fire (``ir.IF``): ``u = v + r x`` then threshold and reset."""

    node_type = ir.IF

    def __init__(self, v_threshold=1.0, r=1.0, *, node: ir.IF | None = None, dtype: torch.dtype = torch.float32,
                 **dynamics):  # fmt: skip
        if node is None:
            node = ir.IF(v_threshold=_np(v_threshold), r=_np(r), **dynamics)
        super().__init__(node, dtype)

    @classmethod
    def from_node(cls, node: ir.IF, dtype: torch.dtype = torch.float32) -> IFModule:
        return cls(node=node, dtype=dtype)

    def _coefficients(self):
        r = np.asarray(self.node.r, np.float64)
        return {"beta": np.ones_like(r), "gain": r, "drive": np.zeros_like(r)}

    def _membrane(self, v, x):
        return v + (x if self._unit_gain else self.gain * x)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        v = self._initial(x) if state is None else state
        return self._fire(v, x)


class CubaLIFModule(_Spiking):
    """Current-based LIF (``ir.CubaLIF``); state ``(v, i)``: ``i = alpha i + g_s x`` feeds the membrane."""

    node_type = ir.CubaLIF

    def __init__(self, node: ir.CubaLIF, dtype: torch.dtype = torch.float32):
        super().__init__(node, dtype)
        self._unit_syn_gain = bool(np.all(self.syn_gain.numpy() == 1))
        self.input_first = node.synapse == ir.SynapseOrder.INPUT_FIRST  # i = alpha*(i + g_s*x)

    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

    def _coefficients(self):
        return _cuba_coefficients(self.node)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        v, i = (self._initial(x), torch.zeros_like(x)) if state is None else state
        gx = x if self._unit_syn_gain else self.syn_gain * x
        i = self.alpha * (i + gx) if self.input_first else self.alpha * i + gx
        z, v = self._fire(v, i)
        return z, (v, i)


class LIModule(NeuronModule):
    """Leaky integrator (``ir.LI``): ``v = (beta v + g x) + c``; outputs ``v``."""

    node_type = ir.LI
    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

    def _coefficients(self):
        out = _lif_like_coefficients(self.node.tau, self.node.r, self.node.v_leak)
        return {**out, **_euler_coefficients(self.node)} if self.node.integration == "euler" else out

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        v = torch.zeros_like(x) if state is None else state
        v = (
            _euler_step(self, v, x)
            if self.node.integration == "euler"
            else (self.beta * v + self.gain * x) + self.drive
        )
        return v, v


class CubaLIModule(NeuronModule):
    """Current-based leaky integrator (``ir.CubaLI``); state ``(v, i)``; outputs ``v``."""

    node_type = ir.CubaLI
    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

    def _coefficients(self):
        return _cuba_coefficients(self.node)

    def forward(self, x: torch.Tensor, state=None):
        v, i = (torch.zeros_like(x), torch.zeros_like(x)) if state is None else state
        i = self.alpha * i + self.syn_gain * x
        v = (self.beta * v + self.gain * i) + self.drive
        return v, (v, i)


class IntegratorModule(NeuronModule):
    """Perfect integrator (``ir.Integrator``): ``v = v + r x``; outputs ``v``."""

    node_type = ir.Integrator
    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

    def _coefficients(self):
        return {"gain": np.asarray(self.node.r, np.float64)}

    def forward(self, x: torch.Tensor, state=None):
        v = torch.zeros_like(x) if state is None else state
        v = v + self.gain * x
        return v, v


class DelayModule(NeuronModule):
    """Per-element delay (``ir.Delay``): ``y[t] = x[t - d]``; state: the last ``max(d)`` inputs."""

    node_type = ir.Delay
    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

    def __init__(self, node: ir.Delay, dtype: torch.dtype = torch.float32):
        super().__init__(node, dtype)
        self.max_delay = node.max_delay
        delay = torch.from_numpy(np.ascontiguousarray(node.delay, dtype=np.int64))
        self.register_buffer("index", _layer_view(delay, self._layer_shape), persistent=False)

    def _coefficients(self):
        return {}

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        if self.max_delay == 0:
            return x, x.new_zeros((0, *x.shape))
        history = x.new_zeros((self.max_delay, *x.shape)) if state is None else state
        stacked = torch.cat([x.unsqueeze(0), history])  # stacked[k] = x[t - k]
        index = self.index.expand(x.shape).unsqueeze(0)
        return stacked.gather(0, index).squeeze(0), stacked[: self.max_delay]


# ---- stateless modules without a torch.nn equivalent ----------------------------------------


class ThresholdModule(nn.Module):
    """``ir.Threshold``: ``z = H(x - threshold)`` with the surrogate gradient."""

    def __init__(self, node: ir.Threshold, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.node = node
        self.inclusive = node.comparison.value == ">="
        self.register_buffer("threshold", _layer_view(_to_tensor(node.threshold, dtype), node.input_shape), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spike(x - self.threshold, self.inclusive)


class ScaleModule(nn.Module):
    """``ir.Scale``: ``y = s * x`` (``s`` trainable)."""

    def __init__(self, scale: np.ndarray | torch.Tensor):
        super().__init__()
        self.scale = nn.Parameter(torch.as_tensor(np.asarray(scale), dtype=torch.float32).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class SumPool2dModule(nn.Module):
    """``ir.SumPool2d``: window sums (average pooling with divisor 1)."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size, self.stride, self.padding = tuple(kernel_size), tuple(stride), tuple(padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.avg_pool2d(x, self.kernel_size, self.stride, self.padding, divisor_override=1)


class SkipModule(nn.Module):
    """Skip merge: ``residual`` sums the inputs (edge order), ``concatenate`` concatenates them on
    the channel axis, ``passthrough`` returns its single input."""

    def __init__(self, skip_type: str | SkipType = "residual"):
        super().__init__()
        self.skip_type = SkipType(skip_type)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.skip_type is SkipType.CONCATENATE:
            return torch.cat(inputs, dim=1)
        out = inputs[0]
        for extra in inputs[1:]:
            out = out + extra
        return out

    def extra_repr(self) -> str:
        return f"skip_type={self.skip_type.value!r}"


class ConcatModule(nn.Module):
    """Concatenate the inputs (edge order) along ``dim`` (PyTorch convention, batch = dim 0)."""

    def __init__(self, dim: int = 1, num_inputs: int | None = None):
        super().__init__()
        self.dim, self.num_inputs = dim, num_inputs

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
            inputs = tuple(inputs[0])
        return torch.cat(inputs, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class ChannelSplitModule(nn.Module):
    """Split along ``dim`` into ``split_sections``; section *i* goes along outgoing edge *i*."""

    _is_multi_output = True

    def __init__(self, split_sections, dim: int = 1):
        super().__init__()
        self.split_sections = split_sections
        self.dim = dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, list(self.split_sections), dim=self.dim)

    def extra_repr(self) -> str:
        return f"split_sections={self.split_sections}, dim={self.dim}"


class SepConv2dModule(nn.Module):
    """Depthwise-separable convolution: ``pointwise(depthwise(x))``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class IRFlatten(nn.Flatten):
    """``ir.Flatten`` (IR dims exclude the batch) as ``nn.Flatten`` (dims include it)."""

    def __init__(self, start_dim: int = 0, end_dim: int = -1):
        super().__init__(start_dim + 1 if start_dim >= 0 else start_dim, end_dim + 1 if end_dim >= 0 else end_dim)


def _np(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


NEURON_MODULES: dict[type[ir.Node], type[NeuronModule]] = {
    ir.LIF: LIFModule,
    ir.IF: IFModule,
    ir.CubaLIF: CubaLIFModule,
    ir.LI: LIModule,
    ir.CubaLI: CubaLIModule,
    ir.Integrator: IntegratorModule,
    ir.Delay: DelayModule,
}
