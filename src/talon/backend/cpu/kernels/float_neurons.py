"""Floating-point neurons and Delay: the update of docs/semantics.md §3, operation for operation.

Coefficients are computed in float64 from the stored parameters and cast once to ``dtype``
(:func:`neuron_coefficients`); every operation below then rounds to ``dtype``::

    z_prev = cmp(v, theta)
    if reset_timing == 'delayed_pre_decay': v = R(v, z_prev)
    i = alpha*i + g_s*x ; x := i                           (CubaLIF / CubaLI; synapse 'input_first':
                                                            i = alpha*(i + g_s*x))
    u = (beta*v + g*x) + c                                 (integration 'decay')
    u = v + k*((v_leak - v) + r*x)                         (integration 'euler', LIF / LI)
    if reset_timing in ('delayed', 'snntorch_immediate'): u = R(u, z_prev)
    z = cmp(u, theta)
    if reset_timing == 'immediate': u = R(u, z)
    if reset_timing == 'snntorch_immediate': u = u - (z - z_prev)*theta
    v = u ; spike = z (post) or z_prev (pre)

``spike_mode='multi'`` (immediate subtract reset only): ``z = floor(u / theta)`` where
``u >= theta`` (else 0) before the reset ``u - z*theta``; ``v_min``: after the reset,
``u = max(u - v_min, 0) + v_min``.
"""

from __future__ import annotations

import numpy as np

from talon import ir
from talon.ir import coefficients
from talon.ir.coefficients import is_euler

from ...errors import BackendError
from ..lowering.program import Op
from .float_ops import sum_edges
from .kernel import State, StatefulKernel
from .params import per_neuron

SPIKING_NEURONS = (ir.LIF, ir.IF, ir.CubaLIF)
STATEFUL_NODES = (ir.LIF, ir.IF, ir.CubaLIF, ir.LI, ir.CubaLI, ir.Integrator, ir.Delay)
CUBA = (ir.CubaLIF, ir.CubaLI)


def state_names(node: ir.Node) -> tuple[str, ...]:
    """The state variables a neuron kernel (float or fixed point) records after every step
    (docs/semantics.md: ``v``, and ``i`` of the Cuba neurons); none for a Delay or a stateless node."""
    if isinstance(node, ir.Delay) or not isinstance(node, STATEFUL_NODES):
        return ()
    return ("v", "i") if isinstance(node, CUBA) else ("v",)


_KEY_ORDER = ("beta", "g", "c", "k", "r", "v_leak", "alpha", "gs", "theta", "v_reset", "v_init", "v_min")


def loop_compatible(node: ir.Node) -> bool:
    """Whether both compiled neuron loops implement ``node``'s update (:mod:`.float_neuron_loop`,
    :mod:`.fixed_neuron_loop`): one spike per step (not ``spike_mode='multi'``), no membrane floor
    ``v_min``, the default synapse order (not ``synapse='input_first'``). The float32 loop also
    needs decay integration (not :func:`is_euler`)."""
    return (
        not (isinstance(node, SPIKING_NEURONS) and node.multi_spike)
        and getattr(node, "v_min", None) is None
        and getattr(node, "synapse", None) != ir.SynapseOrder.INPUT_FIRST
    )


def neuron_coefficients(node: ir.Node, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
    """float64 coefficients of docs/semantics.md §3 (:func:`talon.ir.coefficients.neuron_coefficients`,
    which the PyTorch executor and the JAX engine use too) broadcast to ``shape``.

    Keys: ``beta``, ``g``, ``c`` (all neurons: the decay form, which the fixed-point datapath uses;
    ``beta = 1``, ``c = 0`` for IF and Integrator), ``alpha``, ``gs`` (Cuba), ``theta``, ``v_reset``
    (spiking neurons), ``v_init`` and ``v_min`` (spiking neurons that set them), and ``k = 1/tau``,
    ``r``, ``v_leak`` for LIF / LI with ``integration='euler'``.
    ``tau = inf`` gives ``beta = 1``, ``g = c = 0`` (and ``k = 0``).
    """
    if not isinstance(node, coefficients.STATEFUL):
        raise TypeError(type(node).__name__)
    k = coefficients.neuron_coefficients(node, np.float64, decay_form=True)
    if is_euler(node):
        k.update(coefficients.neuron_coefficients(node, np.float64))
    if isinstance(node, (ir.IF, ir.Integrator)):
        k.update(beta=np.ones(()), c=np.zeros(()))
    if isinstance(node, SPIKING_NEURONS):
        for name in ("v_init", "v_min"):
            if getattr(node, name) is not None:
                k[name] = np.asarray(getattr(node, name), np.float64)
    return {name: np.ascontiguousarray(per_neuron(k[name], shape)) for name in _KEY_ORDER if name in k}


class FloatNeuron(StatefulKernel):
    """LIF, IF, CubaLIF, LI, CubaLI, Integrator in ``dtype``."""

    def __init__(self, op: Op, dtype) -> None:
        super().__init__(op)
        node = op.node
        self.dtype = np.dtype(dtype)
        self.shape = tuple(node.input_shape)
        with np.errstate(over="ignore", invalid="ignore"):
            self.k = {name: value.astype(self.dtype) for name, value in neuron_coefficients(node, self.shape).items()}
        bad = [name for name, value in self.k.items() if not np.all(np.isfinite(value))]
        if bad:
            raise BackendError(
                f"node {op.path!r}: its coefficient(s) {', '.join(bad)} (docs/semantics.md §3) are not finite in "
                f"{self.dtype}; check the neuron's parameters for extreme values (e.g. r = 1e300 or tau near 0)"
            )
        self.cuba = isinstance(node, CUBA)
        self.spiking = isinstance(node, SPIKING_NEURONS)
        self.integrator = isinstance(node, ir.Integrator)
        self.euler = is_euler(node)
        self.state_names = state_names(node)
        if self.spiking:
            self.ge = node.comparison == ir.Comparison.GE
            self.mode = node.reset_mode.value
            self.timing = node.reset_timing.value
            self.post = node.spike_timing == ir.SpikeTiming.POST
        self.multi = self.spiking and node.multi_spike
        self.max_spikes = node.max_spikes if self.multi else None
        self.input_first = getattr(node, "synapse", None) == ir.SynapseOrder.INPUT_FIRST

    def init_state(self, batch: int) -> State:
        state = {name: np.zeros((batch, *self.shape), self.dtype) for name in self.state_names}
        if "v_init" in self.k:
            state["v"][...] = self.k["v_init"]
        return state

    def _cmp(self, a: np.ndarray) -> np.ndarray:
        theta = self.k["theta"]
        return (a >= theta if self.ge else a > theta).astype(self.dtype)

    def _reset(self, v: np.ndarray, z: np.ndarray) -> np.ndarray:
        if self.mode == "value":
            return np.where(z > 0, self.k["v_reset"], v)
        if self.mode == "subtract":
            return v - z * self.k["theta"]
        return v

    def step(self, xs: list[np.ndarray], state: State) -> tuple[list[np.ndarray], State]:
        k = self.k
        x = sum_edges(xs)
        v = state["v"]
        new: State = {}
        if self.spiking:
            z_prev = self._cmp(v)
            if self.timing == "delayed_pre_decay":
                v = self._reset(v, z_prev)
        if self.input_first:
            i = k["alpha"] * (state["i"] + k["gs"] * x)
            new["i"] = i
            x = i
        elif self.cuba:
            i = k["alpha"] * state["i"] + k["gs"] * x
            new["i"] = i
            x = i
        if self.integrator:
            u = v + k["g"] * x
        elif self.euler:
            u = v + k["k"] * ((k["v_leak"] - v) + k["r"] * x)
        else:
            u = (k["beta"] * v + k["g"] * x) + k["c"]
        if not self.spiking:
            new["v"] = u
            return [u], new
        if self.timing in ("delayed", "snntorch_immediate"):
            u = self._reset(u, z_prev)
        z = self._cmp(u)
        if self.multi:  # n = floor(u / theta) spikes where u >= theta
            z = multi_spike_count(z, u, k["theta"], self.max_spikes)
        if self.timing == "immediate":
            u = self._reset(u, z)
            if "v_min" in k:
                u = membrane_floor(u, k["v_min"])
        elif self.timing == "snntorch_immediate":  # subtract only: correct the reset to this step's spike
            u = u - (z - z_prev) * self.k["theta"]
        new["v"] = u
        return [z if self.post else z_prev], new

    def run(self, xs, record, state=None):
        """The whole sequence in the compiled loop (:mod:`.float_neuron_loop`, the same float32
        values as :meth:`step`) when numba is available and the neuron is one the loop implements;
        else step by step. ``state``: as :meth:`StatefulKernel.run`."""
        from .float_neuron_loop import loop_supported, run_float_neurons

        if loop_supported(self):
            x = sum_edges(xs)
            if x.dtype == self.dtype:
                done = run_float_neurons(self, x, record, state)
                if done is not None:
                    return done
        return super().run(xs, record, state)


def multi_spike_count(z: np.ndarray, u: np.ndarray, theta: np.ndarray, limit: int | None = None) -> np.ndarray:
    """``spike_mode='multi'``: ``floor(u / theta)`` (the division rounded to ``u``'s dtype) where the
    comparison ``z`` fired, else 0; at most ``limit`` (``max_spikes``)."""
    n = np.where(z > 0, np.floor(u / theta), np.zeros((), u.dtype))
    return n if limit is None else np.minimum(n, u.dtype.type(limit))


def membrane_floor(u: np.ndarray, v_min: np.ndarray) -> np.ndarray:
    """The floor ``v_min``: ``max(u - v_min, 0) + v_min`` in that order (Sinabs' ``min_v_mem``)."""
    return np.maximum(u - v_min, np.zeros((), u.dtype)) + v_min


class FloatDelay(StatefulKernel):
    """``y[t] = x[t - delay]`` per element, zero before the first input (a ring buffer)."""

    state_names = ()

    def __init__(self, op: Op, dtype) -> None:
        super().__init__(op)
        self.dtype = np.dtype(dtype)
        self.shape = tuple(op.node.input_shape)
        self.delay = np.ascontiguousarray(per_neuron(op.node.delay, self.shape)).astype(np.int64)
        self.length = int(self.delay.max()) + 1 if self.delay.size else 1

    def merge(self, xs):
        return sum_edges(xs)

    def init_state(self, batch: int) -> State:
        # The ring buffer grows with the steps actually run (doubling) up to max(delay) + 1 slots, so
        # a delay of 10**12 steps run for 3 steps holds 3 slots, not 10**12.
        capacity = min(self.length, 16)
        return {"buffer": np.zeros((capacity, batch, *self.shape), self.dtype), "t": np.zeros((), np.int64)}

    def step(self, xs, state):
        buf, t = state["buffer"], int(state["t"])
        if t >= buf.shape[0] and buf.shape[0] < self.length:
            grown = np.zeros((min(self.length, max(2 * buf.shape[0], t + 1)), *buf.shape[1:]), buf.dtype)
            grown[: buf.shape[0]] = buf
            buf = grown
        if buf.shape[0] == self.length:  # full size: a ring; never-written slots are still zero
            buf[t % self.length] = self.merge(xs)
            slot = (t - self.delay) % self.length
            y = np.take_along_axis(buf, slot[None, None].repeat(buf.shape[1], axis=1), axis=0)[0]
        else:  # still growing: slot i holds step i, nothing has wrapped
            buf[t] = self.merge(xs)
            source = t - self.delay
            slot = np.where(source >= 0, source, 0)
            y = np.take_along_axis(buf, slot[None, None].repeat(buf.shape[1], axis=1), axis=0)[0]
            y = np.where(source >= 0, y, np.zeros((), y.dtype))
        return [y], {"buffer": buf, "t": np.asarray(t + 1)}

    def run(self, xs, record, state=None):
        """``y[t] = x[t - delay]`` over a whole sequence by shifted copies, one per distinct delay.

        ``state`` (a later piece of a run cut into pieces of steps): ``{"tail": the last
        min(max(delay), steps so far) merged inputs}``, read for the steps before this piece and
        updated to end with this piece's inputs (a state ``{}`` starts a run)."""
        x = self.merge(xs)
        tail = None if state is None else state.get("tail")
        seen = 0 if tail is None else tail.shape[0]
        history = x if not seen else np.concatenate([tail, x])
        steps = x.shape[0]
        y = np.zeros_like(x)
        for d in np.unique(self.delay):
            mask = self.delay == d
            first = max(0, int(d) - seen)  # the first step whose source is in ``history``
            if first < steps:
                y[first:, :, mask] = history[seen + first - d : seen + steps - d, :, mask]
        if state is not None:
            keep = self.length - 1  # the longest delay reaches this many steps back
            state["tail"] = np.array(history[max(0, history.shape[0] - keep) :]) if keep else history[:0].copy()
        return [y], ({} if record else None)
