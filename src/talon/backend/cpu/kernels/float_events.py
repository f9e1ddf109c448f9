"""Event-driven float64 products of the fp32 weight layers, where they give the reference's bits.

The fp32 reference accumulates ``x @ W`` in float64 and rounds once. When the sum is exact in any
order (:mod:`..formats.exact_sums`: spikes or other small integers times float32 weights, well within
float64's 53 bits), adding one weight row per non-zero input gives exactly the BLAS product —
the exact sum — with work proportional to the spikes. :func:`gather_integers` (compiled) collects
the events and checks that they are integers; the row additions are the integer datapath's
kernel (:func:`.events.add_rows`) on float64 weights and accumulator. The numpy twin is the dense
BLAS product itself (the same exact sum): taken without numba, for dense inputs, whenever the
exactness test fails, and for inputs too small to pay for starting numba in the process
(``events.EVENT_WORK``, the integer event product's threshold, by input elements; not measured
separately for this float64 path).
"""

from __future__ import annotations

import math

import numpy as np

from talon._compiled import compiled

from ..formats.exact_sums import ExactSums
from .events import EVENT_DENSITY, EVENT_WORK, _clearly_dense, add_rows

_SAMPLE_ABOVE = 1 << 16  # inputs at least this large are sampled first (events._clearly_dense)
# Narrower layers stay with BLAS: scanning the input costs about as much as their whole dense product
MIN_OUTPUTS = 64


def gather_integers(x, limit, indptr, indices, values):
    """The non-zero entries of ``x [N, K]`` as CSR (``indptr [N+1]``, ``indices``, int64 ``values``)
    and their largest magnitude: ``(count, max |x|)``; count -1 as soon as there are more than
    ``limit``, -2 at a value that is not an integer below ``2**53`` (or not finite) (numba kernel)."""
    rows, cols = x.shape
    count = 0
    top = 0.0
    for r in range(rows):
        indptr[r] = count
        for j in range(cols):
            e = x[r, j]
            if e != 0:
                if count == limit:
                    return -1, top
                if not (abs(e) < 9007199254740992.0) or e != math.floor(e):  # NaN fails the first test
                    return -2, top
                indices[count] = j
                values[count] = np.int64(e)
                top = max(top, abs(float(e)))
                count += 1
    indptr[rows] = count
    return count, top


def exact_event_product(x: np.ndarray, weight_t: np.ndarray, exact_sums: ExactSums) -> np.ndarray | None:
    """``x @ weight_t`` (float64 ``[K, M]``) in float64, one row per non-zero element of ``x``
    (float32 ``[..., K]``) — or None when that path does not apply: no numba, fewer than
    ``MIN_OUTPUTS`` outputs, an input denser than ``EVENT_DENSITY`` or not made of integers, sums
    the exactness test cannot prove exact, or an input too small to pay for starting numba
    (``EVENT_WORK``) (then the caller's BLAS product is the reference)."""
    if x.dtype != np.float32 or not x.size or weight_t.shape[1] < MIN_OUTPUTS:
        return None
    x2d = x.reshape(-1, x.shape[-1])
    if x2d.size >= _SAMPLE_ABOVE and _clearly_dense(x2d):
        return None  # asked before EVENT_WORK: a dense input is not twin work numba would save
    gather = compiled(gather_integers) if EVENT_WORK.use_compiled(x.size) else None
    if gather is None:
        return None
    x2d = np.ascontiguousarray(x2d)
    rows = x2d.shape[0]
    cap = int(EVENT_DENSITY * x2d.size)
    indptr = np.empty(rows + 1, np.int64)
    indices = np.empty(cap, np.int64)
    values = np.empty(cap, np.int64)
    count, amax = gather(x2d, cap, indptr, indices, values)
    if count < 0 or not exact_sums.bound_holds(amax, 0):
        return None
    acc = np.zeros((rows, weight_t.shape[1]), np.float64)
    compiled(add_rows)(indptr, indices, values[:count], weight_t, acc)
    return acc.reshape((*x.shape[:-1], weight_t.shape[1]))
