"""The time loop of the integer neurons, compiled (numba) for whole sequences.

:meth:`FixedNeuron.step <.fixed_neurons.FixedNeuron.step>` is the reference: one step of
docs/backend.md §4.4 on ``[B, ...]`` int64 arrays, a dozen numpy operations per step. For an
acyclic neuron layer the whole ``[T, B, ...]`` sequence is known in advance, so
:func:`run_neurons` computes the input drive ``sum_e G_e * x_e`` for every step at once and runs
the recurrence in one compiled loop over ``t`` and the elements, with the same int64 operations in
the same order: the integers are identical (``tests/backend/test_fixed_neuron_loop.py`` runs both on
every reset mode and timing). Without numba (or with ``TALON_DISABLE_NUMBA=1``) the caller loops
over :meth:`step` instead.
"""

from __future__ import annotations

import functools

import numpy as np

from talon._compiled import compiled

from .fixed_point import INT

RESET_MODES = {"value": 0, "subtract": 1, "none": 2}
RESET_TIMINGS = {"immediate": 0, "delayed": 1, "delayed_pre_decay": 2, "snntorch_immediate": 3}


def neuron_loop(
    drive, v, i, beta, c, alpha, gain, theta, v_reset, cuba, spiking, mode, timing, ge, post, frac, bits, record,
    out, v_trace, i_trace,
):  # fmt: skip
    """Advance ``v [B, M]`` (and ``i``) through ``drive [T, B, M]``; write ``out [T, B, M]`` and,
    with ``record``, the states after every step. Parameters are ``[M]`` int64 (one per neuron);
    ``mode`` / ``timing`` index :data:`RESET_MODES` / :data:`RESET_TIMINGS`. Written in numba's
    subset (plain loops over int64 scalars); the reset ``R(u, 1)`` is spelled out where it applies:
    ``v_reset`` (value), ``sat(u - theta)`` (subtract) or ``u`` (none)."""
    steps, batch, size = drive.shape
    lo = -(1 << (bits - 1))
    hi = (1 << (bits - 1)) - 1
    half = (1 << (frac - 1)) if frac > 0 else 0
    for t in range(steps):
        for b in range(batch):
            for m in range(size):
                vv = v[b, m]
                th = theta[m]
                d = drive[t, b, m]
                z_prev = 0
                if spiking:
                    z_prev = 1 if (vv >= th if ge else vv > th) else 0
                    if timing == 2 and z_prev:  # delayed_pre_decay: reset before the decay
                        vv = v_reset[m] if mode == 0 else (min(max(vv - th, lo), hi) if mode == 1 else vv)
                if cuba:
                    ii = ((alpha[m] * i[b, m] + d + half) >> frac) if frac > 0 else alpha[m] * i[b, m] + d
                    ii = min(max(ii, lo), hi)
                    i[b, m] = ii
                    if record:
                        i_trace[t, b, m] = ii
                    d = gain[m] * ii
                u = ((beta[m] * vv + d + half) >> frac) if frac > 0 else beta[m] * vv + d
                u = min(max(u + c[m], lo), hi)
                if not spiking:
                    v[b, m] = u
                    out[t, b, m] = u
                    if record:
                        v_trace[t, b, m] = u
                    continue
                if (timing == 1 or timing == 3) and z_prev:  # delayed, snntorch_immediate
                    u = v_reset[m] if mode == 0 else (min(max(u - th, lo), hi) if mode == 1 else u)
                z = 1 if (u >= th if ge else u > th) else 0
                if timing == 0 and z:  # immediate
                    u = v_reset[m] if mode == 0 else (min(max(u - th, lo), hi) if mode == 1 else u)
                elif timing == 3:  # snntorch_immediate: correct the reset to this step's spike
                    u = min(max(u - (z - z_prev) * th, lo), hi)
                v[b, m] = u
                out[t, b, m] = z if post else z_prev
                if record:
                    v_trace[t, b, m] = u


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
        term = g * x
        drive = term if drive is None else drive + term
    full = (*lead, *kernel.shape)
    if drive.shape != full:
        drive = np.broadcast_to(drive, full)
    return np.require(drive, INT, ["C", "W"]).reshape(*lead, -1)


_NO_TRACE = np.empty((1, 1, 1), INT)


def run_neurons(kernel, xs: list[np.ndarray], record: bool):
    """The whole sequence ``xs`` (``[T, B, ...]`` per incoming edge) through ``kernel`` (a
    :class:`~.fixed_neurons.FixedNeuron`) in the compiled loop; None when numba is unavailable.

    Returns ``([out], {"v": [T, B, ...], "i": ...} or None)`` like ``StatefulKernel.run``.
    """
    loop = compiled(neuron_loop)
    if loop is None:
        return None
    steps, batch = xs[0].shape[:2]
    drive = _drive(kernel, xs, (steps, batch))
    state = kernel.init_state(batch)
    size = drive.shape[-1]
    v = np.require(state["v"], INT, ["C", "W"]).reshape(batch, size)
    i = np.require(state["i"], INT, ["C", "W"]).reshape(batch, size) if kernel.cuba else np.zeros((1, 1), INT)
    out = np.empty((steps, batch, size), INT)
    v_trace = np.empty((steps, batch, size), INT) if record else _NO_TRACE
    i_trace = np.empty((steps, batch, size), INT) if record and kernel.cuba else _NO_TRACE
    loop(drive, v, i, *loop_parameters(kernel), bool(record), out, v_trace, i_trace)
    full = (steps, batch, *kernel.shape)
    trace = None
    if record:
        trace = {"v": v_trace.reshape(full)}
        if kernel.cuba:
            trace["i"] = i_trace.reshape(full)
    return [out.reshape(full)], trace


def step_neurons(kernel, xs: list[np.ndarray], state: dict[str, np.ndarray]):
    """One step (``[B, ...]`` inputs) in the compiled loop, as ``FixedNeuron.step`` returns it
    (``([out], new_state)``; ``state`` is not modified); None when numba is unavailable."""
    loop = compiled(neuron_loop)
    if loop is None:
        return None
    batch = xs[0].shape[0]
    drive = _drive(kernel, xs, (1, batch))
    size = drive.shape[-1]
    v = np.array(state["v"], INT).reshape(batch, size)
    i = np.array(state["i"], INT).reshape(batch, size) if kernel.cuba else np.zeros((1, 1), INT)
    out = np.empty((1, batch, size), INT)
    loop(drive, v, i, *loop_parameters(kernel), False, out, _NO_TRACE, _NO_TRACE)
    full = (batch, *kernel.shape)
    new = {"v": v.reshape(full)}
    if kernel.cuba:
        new["i"] = i.reshape(full)
    y = new["v"] if not kernel.spiking else out.reshape(full)
    return [y], new
