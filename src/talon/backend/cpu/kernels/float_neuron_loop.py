"""The time loop of the float32 neurons, compiled (numba) for whole sequences.

:meth:`FloatNeuron.step <.float_neurons.FloatNeuron.step>` is the reference: one step of
docs/semantics.md §3 as a dozen numpy float32 operations on ``[B, ...]`` arrays. For an acyclic
layer the whole input ``[T, B, ...]`` is known, so :func:`run_float_neurons` runs the recurrence in
one compiled loop over ``t`` and the elements, writing every operation as the same float32
expression in the same order (numba keeps IEEE semantics: no reassociation, no fused
multiply-add), so the values are bit for bit those of the step loop
(``tests/backend/test_float_neuron_loop.py`` compares them on every reset mode and timing).
Without numba, for a run too short to pay for starting numba (``FLOAT_LOOP_WORK``), for another
dtype, or for the variants the loop does not implement (Euler
integration, ``spike_mode='multi'``, ``v_min``, ``synapse='input_first'``) the caller loops over
:meth:`step` instead.
"""

from __future__ import annotations

import numpy as np

from talon._compiled import LoopCost, compiled

from .fixed_neuron_loop import RESET_MODES, RESET_TIMINGS
from .float_neurons import is_euler, loop_compatible

F32 = np.float32

# What each path costs (talon._compiled.LoopCost, ns of CPU time; bench/loop_costs.py, one LIF layer
# through the fp32 engine, one thread, fitted over T 300-20,000 x B 1-64 x L 16-2,048 at load 2-3):
# the numpy step loop ~9.5 us per step (a dozen numpy calls) + ~5.1 ns per neuron, the compiled loop
# ~2.4 ns per neuron. A call's work for FLOAT_LOOP_WORK is what the compiled loop saves, in ns.
FLOAT_LOOP_COST = LoopCost("float32 neuron loop", twin_step=9_500, twin_element=5.1, kernel_step=0, kernel_element=2.4)
FLOAT_LOOP_WORK = FLOAT_LOOP_COST.threshold()


def run_work(steps: int, elements: int) -> int:
    """The work of ``steps`` steps of ``elements`` (batch x neurons) float32 neurons, for
    ``FLOAT_LOOP_WORK``: the CPU time the compiled loop saves over the step loop, in ns."""
    return FLOAT_LOOP_COST.saving_ns(steps, elements)


def float_neuron_loop(
    x, v, i, beta, g, c, alpha, gs, theta, v_reset, cuba, spiking, integrator, mode, timing, ge, post, record,
    out, v_trace, i_trace,
):  # fmt: skip
    """Advance ``v [B, M]`` (and ``i``) through ``x [T, B, M]`` (all float32); write ``out`` and,
    with ``record``, the states after every step. Parameters are float32 ``[M]``; ``mode`` /
    ``timing`` index ``RESET_MODES`` / ``RESET_TIMINGS``. Per ``(t, b)`` row each stage is one loop
    over the neurons (the choices taken outside it). Every expression is the step's numpy
    expression: ``R(a, z)`` is ``where(z > 0, v_reset, a)`` (value), ``a - z * theta`` (subtract) or
    ``a`` (none), with ``z`` the float32 0 / 1 of the comparison."""
    steps, batch, size = x.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    z_prev = np.zeros(size, np.float32)
    z = np.zeros(size, np.float32)
    vv = np.empty(size, np.float32)
    d = np.empty(size, np.float32)
    u = np.empty(size, np.float32)
    for t in range(steps):
        for b in range(batch):
            vb = v[b]
            xr = x[t, b]
            for m in range(size):
                vv[m] = vb[m]
                d[m] = xr[m]
            if spiking:
                if ge:
                    for m in range(size):
                        z_prev[m] = one if vv[m] >= theta[m] else zero
                else:
                    for m in range(size):
                        z_prev[m] = one if vv[m] > theta[m] else zero
                if timing == 2:  # delayed_pre_decay
                    if mode == 0:
                        for m in range(size):
                            vv[m] = v_reset[m] if z_prev[m] > zero else vv[m]
                    elif mode == 1:
                        for m in range(size):
                            vv[m] = vv[m] - z_prev[m] * theta[m]
            if cuba:
                ib = i[b]
                for m in range(size):
                    ib[m] = alpha[m] * ib[m] + gs[m] * d[m]
                    d[m] = ib[m]
                if record:
                    for m in range(size):
                        i_trace[t, b, m] = ib[m]
            if integrator:
                for m in range(size):
                    u[m] = vv[m] + g[m] * d[m]
            else:
                for m in range(size):
                    u[m] = (beta[m] * vv[m] + g[m] * d[m]) + c[m]
            if spiking:
                if timing == 1 or timing == 3:  # delayed, snntorch_immediate
                    if mode == 0:
                        for m in range(size):
                            u[m] = v_reset[m] if z_prev[m] > zero else u[m]
                    elif mode == 1:
                        for m in range(size):
                            u[m] = u[m] - z_prev[m] * theta[m]
                if ge:
                    for m in range(size):
                        z[m] = one if u[m] >= theta[m] else zero
                else:
                    for m in range(size):
                        z[m] = one if u[m] > theta[m] else zero
                if timing == 0:  # immediate
                    if mode == 0:
                        for m in range(size):
                            u[m] = v_reset[m] if z[m] > zero else u[m]
                    elif mode == 1:
                        for m in range(size):
                            u[m] = u[m] - z[m] * theta[m]
                elif timing == 3:
                    for m in range(size):
                        u[m] = u[m] - (z[m] - z_prev[m]) * theta[m]
                if post:
                    for m in range(size):
                        out[t, b, m] = z[m]
                else:
                    for m in range(size):
                        out[t, b, m] = z_prev[m]
            else:
                for m in range(size):
                    out[t, b, m] = u[m]
            for m in range(size):
                vb[m] = u[m]
            if record:
                for m in range(size):
                    v_trace[t, b, m] = u[m]


def loop_supported(kernel) -> bool:
    """Whether :func:`float_neuron_loop` implements ``kernel`` (a ``FloatNeuron``): float32 and a node
    :func:`node_supported` accepts."""
    return kernel.dtype == F32 and node_supported(kernel.op.node)


def node_supported(node) -> bool:
    """Whether :func:`float_neuron_loop` implements a float32 neuron of ``node``: decay integration
    (or Integrator), one spike per step, no membrane floor, the default synapse order."""
    return not is_euler(node) and loop_compatible(node)


def _parameters(kernel) -> tuple:
    cached = getattr(kernel, "_loop_parameters", None)
    if cached is not None:
        return cached
    size = int(np.prod(kernel.shape, dtype=np.int64))

    def flat(name):
        if name not in kernel.k:
            return np.zeros(size, F32)
        return np.ascontiguousarray(np.broadcast_to(kernel.k[name], kernel.shape).reshape(-1), F32)

    spiking = bool(kernel.spiking)
    params = (
        flat("beta"), flat("g"), flat("c"), flat("alpha"), flat("gs"), flat("theta"), flat("v_reset"),
        bool(kernel.cuba), spiking, bool(kernel.integrator),
        RESET_MODES[kernel.mode] if spiking else 0,
        RESET_TIMINGS[kernel.timing] if spiking else 0,
        bool(spiking and kernel.ge), bool(spiking and kernel.post),
    )  # fmt: skip
    kernel._loop_parameters = params
    return params


_NO_TRACE = np.empty((1, 1, 1), F32)


def run_float_neurons(kernel, x: np.ndarray, record: bool, state: dict | None = None):
    """The whole sequence ``x [T, B, ...]`` (the summed input, float32) through ``kernel`` in the
    compiled loop, from ``state`` (``init_state`` when None; updated in place to the last step's);
    None when numba is unavailable or the run is too short to pay for starting it
    (``FLOAT_LOOP_WORK``). Returns ``([out], states or None)`` like ``StatefulKernel.run``."""
    steps, batch = x.shape[:2]
    size = int(np.prod(kernel.shape, dtype=np.int64))
    loop = compiled(float_neuron_loop) if FLOAT_LOOP_WORK.use_compiled(run_work(steps, batch * size)) else None
    if loop is None:
        return None
    full = (steps, batch, *kernel.shape)
    if x.shape != full:
        x = np.broadcast_to(x, full)
    x = np.ascontiguousarray(x, F32).reshape(steps, batch, size)
    carried = state
    if state is None:
        state = kernel.init_state(batch)
    v = np.require(state["v"], F32, ["C", "W"]).reshape(batch, size)
    i = np.require(state["i"], F32, ["C", "W"]).reshape(batch, size) if kernel.cuba else np.zeros((1, 1), F32)
    out = np.empty((steps, batch, size), F32)
    v_trace = np.empty((steps, batch, size), F32) if record else _NO_TRACE
    i_trace = np.empty((steps, batch, size), F32) if record and kernel.cuba else _NO_TRACE
    loop(x, v, i, *_parameters(kernel), bool(record), out, v_trace, i_trace)
    if carried is not None:
        carried["v"] = v.reshape(batch, *kernel.shape)
        if kernel.cuba:
            carried["i"] = i.reshape(batch, *kernel.shape)
    trace = None
    if record:
        trace = {"v": v_trace.reshape(full)}
        if kernel.cuba:
            trace["i"] = i_trace.reshape(full)
    return [out.reshape(full)], trace
