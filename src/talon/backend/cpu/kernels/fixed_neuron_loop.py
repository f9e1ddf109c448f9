"""The time loop of the integer neurons, compiled (numba) for whole sequences.

:meth:`FixedNeuron.step <.fixed_neurons.FixedNeuron.step>` is the reference: one step of
docs/backend.md §4.4 on ``[B, ...]`` int64 arrays, a dozen numpy operations per step. For an
acyclic neuron layer the whole ``[T, B, ...]`` sequence is known in advance, so
:func:`run_neurons` computes the input drive ``sum_e G_e * x_e`` for every step at once and runs
the recurrence in one compiled loop over ``t`` and the elements, with the same int64 operations in
the same order: the integers are identical (``tests/backend/test_fixed_neuron_loop.py`` runs both on
every reset mode and timing). Without numba (or with ``TALON_DISABLE_NUMBA=1``), or for a run too
short to pay for starting numba (``FIXED_LOOP_WORK``), the caller loops over :meth:`step` instead.

A neuron with one incoming edge of its own shape does not form the drive at all: the loop reads
the edge ``x`` (int64, or the float32 a weight layer leaves its accumulator in when it is below
``2**24``: an exact integer) and multiplies by the gain itself, ``d = G[m] * int64(x)`` — the same
int64 product, without forming the drive array.
"""

from __future__ import annotations

import functools

import numpy as np

from talon._compiled import LoopCost, compiled

from ..formats.fixed_point import INT

# What each path costs (talon._compiled.LoopCost, ns of CPU time; bench/loop_costs.py, one LIF layer
# through the int8 engine, input quantization included on both paths, one thread, fitted over
# T 300-20,000 x B 1-64 x L 16-2,048 at load 7): the numpy step ~35 us per step + ~32 ns per neuron,
# the compiled loop ~23 ns per neuron (most of it the quantization and the drive both paths form).
# A call's work for FIXED_LOOP_WORK is what the compiled loop saves, in ns.
FIXED_LOOP_COST = LoopCost(
    "fixed-point neuron loop", twin_step=35_000, twin_element=32, kernel_step=0, kernel_element=23
)
FIXED_LOOP_WORK = FIXED_LOOP_COST.threshold()


def run_work(steps: int, elements: int) -> int:
    """The work of ``steps`` steps of ``elements`` (batch x neurons) integer neurons, for
    ``FIXED_LOOP_WORK``: the CPU time the compiled loop saves over the numpy step, in ns."""
    return FIXED_LOOP_COST.saving_ns(steps, elements)


RESET_MODES = {"value": 0, "subtract": 1, "none": 2}
RESET_TIMINGS = {"immediate": 0, "delayed": 1, "delayed_pre_decay": 2, "snntorch_immediate": 3}


def neuron_loop(
    drive, in_gain, v, i, beta, c, alpha, gain, theta, v_reset, cuba, spiking, mode, timing, ge, post, frac, bits,
    record, out, v_trace, i_trace,
):  # fmt: skip
    """Advance ``v [B, M]`` (and ``i``) through the drive ``in_gain[m] * drive[t, b, m]`` (``drive
    [T, B, M]`` int64 or float32 integers; ``in_gain [M]`` ones when ``drive`` is already the summed
    drive); write ``out [T, B, M]`` and, with ``record``, the states
    after every step. Parameters are ``[M]`` int64 (one per neuron); ``mode`` / ``timing`` index
    :data:`RESET_MODES` / :data:`RESET_TIMINGS`. Written in numba's subset.

    Per neuron it computes exactly the integers of ``FixedNeuron.reference_step``; the loops are laid
    out for speed: for each ``(t, b)`` row every stage (compare, reset, current, membrane, spike) is
    one loop over the ``M`` neurons, the choices of neuron kind, reset mode and timing taken once per
    row outside it (branch-free inner loops the compiler can vectorise). The reset ``R(u, z)`` is
    spelled out per mode: ``v_reset`` (value), ``sat(u - theta)`` (subtract) or ``u`` (none), where
    ``z`` is set."""
    steps, batch, size = drive.shape
    lo = -(1 << (bits - 1))
    hi = (1 << (bits - 1)) - 1
    half = (1 << (frac - 1)) if frac > 0 else 0
    z_prev = np.zeros(size, np.int64)
    z = np.zeros(size, np.int64)
    vv = np.empty(size, np.int64)
    d = np.empty(size, np.int64)
    u = np.empty(size, np.int64)
    for t in range(steps):
        for b in range(batch):
            vb = v[b]
            x = drive[t, b]
            for m in range(size):
                d[m] = in_gain[m] * np.int64(x[m])
            for m in range(size):
                vv[m] = vb[m]
            if spiking:
                if ge:
                    for m in range(size):
                        z_prev[m] = 1 if vv[m] >= theta[m] else 0
                else:
                    for m in range(size):
                        z_prev[m] = 1 if vv[m] > theta[m] else 0
                if timing == 2:  # delayed_pre_decay: reset before the decay
                    if mode == 0:
                        for m in range(size):
                            vv[m] = v_reset[m] if z_prev[m] else vv[m]
                    elif mode == 1:
                        for m in range(size):
                            vv[m] = min(max(vv[m] - theta[m], lo), hi) if z_prev[m] else vv[m]
            if cuba:
                ib = i[b]
                if frac > 0:
                    for m in range(size):
                        ib[m] = min(max((alpha[m] * ib[m] + d[m] + half) >> frac, lo), hi)
                else:
                    for m in range(size):
                        ib[m] = min(max(alpha[m] * ib[m] + d[m], lo), hi)
                if record:
                    for m in range(size):
                        i_trace[t, b, m] = ib[m]
                for m in range(size):
                    d[m] = gain[m] * ib[m]
            if frac > 0:
                for m in range(size):
                    u[m] = min(max(((beta[m] * vv[m] + d[m] + half) >> frac) + c[m], lo), hi)
            else:
                for m in range(size):
                    u[m] = min(max(beta[m] * vv[m] + d[m] + c[m], lo), hi)
            if spiking:
                if timing == 1 or timing == 3:  # delayed, snntorch_immediate: the previous spike resets
                    if mode == 0:
                        for m in range(size):
                            u[m] = v_reset[m] if z_prev[m] else u[m]
                    elif mode == 1:
                        for m in range(size):
                            u[m] = min(max(u[m] - theta[m], lo), hi) if z_prev[m] else u[m]
                if ge:
                    for m in range(size):
                        z[m] = 1 if u[m] >= theta[m] else 0
                else:
                    for m in range(size):
                        z[m] = 1 if u[m] > theta[m] else 0
                if timing == 0:  # immediate
                    if mode == 0:
                        for m in range(size):
                            u[m] = v_reset[m] if z[m] else u[m]
                    elif mode == 1:
                        for m in range(size):
                            u[m] = min(max(u[m] - theta[m], lo), hi) if z[m] else u[m]
                elif timing == 3:  # snntorch_immediate: correct the reset to this step's spike
                    for m in range(size):
                        u[m] = min(max(u[m] - (z[m] - z_prev[m]) * theta[m], lo), hi)
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


def per_neuron_int(a, shape: tuple[int, ...]) -> np.ndarray:
    """A scalar or neuron-shaped integer parameter as a flat contiguous writable int64 ``[M]`` copy."""
    return np.array(np.broadcast_to(np.asarray(a, INT), shape).reshape(-1))


def loop_parameters(kernel) -> tuple:
    """The arguments of :func:`neuron_loop` that describe the neuron (``beta`` .. ``bits``), made
    once per kernel: flags as bool, codes and widths as int, arrays flat writable int64 (so numba
    compiles one signature)."""
    cached = getattr(kernel, "_loop_parameters", None)
    if cached is not None:
        return cached
    ints = functools.partial(per_neuron_int, shape=kernel.shape)
    spiking = bool(kernel.spiking)
    zero = np.zeros(int(np.prod(kernel.shape, dtype=np.int64)), INT)
    params = (
        ints(kernel.B),
        ints(kernel.C),
        ints(kernel.A) if kernel.cuba else zero,
        ints(kernel.G) if kernel.cuba else zero,
        ints(kernel.theta) if spiking else zero,
        ints(kernel.v_reset) if spiking else zero,
        bool(kernel.cuba),
        spiking,
        RESET_MODES[kernel.mode] if spiking else 0,
        RESET_TIMINGS[kernel.timing] if spiking else 0,
        bool(spiking and kernel.ge),
        bool(spiking and kernel.post),
        int(kernel.frac),
        int(kernel.bits),
    )
    kernel._loop_parameters = params
    return params


def _drive(kernel, xs: list[np.ndarray], lead: tuple[int, ...]) -> np.ndarray:
    """``sum_e G_e * x_e`` (left to right, as ``FixedNeuron.step``) as a writable ``[*lead, M]`` int64 array."""
    drive = None
    for x, g in zip(xs, kernel.edge_gains, strict=True):
        term = g * x.astype(INT, copy=False)  # an exact float input joins the int64 sum as int64
        drive = term if drive is None else drive + term
    full = (*lead, *kernel.shape)
    if drive.shape != full:
        drive = np.broadcast_to(drive, full)
    return np.require(drive, INT, ["C", "W"]).reshape(*lead, -1)


_NO_TRACE = np.empty((1, 1, 1), INT)


def drive_operands(kernel, xs: list[np.ndarray], lead: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``(drive, in_gain)`` for :func:`neuron_loop`: one edge of the neuron's shape is read as it is
    (int64 or float32, ``[*lead, M]``) with its gain per neuron; else the summed int64 drive with
    unit gains."""
    size = int(np.prod(kernel.shape, dtype=np.int64))
    if len(xs) == 1 and xs[0].shape == (*lead, *kernel.shape) and xs[0].dtype in (INT, np.float32):
        gains = getattr(kernel, "_loop_in_gain", None)
        if gains is None:
            gains = kernel._loop_in_gain = per_neuron_int(kernel.edge_gains[0], kernel.shape)
        return np.ascontiguousarray(xs[0]).reshape(*lead, size), gains
    ones = getattr(kernel, "_loop_unit_gain", None)
    if ones is None:
        ones = kernel._loop_unit_gain = np.ones(size, INT)
    return _drive(kernel, xs, lead), ones


def run_neurons(kernel, xs: list[np.ndarray], record: bool, state: dict | None = None):
    """The whole sequence ``xs`` (``[T, B, ...]`` per incoming edge) through ``kernel`` (a
    :class:`~.fixed_neurons.FixedNeuron`) in the compiled loop, from ``state`` (``init_state`` when
    None; updated in place to the last step's); None when numba is unavailable.

    Returns ``([out], {"v": [T, B, ...], "i": ...} or None)`` like ``StatefulKernel.run``; None also
    when the run is too short to pay for starting numba (``FIXED_LOOP_WORK``). Declining does not
    count the run's work: the step loop that runs instead asks :func:`step_neurons` at every step,
    which counts it (and may start the compiled step once the steps add up).
    """
    steps, batch = xs[0].shape[:2]
    elements = batch * int(np.prod(kernel.shape, dtype=np.int64))
    if not FIXED_LOOP_WORK.use_compiled(run_work(steps, elements), count=False):
        return None
    loop = compiled(neuron_loop)
    if loop is None:
        return None
    drive, in_gain = drive_operands(kernel, xs, (steps, batch))
    carried = state
    if state is None:
        state = kernel.init_state(batch)
    size = drive.shape[-1]
    v = np.require(state["v"], INT, ["C", "W"]).reshape(batch, size)
    i = np.require(state["i"], INT, ["C", "W"]).reshape(batch, size) if kernel.cuba else np.zeros((1, 1), INT)
    out = np.empty((steps, batch, size), INT)
    v_trace = np.empty((steps, batch, size), INT) if record else _NO_TRACE
    i_trace = np.empty((steps, batch, size), INT) if record and kernel.cuba else _NO_TRACE
    loop(drive, in_gain, v, i, *loop_parameters(kernel), bool(record), out, v_trace, i_trace)
    if carried is not None:
        carried["v"] = v.reshape(batch, *kernel.shape)
        if kernel.cuba:
            carried["i"] = i.reshape(batch, *kernel.shape)
    full = (steps, batch, *kernel.shape)
    trace = None
    if record:
        trace = {"v": v_trace.reshape(full)}
        if kernel.cuba:
            trace["i"] = i_trace.reshape(full)
    return [out.reshape(full)], trace


def step_neurons(kernel, xs: list[np.ndarray], state: dict[str, np.ndarray]):
    """One step (``[B, ...]`` inputs) in the compiled loop, as ``FixedNeuron.step`` returns it
    (``([out], new_state)``; ``state`` is not modified); None when numba is unavailable or, by
    ``FIXED_LOOP_WORK``, not worth starting."""
    batch = xs[0].shape[0]
    if not FIXED_LOOP_WORK.use_compiled(run_work(1, batch * int(np.prod(kernel.shape, dtype=np.int64)))):
        return None
    loop = compiled(neuron_loop)
    if loop is None:
        return None
    drive, in_gain = drive_operands(kernel, [x[None] for x in xs], (1, batch))
    size = drive.shape[-1]
    v = np.array(state["v"], INT).reshape(batch, size)
    i = np.array(state["i"], INT).reshape(batch, size) if kernel.cuba else np.zeros((1, 1), INT)
    out = np.empty((1, batch, size), INT)
    loop(drive, in_gain, v, i, *loop_parameters(kernel), False, out, _NO_TRACE, _NO_TRACE)
    full = (batch, *kernel.shape)
    new = {"v": v.reshape(full)}
    if kernel.cuba:
        new["i"] = i.reshape(full)
    y = new["v"] if not kernel.spiking else out.reshape(full)
    return [y], new
