"""Per-step decays as talon time constants, exactly.

talon stores time constants in timesteps and every engine computes ``beta = 1 - 1/tau`` and the
gain ``g = r/tau`` in float64, then casts them once to the compute dtype. A framework that stores
the decay itself (Spyx, snnTorch, a JAX training run) is written as::

    tau = 1 / (1 - beta)      (float64)        r = g * tau

which gives back ``beta`` and ``g`` bit for bit after the cast for every float32 decay in
``[2**-29, 1)`` and ``0`` (checked on 2·10^7 random float32 values; every result is verified
anyway). ``beta = 1`` (no leak) is written as ``tau = 2**30`` — ``1 - 2**-30`` rounds to 1 in
float32, and ``r = g * 2**30`` keeps the gain — because ``tau = inf`` would make the gain 0.
Decays in ``(0, 2**-29)``, above 1, or NaN have no such form and are refused.

The forward-Euler form (``integration='euler'``) stores the rate ``k = 1/tau`` instead; it is
written as ``tau = 1/k`` (float64), ``k = 0`` as ``tau = inf`` (:func:`time_constant_of_rate`).
"""

from __future__ import annotations

import numpy as np

NO_LEAK_TAU = 2.0**30


def time_constant(decay: np.ndarray, gains: tuple[np.ndarray, ...], dtype) -> list[np.ndarray]:
    """Return ``[tau, gain_1 * tau, ...]`` (float64) reproducing ``decay`` and ``gains`` in ``dtype``.

    Raises ``ValueError`` describing the offending value when there is no exact form.
    """
    decay = np.asarray(decay).astype(dtype)
    d64 = decay.astype(np.float64)
    outside = ~((d64 <= 1.0) & ~np.isnan(d64))
    if np.any(outside):
        raise ValueError(
            f"a decay of {d64[outside].reshape(-1)[0]} has no positive time constant (decays must be <= 1)"
        )
    with np.errstate(divide="ignore"):
        tau = np.where(d64 == 1.0, NO_LEAK_TAU, 1.0 / (1.0 - d64))
    scaled = [np.asarray(g).astype(dtype).astype(np.float64) * tau for g in gains]
    back = (1.0 - 1.0 / tau).astype(dtype)
    wrong = back != decay
    if np.any(wrong):
        raise ValueError(
            f"a decay of {d64[wrong].reshape(-1)[0]!r} cannot be written as a time constant that reproduces it "
            "exactly (decays between 0 and 2**-29 cannot); set it to 0 or round it first"
        )
    for g, s in zip(gains, scaled, strict=True):
        if np.any((s / tau).astype(dtype) != np.asarray(g).astype(dtype)):
            raise ValueError("a gain cannot be written as r = g * tau exactly")
    return [tau, *scaled]


def time_constant_of_rate(rate: np.ndarray, dtype) -> np.ndarray:
    """Return ``tau = 1/rate`` (float64) such that ``(1/tau)`` cast to ``dtype`` gives back ``rate``.

    ``rate = 0`` is ``tau = inf`` (no leak). Raises ``ValueError`` for a negative or NaN rate, or
    one whose time constant does not reproduce it exactly.
    """
    rate = np.asarray(rate).astype(dtype)
    r64 = rate.astype(np.float64)
    bad = ~(r64 >= 0.0)
    if np.any(bad):
        raise ValueError(f"a rate k = 1/tau of {r64[bad].reshape(-1)[0]} has no positive time constant")
    with np.errstate(divide="ignore"):
        tau = 1.0 / r64
        back = (1.0 / tau).astype(dtype)
    wrong = back != rate
    if np.any(wrong):
        raise ValueError(f"a rate k = 1/tau of {r64[wrong].reshape(-1)[0]!r} cannot be written as tau exactly")
    return tau
