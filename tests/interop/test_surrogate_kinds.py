"""Every surrogate kind of ``talon.ir.surrogate``: the forward is the Heaviside spike, the backward is
the kind's closed form (computed here in float64 from the module docstring's table), and the PyTorch
executor's spike (``talon.bridge.spike``) and the JAX engine's (``talon.interop.jax.spike``) agree on it.

A kind added to ``SURROGATE_KINDS`` without a formula here fails ``test_every_kind_has_a_reference``.
"""

import math

import numpy as np
import pytest

from talon import ir

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.bridge.spike import spike  # noqa: E402
from talon.bridge.surrogate_probe import PROBE  # noqa: E402
from talon.interop.jax import make_spike  # noqa: E402


def _reference(kind: str, p: dict, x: np.ndarray, theta: np.ndarray | float = 1.0) -> np.ndarray:
    """``sigma'(x)`` in float64, written from the formulas (not from the engines' code); ``theta``:
    the neurons' thresholds, for the kinds that read them."""
    ax = np.abs(x)
    with np.errstate(over="ignore", divide="ignore"):
        table = {
            "atan": lambda: (p.get("alpha", 0) / 2) / (1 + (np.pi / 2 * p.get("alpha", 0) * x) ** 2),
            "arctan": lambda: 1 / ((1 + (p.get("k", 0) * np.pi * x) ** 2) * np.pi),
            "superspike": lambda: 1 / (1 + p.get("k", 0) * ax) ** 2,
            "sigmoid": lambda: p.get("slope", 0) / (2 + 2 * np.cosh(p.get("slope", 0) * x)),
            "triangle": lambda: p.get("alpha", 0) * np.maximum(0, 1 - np.abs(p.get("k", 0) * x)),
            "boxcar": lambda: np.where(ax < p.get("width", 0) / 2, p.get("height", 0), 0.0),
            "tanh": lambda: 1 - np.tanh(p.get("k", 0) * x) ** 2,
            "erfc": lambda: 2 * np.exp(-((p.get("k", 0) * x) ** 2)) / np.sqrt(np.pi),
            "straight_through": lambda: np.ones_like(x),
            "heaviside": lambda: (x > 0).astype(np.float64),
            "linear": lambda: x,
            "none": lambda: np.zeros_like(x),
            "logistic": lambda: p.get("alpha", 0) / (2 + 2 * np.cosh(p.get("alpha", 0) * x)),
            "single_exponential": lambda: p.get("scale", 0) / p.get("width", 1) * np.exp(-ax / p.get("width", 1)),
            "step_window": lambda: np.where(x >= -p.get("window", 0), 1 / p.get("threshold", 1), 0.0),
            "gaussian": lambda: (
                p.get("scale", 0)
                * np.exp(-((x - p.get("mu", 0)) ** 2) / (2 * p.get("sigma", 1) ** 2))
                / (p.get("sigma", 1) * np.sqrt(2 * np.pi))
            ),
            "multi_gaussian": lambda: (
                p.get("scale", 0)
                * (
                    (1 + p.get("h", 0)) * _g(x, p.get("mu", 0), p.get("sigma", 1))
                    - p.get("h", 0) * _g(x, p.get("sigma", 1), p.get("s", 1) * p.get("sigma", 1))
                    - p.get("h", 0) * _g(x, -p.get("sigma", 1), p.get("s", 1) * p.get("sigma", 1))
                )
            ),
            "periodic_exponential": lambda: (
                p.get("scale", 0) * np.exp(-np.abs(_nearest_multiple_distance(x, p)) / p.get("width", 1))
            ),
            "spike_rate_escape": lambda: p.get("slope", 0) * np.exp(-p.get("beta", 0) * np.abs(x - 1)),
            "sparse_fast_sigmoid": lambda: np.where(x > p.get("b", 0), 1 / (1 + p.get("k", 0) * ax) ** 2, 0.0),
            "triangle_slope": lambda: np.where(x >= 0, -p.get("threshold", 0), p.get("threshold", 0)),
            "soft_sign": lambda: 1 / (2 * p.get("alpha", 1) * (1 / p.get("alpha", 1) + ax) ** 2),
            "scaled_superspike": lambda: p.get("alpha", 0) / (1 + ax) ** 2,
            "nonzero_sign_log_abs": lambda: 1 / (1 / p.get("alpha", 1) + ax),
            "erf": lambda: np.exp(-((p.get("alpha", 0) * x) ** 2)) * p.get("alpha", 0) / np.sqrt(np.pi),
            "piecewise_leaky_relu": lambda: np.where(ax < p.get("w", 1), 1 / (2 * p.get("w", 1)), p.get("c", 0)),
            "squarewave_fourier": lambda: _squarewave(x, int(p.get("n", 1)), p.get("period", 1)),
            "s2nn": lambda: np.where(
                x < 0,
                p.get("alpha", 0) / (2 + 2 * np.cosh(p.get("alpha", 0) * x)),
                p.get("beta", 0) / (x + 1),
            ),
            "q_pseudo_spike": lambda: (1 + 2 / (p.get("alpha", 2) - 1) * ax) ** -p.get("alpha", 2),
            "leaky_k_relu": lambda: np.where(x >= 0, p.get("k", 0), p.get("leak", 0)),
            "fake_numerical_gradient": lambda: np.minimum(np.where(x >= 0, 1.0, -1.0) / x, p.get("alpha", 0)),
            "log_tailed_relu": lambda: np.where(
                x > 1, 1 / np.where(x > 1, x, 1), np.where(x <= 0, p.get("alpha", 0), 1.0)
            ),
            "threshold_exponential": lambda: (
                p.get("scale", 0) / (theta * p.get("width", 1)) * np.exp(-ax / (theta * p.get("width", 1)))
            ),
            "threshold_step_window": lambda: np.where(x >= -p.get("window", 0), 1 / theta, 0.0),
        }
        return table[kind]()


def _squarewave(x, n, period):
    return 4 / period * sum((np.cos((2 * i - 1) * 2 * np.pi / period * x) for i in range(1, n)), np.zeros_like(x))


def _g(x, mu, sigma):
    return np.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))


def _nearest_multiple_distance(x, p):
    """``x`` below the threshold, else ``gain·(v - k·θ)`` for the multiple ``k·θ`` nearest to ``v = x + θ``
    (``k ≤ max_spikes``)."""
    theta, limit = p.get("threshold", 1), p.get("max_spikes", 0)
    v = x + theta
    k = np.maximum(np.round(v / theta), 1)
    if limit:
        k = np.minimum(k, limit)
    return np.where(v < theta, x, p.get("gain", 1) * (v - k * theta))


def _other_parameters(kind: str) -> dict:
    """Parameters away from the defaults (a parameter read wrongly shows)."""
    return {name: 4.0 if name == "n" else default * 0.6 + 0.2 for name, default in ir.SURROGATE_KINDS[kind]}


CASES = (
    [ir.format_surrogate(kind) for kind in ir.SURROGATE_KINDS]
    + [  # several spikes' worth of membrane: below, at and between the multiples of the threshold, and capped
        "periodic_exponential(width=0.3, scale=2.0, threshold=0.5, max_spikes=2.0)",
        "periodic_exponential(width=0.2, scale=1.0, threshold=0.4)",
    ]
    + [ir.format_surrogate(kind, **_other_parameters(kind)) for kind, params in ir.SURROGATE_KINDS.items() if params]
)
# around 0 (both signed zeros), near the windows and steps of the kinds, and far out (overflowing exponentials)
X = np.array([-60.0, -3.0, -1.2, -0.9, -0.5, -0.3, -0.1, -0.01, -0.0, 0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 1.0, 1.1,
              1.3, 2.0, 60.0], dtype=np.float32)  # fmt: skip


def test_every_kind_has_a_reference():
    for kind in ir.SURROGATE_KINDS:
        _reference(kind, dict(ir.SURROGATE_KINDS[kind]), X.astype(np.float64))


@pytest.mark.parametrize("surrogate", CASES)
def test_both_engines_compute_the_closed_form(surrogate):
    """At threshold 0, and for the kinds that read the threshold at per-neuron thresholds (the spike
    is then taken of ``u = x + θ``, and the reference is evaluated at ``u − θ``)."""
    kind, params = ir.surrogate_parts(surrogate)
    theta, u = np.zeros(X.size, np.float32), X.copy()
    if kind in ir.THRESHOLD_KINDS:
        theta = np.linspace(0.3, 2.5, X.size).astype(np.float32)
        u = X + theta
    x = u - theta  # float32: X itself (its signed zeros too) at threshold 0
    want = _reference(kind, params, x.astype(np.float64), theta.astype(np.float64))
    g = np.linspace(0.5, 2.0, X.size).astype(np.float32)  # an upstream gradient that is not 1

    tu, ttheta = torch.from_numpy(u).requires_grad_(True), torch.from_numpy(theta)
    y = spike(tu - ttheta, False, surrogate, ttheta)
    assert torch.equal(y.detach(), torch.from_numpy((u > theta).astype(np.float32)))
    (y * torch.from_numpy(g)).sum().backward()
    got_torch = tu.grad.numpy()

    jspike = make_spike(">", surrogate)
    np.testing.assert_array_equal(jspike(jnp.asarray(u), jnp.asarray(theta)), (u > theta).astype(np.float32))
    got_jax = np.asarray(jax.grad(lambda v: (jspike(v, jnp.asarray(theta)) * g).sum())(jnp.asarray(u)))

    if kind == "sigmoid":  # snnTorch's order of operations: inf/inf far below the threshold, as snnTorch gives
        assert np.isnan(got_torch[0]) and np.isnan(got_jax[0])
        want, got_torch, got_jax = want[1:], got_torch[1:], got_jax[1:]
        g = g[1:]
    want = want * g
    infinite = ~np.isfinite(want)  # fake_numerical_gradient's -1/(-0.0): the same infinity in both engines
    np.testing.assert_array_equal(got_torch[infinite], want[infinite])
    np.testing.assert_array_equal(got_jax[infinite], want[infinite])
    want, got_torch, got_jax = want[~infinite], got_torch[~infinite], got_jax[~infinite]
    scale = max(np.abs(want).max(), 1e-30)
    np.testing.assert_allclose(got_torch, want, rtol=2e-6, atol=2e-6 * scale, err_msg=f"PyTorch {surrogate}")
    np.testing.assert_allclose(got_jax, want, rtol=2e-6, atol=2e-6 * scale, err_msg=f"JAX {surrogate}")
    np.testing.assert_allclose(got_jax, got_torch, rtol=2e-6, atol=2e-6 * scale, err_msg=f"engines {surrogate}")


def test_aliases_name_the_frameworks_functions():
    assert ir.canonical_surrogate("SFS(slope=10, B=0.5)") == "sparse_fast_sigmoid(k=10.0, b=0.5)"
    assert ir.canonical_surrogate("sfs") == "sparse_fast_sigmoid(k=25.0, b=1.0)"
    assert ir.canonical_surrogate("logistic") == "logistic(alpha=4.0)"
    with pytest.raises(ValueError, match=r"surrogate 'step_window' takes \['window', 'threshold'\], got \['width'\]"):
        ir.canonical_surrogate("step_window(width=1)")
    assert math.isclose(_reference("logistic", {"alpha": 4.0}, np.array([0.0]))[0], 1.0)


# ---- the frameworks' own backward, on the probe points of talon.bridge.surrogate_probe -------------------


# one threshold per probe point of talon.bridge.surrogate_probe (the Sinabs and Rockpool threshold kinds)
PER_NEURON = np.linspace(0.4, 2.2, len(PROBE)).astype(np.float32)


def _spikingjelly():
    sg = pytest.importorskip("spikingjelly.activation_based.surrogate")
    return [
        (sg.Sigmoid(), "logistic(alpha=4.0)"),  # IFNode's and LIFNode's default
        (sg.Sigmoid(alpha=1.5), "logistic(alpha=1.5)"),
        (sg.Rect(), "boxcar(width=1.0, height=1.0)"),  # CUBALIFNode's default
        (sg.Rect(alpha=4.0), "boxcar(width=0.25, height=4.0)"),
        (sg.ATan(alpha=3.0), "atan(alpha=3.0)"),
        (sg.PiecewiseQuadratic(alpha=2.0), "triangle(alpha=2.0, k=2.0)"),
        (sg.PiecewiseExp(alpha=2.0), "single_exponential(width=0.5, scale=0.5)"),
        (sg.SuperSpike(), "superspike(k=1.0)"),
        (sg.Erf(), "erfc(k=2.0)"),
        (sg.DeterministicPass(), "straight_through"),
        *_spikingjelly_others(sg),
    ]


def _spikingjelly_others(sg):
    """SpikingJelly's surrogates that have a kind of their own, at their defaults and away from them."""
    return [
        (sg.SoftSign(), "soft_sign(alpha=2.0)"),
        (sg.SoftSign(alpha=0.7), "soft_sign(alpha=0.7)"),
        (sg.SuperSpike(alpha=2.5), "scaled_superspike(alpha=2.5)"),
        (sg.NonzeroSignLogAbs(), "nonzero_sign_log_abs(alpha=1.0)"),
        (sg.NonzeroSignLogAbs(alpha=3.0), "nonzero_sign_log_abs(alpha=3.0)"),
        (sg.Erf(), "erf(alpha=2.0)"),
        (sg.Erf(alpha=0.8), "erf(alpha=0.8)"),
        (sg.PiecewiseLeakyReLU(), "piecewise_leaky_relu(w=1.0, c=0.01)"),
        (sg.PiecewiseLeakyReLU(w=0.3, c=0.2), "piecewise_leaky_relu(w=0.3, c=0.2)"),
        (sg.SquarewaveFourierSeries(), "squarewave_fourier(n=2.0, period=8.0)"),
        (sg.SquarewaveFourierSeries(n=5, T_period=3.0), "squarewave_fourier(n=5.0, period=3.0)"),
        (sg.S2NN(), "s2nn(alpha=4.0, beta=1.0)"),
        (sg.S2NN(alpha=1.5, beta=0.4), "s2nn(alpha=1.5, beta=0.4)"),
        (sg.QPseudoSpike(), "q_pseudo_spike(alpha=2.0)"),
        (sg.QPseudoSpike(alpha=3.5), "q_pseudo_spike(alpha=3.5)"),
        (sg.LeakyKReLU(), "leaky_k_relu(leak=0.0, k=1.0)"),
        (sg.LeakyKReLU(leak=0.1, k=2.0), "leaky_k_relu(leak=0.1, k=2.0)"),
        (sg.FakeNumericalGradient(), "fake_numerical_gradient(alpha=0.3)"),
        (sg.FakeNumericalGradient(alpha=2.0), "fake_numerical_gradient(alpha=2.0)"),
        (sg.LogTailedReLU(), "log_tailed_relu(alpha=0.0)"),
        (sg.LogTailedReLU(alpha=0.05), "log_tailed_relu(alpha=0.05)"),
    ]


def test_spikingjelly_surrogates_bit_for_bit():
    """SpikingJelly's autograd function and talon's spike (``>=``, SpikingJelly's ``heaviside``) give the
    same forward and, for an upstream gradient that is not 1, the same backward, bit for bit, on
    float32 membranes around the threshold; the JAX engine within float32 rounding."""
    sg = pytest.importorskip("spikingjelly.activation_based.surrogate")
    rng = np.random.default_rng(0)
    x = np.concatenate([X, rng.normal(0, 1.5, 200).astype(np.float32)])
    g = rng.uniform(0.2, 3.0, x.size).astype(np.float32)
    for function, text in _spikingjelly_others(sg):
        theirs = torch.from_numpy(x.copy()).requires_grad_(True)
        want = function(theirs)
        (want * torch.from_numpy(g)).sum().backward()
        ours = torch.from_numpy(x.copy()).requires_grad_(True)
        got = spike(ours, True, text)
        (got * torch.from_numpy(g)).sum().backward()
        assert torch.equal(got.detach(), want.detach()), text
        assert torch.equal(ours.grad, theirs.grad), text

        jspike = make_spike(">=", text)
        np.testing.assert_array_equal(np.asarray(jspike(jnp.asarray(x), jnp.float32(0))), want.detach().numpy())
        got_jax = np.asarray(jax.grad(lambda u, f=jspike: (f(u, jnp.float32(0)) * g).sum())(jnp.asarray(x)))
        expected = theirs.grad.numpy()
        finite = np.isfinite(expected)
        np.testing.assert_array_equal(got_jax[~finite], expected[~finite], err_msg=text)
        scale = np.abs(expected[finite]).max()
        np.testing.assert_allclose(got_jax[finite], expected[finite], rtol=2e-6, atol=2e-6 * scale, err_msg=text)


def _sinabs():
    pytest.importorskip("sinabs")
    from sinabs.activation import (
        Gaussian,
        Heaviside,
        MultiGaussian,
        MultiSpike,
        PeriodicExponential,
        SingleExponential,
    )

    def at(theta, fn):  # Sinabs differentiates its spike count at the membrane v = x + θ
        return lambda x: MultiSpike.apply(x + torch.tensor(theta), torch.tensor(theta), fn)

    return [
        (at(PER_NEURON, SingleExponential()), "threshold_exponential(width=0.5, scale=1.0)"),  # its layers' default
        (at(PER_NEURON, SingleExponential(0.25, 3.0)), "threshold_exponential(width=0.25, scale=3.0)"),
        (at(PER_NEURON, Heaviside(window=0.4)), "threshold_step_window(window=0.4)"),
        (at(1.0, SingleExponential()), "single_exponential(width=0.5, scale=1.0)"),  # ... at one threshold
        (at(2.0, SingleExponential(grad_width=0.25, grad_scale=3.0)), "single_exponential(width=0.5, scale=3.0)"),
        (at(0.5, Heaviside()), "step_window(window=1.0, threshold=0.5)"),
        (at(2.0, Heaviside(window=0.5)), "step_window(window=0.5, threshold=2.0)"),
        (at(1.0, Gaussian()), "gaussian(mu=0.0, sigma=0.5, scale=1.0)"),
        (at(1.0, Gaussian(mu=0.25, sigma=0.75, grad_scale=2.0)), "gaussian(mu=0.25, sigma=0.75, scale=2.0)"),
        (at(1.0, MultiGaussian()), "multi_gaussian(mu=0.0, sigma=0.5, h=0.15, s=6.0, scale=1.0)"),
        (at(0.5, PeriodicExponential()), "periodic_exponential(width=0.5, scale=1.0, threshold=0.5, gain=2.0)"),
        (
            at(2.0, PeriodicExponential(0.25, 3.0)),
            "periodic_exponential(width=0.25, scale=3.0, threshold=2.0, gain=2.0)",
        ),
    ]


def _rockpool():
    pytest.importorskip("rockpool")
    from rockpool.nn.modules.torch.lif_torch import PeriodicExponential, StepPWL

    def at(theta, window, spike=StepPWL, limit=2.0**16):  # LIFTorch calls it on the membrane v = x + θ
        theta = torch.tensor(theta)
        return lambda x: spike.apply(x + theta, theta, torch.tensor(window), torch.tensor(limit))

    periodic = "periodic_exponential(width=0.5, scale=2.0, threshold=0.5, gain=1.0, max_spikes=65536.0)"
    return [
        (at(PER_NEURON, 0.5), "threshold_step_window(window=0.5)"),  # LIFTorch's default
        (at(PER_NEURON, 0.25), "threshold_step_window(window=0.25)"),
        (at(1.0, 0.5), "step_window(window=0.5, threshold=1.0)"),  # ... at one threshold
        (at(0.5, 0.25), "step_window(window=0.25, threshold=0.5)"),
        (at(0.5, 0.5, PeriodicExponential), periodic),
        (at(0.5, 0.5, PeriodicExponential, 3.0), periodic.replace("65536.0", "3.0")),
    ]


@pytest.mark.parametrize("framework", ["spikingjelly", "sinabs", "rockpool"])
def test_the_frameworks_surrogates_are_these_kinds(framework):
    """Each framework surrogate's own backward is the TALON IR text docs/nir.md gives for it, and not the default."""
    from talon.bridge.surrogate_probe import torch_backward_matches

    cases = {"spikingjelly": _spikingjelly, "sinabs": _sinabs, "rockpool": _rockpool}[framework]()
    for function, text in cases:
        theta = torch.tensor(PER_NEURON) if ir.reads_threshold(text) else None
        assert torch_backward_matches(function, text, theta), f"{framework}: {text}"
        assert not torch_backward_matches(function, ir.DEFAULT_SURROGATE), f"{framework}: {text} is atan"
        if theta is not None:  # each neuron's own threshold, not one of them
            one = ir.resolve_surrogate(text, PER_NEURON[:1])
            assert not torch_backward_matches(function, one), f"{framework}: {text} is {one}"


def test_a_threshold_kind_needs_the_threshold():
    with pytest.raises(ValueError, match=r"'threshold_step_window\(window=0.5\)' reads the neuron's threshold"):
        spike(torch.zeros(3, requires_grad=True), False, "threshold_step_window(window=0.5)")
