"""The surrogate gradient of a spiking neuron: the ``surrogate`` field of LIF, IF and CubaLIF.

Training only: the forward spike is always the exact threshold comparison (docs/semantics.md);
backward, the Heaviside step's zero derivative is replaced by ``sigma'(x)`` at ``x = v - theta``.
The field is a canonical string, ``kind(param=value, ...)`` (``'atan(alpha=2.0)'``), or the bare
kind for a kind without parameters (``'straight_through'``). Kinds (``x = v - theta``)::

    atan(alpha)          (alpha/2) / (1 + (pi/2*alpha*x)^2)       snnTorch atan (its default, alpha = 2)
    arctan(k)            1 / ((1 + (k*pi*x)^2) * pi)              Spyx arctan
    superspike(k)        1 / (1 + k*|x|)^2                        snnTorch fast_sigmoid(slope=k), Spyx
                                                                  superspike(k), Norse 'super' (k = 1)
    sigmoid(slope)       slope*e^(-slope*x) / (e^(-slope*x) + 1)^2    snnTorch sigmoid
    triangle(alpha, k)   alpha * max(0, 1 - |k*x|)                Norse 'triangle' (k = 1), Spyx triangular (alpha = 1)
    boxcar(width, height)  height where |x| < width/2, else 0     Spyx boxcar
    tanh(k)              4 / (e^(-k*x) + e^(k*x))^2               Spyx tanh, Norse 'tanh' (= 1 - tanh(k*x)^2)
    erfc(k)              2*e^(-(k*x)^2) / sqrt(pi)                Norse 'heavi_erfc'
    straight_through     1                                        snnTorch straight_through_estimator
    heaviside            1 where x > 0, else 0                    snnTorch heaviside
    linear               x                                        Spyx custom() with its default backward
    none                 0                                        Norse 'heaviside' (no gradient)

Those of SpikingJelly, Sinabs and Rockpool (the first three: their NIR importers' defaults,
``talon.interop.nir.surrogate_conventions``) and snnTorch's others; ``G(x; m, s) = e^(-(x-m)^2/(2 s^2))
/ (s*sqrt(2 pi))``::

    logistic(alpha)                  alpha*s*(1 - s), s = 1/(1 + e^(-alpha*x))
        SpikingJelly Sigmoid (alpha = 4): sigmoid(slope=alpha) without snnTorch's NaN far below theta
    single_exponential(width, scale) scale/width * e^(-|x|/width)
        Sinabs SingleExponential (width = its grad_width * theta); SpikingJelly PiecewiseExp
    step_window(window, threshold)   1/threshold where x >= -window, else 0
        Rockpool StepPWL (window 0.5), Sinabs Heaviside (window 1); threshold: the neuron's
    gaussian(mu, sigma, scale)       scale*G(x; mu, sigma)                              Sinabs Gaussian
    multi_gaussian(mu, sigma, h, s, scale)
        scale*((1 + h)*G(x; mu, sigma) - h*G(x; sigma, s*sigma) - h*G(x; -sigma, s*sigma))   Sinabs MultiGaussian
    periodic_exponential(width, scale, threshold, gain, max_spikes)
        scale*e^(-|d|/width): d = x below the threshold, else gain*(v - k*threshold) for the multiple
        k*threshold nearest to v = x + threshold (1 <= k <= max_spikes, 0: no limit);
        Sinabs PeriodicExponential (gain 2), Rockpool's (scale 1/threshold, max_spikes 2^16)
    spike_rate_escape(beta, slope)   slope*e^(-beta*|x - 1|)                            snnTorch spike_rate_escape
    sparse_fast_sigmoid(k, b)        1/(1 + k*|x|)^2 where x > b, else 0                snnTorch SFS(slope=k, B=b)
    triangle_slope(threshold)        threshold where x < 0, -threshold where x >= 0
        snnTorch triangular (the slope of a triangle, not the triangle)

SpikingJelly's others (``surrogate.py`` of SpikingJelly 2.0.0; each its class with the same parameters)::

    soft_sign(alpha)                 1 / (2*alpha*(1/alpha + |x|)^2)                   SoftSign (alpha > 0)
    scaled_superspike(alpha)         alpha / (|x| + 1)^2                                SuperSpike
    nonzero_sign_log_abs(alpha)      1 / (1/alpha + |x|)                                NonzeroSignLogAbs
    erf(alpha)                       e^(-(alpha*x)^2) * alpha/sqrt(pi)                  Erf (erf(2) = erfc(2))
    piecewise_leaky_relu(w, c)       1/(2w) where |x| < w, else c                       PiecewiseLeakyReLU (w > 0)
    squarewave_fourier(n, period)    4/period * sum_{i=1}^{n-1} cos((2i - 1)*2*pi/period*x)
        SquarewaveFourierSeries(n, T_period) (n a whole number >= 1, period > 0)
    s2nn(alpha, beta)                alpha*s*(1 - s) (s = 1/(1 + e^(-alpha*x))) where x < 0, else beta/(x + 1)   S2NN
    q_pseudo_spike(alpha)            (1 + 2/(alpha - 1)*|x|)^(-alpha)                   QPseudoSpike (alpha > 1)
    leaky_k_relu(leak, k)            k where x >= 0, else leak                          LeakyKReLU
    fake_numerical_gradient(alpha)   min(sign(x)/x, alpha), sign(x) = 1 where x >= 0, else -1
        FakeNumericalGradient (-inf at x = -0.0, as SpikingJelly)
    log_tailed_relu(alpha)           1/x where x > 1, alpha where x <= 0, else 1        LogTailedReLU

Kinds that read the neuron's own threshold ``theta`` (:data:`THRESHOLD_KINDS`; per neuron, the
node's ``v_threshold`` or a Threshold's ``threshold``, a constant of the backward)::

    threshold_exponential(width, scale)  scale/w * e^(-|x|/w), w = theta*width
        Sinabs SingleExponential(grad_width=width, grad_scale=scale) (its layers' default)
    threshold_step_window(window)        1/theta where x >= -window, else 0
        Rockpool StepPWL (window 0.5, its LIFTorch's default), Sinabs Heaviside (window 1)

On a node whose thresholds are one value they are ``single_exponential(width=theta*width, scale)``
and ``step_window(window, threshold=theta)`` (:func:`resolve_surrogate`); with per-neuron
thresholds only these state what Sinabs and Rockpool compute.

``'atan(alpha=2.0)'`` is the default (:data:`DEFAULT_SURROGATE`) and is left out of ``.t1c`` files,
so a graph that does not state another surrogate is stored as before. Aliases accepted on input:
``fast_sigmoid(slope)`` is ``superspike(k=slope)``, ``triangular(k)`` (default ``k = 2``) is
``triangle(alpha=1.0, k=k)`` (Spyx's; snnTorch's ``triangular`` is ``triangle_slope``),
``straight_through_estimator`` is ``straight_through``, ``SFS(slope, B)`` is
``sparse_fast_sigmoid(k=slope, b=B)``.

Every engine computes the same formula (``talon.bridge.spike``, ``talon.interop.jax.spike``); the
importers recognise their framework's surrogate and check it against these formulas on probe points.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

#: kind -> its parameters with their defaults, in canonical order
SURROGATE_KINDS: dict[str, tuple[tuple[str, float], ...]] = {
    "atan": (("alpha", 2.0),),
    "arctan": (("k", 2.0),),
    "superspike": (("k", 25.0),),
    "sigmoid": (("slope", 25.0),),
    "triangle": (("alpha", 1.0), ("k", 1.0)),
    "boxcar": (("width", 2.0), ("height", 0.5)),
    "tanh": (("k", 1.0),),
    "erfc": (("k", 1.0),),
    "straight_through": (),
    "heaviside": (),
    "linear": (),
    "none": (),
    "logistic": (("alpha", 4.0),),
    "single_exponential": (("width", 0.5), ("scale", 1.0)),
    "step_window": (("window", 0.5), ("threshold", 1.0)),
    "gaussian": (("mu", 0.0), ("sigma", 0.5), ("scale", 1.0)),
    "multi_gaussian": (("mu", 0.0), ("sigma", 0.5), ("h", 0.15), ("s", 6.0), ("scale", 1.0)),
    "periodic_exponential": (("width", 0.5), ("scale", 1.0), ("threshold", 1.0), ("gain", 1.0), ("max_spikes", 0.0)),
    "spike_rate_escape": (("beta", 1.0), ("slope", 25.0)),
    "sparse_fast_sigmoid": (("k", 25.0), ("b", 1.0)),
    "triangle_slope": (("threshold", 1.0),),
    "soft_sign": (("alpha", 2.0),),
    "scaled_superspike": (("alpha", 1.0),),
    "nonzero_sign_log_abs": (("alpha", 1.0),),
    "erf": (("alpha", 2.0),),
    "piecewise_leaky_relu": (("w", 1.0), ("c", 0.01)),
    "squarewave_fourier": (("n", 2.0), ("period", 8.0)),
    "s2nn": (("alpha", 4.0), ("beta", 1.0)),
    "q_pseudo_spike": (("alpha", 2.0),),
    "leaky_k_relu": (("leak", 0.0), ("k", 1.0)),
    "fake_numerical_gradient": (("alpha", 0.3),),
    "log_tailed_relu": (("alpha", 0.0),),
    "threshold_exponential": (("width", 0.5), ("scale", 1.0)),
    "threshold_step_window": (("window", 0.5),),
}

# kind -> (what its parameters must satisfy, in words; the check): where the formula needs it
_DOMAINS: dict[str, tuple[str, Any]] = {
    "soft_sign": ("alpha > 0", lambda p: p["alpha"] > 0),
    "piecewise_leaky_relu": ("w > 0", lambda p: p["w"] > 0),
    "squarewave_fourier": ("n a whole number >= 1 and period > 0",
                           lambda p: p["n"] >= 1 and p["n"].is_integer() and p["period"] > 0),
    "q_pseudo_spike": ("alpha > 1", lambda p: p["alpha"] > 1),
}  # fmt: skip

#: kinds whose derivative reads the neuron's threshold: ``sigma'(x, theta)``
THRESHOLD_KINDS = frozenset({"threshold_exponential", "threshold_step_window"})

# alias -> (kind, {alias parameter: kind parameter}, {kind parameter: value fixed or defaulted by the alias})
_ALIASES: dict[str, tuple[str, dict[str, str], dict[str, float]]] = {
    "fast_sigmoid": ("superspike", {"slope": "k"}, {}),
    "triangular": ("triangle", {"k": "k"}, {"alpha": 1.0, "k": 2.0}),
    "straight_through_estimator": ("straight_through", {}, {}),
    "sfs": ("sparse_fast_sigmoid", {"slope": "k", "B": "b"}, {}),
}

DEFAULT_SURROGATE = "atan(alpha=2.0)"

_TEXT = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def format_surrogate(kind: str, **params: Any) -> str:
    """The canonical text of ``kind`` with ``params`` (missing ones at their defaults)."""
    return canonical_surrogate(kind if not params else f"{kind}({', '.join(f'{k}={v!r}' for k, v in params.items())})")


def surrogate_parts(value: str) -> tuple[str, dict[str, float]]:
    """``(kind, {param: value})`` of a surrogate text (aliases resolved, defaults filled in)."""
    return _parse(value, "surrogate")


def reads_threshold(surrogate: str) -> bool:
    """Whether the surrogate's derivative reads the neuron's threshold (:data:`THRESHOLD_KINDS`)."""
    return _parse(surrogate, "surrogate")[0] in THRESHOLD_KINDS


def resolve_surrogate(surrogate: str, threshold: Any) -> str:
    """``surrogate`` on a neuron with ``threshold`` (array): a kind of :data:`THRESHOLD_KINDS` whose
    thresholds are one value ``theta`` becomes the kind with that ``theta`` in its parameters
    (``threshold_step_window(window=0.5)`` at 0.8 -> ``step_window(window=0.5, threshold=0.8)``);
    any other surrogate, or per-neuron thresholds, stay as they are."""
    kind, p = _parse(surrogate, "surrogate")
    values = np.unique(np.asarray(threshold, np.float64))
    if kind not in THRESHOLD_KINDS or values.size != 1:
        return canonical_surrogate(surrogate)
    theta = float(values[0])
    if kind == "threshold_exponential":
        return format_surrogate("single_exponential", width=theta * p["width"], scale=p["scale"])
    return format_surrogate("step_window", window=p["window"], threshold=theta)


# the canonical form of each valid text seen (a function of the text alone: every neuron node asks)
_CANONICAL: dict[str, str] = {}
_CANONICAL_LIMIT = 1024


def canonical_surrogate(value: Any, where: str = "surrogate") -> str:
    """Return ``value`` (a surrogate text, see the module docstring) in canonical form, or raise a
    ValueError naming ``where`` and the kinds."""
    if type(value) is str and value in _CANONICAL:
        return _CANONICAL[value]
    kind, params = _parse(value, where)
    text = kind if not params else f"{kind}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
    if type(value) is str and len(_CANONICAL) < _CANONICAL_LIMIT:
        _CANONICAL[value] = text
    return text


def _parse(value: Any, where: str) -> tuple[str, dict[str, float]]:
    if not isinstance(value, str):
        raise ValueError(f"{where}: surrogate must be a string such as {DEFAULT_SURROGATE!r}, got {value!r}")
    match = _TEXT.match(value)
    if match is None:
        raise ValueError(f"{where}: surrogate={value!r} is not of the form kind(param=value, ...); {_choices()}")
    name, body = match.group(1).lower(), match.group(2)
    given = _arguments(body, value, where)
    if name in _ALIASES:
        kind, renames, fixed = _ALIASES[name]
        unknown = sorted(set(given) - set(renames))
        if unknown:
            raise ValueError(f"{where}: surrogate {name!r} takes {sorted(renames) or 'no parameters'}, got {unknown}")
        given = {**fixed, **{renames[k]: v for k, v in given.items()}}
        name = kind
    if name not in SURROGATE_KINDS:
        raise ValueError(f"{where}: surrogate kind {name!r} is unknown; {_choices()}")
    names = [p for p, _ in SURROGATE_KINDS[name]]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"{where}: surrogate {name!r} takes {names or 'no parameters'}, got {unknown}")
    params = {p: given.get(p, default) for p, default in SURROGATE_KINDS[name]}
    if name in _DOMAINS and not _DOMAINS[name][1](params):
        raise ValueError(f"{where}: surrogate={value!r}: {name} needs {_DOMAINS[name][0]}")
    return name, params


def _arguments(body: str | None, value: str, where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    if body is None or not body.strip():
        return out
    for item in body.split(","):
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"{where}: surrogate={value!r}: parameters are written name=value, got {item.strip()!r}")
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{where}: surrogate={value!r}: {key} must be a number, got {text.strip()!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{where}: surrogate={value!r}: {key} must be finite")
        if key in out:
            raise ValueError(f"{where}: surrogate={value!r}: {key} is given twice")
        out[key] = number
    return out


def _choices() -> str:
    kinds = ", ".join(
        f"{k}({', '.join(p for p, _ in params)})" if params else k for k, params in SURROGATE_KINDS.items()
    )
    return f"kinds are {kinds}"
