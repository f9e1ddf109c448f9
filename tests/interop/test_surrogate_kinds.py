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
from talon.interop.jax import make_spike  # noqa: E402


def _reference(kind: str, p: dict, x: np.ndarray) -> np.ndarray:
    """``sigma'(x)`` in float64, written from the formulas (not from the engines' code)."""
    ax = np.abs(x)
    with np.errstate(over="ignore"):
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
            "spike_rate_escape": lambda: p.get("slope", 0) * np.exp(-p.get("beta", 0) * np.abs(x - 1)),
            "sparse_fast_sigmoid": lambda: np.where(x > p.get("b", 0), 1 / (1 + p.get("k", 0) * ax) ** 2, 0.0),
            "triangle_slope": lambda: np.where(x >= 0, -p.get("threshold", 0), p.get("threshold", 0)),
        }
        return table[kind]()


def _other_parameters(kind: str) -> dict:
    """Parameters away from the defaults (a parameter read wrongly shows)."""
    return {name: default * 0.6 + 0.2 for name, default in ir.SURROGATE_KINDS[kind]}


CASES = [ir.format_surrogate(kind) for kind in ir.SURROGATE_KINDS] + [
    ir.format_surrogate(kind, **_other_parameters(kind)) for kind, params in ir.SURROGATE_KINDS.items() if params
]
# around 0 (both signed zeros), near the windows and steps of the kinds, and far out (overflowing exponentials)
X = np.array([-60.0, -3.0, -1.2, -0.9, -0.5, -0.3, -0.1, -0.01, -0.0, 0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 1.0, 1.1,
              1.3, 2.0, 60.0], dtype=np.float32)  # fmt: skip


def test_every_kind_has_a_reference():
    for kind in ir.SURROGATE_KINDS:
        _reference(kind, dict(ir.SURROGATE_KINDS[kind]), X.astype(np.float64))


@pytest.mark.parametrize("surrogate", CASES)
def test_both_engines_compute_the_closed_form(surrogate):
    kind, params = ir.surrogate_parts(surrogate)
    want = _reference(kind, params, X.astype(np.float64))
    g = np.linspace(0.5, 2.0, X.size).astype(np.float32)  # an upstream gradient that is not 1

    x = torch.from_numpy(X.copy()).requires_grad_(True)
    y = spike(x, False, surrogate)
    assert torch.equal(y.detach(), (x > 0).float())
    (y * torch.from_numpy(g)).sum().backward()
    got_torch = x.grad.numpy()

    theta = jnp.float32(0.0)
    jspike = make_spike(">", surrogate)
    np.testing.assert_array_equal(jspike(jnp.asarray(X), theta), (X > 0).astype(np.float32))
    got_jax = np.asarray(jax.grad(lambda u: (jspike(u, theta) * g).sum())(jnp.asarray(X)))

    if kind == "sigmoid":  # snnTorch's order of operations: inf/inf far below the threshold, as snnTorch gives
        assert np.isnan(got_torch[0]) and np.isnan(got_jax[0])
        want, got_torch, got_jax = want[1:], got_torch[1:], got_jax[1:]
        g = g[1:]
    scale = max(np.abs(want).max(), 1e-30)
    np.testing.assert_allclose(got_torch, want * g, rtol=2e-6, atol=2e-6 * scale, err_msg=f"PyTorch {surrogate}")
    np.testing.assert_allclose(got_jax, want * g, rtol=2e-6, atol=2e-6 * scale, err_msg=f"JAX {surrogate}")
    np.testing.assert_allclose(got_jax, got_torch, rtol=2e-6, atol=2e-6 * scale, err_msg=f"engines {surrogate}")


def test_aliases_name_the_frameworks_functions():
    assert ir.canonical_surrogate("SFS(slope=10, B=0.5)") == "sparse_fast_sigmoid(k=10.0, b=0.5)"
    assert ir.canonical_surrogate("sfs") == "sparse_fast_sigmoid(k=25.0, b=1.0)"
    assert ir.canonical_surrogate("logistic") == "logistic(alpha=4.0)"
    with pytest.raises(ValueError, match=r"surrogate 'step_window' takes \['window', 'threshold'\], got \['width'\]"):
        ir.canonical_surrogate("step_window(width=1)")
    assert math.isclose(_reference("logistic", {"alpha": 4.0}, np.array([0.0]))[0], 1.0)
