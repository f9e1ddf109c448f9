"""Stateful neurons and temporal nodes: LIF, IF, CubaLIF, LI, CubaLI, Integrator, Threshold, Delay.

Time is discrete (one call = one timestep, ``dt = 1``) and time constants are in timesteps.
The exact per-step update every engine follows is written out in ``docs/semantics.md``; in
short, with coefficients computed in float64 from the parameters and cast to the engine dtype::

    beta = 1 - 1/tau        g = r/tau        c = v_leak/tau          (IF: beta = 1, g = r, c = 0)
    z_prev = v > theta  (or >=, see ``comparison``)                  # the previous state crossed
    if reset_timing == 'delayed_pre_decay':  v = R(v, z_prev)
    u = beta*v + g*x + c
    if reset_timing == 'delayed':            u = R(u, z_prev)
    z = u > theta
    if reset_timing == 'immediate':          u = R(u, z)
    if reset_timing == 'snntorch_immediate': u = R(u, z_prev); z = u > theta; u = u - (z - z_prev)*theta
    spike = z if spike_timing == 'post' else z_prev;   v = u

    spike_mode 'multi' (comparison '>=', reset 'subtract', timing 'immediate', spike 'post', theta > 0):
        n = (u >= theta) * floor(u / theta) (at most max_spikes);  u = u - n*theta;  spike = n
    v_min (reset_timing 'immediate' only), after the reset:  u = max(u - v_min, 0) + v_min

    v(t=0) = v_init (0 when None; the synaptic current of CubaLIF starts at 0)
    R(v, z) = v_reset where z else v       (reset_mode 'value'; 'zero' is value with v_reset = 0)
            = v - z*theta                  (reset_mode 'subtract')
            = v                            (reset_mode 'none')

Parameters are per neuron: an array with the layer's shape, a per-channel vector ``(C,)`` for a
``[C, H, W]`` layer, or a scalar, which is broadcast to the shape of the other parameters (or the
layer's shape) once it is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .budget import charge, element_count
from .errors import ShapeError
from .node import Node, as_array, register_node
from .surrogate import DEFAULT_SURROGATE, canonical_surrogate
from .types import (
    Comparison,
    Integration,
    ResetGradient,
    ResetMode,
    ResetTiming,
    Shape,
    SpikeCount,
    SpikeTiming,
    SynapseOrder,
    coerce_enum,
)

MAX_SPIKES_LIMIT = 2**31 - 1  # max_spikes fits an int32 count in every engine


def _is_scalar(a: np.ndarray) -> bool:
    return a.ndim == 0 or (a.ndim == 1 and a.shape[0] == 1)


class _ElementwiseState(Node):
    """Base of nodes whose parameters are per-element arrays of the layer's shape."""

    _array_params: ClassVar[tuple[str, ...]] = ()
    _optional_zero_params: ClassVar[tuple[str, ...]] = ()  # None -> zeros like the others
    _optional_params: ClassVar[tuple[str, ...]] = ()  # None stays None (and is left out of files)

    def _check_arrays(self) -> None:
        where = self._where()
        for name in self._array_params:
            value = getattr(self, name)
            if value is None and name in self._optional_zero_params + self._optional_params:
                continue
            arr = as_array(value, name, where)
            if arr.dtype.kind not in "f":
                arr = arr.astype(np.float64 if arr.dtype.itemsize > 4 else np.float32)
            setattr(self, name, arr)
        shapes = {a.shape for a in self._present_arrays() if not _is_scalar(a)}
        if len(shapes) > 1:
            detail = ", ".join(f"{n}{list(getattr(self, n).shape)}" for n in self._present_names())
            raise ShapeError(f"{where}: parameter shapes differ ({detail})")
        reference = next(iter(self._present_arrays()))
        for name in self._optional_zero_params:
            if getattr(self, name) is None:
                setattr(self, name, np.zeros((), dtype=reference.dtype))
        self._broadcast_scalars(next(iter(shapes)) if shapes else None)

    def _present_names(self) -> list[str]:
        return [n for n in self._array_params if getattr(self, n) is not None]

    def _present_arrays(self):
        return (getattr(self, n) for n in self._present_names())

    def _broadcast_scalars(self, shape: Shape | None) -> None:
        if shape is None:
            return
        count = element_count(shape, self._where())
        for name in self._array_params:
            arr = getattr(self, name)
            if arr is not None and _is_scalar(arr) and arr.shape != shape:
                nbytes = count * arr.dtype.itemsize
                charge(nbytes, f"{self._where()}: {name} broadcast to the layer shape {list(shape)}")
                try:
                    setattr(self, name, np.full(shape, arr.reshape(()), dtype=arr.dtype))
                except (MemoryError, ValueError) as exc:
                    raise ShapeError(
                        f"{self._where()}: {name} broadcast to the layer shape {list(shape)} needs {nbytes:,} bytes, "
                        f"which cannot be allocated ({type(exc).__name__})"
                    ) from None

    def _param_shape(self) -> Shape | None:
        shapes = {a.shape for a in self._present_arrays() if not _is_scalar(a)}
        return next(iter(shapes)) if shapes else None

    def _param_input_shape(self) -> Shape | None:
        return self._param_shape()

    def _output_shape(self, shape: Shape) -> Shape:
        p = self._param_shape()
        if p is not None and p != tuple(shape) and not (len(p) == 1 and len(shape) > 1 and p[0] == shape[0]):
            raise ShapeError(
                f"{self._where()}: parameters of shape {list(p)} fit neither the input shape "
                f"{list(shape)} nor its {shape[0] if shape else '?'} channels"
            )
        if p is None:
            self._broadcast_scalars(tuple(shape))
        return shape

    def _check_positive(self, *names: str) -> None:
        for name in names:
            arr = np.asarray(getattr(self, name))
            if not (arr > 0).all():
                bad = arr[~(arr > 0)].reshape(-1)[0]
                raise ValueError(f"{self._where()}: {name} must be > 0 timesteps (inf = no leak), got {bad}")

    def _check_finite(self, *names: str) -> None:
        for name in names:
            if not np.isfinite(getattr(self, name)).all():
                raise ValueError(f"{self._where()}: {name} must be finite")

    @property
    def shape(self) -> Shape | None:
        """The layer's shape (the input shape when known, else the parameters' shape)."""
        return self.input_shape or self._param_shape()


class _Spiking(_ElementwiseState):
    """Threshold, reset and timing fields shared by LIF, IF and CubaLIF."""

    def _check_dynamics(self) -> None:
        where = self._where()
        if isinstance(self.reset_mode, str) and self.reset_mode.lower() == "zero":
            self.reset_mode = ResetMode.VALUE
            if np.any(self.v_reset != 0):
                raise ValueError(f"{where}: reset_mode='zero' contradicts a non-zero v_reset")
        self.reset_mode = coerce_enum(ResetMode, self.reset_mode, "reset_mode", where)
        self.reset_timing = coerce_enum(ResetTiming, self.reset_timing, "reset_timing", where)
        self.spike_timing = coerce_enum(SpikeTiming, self.spike_timing, "spike_timing", where)
        self.comparison = coerce_enum(Comparison, self.comparison, "comparison", where)
        self.reset_gradient = coerce_enum(ResetGradient, self.reset_gradient, "reset_gradient", where)
        self.surrogate = canonical_surrogate(self.surrogate, where)
        if self.reset_timing is ResetTiming.SNNTORCH_IMMEDIATE and (
            self.reset_mode is not ResetMode.SUBTRACT or self.spike_timing is not SpikeTiming.POST
        ):
            raise ValueError(
                f"{where}: reset_timing='snntorch_immediate' is defined for reset_mode='subtract' and "
                "spike_timing='post' only"
            )
        if self.spike_timing is SpikeTiming.PRE and self.reset_timing is ResetTiming.IMMEDIATE:
            raise ValueError(
                f"{where}: spike_timing='pre' (spike from the state before the update) needs a "
                "delayed reset_timing ('delayed' or 'delayed_pre_decay')"
            )
        self._check_finite("v_threshold", "v_reset")
        if self.v_init is not None:
            self._check_finite("v_init")
        self._check_multi_spike_and_floor()

    def _check_multi_spike_and_floor(self) -> None:
        """``spike_mode='multi'`` and ``v_min`` are stated for one combination only (docs/semantics.md)."""
        where = self._where()
        self.spike_mode = coerce_enum(SpikeCount, self.spike_mode, "spike_mode", where)
        if self.spike_mode is SpikeCount.MULTI:
            needs = {
                "comparison": (self.comparison, Comparison.GE),
                "reset_mode": (self.reset_mode, ResetMode.SUBTRACT),
                "reset_timing": (self.reset_timing, ResetTiming.IMMEDIATE),
                "spike_timing": (self.spike_timing, SpikeTiming.POST),
            }
            wrong = [f"{k}={v.value!r} (needs {want.value!r})" for k, (v, want) in needs.items() if v is not want]
            if wrong:
                raise ValueError(
                    f"{where}: spike_mode='multi' (n = floor(u/v_threshold) spikes, reset by n*v_threshold) is "
                    f"defined for comparison='>=', reset_mode='subtract', reset_timing='immediate' and "
                    f"spike_timing='post' only; this node has {', '.join(wrong)}"
                )
            if not np.all(np.asarray(self.v_threshold) > 0):
                raise ValueError(f"{where}: spike_mode='multi' needs v_threshold > 0 (the spike count divides by it)")
        if self.max_spikes is not None:
            limit = self.max_spikes
            if (
                isinstance(limit, bool)
                or not isinstance(limit, (int, np.integer))
                or not 1 <= limit <= MAX_SPIKES_LIMIT
            ):
                raise ValueError(
                    f"{where}: max_spikes must be a whole number from 1 to 2**31 - 1 (or None), got {limit!r}"
                )
            if self.spike_mode is not SpikeCount.MULTI:
                raise ValueError(f"{where}: max_spikes bounds the spike count of spike_mode='multi' only")
            self.max_spikes = int(limit)
        if self.v_min is not None:
            self._check_finite("v_min")
            if self.reset_timing is not ResetTiming.IMMEDIATE:
                raise ValueError(
                    f"{where}: v_min (the membrane floor, applied after the reset) is defined for "
                    f"reset_timing='immediate' only; this node has reset_timing={self.reset_timing.value!r}"
                )

    @property
    def multi_spike(self) -> bool:
        """Whether the neuron emits ``floor(u/theta)`` spikes per step (``spike_mode='multi'``)."""
        return self.spike_mode == SpikeCount.MULTI

    @property
    def initial_membrane(self) -> np.ndarray:
        """The membrane at ``t = 0``: ``v_init``, or 0 when it is None (float64)."""
        return np.zeros(()) if self.v_init is None else np.asarray(self.v_init, np.float64)


# a graph that does not use multi-spike neurons stores, fingerprints and prints as before
_SPIKING_OMITTED: dict = {
    "spike_mode": SpikeCount.BINARY,
    "reset_gradient": ResetGradient.DETACHED,
    "surrogate": DEFAULT_SURROGATE,
}

_DYNAMICS_DOC = """
    Reset and timing fields (defaults are TALON's documented LIF: ``v >= v_threshold``, reset to
    ``v_reset = 0`` in the same step, spike from the updated state):

    * ``reset_mode``: ``'value'`` (to ``v_reset``; ``'zero'`` is accepted as value with
      ``v_reset = 0``), ``'subtract'`` (``v - v_threshold``) or ``'none'``;
    * ``reset_timing``: ``'immediate'``, ``'delayed'`` (applied in the next step to the
      integrated value, like snnTorch's default), ``'delayed_pre_decay'`` (applied in the next
      step before the decay, like Spyx's CuBaLIF) or ``'snntorch_immediate'`` (snnTorch's
      ``reset_delay=False`` subtraction, see docs/semantics.md);
    * ``spike_timing``: ``'post'`` (spike from the updated state) or ``'pre'`` (from the state
      before the update, like Spyx; needs a delayed reset);
    * ``comparison``: ``'>='`` or ``'>'``;
    * ``v_init``: the membrane at ``t = 0`` (``None``, the default, starts at 0; SpikingJelly
      starts at ``v_reset``). The synaptic current of CubaLIF always starts at 0;
    * ``spike_mode``: ``'binary'`` (default: 0 or 1 spike per step) or ``'multi'`` (Sinabs'
      ``MultiSpike``, Rockpool): ``n = floor(u / v_threshold)`` spikes when ``u >= v_threshold``
      (the division rounded to the compute dtype), else 0, and the membrane drops by
      ``n * v_threshold``; only with ``comparison='>='``, ``reset_mode='subtract'``,
      ``reset_timing='immediate'``, ``spike_timing='post'`` and ``v_threshold > 0``;
    * ``v_min``: a membrane floor (``None``, the default, has none), applied after the reset as
      ``u = max(u - v_min, 0) + v_min`` in the compute dtype (Sinabs' ``min_v_mem``; equal to
      ``max(u, v_min)`` in exact arithmetic); only with ``reset_timing='immediate'``;
    * ``max_spikes``: with ``spike_mode='multi'``, at most this many spikes per step
      (``n = min(n, max_spikes)``, and the reset subtracts the bounded count; Rockpool's
      ``max_spikes_per_dt``); ``None``, the default, has no bound;
    * ``reset_gradient`` (training only; the forward is the same): ``'detached'`` (default,
      snnTorch's: the spike in ``R`` is a constant) or ``'through'`` (Spyx's, Norse's: the spike
      in ``R`` carries its surrogate derivative, ``R`` differentiated as ``v - z*theta`` or
      ``(1 - z)*v + z*v_reset``); see docs/semantics.md §3.1;
    * ``surrogate`` (training only): the derivative that replaces the step's in the backward pass,
      a canonical string such as ``'atan(alpha=2.0)'`` (the default, snnTorch's) or
      ``'superspike(k=25.0)'`` (:mod:`talon.ir.surrogate` lists the kinds and their formulas).
"""


@register_node
@dataclass(eq=False)
class LIF(_Spiking):
    __doc__ = (
        """Leaky integrate-and-fire neuron.

    Continuous form ``tau dv/dt = (v_leak - v) + r I``; discrete update (``dt = 1``)
    ``u = beta v + (r/tau) x + v_leak/tau`` with ``beta = 1 - 1/tau`` (``tau`` in timesteps,
    ``inf`` = no leak), then threshold and reset. With ``r = tau`` and ``v_leak = 0`` this is
    snnTorch's ``mem = beta mem + x``. ``integration='euler'`` computes the same value as
    ``u = v + (1/tau)((v_leak - v) + r x)`` (Norse's and NIR's forward-Euler order of operations).
"""
        + _DYNAMICS_DOC
    )

    _batch_check = "elementwise"

    tau: np.ndarray
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    v_threshold: np.ndarray = 1.0
    v_reset: np.ndarray | None = None
    reset_mode: ResetMode = ResetMode.VALUE
    reset_timing: ResetTiming = ResetTiming.IMMEDIATE
    spike_timing: SpikeTiming = SpikeTiming.POST
    comparison: Comparison = Comparison.GE
    integration: Integration = Integration.DECAY
    v_init: np.ndarray | None = None
    spike_mode: SpikeCount = SpikeCount.BINARY
    v_min: np.ndarray | None = None
    max_spikes: int | None = None
    reset_gradient: ResetGradient = ResetGradient.DETACHED
    surrogate: str = DEFAULT_SURROGATE

    _array_params = ("tau", "r", "v_leak", "v_threshold", "v_reset", "v_init", "v_min")
    _optional_zero_params = ("v_reset",)
    _optional_params = ("v_init", "v_min", "max_spikes")
    _omitted_defaults = _SPIKING_OMITTED

    def _check_params(self) -> None:
        self._check_arrays()
        self._check_positive("tau")
        self._check_finite("r", "v_leak")
        self._check_dynamics()
        self.integration = coerce_enum(Integration, self.integration, "integration", self._where())

    @property
    def beta(self) -> np.ndarray:
        """Per-step membrane decay ``1 - 1/tau`` (float64)."""
        return 1.0 - 1.0 / np.asarray(self.tau, dtype=np.float64)


@register_node
@dataclass(eq=False)
class IF(_Spiking):
    __doc__ = (
        """Integrate-and-fire neuron (no leak): ``dv/dt = r I``; discrete ``u = v + r x``, then
    threshold and reset.
"""
        + _DYNAMICS_DOC
    )

    _batch_check = "elementwise"

    v_threshold: np.ndarray = 1.0
    r: np.ndarray = 1.0
    v_reset: np.ndarray | None = None
    reset_mode: ResetMode = ResetMode.VALUE
    reset_timing: ResetTiming = ResetTiming.IMMEDIATE
    spike_timing: SpikeTiming = SpikeTiming.POST
    comparison: Comparison = Comparison.GE
    v_init: np.ndarray | None = None
    spike_mode: SpikeCount = SpikeCount.BINARY
    v_min: np.ndarray | None = None
    max_spikes: int | None = None
    reset_gradient: ResetGradient = ResetGradient.DETACHED
    surrogate: str = DEFAULT_SURROGATE

    _array_params = ("v_threshold", "r", "v_reset", "v_init", "v_min")
    _optional_zero_params = ("v_reset",)
    _optional_params = ("v_init", "v_min", "max_spikes")
    _omitted_defaults = _SPIKING_OMITTED

    def _check_params(self) -> None:
        self._check_arrays()
        self._check_finite("r")
        self._check_dynamics()


@register_node
@dataclass(eq=False)
class CubaLIF(_Spiking):
    __doc__ = (
        """Current-based LIF: a synaptic current filters the input before the membrane.

    ``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt = (v_leak - v) + r I``; discrete::

        i = alpha i + (w_in/tau_syn) x                 alpha = 1 - 1/tau_syn
        u = beta v + (r/tau_mem) i + v_leak/tau_mem    beta  = 1 - 1/tau_mem

    (the membrane sees the *new* current), then threshold and reset of ``v`` (the current is
    never reset). With ``w_in = tau_syn`` and ``r = tau_mem`` this is snnTorch's Synaptic.
    ``synapse='input_first'`` adds the input before the decay, ``i = alpha (i + (w_in/tau_syn) x)``
    (Rockpool's ``LIFTorch`` and Sinabs' synaptic current; the default ``'decay'`` is the line above).
"""
        + _DYNAMICS_DOC
    )

    _batch_check = "elementwise"

    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    v_threshold: np.ndarray = 1.0
    v_reset: np.ndarray | None = None
    w_in: np.ndarray = 1.0
    reset_mode: ResetMode = ResetMode.VALUE
    reset_timing: ResetTiming = ResetTiming.IMMEDIATE
    spike_timing: SpikeTiming = SpikeTiming.POST
    comparison: Comparison = Comparison.GE
    v_init: np.ndarray | None = None
    spike_mode: SpikeCount = SpikeCount.BINARY
    v_min: np.ndarray | None = None
    max_spikes: int | None = None
    synapse: SynapseOrder = SynapseOrder.DECAY
    reset_gradient: ResetGradient = ResetGradient.DETACHED
    surrogate: str = DEFAULT_SURROGATE

    _array_params = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in", "v_init", "v_min")
    _optional_zero_params = ("v_reset",)
    _optional_params = ("v_init", "v_min", "max_spikes")
    _omitted_defaults: ClassVar[dict] = {**_SPIKING_OMITTED, "synapse": SynapseOrder.DECAY}

    def _check_params(self) -> None:
        self._check_arrays()
        self._check_positive("tau_syn", "tau_mem")
        self._check_finite("r", "v_leak", "w_in")
        self._check_dynamics()
        self.synapse = coerce_enum(SynapseOrder, self.synapse, "synapse", self._where())


@register_node
@dataclass(eq=False)
class LI(_ElementwiseState):
    """Leaky integrator (no spikes): ``u = beta v + (r/tau) x + v_leak/tau``; outputs ``v``.

    ``integration='euler'``: ``u = v + (1/tau)((v_leak - v) + r x)`` (see LIF).
    """

    _batch_check = "elementwise"

    tau: np.ndarray
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    integration: Integration = Integration.DECAY

    _array_params = ("tau", "r", "v_leak")

    def _check_params(self) -> None:
        self._check_arrays()
        self._check_positive("tau")
        self._check_finite("r", "v_leak")
        self.integration = coerce_enum(Integration, self.integration, "integration", self._where())


@register_node
@dataclass(eq=False)
class CubaLI(_ElementwiseState):
    """Current-based leaky integrator: CubaLIF's two equations without threshold; outputs ``v``."""

    _batch_check = "elementwise"

    tau_syn: np.ndarray
    tau_mem: np.ndarray
    r: np.ndarray = 1.0
    v_leak: np.ndarray = 0.0
    w_in: np.ndarray = 1.0

    _array_params = ("tau_syn", "tau_mem", "r", "v_leak", "w_in")

    def _check_params(self) -> None:
        self._check_arrays()
        self._check_positive("tau_syn", "tau_mem")
        self._check_finite("r", "v_leak", "w_in")


@register_node
@dataclass(eq=False)
class Integrator(_ElementwiseState):
    """Perfect integrator (NIR ``I``): ``v = v + r x``; outputs ``v``."""

    _batch_check = "elementwise"

    r: np.ndarray = 1.0

    _array_params = ("r",)

    def _check_params(self) -> None:
        self._check_arrays()
        self._check_finite("r")


@register_node
@dataclass(eq=False)
class Threshold(_ElementwiseState):
    """Stateless spike function: ``z = x > threshold`` (NIR's strict ``>`` by default).

    ``surrogate`` (training only): the derivative the engines use for the step, as for LIF
    (:mod:`talon.ir.surrogate`; default ``'atan(alpha=2.0)'``, left out of files).
    """

    _batch_check = "elementwise"

    threshold: np.ndarray = 1.0
    comparison: Comparison = Comparison.GT
    surrogate: str = DEFAULT_SURROGATE

    _array_params = ("threshold",)
    _omitted_defaults: ClassVar[dict] = {"surrogate": DEFAULT_SURROGATE}

    def _check_params(self) -> None:
        self._check_arrays()
        self._check_finite("threshold")
        self.comparison = coerce_enum(Comparison, self.comparison, "comparison", self._where())
        self.surrogate = canonical_surrogate(self.surrogate, self._where())


@register_node
@dataclass(eq=False)
class Delay(_ElementwiseState):
    """Per-element delay in timesteps: ``y[t] = x[t - delay]`` (zero before the first input).

    ``delay`` holds non-negative integers (stored as integer arrays).
    """

    _batch_check = "elementwise"

    delay: np.ndarray

    _array_params = ("delay",)

    def _check_params(self) -> None:
        where = self._where()
        arr = as_array(self.delay, "delay", where)
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
                raise ValueError(f"{where}: delay must hold whole timesteps, got {arr}")
            arr = arr.astype(np.int64)
        if np.any(arr < 0):
            raise ValueError(f"{where}: delay must be >= 0 timesteps")
        self.delay = arr

    @property
    def max_delay(self) -> int:
        return int(self.delay.max()) if self.delay.size else 0
