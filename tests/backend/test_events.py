"""Exact synaptic products of the fixed-point backend: event-driven and dense agree bit for bit.

The event path (one weight row per non-zero input: the numba kernel or its SciPy twin) and the
dense products in float32, float64 and int64 are all exact integer sums within their bounds, so a
simulation is the same whichever path runs; these tests force each path and compare.
"""

import numpy as np
import pytest

from talon._compiled import numba_available
from talon.backend import get_backend
from talon.backend.cpu.formats import exact_sums
from talon.backend.cpu.formats.exact_sums import dyadic_exponent
from talon.backend.cpu.kernels import events

from ..markers import needs_numba
from .graphs import mlp_graph


@pytest.mark.parametrize("worst", [1e3, 2.0**24 - 1, 2.0**24, 2.0**53 - 1, 2.0**53, 2.0**60])
def test_exact_dtype_tiers(worst):
    dtype = events.exact_dtype(worst)
    expected = np.float32 if worst < 2**24 else np.float64 if worst < 2**53 else np.int64
    assert dtype == np.dtype(expected)


def _no_numba(monkeypatch):
    monkeypatch.setattr(events, "compiled", lambda kernel: None)


@pytest.fixture(params=["compiled", "twin"])
def kernels(request, monkeypatch):
    """Run a test with the numba event kernel and again with its SciPy twin."""
    if request.param == "compiled":
        if not numba_available():
            pytest.skip("the fast extra (numba) is not installed")
        monkeypatch.setenv("TALON_FORCE_NUMBA", "1")  # small test inputs: force the kernel
    else:
        _no_numba(monkeypatch)
    return request.param


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_event_and_dense_products_equal_the_integer_product(dtype, kernels):
    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, size=(96, 40))
    x = rng.integers(-3, 4, size=(2, 50, 96)) * (rng.random((2, 50, 96)) < 0.04)  # leading dims, signed events
    expected = x @ weight
    for product in (events.event_product, events.scipy_event_product, events.dense_product):
        got = product(x, weight.astype(dtype))
        assert got.dtype == np.int64 and got.shape == expected.shape
        assert np.array_equal(got, expected)


def test_int64_tier_is_exact_beyond_float64(kernels):
    weight = np.array([[2**40 + 1], [2**40 + 3]], np.int64)
    x = np.array([[2**12, 2**12 - 1]], np.int64)  # the sum needs more than 53 bits
    expected = [[int(x[0, 0]) * int(weight[0, 0]) + int(x[0, 1]) * int(weight[1, 0])]]
    assert events.event_product(x, weight).tolist() == expected
    assert events.dense_product(x, weight).tolist() == expected


@needs_numba
def test_the_compiled_kernel_picks_exact_types_and_stops_at_its_limit():
    rng = np.random.default_rng(3)
    small = events.EventWeights(rng.integers(-127, 128, size=(64, 8)))
    assert small.weight_t.dtype == np.int8
    wide = events.EventWeights(np.array([[40_000], [-3]]))
    assert wide.weight_t.dtype == np.int32
    # an accumulator beyond int32: 2**31 - 1 + 1 must not wrap
    big = events.EventWeights(np.array([[2**31 - 1], [1]]))
    assert big.product(np.array([[1, 1]]), limit=None).tolist() == [[2**31]]
    x = (rng.random((10, 64)) < 0.5).astype(np.int64)
    nnz = int(np.count_nonzero(x))
    assert small.product(x, limit=nnz - 1) is None  # more events than the limit: the caller goes dense
    assert np.array_equal(small.product(x, limit=nnz), x @ small.weight_t.astype(np.int64))
    # spikes in runs of four (added four rows at a time) mixed with graded events, int8 and int16 weights
    spikes = (rng.random((40, 64)) < 0.4).astype(np.int64)
    spikes[::3, ::5] *= 2
    for weights in (small, events.EventWeights(rng.integers(-3000, 3000, size=(64, 8)))):
        expected = spikes @ weights.weight_t.astype(np.int64)
        assert np.array_equal(weights.product(spikes, limit=None), expected)
    with pytest.raises(ValueError, match="integers"):
        events.EventWeights(np.array([[0.5]]))


def _simulate(graph, x, density, monkeypatch):
    monkeypatch.setattr(events, "EVENT_DENSITY", density)
    monkeypatch.setattr(events, "SCIPY_EVENT_DENSITY", density)
    return get_backend("cpu").simulate(graph, {"input": x}, precision="int8")


def test_simulation_is_the_same_with_and_without_the_event_path(monkeypatch, kernels):
    graph = mlp_graph(0, sizes=(64, 48, 10))
    rng = np.random.default_rng(1)
    x = (rng.random((30, 4, 64)) < 0.02).astype(np.float32) * 3  # sparse input: the first layer goes event-driven
    calls = []
    spy = events.EventWeights.product if kernels == "compiled" else events.scipy_event_product
    name = "EventWeights.product" if kernels == "compiled" else "scipy_event_product"

    def counted(*a, **k):
        calls.append(1)
        return spy(*a, **k)

    monkeypatch.setattr(events.EventWeights if kernels == "compiled" else events, name.split(".")[-1], counted)
    on = _simulate(graph, x, 1.0, monkeypatch)  # every product event-driven
    assert calls
    off = _simulate(graph, x, -1.0, monkeypatch)  # every product dense
    assert sum(on.spike_counts.values()) > 0
    assert np.array_equal(on.outputs["output"], off.outputs["output"])
    assert on.spike_counts == off.spike_counts


def test_dyadic_exponent_matches_its_definition():
    def by_definition(x, limit=32):
        x = np.asarray(x, np.float64)
        if not np.all(np.isfinite(x)):
            return None
        return next((k for k in range(limit + 1) if np.all(x * 2.0**k == np.round(x * 2.0**k))), None)

    rng = np.random.default_rng(2)
    cases = [np.zeros(3), np.array([-0.0]), np.array([0.5, 0.25, 3.0]), np.array([2.0**-32]), np.array([2.0**-33]),
             np.array([5e-324]), np.array([1e300, 0.125]), np.array([np.inf]), np.array([], np.float32),
             (rng.random(500) < 0.3).astype(np.float32), rng.random(50).astype(np.float32)]  # fmt: skip
    for _ in range(50):
        cases.append(np.round(rng.normal(size=10) * 2.0 ** rng.integers(0, 20)) / 2.0 ** rng.integers(0, 40))
    for x in cases:
        assert dyadic_exponent(x) == by_definition(x), x


def test_dyadic_exponent_past_the_prefix_it_reads_first():
    """The prefix's answer is verified on the whole array: a suffix needing more bits (or none that
    fit), a float16 array whose 2**k would overflow float16, and float32 values whose scaled copy
    overflows to infinity (they are integers) all give the exact answer."""
    rng = np.random.default_rng(3)
    n = 3 * exact_sums._PROBE
    grid = (rng.integers(-64, 64, n) / 8).astype(np.float32)  # k = 3 everywhere
    assert dyadic_exponent(grid) == 3
    finer = grid.copy()
    finer[-1] = np.float32(2.0**-20)
    assert dyadic_exponent(finer) == 20
    finer[-2] = np.float32(1 / 3)  # 11184811 * 2**-25
    assert dyadic_exponent(finer) == 25
    assert dyadic_exponent(finer, limit=24) is None
    half = np.full(n, 2.0**-14, np.float16)  # k = 14 in the prefix
    half[-1] = np.float16(2.0**-24)  # float16's smallest subnormal: k = 24, 2**24 is inf in float16
    assert dyadic_exponent(half) == 24
    huge = np.full(n, 0.5, np.float32)
    huge[-1] = np.float32(2.0**127)  # x * 2 overflows float32: an integer, k stays 1
    assert dyadic_exponent(huge) == 1
    huge[-2] = np.float32(0.25)
    assert dyadic_exponent(huge) == 2
