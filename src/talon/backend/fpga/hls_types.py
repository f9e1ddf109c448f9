"""talon fixed-point formats as Xilinx arbitrary-precision types (docs/fpga.md §3).

A talon tensor is integers ``q`` with a real scale (per tensor, channel or element) and a static
bound ``|q| <= bound`` (``talon.backend.cpu.formats.fixed_point.QFormat``). On the FPGA the scale never
exists: it is folded into the integer multipliers of the next rescaling, neuron gain or the host's
output conversion, exactly as in the CPU backend. Only the integers travel, so every format maps
to a signed integer type wide enough for its bound:

================================  ==========================================================
talon                             HLS type
================================  ==========================================================
value with bound ``b``            ``ap_int<bit_length(b) + 1>`` (spikes: ``ap_int<2>``)
weights, ``weight_bits = w``      ``ap_int<w>`` (symmetric: ``|q| <= 2^(w-1) - 1``)
bias / accumulator, ``a`` bits    ``ap_int<a>`` / ``ap_fixed<a, a, AP_TRN, AP_SAT>`` (the
                                  saturating cast of the accumulator is the CPU's saturate)
exact accumulation                ``ap_int<64>`` (hls4ml's ``accum_t``): talon proves every sum
                                  below ``2^62``, so the 64-bit sum never wraps
membrane / current, ``state_bits`` ``ap_int<state_bits>``
coefficients, multipliers         64-bit constants (``long long``) with a shift
================================  ==========================================================
"""

from __future__ import annotations

import math

import numpy as np

from ..cpu.formats.fixed_point import QFormat


def bits_for_bound(bound: int) -> int:
    """Signed width holding every integer in ``[-bound, bound]``."""
    return max(2, min(64, int(bound).bit_length() + 1))


def int_type(bits: int) -> str:
    return f"ap_int<{int(bits)}>"


def saturating_type(bits: int) -> str:
    """An integer type whose assignment saturates to ``bits`` bits (two's complement)."""
    return f"ap_fixed<{int(bits)}, {int(bits)}, AP_TRN, AP_SAT>"


def value_type(fmt: QFormat) -> str:
    return int_type(bits_for_bound(fmt.bound))


NATIVE_INTS = (("short", 2**15 - 1), ("int", 2**31 - 1), ("long long", 2**63 - 1))
MIN_BLOCK = 16  # narrower partial sums pay off from blocks of this many rows


def dense_sums(kernel, n_in: int) -> tuple[str, str, int]:
    """The dense kernel's native integers ``(sum_t, part_t, block)`` from the bounds the CPU
    backend proves (``QWeighted.finish``): ``sum_t`` holds the bias plus any partial sum
    (``max_j sum_i |w_ij| * bound(x) + max_j |b_j|``); ``part_t`` holds any sum of ``block``
    products, each at most ``max|w| * bound(x)``. The narrowest type that takes blocks of at
    least MIN_BLOCK rows (or all of them) is chosen: half the work per product in C simulation
    for each halving of the width, and narrower adders in hardware."""
    total = math.ceil(kernel.worst) + int(np.abs(kernel.bias_q).max(initial=0))
    sum_t = next(name for name, top in NATIVE_INTS if total <= top)
    term = max(int(np.abs(kernel.weight_t).max(initial=0)), 1) * max(int(kernel.input_format.bound), 1)
    for name, top in NATIVE_INTS:
        if name == sum_t:
            break
        block = min(top // term, n_in)
        if block >= min(MIN_BLOCK, n_in):
            return sum_t, name, block
    return sum_t, sum_t, n_in
