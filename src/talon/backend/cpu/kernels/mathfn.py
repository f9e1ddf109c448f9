"""Vectorised float64 ``erf`` / ``erfc`` (numpy has none), accurate to ~1e-15 absolute.

* ``|x| < 2``: the Maclaurin series ``erf x = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))``
  (48 terms; the largest term is < 25, so cancellation costs under 3 digits);
* ``|x| >= 2``: the continued fraction
  ``erfc x = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))``,
  evaluated bottom-up with 80 levels.
"""

from __future__ import annotations

import math

import numpy as np

_SERIES_TERMS = 48
_CF_LEVELS = 80
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf_series(x: np.ndarray) -> np.ndarray:
    x2 = x * x
    term = x.copy()  # x^(2n+1) (-1)^n / n!
    total = x.copy()
    for n in range(1, _SERIES_TERMS):
        term = term * (-x2) / n
        total = total + term / (2 * n + 1)
    return _TWO_OVER_SQRT_PI * total


def _erfc_cf(x: np.ndarray) -> np.ndarray:
    """erfc for x >= 2."""
    tail = x.copy()
    for k in range(_CF_LEVELS, 0, -1):
        tail = x + (k / 2.0) / tail
    return np.exp(-x * x) / math.sqrt(math.pi) / tail


def erfc(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 2.0
    out[small] = 1.0 - _erf_series(x[small])
    pos = x >= 2.0
    out[pos] = _erfc_cf(x[pos])
    neg = x <= -2.0
    out[neg] = 2.0 - _erfc_cf(-x[neg])
    return out


def erf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 2.0
    out[small] = _erf_series(x[small])
    big = ~small
    out[big] = np.sign(x[big]) * (1.0 - _erfc_cf(np.abs(x[big])))
    return out
