"""The exact-sum fast paths of the CPU backend give the reference's bits.

When every partial sum of a float64-accumulated layer is provably exact (``exact_sums.py``), the
fp32 engine may convolve in a channel-first layout and a Dense layer fed by spikes may add weight
rows (``events.exact_event_product``); the integer datapath always convolves channel-first (its sums
are exact by its static bound). These tests pin the proof's edge (the bound, the bits, non-finite and graded
inputs), check both layouts against each other and against the exact rational sum, and compare
whole simulations — fp32, fp16 and every integer precision, outputs, states and quantization
reports — with the fast paths on and off, with and without numba.
"""

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from talon import ir
from talon.backend import default_stimulus, get_backend
from talon.backend.cpu.formats import exact_sums
from talon.backend.cpu.formats.exact_sums import ExactSums, lowest_exponent
from talon.backend.cpu.kernels import events, geometry
from talon.backend.cpu.kernels.events import exact_event_product
from talon.examples import chain, hybrid_graph, leaky, uniform

from ..markers import needs_numba

CPU = get_backend("cpu")


def _lowest_by_definition(a: np.ndarray) -> int | None:
    """From exact rationals: v = n / 2**d with n odd*2**z is a multiple of 2**(z - d) and no finer."""
    exponents = []
    for v in a.reshape(-1):
        if v != 0:
            f = Fraction(float(v))
            n, d = abs(f.numerator), f.denominator  # d is a power of two
            exponents.append(((n & -n).bit_length() - 1) - (d.bit_length() - 1))
    return min(exponents) if exponents else None


def test_lowest_exponent_reads_the_bits_of_float32_and_float64():
    rng = np.random.default_rng(0)
    for trial in range(60):
        a = (rng.standard_normal(12) * 2.0 ** rng.integers(-140, 100, 12)).astype(np.float32)
        a[rng.random(12) < 0.25] = 0
        if trial % 4 == 0:
            a = (a * np.float32(2.0**-100)).astype(np.float32)  # subnormals among them
        expected = _lowest_by_definition(a)
        assert lowest_exponent(a) == lowest_exponent(a.astype(np.float64)) == expected, a
    assert lowest_exponent(np.zeros(4, np.float32)) is None
    assert lowest_exponent(np.array([3.0, 0.5, -96.0], np.float32)) == -1
    assert lowest_exponent(np.array([2.0**-149], np.float32)) == -149


def test_the_bound_is_the_documented_sufficient_condition():
    w = np.array([[2.0**51, 2.0**51], [1.0, 0.0]], np.float32)  # multiples of 2**0; row sums up to 2**52
    assert ExactSums(w, None).bound_holds(1.0, 0)  # 2**52 <= 2**(52 + 0)
    w_over = np.array([[2.0**51, 2.0**51, 1.0]], np.float32)
    assert not ExactSums(w_over, None).bound_holds(1.0, 0)  # 2**52 + 1: past the margin
    assert not ExactSums(w, None).bound_holds(1.0, 1)  # inputs in halves: multiples of 2**-1, bound 2**51
    assert ExactSums(w, None).bound_holds(0.5, 1)
    assert not ExactSums(w, np.array([1.0])).bound_holds(1.0, 0)  # the bias joins the sum
    assert ExactSums(np.zeros((2, 3), np.float32), None).bound_holds(1e300, 0)  # nothing to add


def test_a_sum_that_rounds_in_float64_is_refused():
    w = np.tile(np.array([[2.0**53, 1.0]], np.float32), (64, 1))  # [64 outputs, 2 inputs]
    x = np.ones((1, 2), np.float32)
    assert int((x.astype(np.float64) @ w.T.astype(np.float64))[0, 0]) != 2**53 + 1  # float64 rounds it
    assert not ExactSums(w, None).holds(x)
    assert exact_event_product(x, np.ascontiguousarray(w.T, np.float64), ExactSums(w, None)) is None


@pytest.mark.parametrize(
    "x",
    [
        pytest.param(np.array([[0.7, 1e-3]], np.float32), id="graded"),  # 1e-3 uses bits below 2**-32
        pytest.param(np.array([[np.inf, 1.0]], np.float32), id="infinite"),
        pytest.param(np.array([[np.nan, 1.0]], np.float32), id="nan"),
        pytest.param(np.array([[2.0**-40, 1.0]], np.float32), id="finer-than-2^-32"),
    ],
)
def test_inputs_the_test_cannot_prove_exact(x):
    assert not ExactSums(np.ones((3, 2), np.float32), None).holds(x)


def test_non_finite_weights_never_take_the_fast_path():
    w = np.array([[1.0, np.inf]], np.float32)
    assert not ExactSums(w, None).holds(np.ones((1, 2), np.float32))


@pytest.mark.parametrize(
    "geometry_args",
    [
        dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1),
        dict(stride=(2, 1), padding=(0, 2), dilation=(1, 1), groups=1),
        dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2),
        dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=4),  # depthwise
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_channel_first_convolution_equals_the_reference_layout_on_exact_sums(geometry_args, dtype):
    rng = np.random.default_rng(3)
    groups = geometry_args["groups"]
    x = rng.integers(-3, 4, (5, 4, 9, 8)).astype(np.float32)
    w = rng.integers(-100, 101, (8, 4 // groups, 3, 3))
    a = geometry.conv2d(x, w, **geometry_args, dtype=dtype)
    b = geometry.conv2d_exact(x, w, **geometry_args, dtype=dtype)
    assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    x1 = x[:, :, 0, :]
    w1 = w[:, :, 0, :]
    args1 = dict(stride=2, padding=1, dilation=1, groups=groups)
    assert np.array_equal(
        geometry.conv1d(x1, w1, **args1, dtype=dtype), geometry.conv1d(x1, w1, **args1, dtype=dtype, exact=True)
    )


def _exact_conv(x, w, b, padding):
    """The exact rational sum of a stride-1 convolution, rounded once to float32."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    out = np.empty((n, o, h, wd), np.float32)
    wf = [[Fraction(float(v)) for v in w[oo].reshape(-1)] for oo in range(o)]
    for i in range(n):
        for oo in range(o):
            for r in range(h):
                for s in range(wd):
                    window = xp[i, :, r : r + kh, s : s + kw].reshape(-1)
                    total = Fraction(float(b[oo])) + sum(
                        (Fraction(float(v)) * f for v, f in zip(window, wf[oo], strict=True) if v), Fraction(0)
                    )
                    out[i, oo, r, s] = np.float32(float(total))  # exact in float64 (proved), rounded once
    return out


def test_fp32_convolution_near_the_bound_is_the_exact_sum_either_way(monkeypatch):
    """Weights spanning ~45 bits (tiny and large magnitudes), spike inputs: the sums are exact but
    need almost every float64 bit; both layouts give the exactly rounded sum, bit for bit."""
    rng = np.random.default_rng(7)
    w = (rng.uniform(-1, 1, (3, 2, 3, 3)) * 2.0 ** rng.integers(-16, 5, (3, 2, 3, 3))).astype(np.float32)
    b = (rng.uniform(-1, 1, 3) * 2.0**-12).astype(np.float32)
    graph = chain([2, 5, 5], ("conv", ir.Conv2d(w, b, padding=1)))
    x = (rng.random((4, 2, 2, 5, 5)) < 0.5).astype(np.float32)
    assert ExactSums(w, b.astype(np.float64)).holds(x)
    fast = CPU.simulate(graph, x).outputs["output"]
    monkeypatch.setattr(exact_sums.ExactSums, "holds", lambda self, x: False)
    slow = CPU.simulate(graph, x).outputs["output"]
    assert np.array_equal(fast.view(np.int32), slow.view(np.int32))
    exact = _exact_conv(x.reshape(8, 2, 5, 5), w, b, 1).reshape(fast.shape)
    assert np.array_equal(fast.view(np.int32), exact.view(np.int32))


@needs_numba
def test_the_event_product_is_the_blas_product_on_many_spike_patterns(force_numba):
    rng = np.random.default_rng(11)
    proved = 0
    for trial in range(40):
        k, m = int(rng.integers(1, 200)), int(rng.integers(64, 160))
        w = (rng.uniform(-1, 1, (k, m)) * 2.0 ** rng.integers(-10, 5)).astype(np.float32)  # weight_t [K, M]
        if trial % 8 == 0:  # a few far smaller weights: more bits than float64 holds, not provable
            w[0, :3] *= np.float32(2.0**-40)
        x = (rng.random((int(rng.integers(1, 30)), k)) < rng.uniform(0.0, 0.14)).astype(np.float32)
        if trial % 5 == 0:
            x *= rng.integers(-3, 4, x.shape).astype(np.float32)  # small integer counts, signed
        wt = np.ascontiguousarray(w, np.float64)
        got = exact_event_product(x, wt, ExactSums(w.T, None))
        want = x.astype(np.float64) @ wt
        provable = ExactSums(w.T, None).bound_holds(float(np.abs(x).max(initial=0)), 0)
        proved += provable
        if np.count_nonzero(x) <= 0.15 * x.size:
            assert (got is not None) == provable, trial
        if got is not None:
            assert np.array_equal(got.view(np.int64), want.view(np.int64)), trial
    assert 20 < proved < 40  # both outcomes occurred


@needs_numba
@pytest.mark.parametrize(
    "x",
    [
        pytest.param(np.full((2, 8), 0.5, np.float32), id="halves"),
        pytest.param(np.eye(2, 8, dtype=np.float32) * np.float32(2.0**60), id="beyond-2^53"),
        pytest.param(np.eye(2, 8, dtype=np.float32) * np.float32(np.nan), id="nan"),
    ],
)
def test_the_event_gather_refuses_what_is_not_an_exact_integer(x, force_numba):
    w = np.ones((8, 64), np.float32)
    assert exact_event_product(x, np.ones((8, 64)), ExactSums(w.T, None)) is None


def _recurrent(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([40])),
            "fc": ir.Affine(uniform(rng, (96, 40), 40), uniform(rng, 96, 40)),
            "lif": leaky(96),
            "rec": ir.Linear(uniform(rng, (96, 96), 96)),
            "out": ir.Affine(uniform(rng, (70, 96), 96), uniform(rng, 70, 96)),
            "lif2": leaky(70),
            "output": ir.Output(np.array([70])),
        },
        [
            ("input", "fc"),
            ("fc", "lif"),
            ("lif", "rec"),
            ("rec", "lif"),
            ("lif", "out"),
            ("out", "lif2"),
            ("lif2", "output"),
        ],
    )


def _small_hybrid():
    rng = np.random.default_rng(4)
    return chain(
        [2, 10, 10],
        ("conv", ir.Conv2d(uniform(rng, (6, 2, 3, 3), 18), uniform(rng, 6, 18), padding=1)),
        ("relu", ir.ReLU()),
        ("conv2", ir.Conv2d(uniform(rng, (4, 3, 3, 3), 27), uniform(rng, 4, 27), stride=2, groups=2)),
        ("flat", ir.Flatten()),
        ("fc", ir.Affine(uniform(rng, (80, 64), 64), uniform(rng, 80, 64))),
        ("lif", leaky(80)),
        ("fc2", ir.Affine(uniform(rng, (70, 80), 80), uniform(rng, 70, 80))),
        ("lif2", leaky(70)),
    )


def _report(result):
    out = {"outputs": result.outputs, "spikes": result.spike_counts, "states": result.node_states}
    if result.quantization is not None:
        out["quantization"] = dataclasses.asdict(result.quantization)
    return out


def _assert_identical(a, b, where=""):
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


def _reference_paths(monkeypatch):
    """Every fast path off: the float64 BLAS product and the reference convolution layout."""
    monkeypatch.setattr(exact_sums.ExactSums, "holds", lambda self, x: False)
    monkeypatch.setattr(exact_sums.ExactSums, "bound_holds", lambda self, amax, k: False)
    monkeypatch.setattr(geometry, "conv2d_exact", geometry.conv2d)


@pytest.mark.parametrize("build", [_recurrent, _small_hybrid, hybrid_graph], ids=["recurrent", "conv", "hybrid"])
@pytest.mark.parametrize("numba", [True, False], ids=["numba", "twin"])
def test_simulations_are_identical_with_and_without_the_fast_paths(build, numba, monkeypatch):
    graph = build(0) if build is hybrid_graph else build()
    steps, batch = (6, 2) if build is hybrid_graph else (30, 3)
    x = default_stimulus(graph, steps, batch_size=batch, rate=0.1)["input"]
    monkeypatch.setattr(events, "MIN_OUTPUTS", 0)  # the narrow layers too
    if not numba:
        monkeypatch.setattr(events, "compiled", lambda kernel: None)  # no compiled event kernel, fp32's or integer
    else:
        monkeypatch.setenv("TALON_FORCE_NUMBA", "1")  # small inputs: force the kernels
    calls = []
    original = events.exact_event_product
    monkeypatch.setattr(
        events, "exact_event_product", lambda *a: (lambda y: calls.append(y is not None) or y)(original(*a))
    )
    from talon.backend.cpu.kernels import float_ops

    monkeypatch.setattr(float_ops, "exact_event_product", events.exact_event_product)
    precisions = ("fp32", "fp16", "int4", "int8", "int16")
    fast = {p: _report(CPU.simulate(graph, x, precision=p, step_by_step=True)) for p in precisions}
    if numba:
        assert any(calls), "the event path did not run"
    with monkeypatch.context() as m:
        _reference_paths(m)
        slow = {p: _report(CPU.simulate(graph, x, precision=p, step_by_step=True)) for p in precisions}
    _assert_identical(fast, slow)
