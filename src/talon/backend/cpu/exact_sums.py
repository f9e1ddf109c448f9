"""When a float64-accumulated weight layer has only one possible result.

The fp32 reference sums every product in float64 and rounds once to float32 (docs/semantics.md).
The products of float32 values are exact in float64 (24 + 24 significant bits <= 53). If every
term ``x * w`` (and the bias) is an integer multiple of ``2**q`` and their absolute values add up to
less than ``2**(53 + q)``, then every partial sum — in any order, any grouping, with or without
fused multiply-adds — is an integer multiple of ``2**q`` below ``2**(53 + q)`` in magnitude, which
float64 represents exactly: no addition rounds, and the result is the exact sum whatever the
order. A kernel may then use a faster evaluation order and give the same bits.

Inputs made of spikes, counts or other short dyadic values (``x = n / 2**k``) usually pass; graded
activations (every float32 bit in use) do not, and keep the reference layout. The test is
sufficient, not necessary; it costs a pass over the input (its range and dyadic exponent).
"""

from __future__ import annotations

import math

import numpy as np

from .dyadic import dyadic_exponent


def lowest_exponent(a: np.ndarray) -> int | None:
    """The largest ``e`` with every element of ``a`` an integer multiple of ``2**e`` (finite
    floats; None when every element is zero: no constraint)."""
    a = np.asarray(a, np.float64).reshape(-1)
    nonzero = a[a != 0]
    if not nonzero.size:
        return None
    mantissa, exponent = np.frexp(nonzero)
    bits = np.abs(mantissa * 2.0**53).astype(np.int64)  # the 53-bit significand, an integer
    lowest = np.frexp((bits & -bits).astype(np.float64))[1] - 1  # t with its lowest set bit 2**t
    return int((exponent - 53 + lowest).min())


class ExactSums:
    """The static half of the test for one layer: ``weight`` ``[O, K]`` (one row per output) and
    ``bias`` ``[O]`` (or None), as the kernel stores them. :meth:`holds` completes it with the input."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None) -> None:
        weight = np.asarray(weight, np.float64).reshape(len(weight), -1)
        bias = np.zeros(len(weight)) if bias is None else np.asarray(bias, np.float64).reshape(-1)
        self.usable = bool(np.all(np.isfinite(weight)) and np.all(np.isfinite(bias)))
        if not self.usable:
            return
        self.weight_exponent = lowest_exponent(weight)
        self.bias_exponent = lowest_exponent(bias)
        self.row_abs_sum = np.abs(weight).sum(axis=1)  # rounding here is far inside the factor-2 margin
        self.bias_abs = np.abs(bias)

    def holds(self, x: np.ndarray) -> bool:
        """Whether every partial sum of ``sum_k w[o, k] * x[.., k] + b[o]`` is exact in float64 for
        this input (any window or row of it: ``max |x|`` bounds every element)."""
        if not self.usable or x.size == 0:
            return False
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        k = dyadic_exponent(x, finite=True)  # x * 2**k integral: multiples of 2**-k (None: finer than 2**-32)
        if k is None:
            return False
        exponents = [e for e in (None if self.weight_exponent is None else self.weight_exponent - k,
                                 self.bias_exponent) if e is not None]  # fmt: skip
        if not exponents:
            return True  # all weights and biases are zero
        amax = max(abs(lo), abs(hi))
        total = float(np.max(amax * self.row_abs_sum + self.bias_abs))
        # one bit of margin covers the rounding of ``total`` itself (relative error far below 2**-20)
        return total <= math.ldexp(1.0, 52 + min(exponents))
