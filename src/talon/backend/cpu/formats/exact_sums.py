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
sufficient, not necessary.

Both halves read the floats' bits: :func:`lowest_exponent` (the weights: the largest ``e`` with every
element a multiple of ``2**e``) and :func:`dyadic_exponent` (the input: the smallest ``k`` with every
``x * 2**k`` an integer), which the calibration reads too (an input of exact steps ``2**-k`` is
represented without error, docs/backend.md §4.3).
"""

from __future__ import annotations

import math

import numpy as np


def lowest_exponent(a: np.ndarray) -> int | None:
    """The largest ``e`` with every element of ``a`` (finite floats) an integer multiple of
    ``2**e``; None when every element is zero (no constraint)."""
    a = np.asarray(a)
    if a.dtype == np.float32:  # read the bits: significand (with its implicit 1) and exponent
        bits = a.reshape(-1).view(np.uint32)
        field = ((bits >> 23) & 0xFF).astype(np.int32)
        significand = (bits & 0x7FFFFF) | np.where(field > 0, np.uint32(0x800000), np.uint32(0))
        nonzero = significand != 0
        if not nonzero.any():
            return None
        significand, field = significand[nonzero], field[nonzero]
        lowest = significand & (~significand + np.uint32(1))  # its lowest set bit, a power of two <= 2**23
        t = (lowest.astype(np.float32).view(np.uint32) >> 23).astype(np.int32) - 127
        return int((np.maximum(field, 1) - 150 + t).min())  # value = significand * 2**(max(field, 1) - 150)
    a = np.asarray(a, np.float64).reshape(-1)
    nonzero = a[a != 0]
    if not nonzero.size:
        return None
    mantissa, exponent = np.frexp(nonzero)
    bits = np.abs(mantissa * 2.0**53).astype(np.int64)  # the 53-bit significand, an integer
    lowest = np.frexp((bits & -bits).astype(np.float64))[1] - 1  # t with its lowest set bit 2**t
    return int((exponent - 53 + lowest).min())


def dyadic_exponent(x: np.ndarray, limit: int = 32, finite: bool | None = None) -> int | None:
    """The smallest ``k`` in ``[0, limit]`` with every ``x * 2**k`` an integer, or None.

    The answer is read from the floats' bits: with ``x = m * 2**e`` (``frexp``), ``M = |m| * 2**53``
    is an integer whose lowest set bit ``2**t`` puts the lowest set bit of ``x`` at
    ``2**(e - 53 + t)``; ``x * 2**k`` is an integer exactly when ``k >= 53 - e - t``. A prefix of the
    array is read first: the whole array needs at least the prefix's ``k0`` (None if the prefix already
    needs more than ``limit``), and exactly ``k0`` when every ``x * 2**k0`` is an integer — one
    check over the array, the usual case (spikes, counts, a fixed grid); else the bits of the whole
    array are read. ``x * 2**k0`` is exact in ``x``'s own float type: scaling by a power of two
    rounds nothing, and where it overflows to infinity ``x`` was already an integer (``|x| >=
    2**(max exponent - k0)``), which is what the check then reports. ``finite``: whether every
    element is finite, when the caller knows (None: checked here).
    """
    x = np.asarray(x)
    if x.dtype.kind in "biu":
        return 0
    if not x.size:
        return 0
    if finite is None:
        finite = bool(np.isfinite(x.min()) and np.isfinite(x.max()))  # NaN and infinities propagate to them
    if not finite:
        return None
    flat = x.reshape(-1)
    if flat.dtype not in (np.float32, np.float64):  # float16's range would not hold 2**k0: widen, exactly
        flat = flat.astype(np.float64)
    k0 = _bits_exponent(flat[:_PROBE], limit)
    if k0 is None or flat.size <= _PROBE:
        return k0
    with np.errstate(over="ignore"):
        scaled = flat * flat.dtype.type(2.0**k0) if k0 else flat
    if np.array_equal(np.rint(scaled), scaled):
        return k0
    return _bits_exponent(flat, limit)


_PROBE = 4096


def _bits_exponent(x: np.ndarray, limit: int) -> int | None:
    e = lowest_exponent(np.asarray(x, np.float64))
    k = 0 if e is None else max(0, -e)
    return k if k <= limit else None


class ExactSums:
    """The static half of the test for one layer — ``weight`` ``[O, ...]`` (one row per output)
    and ``bias`` ``[O]`` (or None), the arrays the kernel owns (computed on first use) — completed
    by the input in :meth:`holds` or :meth:`bound_holds`."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None) -> None:
        self._weight, self._bias = weight, bias
        self._static: tuple | None = None

    def static(self) -> tuple[bool, int | None, int | None, float, float]:
        """(usable: all finite, weight exponent, bias exponent, ``max_o sum_k |w[o, k]|``, ``max |b|``)."""
        if self._static is None:
            w = np.asarray(self._weight)
            w = w.reshape(len(w), -1)
            b = np.zeros(0, w.dtype) if self._bias is None else np.asarray(self._bias).reshape(-1)
            usable = bool(np.isfinite(w).all() and np.isfinite(b).all())
            if not usable:
                self._static = (False, None, None, 0.0, 0.0)
            else:
                rows = float(np.abs(w).sum(axis=1, dtype=np.float64).max(initial=0.0))
                top_b = float(np.abs(b).max(initial=0.0))
                self._static = (True, lowest_exponent(w), lowest_exponent(b), rows, top_b)
        return self._static

    def bound_holds(self, amax: float, k: int) -> bool:
        """Whether the sums are exact for inputs that are multiples of ``2**-k`` with ``|x| <= amax``."""
        static = self.static()
        if not static[0]:
            return False
        _, weight_exponent, bias_exponent, rows, top_b = static
        exponents = [e for e in (None if weight_exponent is None else weight_exponent - k, bias_exponent)
                     if e is not None]  # fmt: skip
        if not exponents:
            return True  # all weights and biases are zero
        # (a bound of every output's sum of |terms|; one bit of margin covers its own rounding)
        return amax * rows + top_b <= math.ldexp(1.0, 52 + min(exponents))

    def holds(self, x: np.ndarray) -> bool:
        """Whether every partial sum of ``sum_k w[o, k] * x[.., k] + b[o]`` is exact in float64 for
        this input (any window or row of it: ``max |x|`` bounds every element)."""
        if x.size == 0:
            return False
        lo, hi = float(x.min()), float(x.max())
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return False
        k = dyadic_exponent(x, finite=True)  # x * 2**k integral: multiples of 2**-k (None: finer than 2**-32)
        return k is not None and self.bound_holds(max(abs(lo), abs(hi)), k)
