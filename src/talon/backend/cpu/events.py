"""Exact synaptic products of the fixed-point datapath: dense or event-driven.

The accumulator of a weight layer, ``acc[n] = sum_j x[n, j] * W[j]``, is a sum of integers. Its
static bound (``worst = max_row sum_j |W[j]| * bound(x)``, :meth:`QWeighted.finish`) says which
arithmetic computes it **exactly, in any order of the additions**: every partial sum is an integer
of magnitude at most ``worst``, so float32 is exact below ``2**24``, float64 below ``2**53``, and
int64 is used beyond. The three give the same integers, bit for bit; the narrower is faster
(float32 BLAS is about twice float64's speed).

**Event-driven**: a layer fed by spikes does work only for its non-zero inputs: one weight row is
added per event, so the cost scales with the number of spikes instead of ``N * fan_in``
(:func:`event_product`, a sparse-times-dense product of SciPy). :func:`synaptic_product` uses it
when at most ``EVENT_DENSITY`` of the inputs are non-zero — below the crossover measured by
``bench/bench_events.py`` and stated in ``docs/backend.md`` — and the dense BLAS product
otherwise. Without SciPy (the ``backend`` extra) every product is dense: same values.
"""

from __future__ import annotations

import numpy as np

from .fixed_point import FLOAT_EXACT, INT

FLOAT32_EXACT = 2**24  # every integer below this is exact in float32

# Below this fraction of non-zero inputs the event path is used (measured crossover about 5 %
# on a 2048 x 2048 layer, docs/backend.md; the margin keeps it faster where it is used).
EVENT_DENSITY = 0.03


def exact_dtype(worst: float) -> np.dtype:
    """The narrowest arithmetic in which every partial sum bounded by ``worst`` is exact."""
    if worst < FLOAT32_EXACT:
        return np.dtype(np.float32)
    if worst < FLOAT_EXACT:
        return np.dtype(np.float64)
    return np.dtype(INT)


def _sparse():
    try:
        from scipy import sparse
    except ImportError:  # pragma: no cover - scipy is in the backend extra
        return None
    return sparse


def dense_product(x: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """``x @ weight_t`` in ``weight_t``'s dtype (exact by the caller's bound), as int64."""
    y = np.matmul(x.astype(weight_t.dtype, copy=False), weight_t)
    return y.astype(INT) if weight_t.dtype != INT else y


def event_product(x: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """``x @ weight_t`` adding one row of ``weight_t`` per non-zero ``x`` (any leading dims), as int64."""
    sparse = _sparse()
    if sparse is None:
        raise RuntimeError("the event-driven product needs SciPy: pip install 'talon-toolchain[backend]'")
    flat = x.reshape(-1, x.shape[-1])
    events = sparse.csr_matrix(flat.astype(weight_t.dtype, copy=False))
    acc = np.asarray(events @ weight_t).astype(INT, copy=False)
    return acc.reshape((*x.shape[:-1], weight_t.shape[1]))


def synaptic_product(x: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """Exact integer ``x @ weight_t``: event-driven when the input is sparse enough, else dense.

    ``weight_t`` is stored in the exact dtype of the layer's bound (:func:`exact_dtype`).
    """
    if x.size and _sparse() is not None and np.count_nonzero(x) <= EVENT_DENSITY * x.size:
        return event_product(x, weight_t)
    return dense_product(x, weight_t)
