"""The spike function: an exact threshold comparison forward, a surrogate derivative backward.

Forward, ``spike(u, theta)`` is ``1.0`` where ``u > theta`` (or ``u >= theta``) and ``0.0``
elsewhere, in the dtype of ``u`` — the comparison of ``docs/semantics.md``, made on ``u`` and
``theta`` directly (not on ``u - theta``, which XLA's flush-to-zero could turn into 0 for
values a denormal apart). Backward, the Heaviside step's zero derivative is replaced by a
surrogate ``sigma'(u - theta)``::

    d spike = sigma'(u - theta) * (du - dtheta)

The surrogate is a neuron's ``surrogate`` field (``'superspike(k=25.0)'``, see
:mod:`talon.ir.surrogate` for the kinds and formulas), computed here as the framework it comes
from computes it, so gradients of a model imported from Spyx, snnTorch or Norse agree with the
framework's to float32 rounding. The short names of earlier releases still work: ``superspike``
(``k = 25``, Spyx's default), ``fast_sigmoid`` (the same), ``arctan`` (Spyx, ``k = 2``), ``atan``
(snnTorch's default, ``alpha = 2``), ``triangular`` (Spyx, ``k = 2``), ``boxcar`` (Spyx: 0.5 where
``|x| < 1``), ``straight_through`` (1).

A callable ``x -> sigma'(x)`` may be given instead of a text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ... import ir
from ._deps import require

Surrogate = str | Callable[[Any], Any]


def _derivative(kind: str, p: dict[str, float], jnp) -> Callable[[Any], Any]:
    """``sigma'(x)`` of one surrogate kind (the formulas of :mod:`talon.ir.surrogate`)."""
    if kind == "atan":  # snnTorch: (alpha/2) / (1 + (pi/2*alpha*x)^2)
        alpha = p["alpha"]
        return lambda x: (alpha / 2) / (1.0 + (math.pi / 2 * alpha * x) ** 2)
    if kind == "arctan":  # Spyx: 1 / ((1 + (k_pi x)^2) pi)
        k_pi = p["k"] * math.pi
        return lambda x: 1.0 / ((1.0 + (k_pi * x) ** 2) * math.pi)
    if kind == "superspike":
        k = p["k"]
        return lambda x: 1.0 / (1.0 + k * jnp.abs(x)) ** 2
    if kind == "sigmoid":
        slope = p["slope"]

        def sigmoid(x):
            e = jnp.exp(-slope * x)
            return slope * e / ((e + 1.0) ** 2)

        return sigmoid
    if kind == "triangle":
        alpha, k = p["alpha"], p["k"]
        return lambda x: alpha * jnp.maximum(0.0, 1.0 - jnp.abs(k * x))
    if kind == "boxcar":
        half, height = p["width"] / 2, p["height"]
        return lambda x: jnp.where(jnp.abs(x) < half, height, 0.0).astype(x.dtype)
    if kind == "tanh":  # Spyx: 4 / (e^-kx + e^kx)^2
        k = p["k"]
        return lambda x: 4.0 / (jnp.exp(-k * x) + jnp.exp(k * x)) ** 2
    if kind == "erfc":  # Norse heavi_erfc
        k = p["k"]
        return lambda x: (2.0 * jnp.exp(-((k * x) ** 2))) / math.sqrt(math.pi)
    if kind == "straight_through":
        return lambda x: jnp.ones_like(x)
    if kind == "heaviside":
        return lambda x: (x > 0).astype(x.dtype)
    if kind == "linear":
        return lambda x: x
    if kind == "none":
        return lambda x: jnp.zeros_like(x)
    return _other_derivative(kind, p, jnp)


def _other_derivative(kind: str, p: dict[str, float], jnp) -> Callable[[Any], Any]:
    """The kinds of SpikingJelly, Sinabs and Rockpool (their NIR importers' defaults) and snnTorch's others."""
    if kind == "logistic":  # SpikingJelly Sigmoid: s = sigmoid(alpha x); (1 - s) s alpha
        alpha = p["alpha"]

        def logistic(x):
            s = 1.0 / (1.0 + jnp.exp(-(x * alpha)))
            return (1.0 - s) * s * alpha

        return logistic
    if kind == "single_exponential":  # Sinabs: scale / width * e^(-|x| / width)
        width, scale = p["width"], p["scale"]
        return lambda x: scale / width * jnp.exp(-jnp.abs(x) / width)
    if kind == "step_window":  # Rockpool StepPWL: 1 / threshold where x >= -window
        window, threshold = p["window"], p["threshold"]
        return lambda x: jnp.where(x >= -window, 1.0 / threshold, 0.0).astype(x.dtype)

    def gaussian(x, mu, sigma):
        return jnp.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))

    if kind == "gaussian":  # Sinabs Gaussian
        mu, sigma, scale = p["mu"], p["sigma"], p["scale"]
        return lambda x: gaussian(x, mu, sigma) * scale
    if kind == "multi_gaussian":  # Sinabs MultiGaussian
        mu, sigma, h, s, scale = p["mu"], p["sigma"], p["h"], p["s"], p["scale"]
        wide = s * sigma
        return lambda x: ((1 + h) * gaussian(x, mu, sigma) - h * gaussian(x, sigma, wide)
                          - h * gaussian(x, -sigma, wide)) * scale  # fmt: skip
    if kind == "periodic_exponential":  # Sinabs / Rockpool PeriodicExponential
        width, scale, theta, gain, limit = p["width"], p["scale"], p["threshold"], p["gain"], p["max_spikes"]

        def periodic_exponential(x):
            v = x + theta
            n = jnp.floor((v - theta / 2) / theta)
            if limit:
                n = jnp.minimum(n, limit - 1)
            d = jnp.where(v < theta, x, gain * (v - (n + 1) * theta))
            return scale * jnp.exp(-jnp.abs(d) / width)

        return periodic_exponential
    if kind == "spike_rate_escape":  # snnTorch: slope e^(-beta |x - 1|)
        beta, slope = p["beta"], p["slope"]
        return lambda x: slope * jnp.exp(-beta * jnp.abs(x - 1.0))
    if kind == "sparse_fast_sigmoid":  # snnTorch SFS: 1 / (k|x| + 1)^2 where x > b
        k, b = p["k"], p["b"]
        return lambda x: jnp.where(x > b, 1.0 / (k * jnp.abs(x) + 1.0) ** 2, 0.0).astype(x.dtype)
    if kind == "triangle_slope":  # snnTorch triangular: threshold where x < 0, -threshold where x >= 0
        threshold = p["threshold"]
        return lambda x: jnp.where(x >= 0, -threshold, threshold).astype(x.dtype)
    if kind in _SPIKINGJELLY:
        return _spikingjelly_derivative(kind, p, jnp)
    if kind == "threshold_exponential":  # Sinabs SingleExponential: w = theta * grad_width
        width, scale = p["width"], p["scale"]

        def threshold_exponential(x, theta):
            w = theta * width
            return scale / w * jnp.exp(-jnp.abs(x) / w)

        return threshold_exponential
    if kind == "threshold_step_window":  # Rockpool StepPWL: 1 / theta where x >= -window
        window = p["window"]
        return lambda x, theta: jnp.where(x >= -window, 1.0 / theta, 0.0).astype(x.dtype)
    raise ValueError(f"surrogate kind {kind!r} has no JAX derivative")  # a kind added to the IR only


_SPIKINGJELLY = frozenset({"soft_sign", "scaled_superspike", "nonzero_sign_log_abs", "erf", "piecewise_leaky_relu",
                           "squarewave_fourier", "s2nn", "q_pseudo_spike", "leaky_k_relu", "fake_numerical_gradient",
                           "log_tailed_relu"})  # fmt: skip


def _spikingjelly_derivative(kind: str, p: dict[str, float], jnp) -> Callable[[Any], Any]:
    """SpikingJelly 2.0.0's other surrogates, in the order of its ``*_backward`` functions."""
    if kind == "soft_sign":
        alpha = p["alpha"]
        return lambda x: 1.0 / (2 * alpha * (1 / alpha + jnp.abs(x)) ** 2)
    if kind == "scaled_superspike":
        alpha = p["alpha"]
        return lambda x: alpha / (jnp.abs(x) + 1.0) ** 2
    if kind == "nonzero_sign_log_abs":
        alpha = p["alpha"]
        return lambda x: 1.0 / (1 / alpha + jnp.abs(x))
    if kind == "erf":
        alpha = p["alpha"]
        return lambda x: jnp.exp(-((x * alpha) ** 2)) * (alpha / math.sqrt(math.pi))
    if kind == "piecewise_leaky_relu":
        w, c = p["w"], p["c"]
        return lambda x: jnp.where(jnp.abs(x) < w, 1 / (2 * w), c).astype(x.dtype)
    if kind == "squarewave_fourier":
        n, period = int(p["n"]), p["period"]
        omega = math.pi * 2.0 / period

        def squarewave_fourier(x):
            total = jnp.zeros_like(x)
            for i in range(1, n):
                total = total + jnp.cos((2 * i - 1.0) * omega * x)
            return total * (4.0 / period)

        return squarewave_fourier
    if kind == "s2nn":
        alpha, beta = p["alpha"], p["beta"]

        def s2nn(x):
            s = 1.0 / (1.0 + jnp.exp(-(alpha * x)))
            return jnp.where(x < 0.0, alpha * s * (1.0 - s), beta / (x + 1.0))

        return s2nn
    if kind == "q_pseudo_spike":
        alpha = p["alpha"]
        return lambda x: (1 + 2 / (alpha - 1) * jnp.abs(x)) ** (-alpha)
    if kind == "leaky_k_relu":
        leak, k = p["leak"], p["k"]
        return lambda x: jnp.where(x >= 0.0, k, leak).astype(x.dtype)
    if kind == "fake_numerical_gradient":
        alpha = p["alpha"]
        return lambda x: jnp.minimum(jnp.where(x >= 0.0, 1.0, -1.0).astype(x.dtype) / x, alpha)
    alpha = p["alpha"]  # log_tailed_relu
    return lambda x: jnp.where(x > 1.0, 1.0 / x, jnp.where(x <= 0.0, alpha, 1.0)).astype(x.dtype)


SURROGATES = tuple(ir.SURROGATE_KINDS)


def surrogate_derivative(surrogate: Surrogate) -> Callable[..., Any]:
    """Return ``sigma'`` for a surrogate text (see :mod:`talon.ir.surrogate`) or a callable: ``x ->
    sigma'(x)``, or ``(x, theta) -> sigma'(x, theta)`` for a kind of ``talon.ir.THRESHOLD_KINDS``
    (its ``reads_threshold`` attribute is True)."""
    if callable(surrogate):
        return surrogate
    try:
        kind, params = ir.surrogate_parts(surrogate)
    except ValueError as exc:
        raise ValueError(f"unknown surrogate {surrogate!r} ({exc}); or pass a callable x -> sigma'(x)") from None
    derivative = _derivative(kind, params, require("jax.numpy"))
    derivative.talon_surrogate = ir.canonical_surrogate(surrogate)  # lets the Spyx export read it back
    derivative.reads_threshold = kind in ir.THRESHOLD_KINDS
    return derivative


def make_spike(comparison: str, surrogate: Surrogate) -> Callable[[Any, Any], Any]:
    """Return ``spike(u, theta)`` for ``comparison`` (``'>'`` or ``'>='``) with the given surrogate."""
    jax, lax = require("jax"), require("jax.lax")
    derivative = surrogate_derivative(surrogate)
    if comparison not in (">", ">="):
        raise ValueError(f"comparison must be '>' or '>=', got {comparison!r}")
    strict = comparison == ">"
    with_theta = getattr(derivative, "reads_threshold", False)

    @jax.custom_jvp
    def spike(u, theta):
        return ((u > theta) if strict else (u >= theta)).astype(u.dtype)

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        u, theta = primals
        du, dtheta = tangents
        x = u - theta
        slope = (derivative(x, lax.stop_gradient(theta)) if with_theta else derivative(x)).astype(u.dtype)
        return spike(u, theta), slope * (du - dtheta)

    return spike
