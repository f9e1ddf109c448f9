"""Integer neurons (the fixed-point precisions): docs/semantics.md §3 with integer membranes.

Formats: the membrane ``v`` has one power-of-two scale per layer,
``s_v = 2**ceil(log2 M) / 2**(state_bits - 2)`` where ``M`` is the largest of the calibrated
``|v|``, ``|v_threshold|``, ``|v_reset|``, ``|v_init|`` and ``|v_min|`` (at least one bit of headroom
above the calibrated range; a power of two keeps dyadic thresholds and gains exact); the synaptic current of CubaLIF /
CubaLI likewise ``s_i``. With
``F = coefficient_bits``, every coefficient becomes an integer::

    B = rint(beta * 2**F)      A = rint(alpha * 2**F)       C = rint(c / s_v)
    G_e = rint(g * s_e / s_v * 2**F)  for each incoming edge e of scale s_e (the input gain)
    (Cuba: GS_e = rint(g_s * s_e / s_i * 2**F) and G = rint(g * s_i / s_v * 2**F))
    THETA = rint(v_threshold / s_v)      V_RESET = rint(v_reset / s_v)      v(0) = sat(rint(v_init / s_v))

and one step is, in int64 with ``sat`` the ``state_bits`` two's-complement saturation and
``rs(a) = floor((a + 2**(F-1)) / 2**F)``::

    z_prev = cmp(v, THETA)
    if reset_timing == 'delayed_pre_decay': v = R(v, z_prev)
    i = sat(rs(A*i + sum_e GS_e*x_e))                            (Cuba)
    i = sat(rs(A*sat(i + rs(sum_e GS_e*x_e))))                   (CubaLIF, synapse 'input_first')
    u = sat(rs(B*v + sum_e G_e*x_e) + C)                         (Cuba: G*i in place of the sum)
    if reset_timing in ('delayed', 'snntorch_immediate'): u = R(u, z_prev)
    z = cmp(u, THETA)
    if reset_timing == 'immediate': u = R(u, z)
    if reset_timing == 'snntorch_immediate': u = u - (z - z_prev)*THETA
    v = sat(u) ; spike = z or z_prev

with ``R`` = ``V_RESET`` where ``z`` (value), ``u - z*THETA`` (subtract) or ``u`` (none).
``spike_mode='multi'`` (immediate subtract reset): ``z = floor(u / THETA)`` (integer floor division)
where ``u >= THETA``, else 0 (at most ``max_spikes``), then ``u = sat(u - z*THETA)``; the output is
the spike count (scale 1, bound ``floor(qmax / min THETA)`` or ``max_spikes``). ``v_min``:
``V_MIN = sat(rint(v_min / s_v))`` and, after the reset, ``u = max(u, V_MIN)`` (``max(u - V_MIN, 0) +
V_MIN`` is the same integer).
Integrator: ``B = 2**F`` and ``C = 0``; LI / CubaLI / Integrator output ``v`` (scale ``s_v``).
``integration='euler'`` (LIF / LI) runs the same integer update: it is the same value as 'decay'
up to float rounding, which the integer datapath replaces with its own.
"""

from __future__ import annotations

import functools

import numpy as np

from talon import ir

from ...errors import BackendError
from ..formats.fixed_point import INT, INT_SAFE, SPIKES, QFormat, check_int, check_range, qmax, round_shift, saturate
from ..lowering.program import Op
from .fixed_kernel import FixedContext, FixedKernel
from .fixed_neuron_loop import run_neurons, step_neurons
from .float_neurons import CUBA, SPIKING_NEURONS, FloatDelay, loop_compatible, neuron_coefficients, state_names
from .kernel import State, StatefulKernel


def state_scale(amax: float, bits: int, where: str, what: str) -> float:
    """``2**ceil(log2 amax) / 2**(bits - 2)`` (amax 0 counts as 1); a non-finite ``amax`` is refused
    naming ``where``."""
    top = check_range(amax, where, what)
    top = top if top > 0 else 1.0
    return float(2.0 ** (np.ceil(np.log2(top)) - (bits - 2)))


class FixedNeuron(StatefulKernel):
    reads_exact_float = True  # float32 integers are read by the compiled loop or converted (reference_step)

    def __init__(self, op: Op, ctx: FixedContext, in_formats: list[QFormat | None]) -> None:
        super().__init__(op)
        node = op.node
        spec = ctx.spec
        self.bits = spec.state_bits
        self.frac = spec.coefficient_bits
        self.shape = tuple(node.input_shape)
        self.cuba = isinstance(node, CUBA)
        self.spiking = isinstance(node, SPIKING_NEURONS)
        self.integrator = isinstance(node, ir.Integrator)
        self.state_names = state_names(node)
        self.input_first = getattr(node, "synapse", None) == ir.SynapseOrder.INPUT_FIRST
        self.in_formats = in_formats
        k = neuron_coefficients(node, self.shape)
        amax = ctx.calibration.state_amax.get(op.path, {})
        top_v = amax.get("v", 0.0)
        if self.spiking:
            top_v = max(top_v, float(np.abs(k["theta"]).max(initial=0.0)), float(np.abs(k["v_reset"]).max(initial=0.0)))
            for name in ("v_init", "v_min"):
                top_v = max(top_v, float(np.abs(k[name]).max(initial=0.0))) if name in k else top_v
        self.s_v = state_scale(top_v, self.bits, op.path, "its membrane v")
        one = float(2**self.frac)
        fixed = functools.partial(_to_int, path=op.path)
        self.B = fixed(lambda: k["beta"] * one, what="beta")
        self.C = fixed(lambda: k["c"] / self.s_v, what="the leak term v_leak/tau")
        if self.cuba:
            self.s_i = state_scale(amax.get("i", 0.0), self.bits, op.path, "its synaptic current i")
            self.A = fixed(lambda: k["alpha"] * one, what="alpha")
            self.G = fixed(lambda: k["g"] * self.s_i / self.s_v * one, what="the current gain")
            drive_gain, drive_scale = k["gs"], self.s_i
        else:
            drive_gain, drive_scale = k["g"], self.s_v
        self.edge_gains = [
            None
            if f is None
            else fixed(
                lambda f=f: drive_gain * f.full_scale(self.shape) / drive_scale * one, what="the input gain r/tau"
            )
            for f in in_formats
        ]
        if self.spiking:
            self.theta = fixed(lambda: k["theta"] / self.s_v, what="v_threshold")
            self.v_reset = saturate(fixed(lambda: k["v_reset"] / self.s_v, what="v_reset"), self.bits)
            self.v_init = (
                None if "v_init" not in k else saturate(fixed(lambda: k["v_init"] / self.s_v, what="v_init"), self.bits)
            )
            self.ge = node.comparison == ir.Comparison.GE
            self.mode = node.reset_mode.value
            self.timing = node.reset_timing.value
            self.post = node.spike_timing == ir.SpikeTiming.POST
            self.multi = node.multi_spike
            self.max_spikes = node.max_spikes
            self.v_min = (
                None if "v_min" not in k else saturate(fixed(lambda: k["v_min"] / self.s_v, what="v_min"), self.bits)
            )
            self.out_formats = [self._count_format(op.path) if self.multi else SPIKES]
        else:
            self.out_formats = [QFormat(np.float64(self.s_v), qmax(self.bits) + 1)]
        self._check_overflow()

    def _count_format(self, path: str) -> QFormat:
        """Spike counts: scale 1, at most ``floor(qmax / min THETA)`` spikes per step."""
        smallest = int(np.min(self.theta, initial=qmax(self.bits)))
        if smallest < 1:
            raise BackendError(
                f"node {path!r}: spike_mode='multi' divides by the threshold, which is below one step of the "
                f"membrane format ({self.s_v:g}) in fixed point; raise v_threshold or state_bits"
            )
        bound = qmax(self.bits) // smallest
        return QFormat(np.float64(1.0), bound if self.max_spikes is None else min(bound, self.max_spikes))

    def _check_overflow(self) -> None:
        state = float(2 ** (self.bits - 1))
        drive = 0.0
        for g, f in zip(self.edge_gains, self.in_formats, strict=True):
            if g is not None:  # per element: a Concat's parts keep their own bounds
                drive = drive + np.abs(np.asarray(g, np.float64)) * f.element_bounds(self.shape)
        drive = float(np.max(drive, initial=0.0))
        if self.cuba:
            check_int(float(np.abs(self.A).max(initial=0)) * state + drive, self.op.path, "the synaptic current update")
            drive = float(np.abs(self.G).max(initial=0)) * state
        check_int(float(np.abs(self.B).max(initial=0)) * state + drive, self.op.path, "the membrane update")

    @property
    def state_scales(self) -> dict[str, float]:
        return {"v": self.s_v, "i": self.s_i} if self.cuba else {"v": self.s_v}

    def init_state(self, batch: int) -> State:
        state = {name: np.zeros((batch, *self.shape), INT) for name in self.state_names}
        if self.spiking and self.v_init is not None:
            state["v"][...] = self.v_init
        return state

    def _cmp(self, a):
        return (a >= self.theta if self.ge else a > self.theta).astype(INT)

    def _reset(self, v, z):
        if self.mode == "value":
            return np.where(z > 0, self.v_reset, v)
        if self.mode == "subtract":
            return saturate(v - z * self.theta, self.bits)
        return v

    def _drive(self, xs, gains):
        total = None
        for x, g in zip(xs, gains, strict=True):
            term = g * x
            total = term if total is None else total + term
        return total

    def step(self, xs, state):
        """One step: the compiled loop (:mod:`.fixed_neuron_loop`) when it applies, else
        :meth:`reference_step`; the same integers."""
        if self.loop_supported:
            done = step_neurons(self, xs, state)
            if done is not None:
                return done
        return self.reference_step(xs, state)

    def reference_step(self, xs, state):
        """One step of docs/backend.md §4.4 in numpy (the reference of the compiled loop)."""
        xs = [x.astype(INT, copy=False) for x in xs]  # exact: float inputs hold integers below 2**24
        v = state["v"]
        new: State = {}
        if self.spiking:
            z_prev = self._cmp(v)
            if self.timing == "delayed_pre_decay":
                v = self._reset(v, z_prev)
        drive = self._drive(xs, self.edge_gains)
        if self.input_first:  # i = alpha*(i + g_s*x): the input joins the current, then the decay
            i = saturate(state["i"] + round_shift(drive, self.frac), self.bits)
            i = saturate(round_shift(self.A * i, self.frac), self.bits)
            new["i"] = i
            drive = self.G * i
        elif self.cuba:
            i = saturate(round_shift(self.A * state["i"] + drive, self.frac), self.bits)
            new["i"] = i
            drive = self.G * i
        u = saturate(round_shift(self.B * v + drive, self.frac) + self.C, self.bits)
        if not self.spiking:
            new["v"] = u
            return [u], new
        if self.timing in ("delayed", "snntorch_immediate"):
            u = self._reset(u, z_prev)
        z = self._cmp(u)
        if self.multi:  # n = floor(U / THETA) spikes where U >= THETA
            z = np.where(z > 0, np.floor_divide(u, self.theta), 0).astype(INT)
            if self.max_spikes is not None:
                z = np.minimum(z, self.max_spikes)
        if self.timing == "immediate":
            u = self._reset(u, z)
            if self.v_min is not None:
                u = np.maximum(u, self.v_min)
        elif self.timing == "snntorch_immediate":
            u = saturate(u - (z - z_prev) * self.theta, self.bits)
        new["v"] = u
        return [z if self.post else z_prev], new

    def run(self, xs, record, state=None):
        """The whole sequence in the compiled loop (:mod:`.fixed_neuron_loop`, the same integers as
        :meth:`step`) when numba is available and the neuron is one the loop implements; else step by
        step. ``state``: as :meth:`StatefulKernel.run`."""
        if self.loop_supported:
            done = run_neurons(self, xs, record, state)
            if done is not None:
                return done
        return super().run(xs, record, state)

    @property
    def loop_supported(self) -> bool:
        """Whether :func:`.fixed_neuron_loop.neuron_loop` implements this neuron: every built-in neuron
        with one spike per step, no membrane floor and the default synapse order; the others
        (``spike_mode='multi'``, ``v_min``, ``synapse='input_first'``) run :meth:`reference_step`."""
        return loop_compatible(self.op.node)

    def describe(self):
        out = {
            "state_bits": self.bits,
            "coefficient_bits": self.frac,
            "state_scale": self.state_scales,
            "in_formats": [f.describe() if f else None for f in self.in_formats],
        }
        if self.spiking:
            out["threshold_int"] = _summary(self.theta)
        out["decay_int"] = _summary(self.B)
        return out


def _to_int(compute, *, path: str, what: str) -> np.ndarray:
    """``rint(compute())`` as int64, refusing values that are not finite or do not fit the datapath
    (a v_threshold of 1e-300 or an r of 1e300 would otherwise be cast to garbage silently)."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        values = np.asarray(compute(), np.float64)
    if not np.all(np.isfinite(values)) or float(np.abs(values).max(initial=0.0)) >= INT_SAFE:
        raise BackendError(
            f"node {path!r}: {what} cannot be represented in fixed point (it scales to "
            f"{float(np.abs(values).max(initial=0.0)):.3g}); check the neuron's parameters for extreme values"
        )
    return np.rint(values).astype(INT)


class FixedDelay(FloatDelay):
    """Delay of the integers (the fan-in summed at a common scale, as every stateless node does)."""

    def __init__(self, op: Op, ctx: FixedContext, in_formats: list[QFormat | None]) -> None:
        super().__init__(op, INT)
        self._merger = FixedKernel(op, ctx, in_formats)
        self.out_formats = self._merger.out_formats
        self.in_formats = in_formats

    def merge(self, xs):
        return self._merger.merge(xs)


def _summary(a: np.ndarray):
    a = np.asarray(a)
    return int(a.reshape(-1)[0]) if a.size and np.all(a == a.reshape(-1)[0]) else a.reshape(-1).tolist()
