"""PyTorch modules for the TALON IR nodes that have no ``torch.nn`` equivalent.

Neuron modules implement ``docs/semantics.md`` exactly: their coefficients are computed in
float64 from the IR parameters (``talon.ir.coefficients``; the node is kept on the module for a
bit-exact re-export) and cast once to the compute dtype; each step evaluates ``(beta*v + g*x) + c``
and the reset variants in the documented order. A call is one timestep: ``spike, state =
module(x, state)`` with ``state=None`` at the start. Neuron parameters are buffers (saved in
``state_dict``, no gradient); an edited one (threshold balancing) is what the module computes and
what ``to_node`` exports. Gradients flow to the inputs through the surrogate spike
(``talon.bridge.spike``), so the layers around them can be trained.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talon import ir
from talon.ir.coefficients import STATEFUL, fields_from_coefficients, keep_dtype, neuron_coefficients
from talon.ir.errors import ConversionError
from talon.ir.types import ResetGradient, ResetMode, ResetTiming, SkipType, SpikeTiming

from .reset_gradient import value_reset_through
from .spike import spike, surrogate_backward

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


def _param_form(value: torch.Tensor, shape: tuple[int, ...], layer_shape: tuple[int, ...] | None,
                where: str) -> np.ndarray:  # fmt: skip
    """A buffer's values in the shape of the IR parameter (``shape``) it came from; a buffer given
    another shape keeps its own (a per-channel view ``(C, 1, 1)`` becomes ``(C,)``)."""
    arr = numpy_values(value, where)
    if arr.size == int(np.prod(shape)):
        return arr.reshape(shape)
    if arr.size == 1:
        return arr.reshape(())
    if (
        layer_shape is not None
        and len(layer_shape) > 1
        and arr.ndim == len(layer_shape)
        and arr.shape[1:] == (1,) * (arr.ndim - 1)
    ):
        return arr.reshape(arr.shape[0])
    return arr


def numpy_values(tensor: torch.Tensor, where: str) -> np.ndarray:
    """A tensor's values as a numpy array of the same dtype (detached, on the CPU); a bfloat16 tensor,
    which numpy and TALON IR cannot hold, raises :class:`ConversionError` naming ``where``."""
    if tensor.dtype == torch.bfloat16:
        raise ConversionError(
            f"{where}: a bfloat16 tensor has no TALON IR dtype (numpy has no bfloat16); every bfloat16 value is "
            "exact in float32: export the model converted with .float(), and import the graph with "
            "ir_to_torch(graph, dtype=torch.bfloat16) to compute in bfloat16 again"
        )
    return tensor.detach().cpu().numpy().copy()


def _numpy_dtype(tensor: torch.Tensor, where: str) -> np.dtype:
    return numpy_values(tensor.reshape(-1)[:0], where).dtype


# the PyTorch modules' buffer name of each coefficient of talon.ir.coefficients
_BUFFER_OF = {"beta": "beta", "g": "gain", "c": "drive", "alpha": "alpha", "gs": "syn_gain", "k": "k",
              "r": "r_in", "v_leak": "v_leak_e", "theta": "v_th", "v_reset": "v_rst"}  # fmt: skip


class _SavedBuffers(nn.Module):
    """Loads a ``state_dict`` saved by an earlier talon, which kept the neuron coefficients and
    thresholds out of it: a buffer missing there keeps the value built from the node."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):  # fmt: skip
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers_set and prefix + name not in state_dict:
                state_dict[prefix + name] = buffer
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)  # fmt: skip


class NeuronModule(_SavedBuffers):
    """Base of the stateful modules; wraps the IR node it was built from.

    The per-step coefficients (``beta``, ``gain``, ``drive``, ``v_th`` …) are buffers computed from
    the node (``talon.ir.coefficients``) and saved in ``state_dict``; editing one (threshold
    balancing, a calibrated decay) changes what the module computes, and :meth:`to_node` writes the
    edit back into the node's fields exactly, or refuses.
    """

    node_type: ClassVar[type[ir.Node]]

    def __init__(self, node: ir.Node, dtype: torch.dtype = torch.float32):
        super().__init__()
        if not isinstance(node, self.node_type):
            raise TypeError(f"{type(self).__name__} needs an ir.{self.node_type.__name__}, got {type(node).__name__}")
        self.node = node
        self._layer_shape = node.input_shape
        self._flags: dict[str, tuple[torch.Tensor, int, bool]] = {}
        for name, value in self._buffer_values(node).items():
            if value is not None:
                value = (
                    _to_tensor(value, dtype) if value.dtype.kind == "f" else torch.from_numpy(value.astype(np.int64))
                )
                value = _layer_view(value, self._layer_shape)
            self.register_buffer(name, value)

    def _coefficients_of(self, node: ir.Node) -> dict[str, np.ndarray]:
        """``{buffer name: float64 coefficient}`` of ``node``."""
        if not isinstance(node, STATEFUL):
            return {}
        return {_BUFFER_OF[k]: v for k, v in neuron_coefficients(node, np.float64).items()}

    # ---- flags of the fast paths, re-evaluated when their buffer is edited -----------------------

    def _all_equal(self, name: str, value: float) -> bool:
        tensor = self._buffers.get(name)
        if tensor is None:
            return True
        try:
            version = tensor._version
        except RuntimeError:  # an inference tensor tracks no version: evaluate every time
            return bool(torch.all(tensor == value))
        cached = self._flags.get(name)
        if cached is None or cached[0] is not tensor or cached[1] != version:
            cached = self._flags[name] = (tensor, version, bool(torch.all(tensor == value)))
        return cached[2]

    @property
    def _unit_gain(self) -> bool:
        return self._all_equal("gain", 1.0)

    @property
    def _no_drive(self) -> bool:
        return self._all_equal("drive", 0.0)

    @property
    def _unit_syn_gain(self) -> bool:
        return self._all_equal("syn_gain", 1.0)

    # ---- export --------------------------------------------------------------------------------

    def to_node(self, where: str | None = None) -> ir.Node:
        """The IR node this module computes now: its node, with the fields of edited buffers written
        back exactly (``tau = 1/(1 - beta)``, ``r = gain·tau`` … as ``talon.ir.coefficients``).

        Raises :class:`~talon.ir.ConversionError` naming ``where`` (e.g. ``"node 'lif1'"``) when an
        edited buffer has no exact IR form (a decay above 1, a bfloat16 buffer …).
        """
        where = where or f"{type(self).__name__} of an ir.{type(self.node).__name__}"
        node = self.node
        edited = [n for n, v in self._buffer_values(node).items() if not self._holds(n, v)]
        if not edited:
            return node
        if any(self._buffers.get(n) is None for n in edited):
            raise ConversionError(f"{where}: buffer(s) {edited} were removed; restore them")
        fields: dict[str, Any] = {}
        if isinstance(node, STATEFUL):
            dtype = _numpy_dtype(self._buffers["gain" if "gain" in self._buffers else "k"], where)
            old = neuron_coefficients(node, dtype)
            new = {}
            for k, v in old.items():
                buffer = self._buffers[_BUFFER_OF[k]]
                if buffer.dtype != self._buffers[_BUFFER_OF[next(iter(old))]].dtype:
                    raise ConversionError(f"{where}: buffer {_BUFFER_OF[k]!r} has another dtype than the others")
                new[k] = _param_form(buffer, v.shape, self._layer_shape, where)
            fields.update(fields_from_coefficients(node, where, new, dtype))
        for name, field_name in self._constant_fields.items():
            if name in edited:
                original = getattr(node, field_name)
                value = _param_form(self._buffers[name], np.shape(original), self._layer_shape, where)
                fields[field_name] = value if original is None else keep_dtype(original, value)
        try:
            exported = type(node)(**{**node.params(), **fields}, input_type=node.input_type,
                                  metadata=copy.deepcopy(node.metadata))  # fmt: skip
        except ValueError as exc:
            raise ConversionError(
                f"{where}: the edited buffers {edited} do not make a valid {type(node).__name__}: {exc}"
            ) from None
        unexact = [n for n, v in self._buffer_values(exported).items() if not self._holds(n, v)]
        if unexact:  # e.g. a per-neuron edit of a value shared through a broadcast
            raise ConversionError(f"{where}: the edited buffer(s) {unexact} have no exact {type(node).__name__} fields")
        return exported

    #: ``{buffer: node field}`` of the node's constants held as buffers as they are (``v_init`` …)
    _constant_fields: ClassVar[dict[str, str]] = {}

    def _buffer_values(self, node: ir.Node) -> dict[str, np.ndarray | None]:
        """``{buffer name: value}`` the buffers hold for ``node`` (before the cast to their dtype)."""
        out: dict[str, np.ndarray | None] = dict(self._coefficients_of(node))
        for name, field_name in self._constant_fields.items():
            value = getattr(node, field_name)
            out[name] = None if value is None else np.asarray(value)
        return out

    def _holds(self, name: str, value: np.ndarray | None) -> bool:
        """Whether buffer ``name`` holds ``value`` as it was built: cast to the buffer's dtype, or
        through the dtype the module was built in before ``.to(dtype)`` (``executor.double()``
        after an import in float32 keeps the float32 values: not an edit)."""
        buffer = self._buffers.get(name)
        if buffer is None or value is None:
            return buffer is None and value is None
        current = buffer.detach().cpu()
        if value.dtype.kind != "f":
            built = torch.from_numpy(np.ascontiguousarray(value)).to(buffer.dtype)
            return torch.equal(current, _layer_view(built, self._layer_shape))
        for via in dict.fromkeys((buffer.dtype, torch.float32, torch.float64, torch.float16, torch.bfloat16)):
            built = _to_tensor(value, via).to(buffer.dtype)
            if torch.equal(current, _layer_view(built, self._layer_shape)):
                return True
        return False

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


def _euler_step(module: NeuronModule, v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v + module.k * ((module.v_leak_e - v) + module.r_in * x)


class _Spiking(NeuronModule):
    """Threshold, reset and timing shared by LIF, IF and CubaLIF (docs/semantics.md §3.1)."""

    _constant_fields: ClassVar[dict[str, str]] = {"v_init0": "v_init", "v_floor": "v_min"}

    def __init__(self, node: ir.Node, dtype: torch.dtype = torch.float32):
        super().__init__(node, dtype)
        self.multi_spike = node.multi_spike
        self.max_spikes = node.max_spikes
        self.inclusive = node.comparison.value == ">="
        self.reset_mode = node.reset_mode
        self.reset_timing = node.reset_timing
        self.spike_pre = node.spike_timing is SpikeTiming.PRE
        # 'through': the spike in a reset carries its surrogate (talon.bridge.reset_gradient)
        self.reset_through = node.reset_gradient is ResetGradient.THROUGH
        self.surrogate = node.surrogate  # the spike's backward (talon.bridge.spike); ir_to_torch(surrogate=) overrides
        surrogate_backward(self.surrogate)  # made now, not inside a torch.compile trace

    def _initial(self, x: torch.Tensor) -> torch.Tensor:
        """The membrane at ``t = 0`` for a batch like ``x``: ``v_init`` (0 when the node has none)."""
        v = torch.zeros_like(x)
        return v if self.v_init0 is None else v + self.v_init0

    def _crossed(self, v: torch.Tensor) -> torch.Tensor:
        """The threshold crossing that drives a delayed reset: detached (no gradient, like snnTorch's
        reset), or the surrogate spike with ``reset_gradient='through'``."""
        if self.reset_through and torch.is_grad_enabled():
            return spike(v - self.v_th, self.inclusive, self.surrogate, self.v_th)  # the same values as the comparison
        return (v >= self.v_th if self.inclusive else v > self.v_th).to(v.dtype)

    def _reset(self, v: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.reset_mode is ResetMode.VALUE:
            if self.reset_through and torch.is_grad_enabled():
                return value_reset_through(v, z, self.v_rst)  # the same values as the where below
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
            z = spike(u - self.v_th, self.inclusive, self.surrogate, self.v_th)
            # snnTorch's `mem - (spk - reset)·θ`: the delayed reset z_prev is detached ('detached'), the
            # spike is not, so the same-step correction carries the surrogate gradient (as in snnTorch)
            return z, u - (z - z_prev) * self.v_th
        if timing is not ResetTiming.IMMEDIATE:
            z_prev = self._crossed(v)
            out = spike(v - self.v_th, self.inclusive, self.surrogate, self.v_th) if self.spike_pre else None
            if timing is ResetTiming.DELAYED_PRE_DECAY:
                v = self._reset(v, z_prev)
            u = self._membrane(v, x)
            if timing is ResetTiming.DELAYED:
                u = self._reset(u, z_prev)
            if out is None:
                out = spike(u - self.v_th, self.inclusive, self.surrogate, self.v_th)
            return out, u
        u = self._membrane(v, x)
        z = spike(u - self.v_th, self.inclusive, self.surrogate, self.v_th)
        if self.multi_spike:
            z = multi_spike_count(z, u, self.v_th, self.max_spikes)
        u = self._reset(u, z if self.reset_through else z.detach())
        return z, u if self.v_floor is None else membrane_floor(u, self.v_floor)


def multi_spike_count(z: torch.Tensor, u: torch.Tensor, v_th: torch.Tensor, limit: int | None = None) -> torch.Tensor:
    """``spike_mode='multi'``: ``n = (u >= theta)·floor(u/theta)`` (docs/semantics.md §3.1) from the
    binary surrogate spike ``z = spike(u - theta, inclusive=True)``.

    Forward: the count ``n``, exactly (``z + (n - z)`` of small integers). Backward: straight
    through the first spike — the gradient is ``z``'s surrogate, the extra spikes
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
    node: ``LIFModule.from_node(node)``. ``.beta`` is ``1 - 1/tau`` (``.k`` = ``1/tau`` with integration 'euler').
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
        self.input_first = node.synapse == ir.SynapseOrder.INPUT_FIRST  # i = alpha*(i + g_s*x)

    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

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

    def forward(self, x: torch.Tensor, state=None):
        v, i = (torch.zeros_like(x), torch.zeros_like(x)) if state is None else state
        i = self.alpha * i + self.syn_gain * x
        v = (self.beta * v + self.gain * i) + self.drive
        return v, (v, i)


class IntegratorModule(NeuronModule):
    """Perfect integrator (``ir.Integrator``): ``v = v + r x``; outputs ``v``."""

    node_type = ir.Integrator
    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

    def forward(self, x: torch.Tensor, state=None):
        v = torch.zeros_like(x) if state is None else state
        v = v + self.gain * x
        return v, v


class DelayModule(NeuronModule):
    """Per-element delay (``ir.Delay``): ``y[t] = x[t - d]``; state: the last ``max(d)`` inputs."""

    node_type = ir.Delay
    from_node = classmethod(lambda cls, node, dtype=torch.float32: cls(node, dtype))

    _constant_fields: ClassVar[dict[str, str]] = {"index": "delay"}

    def __init__(self, node: ir.Delay, dtype: torch.dtype = torch.float32):
        super().__init__(node, dtype)
        self.max_delay = node.max_delay

    def _buffer_values(self, node: ir.Node) -> dict[str, np.ndarray | None]:
        return {"index": np.asarray(node.delay).astype(np.int64)}

    def to_node(self, where: str | None = None) -> ir.Delay:
        node = super().to_node(where)
        if node.max_delay > self.max_delay:
            raise ConversionError(
                f"{where or 'DelayModule'}: an edited delay of {node.max_delay} steps exceeds the history of "
                f"{self.max_delay} steps this module keeps; build a new executor from a graph with that delay"
            )
        return node

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        if self.max_delay == 0:
            return x, x.new_zeros((0, *x.shape))
        history = x.new_zeros((self.max_delay, *x.shape)) if state is None else state
        stacked = torch.cat([x.unsqueeze(0), history])  # stacked[k] = x[t - k]
        index = self.index.expand(x.shape).unsqueeze(0)
        return stacked.gather(0, index).squeeze(0), stacked[: self.max_delay]


# ---- stateless modules without a torch.nn equivalent ----------------------------------------


class ThresholdModule(_SavedBuffers):
    """``ir.Threshold``: ``z = H(x - threshold)`` with the surrogate gradient; an edited
    ``threshold`` buffer is exported by :meth:`to_node`."""

    def __init__(self, node: ir.Threshold, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.node = node
        self.inclusive = node.comparison.value == ">="
        self.surrogate = node.surrogate  # the spike's backward; ir_to_torch(surrogate=) overrides
        surrogate_backward(self.surrogate)
        self.register_buffer("threshold", _layer_view(_to_tensor(node.threshold, dtype), node.input_shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return spike(x - self.threshold, self.inclusive, self.surrogate, self.threshold)

    def to_node(self, where: str | None = None) -> ir.Threshold:
        """The node with the current ``threshold`` (its own array when the buffer is unchanged)."""
        node, where = self.node, where or "ThresholdModule"
        built = _layer_view(_to_tensor(node.threshold, self.threshold.dtype), node.input_shape)
        if torch.equal(self.threshold.detach().cpu(), built):
            return node
        value = _param_form(self.threshold, np.shape(node.threshold), node.input_shape, where)
        try:
            return ir.Threshold(**{**node.params(), "threshold": keep_dtype(node.threshold, value)},
                                input_type=node.input_type, metadata=copy.deepcopy(node.metadata))  # fmt: skip
        except ValueError as exc:
            raise ConversionError(f"{where}: the edited threshold does not make a valid Threshold: {exc}") from None


class ScaleModule(nn.Module):
    """``ir.Scale``: ``y = s * x`` (``s`` trainable)."""

    def __init__(self, scale: np.ndarray | torch.Tensor, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.scale = nn.Parameter(torch.as_tensor(np.asarray(scale)).to(dtype).clone())

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
