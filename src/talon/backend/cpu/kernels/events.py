"""Exact synaptic products, dense or event-driven: the integer datapath's and the fp32 reference's.

The accumulator of a weight layer, ``acc[n] = sum_j x[n, j] * W[j]``, is a sum of integers. Its
static bound (``worst = max_row sum_j |W[j]| * bound(x)``, :meth:`QWeighted.finish`) says which
arithmetic computes it **exactly, in any order of the additions**: every partial sum is an integer
of magnitude at most ``worst``, so float32 is exact below ``2**24``, float64 below ``2**53``, and
int64 is used beyond (int32 below ``2**31`` in the event kernel). All give the same integers,
bit for bit; the narrower is faster (float32 BLAS is about twice float64's speed).

**Event-driven**: a layer fed by spikes does work only for its non-zero inputs: one weight row is
added per event, so the cost scales with the number of spikes instead of ``N * fan_in``.
:func:`synaptic_product` takes this path when at most ``EVENT_DENSITY`` of the inputs are non-zero
— below the crossover measured by ``bench/bench_events.py`` and stated in ``docs/backend.md`` — and
the dense BLAS product otherwise. The event kernel is compiled with numba (the ``fast`` extra): one
pass over the input collects the events (stopping as soon as there are too many for the event path
to pay), a second adds the weight rows (stored in the narrowest integer type) into an int32 or
int64 accumulator. Its twin without numba is SciPy's sparse-times-dense product, slower, so it is
used only up to ``SCIPY_EVENT_DENSITY``; without SciPy either (the ``backend`` extra) every
product is dense. Every path returns the same integers. The compiled kernel is used only when the
input is large enough to pay for starting numba in the process (``EVENT_WORK``).

**The fp32 reference's float64 products** (:func:`exact_event_product`). The fp32 reference
accumulates ``x @ W`` in float64 and rounds once. When the sum is exact in any order
(:mod:`..formats.exact_sums`: spikes or other small integers times float32 weights, well within
float64's 53 bits), adding one weight row per non-zero input gives exactly the BLAS product — the
exact sum — with work proportional to the spikes. :func:`gather_integers` (compiled) collects the
events and checks that they are integers; the row additions are the integer kernel's
(:func:`add_rows`) on float64 weights and accumulator. The numpy twin is the dense BLAS product
itself (the same exact sum): taken without numba, for dense inputs, whenever the exactness test
fails, and for inputs too small to pay for starting numba in the process (``EVENT_WORK``, the
integer event product's threshold, by input elements; not measured separately for this float64
path).
"""

from __future__ import annotations

import math

import numpy as np

from talon._compiled import WorkThreshold, compiled
from talon.ir.errors import MissingDependencyError, install_hint

from ..formats.exact_sums import ExactSums
from ..formats.fixed_point import FLOAT32_EXACT, FLOAT_EXACT, INT

# Below these fractions of non-zero inputs the event path is used: the crossovers on a 2048 x 2048
# int8 layer (docs/backend.md §9.1) are about 20-25 % for the compiled kernel and 4-6 % for SciPy's;
# the margin keeps the event path faster wherever it is used.
EVENT_DENSITY = 0.15
SCIPY_EVENT_DENSITY = 0.03

# When the compiled event kernel is worth starting numba for (talon._compiled.WorkThreshold); work:
# input elements scanned. Measured (load 5-7, 2 cores, float32 weights of 784x128 and 1024x1024, 2 % and
# 10 % spikes, 1e5-1e7 elements): the kernel saves 20-40 ns per element over SciPy / BLAS (e.g. 1024x1024,
# 2 %, 10 000 rows: 527 vs 123 ms); starting numba in a process cost 0.5-1.5 s, about 3e7 elements.
EVENT_WORK = WorkThreshold("event-driven product", cold_from=30_000_000, warm_from=0)


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


def dense_product(x: np.ndarray, weight_t: np.ndarray, native: bool = False) -> np.ndarray:
    """``x @ weight_t`` in ``weight_t``'s dtype (exact by the caller's bound), as int64 (``native``:
    in that dtype, every element an exact integer). ``x`` holds integers, as int64 or as an exact float."""
    y = np.matmul(x.astype(weight_t.dtype, copy=False), weight_t)
    return y.astype(INT) if weight_t.dtype != INT and not native else y


def event_product(x: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """``x @ weight_t`` adding one row of ``weight_t`` per non-zero ``x`` (any leading dims), as int64:
    the compiled kernel (:class:`EventWeights`) when numba is available, else SciPy's sparse product."""
    if EVENT_WORK.use_compiled(x.size) and EventWeights.kernels() is not None:
        acc = EventWeights(weight_t).product(x.reshape(-1, x.shape[-1]), limit=None)
        return acc.reshape((*x.shape[:-1], weight_t.shape[1]))
    return scipy_event_product(x, weight_t)


def scipy_event_product(x: np.ndarray, weight_t: np.ndarray) -> np.ndarray:
    """The numpy/SciPy twin of the event kernel: a CSR matrix of the events times the weights."""
    sparse = _sparse()
    if sparse is None:
        raise MissingDependencyError("the event-driven product needs SciPy: " + install_hint("backend"))
    flat = x.reshape(-1, x.shape[-1])
    events = sparse.csr_matrix(flat.astype(weight_t.dtype, copy=False))
    acc = np.asarray(events @ weight_t).astype(INT, copy=False)
    return acc.reshape((*x.shape[:-1], weight_t.shape[1]))


def gather_events(x, limit, indptr, indices, values):
    """The non-zero entries of ``x [N, K]`` (integers, as int64 or exact float32) as CSR (``indptr
    [N+1]``, ``indices``, int64 ``values``); returns their number, or -1 as soon as there are more
    than ``limit`` (numba kernel)."""
    rows, cols = x.shape
    count = 0
    for r in range(rows):
        indptr[r] = count
        for j in range(cols):
            e = x[r, j]
            if e != 0:
                if count == limit:
                    return -1
                indices[count] = j
                values[count] = np.int64(e)
                count += 1
    indptr[rows] = count
    return count


def add_rows(indptr, indices, values, weight_t, acc):
    """``acc[r] += values[k] * weight_t[indices[k]]`` for the events ``k`` of every row ``r`` (numba
    kernel). Runs of four spikes (``values == 1``) add four weight rows per pass over ``acc[r]``; the
    sums are exact integers, in any order, within the accumulator's bound."""
    rows = acc.shape[0]
    cols = acc.shape[1]
    for r in range(rows):
        a = acc[r]
        k = indptr[r]
        end = indptr[r + 1]
        while k + 4 <= end and values[k] == 1 and values[k + 1] == 1 and values[k + 2] == 1 and values[k + 3] == 1:
            w0 = weight_t[indices[k]]
            w1 = weight_t[indices[k + 1]]
            w2 = weight_t[indices[k + 2]]
            w3 = weight_t[indices[k + 3]]
            for c in range(cols):
                a[c] += w0[c] + w1[c] + w2[c] + w3[c]
            k += 4
        while k < end:
            w = weight_t[indices[k]]
            e = values[k]
            if e == 1:
                for c in range(cols):
                    a[c] += w[c]
            else:
                for c in range(cols):
                    a[c] += e * w[c]
            k += 1


INT32_EXACT = 2**31  # an int32 accumulator is exact below this


class EventWeights:
    """A weight layer's integers laid out for the compiled event kernel: ``weight_t [K, M]`` in the
    narrowest integer type holding them, and the accumulator type exact for ``worst`` (int32 below
    ``2**31``, else int64). ``worst`` defaults to ``sum_j |weight_t[j]|`` times the largest input,
    computed per call."""

    def __init__(self, weight_t: np.ndarray, worst: float | None = None) -> None:
        w = np.asarray(weight_t)
        top = float(np.abs(w).max(initial=0))
        if w.dtype.kind == "f" and not np.array_equal(w, np.rint(w)):
            raise ValueError("event weights must be integers")
        for dtype in (np.int8, np.int16, np.int32, np.int64):
            if top <= np.iinfo(dtype).max:
                break
        self.weight_t = np.ascontiguousarray(w.astype(dtype))
        self.worst = worst
        self.row_sum = None if worst is not None else float(np.abs(w.astype(np.float64)).sum(axis=0).max(initial=0))

    @staticmethod
    def kernels():
        gather = compiled(gather_events)
        return None if gather is None else (gather, compiled(add_rows))

    def product(self, x2d: np.ndarray, limit: int | None, native: bool = False) -> np.ndarray | None:
        """``x2d @ weight_t`` as int64 (``native``: in the int32 or int64 accumulator), or None if
        ``x2d`` has more than ``limit`` non-zero entries."""
        if limit is not None and limit < 0:
            return None
        gather, add = self.kernels()
        x2d = np.ascontiguousarray(x2d)
        if x2d.dtype not in (INT, np.float32):  # the two layouts the kernel is compiled for
            x2d = x2d.astype(INT)
        rows = x2d.shape[0]
        cap = x2d.size if limit is None else min(int(limit), x2d.size)
        indptr = np.empty(rows + 1, np.int64)
        indices = np.empty(cap, np.int64)
        values = np.empty(cap, INT)
        count = gather(x2d, cap, indptr, indices, values)
        if count < 0:
            return None
        worst = self.worst
        if worst is None:
            worst = self.row_sum * float(np.abs(values[:count]).max(initial=0))
        acc = np.zeros((rows, self.weight_t.shape[1]), np.int32 if worst < INT32_EXACT else INT)
        add(indptr, indices, values[:count], self.weight_t, acc)
        return acc if acc.dtype == INT or native else acc.astype(INT)


def _clearly_dense(x2d: np.ndarray) -> bool:
    """Whether a sample of about 32 evenly spaced rows has more than twice ``EVENT_DENSITY`` non-zero
    entries: the event kernel would stop at its limit anyway, after scanning a good part of the input
    (a shortcut for speed only; both paths give the same integers)."""
    sample = x2d[:: max(1, x2d.shape[0] // 32)]
    return np.count_nonzero(sample) > 2 * EVENT_DENSITY * sample.size


def synaptic_product(
    x: np.ndarray, weight_t: np.ndarray, events: EventWeights | None = None, native: bool = False
) -> np.ndarray:
    """Exact integer ``x @ weight_t``: event-driven when the input is sparse enough, else dense.

    ``x`` holds integers (int64, or a float dtype holding them exactly). ``weight_t`` is stored in the
    exact dtype of the layer's bound (:func:`exact_dtype`); ``events`` is the same layer laid out for
    the compiled event kernel (None: no compiled event path; taken when ``EVENT_WORK`` says so). The
    result is int64, or with ``native`` the accumulator of the path taken (float32 / float64 / int32 /
    int64) — the same integers, left unconverted for a caller that keeps them in float.
    """
    if not x.size:
        return dense_product(x, weight_t, native)
    if events is not None and _clearly_dense(x.reshape(-1, x.shape[-1])):
        return dense_product(x, weight_t, native)  # asked before EVENT_WORK: not twin work numba would save
    if events is not None and EVENT_WORK.use_compiled(x.size) and EventWeights.kernels() is not None:
        x2d = x.reshape(-1, x.shape[-1])
        acc = events.product(x2d, limit=int(EVENT_DENSITY * x.size), native=native)
        if acc is not None:
            return acc.reshape((*x.shape[:-1], weight_t.shape[1]))
        return dense_product(x, weight_t, native)
    if _sparse() is not None and np.count_nonzero(x) <= SCIPY_EVENT_DENSITY * x.size:
        return scipy_event_product(x, weight_t)
    return dense_product(x, weight_t, native)


_SAMPLE_ABOVE = 1 << 16  # inputs at least this large are sampled first (_clearly_dense)
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
