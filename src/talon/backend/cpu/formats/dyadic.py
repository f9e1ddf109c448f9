"""The dyadic exponent of an array: the smallest ``k`` with every ``x * 2**k`` an integer.

Read by the calibration (an input of exact steps ``2**-k`` is represented without error,
docs/backend.md §4.3) and by the exactness test of float64 sums (:mod:`.exact_sums`).
"""

from __future__ import annotations

import numpy as np


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
    x = np.asarray(x, np.float64)
    nonzero = x[x != 0]
    if not nonzero.size:
        return 0
    mantissa, exponent = np.frexp(nonzero)
    bits = np.abs(mantissa * 2.0**53).astype(np.int64)
    lowest = np.frexp((bits & -bits).astype(np.float64))[1] - 1  # t with lowest set bit 2**t
    k = max(0, int((53 - exponent - lowest).max()))
    return k if k <= limit else None
