"""Compiled time loops of the spiking neurons for ``run_sequence`` (numba, the ``fast`` extra).

One kernel call steps a whole layer through ``T`` steps, instead of one PyTorch operation per
term per step (each a dispatch, and on two threads a parallel region whose join waits for the
other core). The kernels do, element by element and in the same order, exactly the float
operations of the in-place PyTorch loops in ``talon.bridge.sequence`` — which are their twins
(``TALON_DISABLE_NUMBA=1``, or no numba) — so the results are identical bit for bit:

* membrane, ``membrane`` code 0 (IF): ``v + g·x`` (``v + x`` with unit gain);
  1 (decay): ``(beta·v + g·x) + c`` (without ``+ c`` when there is no drive);
  2 (Euler): ``v + k·((v_leak - v) + r·x)``;
* reset with a crossing ``z`` in {0, 1}: subtract ``v + (-z)·theta`` (what ``addcmul_(z, theta,
  value=-1)`` computes), value ``v_reset`` where ``z > 0``, or none;
* spike ``v > theta`` (``>=`` when inclusive) written as 1/0 into the output.

The helpers are marked with ``talon._compiled.helper`` (compiled into the kernel that calls them);
the kernels are compiled with ``talon._compiled.compiled``: importing this module does not import
numba. Float constants never appear in the arithmetic (numba would widen float32 to float64), and
numba compiles without fast-math, so no product is fused into an add. Coefficients are passed
expanded to the flat layer size ``L`` (without the batch).
"""

from __future__ import annotations

import numpy as np

from talon._compiled import helper

MEMBRANE_IF, MEMBRANE_DECAY, MEMBRANE_EULER = 0, 1, 2
RESET_NONE, RESET_SUBTRACT, RESET_VALUE = 0, 1, 2
TIMING_IMMEDIATE, TIMING_SNNTORCH, TIMING_DELAYED, TIMING_DELAYED_PRE_DECAY = 0, 1, 2, 3


@helper
def _membrane(v, x, membrane, unit_gain, has_drive, gain, beta, drive, k, v_leak, r):
    """``v <- membrane(v, x)`` in place over the flat layer."""
    m = v.shape[0]
    if membrane == 0:
        if unit_gain:
            for j in range(m):
                v[j] = v[j] + x[j]
        else:
            for j in range(m):
                v[j] = v[j] + gain[j] * x[j]
    elif membrane == 1:
        if unit_gain:
            for j in range(m):
                v[j] = beta[j] * v[j] + x[j]
        else:
            for j in range(m):
                v[j] = beta[j] * v[j] + gain[j] * x[j]
        if has_drive:
            for j in range(m):
                v[j] = v[j] + drive[j]
    else:
        for j in range(m):
            v[j] = v[j] + ((v_leak[j] - v[j]) + r[j] * x[j]) * k[j]


@helper
def _reset(v, z, reset, theta, v_reset):
    m = v.shape[0]
    if reset == 1:
        for j in range(m):
            v[j] = v[j] + (-z[j]) * theta[j]
    elif reset == 2:
        for j in range(m):
            if z[j] > 0:
                v[j] = v_reset[j]


@helper
def _membrane_then_reset(v, x, z, membrane, unit_gain, has_drive, gain, beta, drive, k, v_leak, r, reset, theta,
                         v_reset):  # fmt: skip
    """``_membrane`` then ``_reset`` with the crossing ``z``; snnTorch's leaky membrane with a
    subtractive reset, ``(beta·v + x) + (-z)·theta``, in one pass (the same two roundings)."""
    if membrane == 1 and unit_gain and not has_drive and reset == 1:
        for j in range(v.shape[0]):
            v[j] = (beta[j] * v[j] + x[j]) + (-z[j]) * theta[j]
        return
    _membrane(v, x, membrane, unit_gain, has_drive, gain, beta, drive, k, v_leak, r)
    _reset(v, z, reset, theta, v_reset)


@helper
def _crossing(v, theta, inclusive, out):
    m = v.shape[0]
    if inclusive:
        for j in range(m):
            out[j] = v[j] >= theta[j]
    else:
        for j in range(m):
            out[j] = v[j] > theta[j]


def spiking_steps(x, v, out, membrane, unit_gain, has_drive, gain, beta, drive, k, v_leak, r,
                  theta, v_reset, reset, timing, spike_pre, inclusive, b_start, b_stop):  # fmt: skip
    """Step the membranes ``v[B, L]`` through ``x[T, B, L]`` in place, spikes into ``out[T, B, L]``,
    for the batch rows ``b_start <= b < b_stop`` (rows are independent: threads may share a call);
    coefficients are ``[L]`` (or empty when unused). The order of operations is ``_Spiking._fire``'s.

    One batch row at a time goes through all ``T`` steps, so its membrane and the coefficients
    stay in the L1 cache; each phase of a step is its own (vectorised) loop over the row."""
    steps, _, m = x.shape
    z_prev = np.empty(m, x.dtype)
    for b in range(b_start, b_stop):
        vb = v[b]
        if timing == 0:  # immediate: update, fire, reset with this step's spike
            for t in range(steps):
                o = out[t, b]
                _membrane(vb, x[t, b], membrane, unit_gain, has_drive, gain, beta, drive, k, v_leak, r)
                _crossing(vb, theta, inclusive, o)
                _reset(vb, o, reset, theta, v_reset)
            continue
        _crossing(vb, theta, inclusive, z_prev)
        if timing == 1:  # snnTorch immediate: reset with z_prev, fire, then v - (z - z_prev)·theta
            for t in range(steps):
                o = out[t, b]
                if t:
                    _crossing(vb, theta, inclusive, z_prev)
                _membrane_then_reset(vb, x[t, b], z_prev, membrane, unit_gain, has_drive, gain, beta, drive, k,
                                     v_leak, r, reset, theta, v_reset)  # fmt: skip
                _crossing(vb, theta, inclusive, o)
                for j in range(m):
                    vb[j] = vb[j] + (-(o[j] - z_prev[j])) * theta[j]
            continue
        for t in range(steps):  # delayed (2), delayed before the decay (3)
            o = out[t, b]
            # without spike_pre the crossing of the last state is the previous step's output
            crossed = z_prev if spike_pre or t == 0 else out[t - 1, b]
            if spike_pre:
                for j in range(m):
                    o[j] = z_prev[j]
            if timing == 3:
                _reset(vb, crossed, reset, theta, v_reset)
                _membrane(vb, x[t, b], membrane, unit_gain, has_drive, gain, beta, drive, k, v_leak, r)
            else:
                _membrane_then_reset(vb, x[t, b], crossed, membrane, unit_gain, has_drive, gain, beta, drive, k,
                                     v_leak, r, reset, theta, v_reset)  # fmt: skip
            _crossing(vb, theta, inclusive, z_prev if spike_pre else o)


def synaptic_current(x, i0, unit_gain, alpha, syn_gain, current, b_start, b_stop):
    """``current[t] = alpha·current[t-1] + g_s·x[t]`` (``+ x[t]`` with unit gain) from ``i0[B, L]``
    for the batch rows ``b_start <= b < b_stop``; ``x``, ``current``: ``[T, B, L]``, coefficients ``[L]``."""
    steps, _, m = x.shape
    for b in range(b_start, b_stop):
        for t in range(steps):
            previous = i0[b] if t == 0 else current[t - 1, b]
            c, xt = current[t, b], x[t, b]
            if unit_gain:
                for j in range(m):
                    c[j] = alpha[j] * previous[j] + xt[j]
            else:
                for j in range(m):
                    c[j] = alpha[j] * previous[j] + syn_gain[j] * xt[j]
