"""The spike function: an exact step forward, the node's surrogate gradient backward.

Forward: ``H(x) = 1 if x > 0 else 0`` (``>=`` with ``inclusive=True``), evaluated on
``x = v - theta``; for IEEE floats with gradual underflow ``v - theta > 0`` exactly when
``v > theta``, so this is the threshold comparison of ``docs/semantics.md`` bit for bit.
Backward: ``grad * sigma'(x)`` (``sigma'(x, theta)`` for the kinds that read the neuron's
threshold) for the neuron's ``surrogate`` (:mod:`talon.ir.surrogate` has the
kinds and formulas); the default is the arc-tangent snnTorch uses,
``dS/dx = (alpha/2) / (1 + (pi/2 * alpha * x)^2)`` with ``alpha = 2``. Each kind is computed in the
order of operations of the framework it comes from, so a gradient imported from snnTorch, Norse
or Spyx agrees with the framework's to float32 rounding.

The spike is an ``autograd.Function``. ``torch.fx.symbolic_trace`` would inline such a function
and drop its backward, so the modules that call ``spike`` ``fx.wrap`` it (a traced module records a call to it) and
the executor generates its code from the IR instead of tracing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from talon import ir

Backward = Callable[..., torch.Tensor]  # (grad_output, x) -> grad_input; (grad_output, x, theta) for THRESHOLD_KINDS


def _backwards(kind: str, p: dict[str, float]) -> Backward:
    """``(g, x) -> g·sigma'(x)`` for one surrogate, in its source framework's order of operations."""
    if kind == "atan":  # snnTorch atan (talon's executor has always computed it in this order)
        alpha = p["alpha"]
        return lambda g, x: g * (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)
    if kind == "arctan":  # Spyx arctan: g * (1 / ((1 + (k_pi x)^2) pi))
        k_pi = p["k"] * math.pi
        return lambda g, x: g * (1 / ((1 + (k_pi * x) ** 2) * math.pi))
    if kind == "superspike":  # snnTorch fast_sigmoid, Norse SuperSpike: g / (k|x| + 1)^2
        k = p["k"]
        return lambda g, x: g / (k * torch.abs(x) + 1.0) ** 2
    if kind == "sigmoid":  # snnTorch sigmoid
        slope = p["slope"]

        def sigmoid(g, x):
            e = torch.exp(-slope * x)
            return g * slope * e / ((e + 1) ** 2)

        return sigmoid
    if kind == "triangle":  # Norse triangle: g * alpha * relu(1 - |x|); Spyx triangular: g * max(0, 1 - |k x|)
        alpha, k = p["alpha"], p["k"]
        return lambda g, x: g * alpha * torch.relu(1 - torch.abs(k * x))
    if kind == "boxcar":  # Spyx boxcar: g * (h where |x| < width/2)
        half, height = p["width"] / 2, p["height"]
        return lambda g, x: g * torch.where(torch.abs(x) < half, height, 0.0).to(x.dtype)
    if kind == "tanh":  # Spyx tanh: g * 4 / (e^-kx + e^kx)^2
        k = p["k"]

        def tanh(g, x):
            kx = k * x
            return g * (4 / (torch.exp(-kx) + torch.exp(kx)) ** 2)

        return tanh
    if kind == "erfc":  # Norse heavi_erfc: 2 e^(-(kx)^2) / sqrt(pi) * g
        k = p["k"]
        return lambda g, x: (2 * torch.exp(-((k * x) ** 2))) / math.sqrt(math.pi) * g
    if kind == "straight_through":
        return lambda g, x: g
    if kind == "heaviside":  # snnTorch heaviside: g * spike
        return lambda g, x: g * (x > 0).to(g.dtype)
    if kind == "linear":  # Spyx custom(): g * x
        return lambda g, x: g * x
    if kind == "none":
        return lambda g, x: torch.zeros_like(g)
    return _other_backwards(kind, p)


def _other_backwards(kind: str, p: dict[str, float]) -> Backward:
    """The kinds of SpikingJelly, Sinabs and Rockpool (their NIR importers' defaults) and snnTorch's others."""
    if kind == "logistic":  # SpikingJelly sigmoid_backward: s = sigmoid(x alpha); g (1 - s) s alpha
        alpha = p["alpha"]

        def logistic(g, x):
            s = torch.sigmoid(x * alpha)
            return g * (1.0 - s) * s * alpha

        return logistic
    if kind == "single_exponential":  # Sinabs SingleExponential: g * (scale / width * e^(-|x| / width))
        width, scale = p["width"], p["scale"]
        return lambda g, x: g * (scale / width * torch.exp(-torch.abs(x) / width))
    if kind == "step_window":  # Rockpool StepPWL: g / threshold * (x >= -window)
        window, threshold = p["window"], p["threshold"]
        return lambda g, x: g / threshold * (x >= -window)
    if kind == "gaussian":  # Sinabs Gaussian: g * (G(x; mu, sigma) * scale)
        mu, sigma, scale = p["mu"], p["sigma"], p["scale"]
        return lambda g, x: g * (_gaussian(x, mu, sigma) * scale)
    if kind == "multi_gaussian":  # Sinabs MultiGaussian
        mu, sigma, h, s, scale = p["mu"], p["sigma"], p["h"], p["s"], p["scale"]

        def multi_gaussian(g, x):
            wide = s * sigma
            bumps = (1 + h) * _gaussian(x, mu, sigma) - h * _gaussian(x, sigma, wide) - h * _gaussian(x, -sigma, wide)
            return g * (bumps * scale)

        return multi_gaussian
    if kind == "periodic_exponential":  # Sinabs / Rockpool PeriodicExponential (see talon.ir.surrogate)
        width, scale, theta, gain, limit = p["width"], p["scale"], p["threshold"], p["gain"], p["max_spikes"]

        def periodic_exponential(g, x):
            v = x + theta
            n = torch.floor((v - theta / 2) / theta)  # the nearest multiple of theta is (n + 1) theta
            if limit:
                n = torch.clamp_max(n, limit - 1)
            d = torch.where(v < theta, x, gain * (v - (n + 1) * theta))
            return g * (scale * torch.exp(-torch.abs(d) / width))

        return periodic_exponential
    if kind == "spike_rate_escape":  # snnTorch: g * slope * e^(-beta |x - 1|)
        beta, slope = p["beta"], p["slope"]
        return lambda g, x: g * slope * torch.exp(-beta * torch.abs(x - 1))
    if kind == "sparse_fast_sigmoid":  # snnTorch SFS: g / (k|x| + 1)^2 * (x > b)
        k, b = p["k"], p["b"]
        return lambda g, x: g / (k * torch.abs(x) + 1.0) ** 2 * (x > b).to(g.dtype)
    if kind == "triangle_slope":  # snnTorch triangular: g * threshold, negated where x >= 0
        threshold = p["threshold"]

        def triangle_slope(g, x):
            grad = g * threshold
            return torch.where(x >= 0, -grad, grad)

        return triangle_slope
    if kind in _SPIKINGJELLY:
        return _spikingjelly_backwards(kind, p)
    if kind == "threshold_exponential":  # Sinabs SingleExponential: w = theta * grad_width, g * (scale/w * e^(-|x|/w))
        width, scale = p["width"], p["scale"]

        def threshold_exponential(g, x, theta):
            w = theta * width
            return g * (scale / w * torch.exp(-torch.abs(x) / w))

        return threshold_exponential
    if kind == "threshold_step_window":  # Rockpool StepPWL: g / theta * (x >= -window)
        window = p["window"]
        return lambda g, x, theta: g / theta * (x >= -window)
    raise ValueError(f"surrogate kind {kind!r} has no PyTorch backward")  # a kind added to the IR only


_SPIKINGJELLY = frozenset({"soft_sign", "scaled_superspike", "nonzero_sign_log_abs", "erf", "piecewise_leaky_relu",
                           "squarewave_fourier", "s2nn", "q_pseudo_spike", "leaky_k_relu", "fake_numerical_gradient",
                           "log_tailed_relu"})  # fmt: skip


def _spikingjelly_backwards(kind: str, p: dict[str, float]) -> Backward:
    """SpikingJelly 2.0.0's other surrogates, each as its ``*_backward`` function computes it."""
    if kind == "soft_sign":  # soft_sign_backward
        alpha = p["alpha"]
        return lambda g, x: g / (2 * alpha * (1 / alpha + x.abs()).pow(2))
    if kind == "scaled_superspike":  # super_spike_backward
        alpha = p["alpha"]
        return lambda g, x: alpha * g / torch.pow(torch.abs(x) + 1.0, 2)
    if kind == "nonzero_sign_log_abs":  # nonzero_sign_log_abs_backward
        alpha = p["alpha"]
        return lambda g, x: g / (1 / alpha + x.abs())
    if kind == "erf":  # erf_backward
        alpha = p["alpha"]
        return lambda g, x: g * (-(x * alpha).pow(2)).exp() * (alpha / math.sqrt(math.pi))
    if kind == "piecewise_leaky_relu":  # piecewise_leaky_relu_backward
        w, c = p["w"], p["c"]

        def piecewise_leaky_relu(g, x):
            inside = x.abs() < w
            return g * x.masked_fill(inside, 1 / (2 * w)).masked_fill(inside.logical_not(), c)

        return piecewise_leaky_relu
    if kind == "squarewave_fourier":  # squarewave_fourier_series.backward
        n, period = int(p["n"]), p["period"]
        omega = math.pi * 2.0 / period

        def squarewave_fourier(g, x):
            total = torch.zeros_like(x)
            for i in range(1, n):
                total += torch.cos((2 * i - 1.0) * omega * x)
            return total * (4.0 / period) * g

        return squarewave_fourier
    if kind == "s2nn":  # s2nn.backward
        alpha, beta = p["alpha"], p["beta"]

        def s2nn(g, x):
            s = torch.sigmoid(alpha * x)
            return torch.where(x < 0.0, alpha * s * (1.0 - s), beta / (x + 1.0)) * g

        return s2nn
    if kind == "q_pseudo_spike":  # q_pseudo_spike.backward
        alpha = p["alpha"]
        return lambda g, x: (1 + 2 / (alpha - 1) * x.abs()).pow(-alpha) * g
    if kind == "leaky_k_relu":  # leaky_k_relu_backward
        leak, k = p["leak"], p["k"]

        def leaky_k_relu(g, x):
            positive = (x >= 0.0).to(x)
            return g * (positive * k + (1.0 - positive) * leak)

        return leaky_k_relu
    if kind == "fake_numerical_gradient":  # fake_numerical_gradient_backward
        alpha = p["alpha"]
        return lambda g, x: g * torch.clamp_max(((x >= 0.0) * 2.0 - 1.0) / x, alpha)
    # log_tailed_relu_backward: 1/x above 1, alpha at or below 0, else 1
    alpha = p["alpha"]

    def log_tailed_relu(g, x):
        grad = torch.where(x > 1.0, 1.0 / x, torch.ones_like(x))
        return g * grad.masked_fill(x <= 0.0, alpha)

    return log_tailed_relu


def _gaussian(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    """Sinabs' ``gaussian``: ``e^(-(x - mu)^2 / (2 sigma^2)) / (sigma sqrt(2 pi))``, sqrt(2 pi) in float32."""
    root = torch.sqrt(2 * torch.tensor(math.pi, device=x.device))
    return torch.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sigma * root)


_BACKWARDS: dict[str, Backward] = {}  # surrogate text -> its backward (a plain dict: torch.compile reads it as is)
_READS_THRESHOLD: dict[str, bool] = {}  # surrogate text -> whether its backward takes theta


def surrogate_backward(surrogate: str) -> Backward:
    """The backward of a surrogate text (``'superspike(k=25.0)'``); made once per text. A kind of
    ``talon.ir.THRESHOLD_KINDS`` takes ``(grad_output, x, theta)``, the others ``(grad_output, x)``."""
    backward = _BACKWARDS.get(surrogate)
    if backward is None:
        kind, params = ir.surrogate_parts(surrogate)
        backward = _BACKWARDS[surrogate] = _backwards(kind, params)
        _READS_THRESHOLD[surrogate] = kind in ir.THRESHOLD_KINDS
    return backward


class SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, inclusive: bool, backward: Backward, theta: torch.Tensor | None) -> torch.Tensor:
        if theta is None:
            ctx.save_for_backward(x)
        else:
            ctx.save_for_backward(x, theta)
        ctx.surrogate_backward = backward
        return (x >= 0 if inclusive else x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return ctx.surrogate_backward(grad_output, *ctx.saved_tensors), None, None, None


def spike(
    x: torch.Tensor, inclusive: bool = False, surrogate: str = ir.DEFAULT_SURROGATE, theta: torch.Tensor | None = None
) -> torch.Tensor:
    """``H(x)`` with the ``surrogate`` gradient (see the module docstring); ``x = v - theta``, and
    ``theta`` (the neuron's threshold, broadcast against ``x``) is what a kind of
    ``talon.ir.THRESHOLD_KINDS`` reads (a constant of the backward; others ignore it)."""
    backward = surrogate_backward(surrogate)
    if not _READS_THRESHOLD[surrogate]:
        return SurrogateSpike.apply(x, inclusive, backward, None)
    if theta is None:
        raise ValueError(f"surrogate {surrogate!r} reads the neuron's threshold: pass spike(x, ..., theta=threshold)")
    return SurrogateSpike.apply(x, inclusive, backward, theta.detach())
