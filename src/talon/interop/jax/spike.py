"""The spike function: an exact threshold comparison forward, a surrogate derivative backward.

Forward, ``spike(u, theta)`` is ``1.0`` where ``u > theta`` (or ``u >= theta``) and ``0.0``
elsewhere, in the dtype of ``u`` — the comparison of ``docs/semantics.md``, made on ``u`` and
``theta`` directly (not on ``u - theta``, which XLA's flush-to-zero could turn into 0 for
values a denormal apart). Backward, the Heaviside step's zero derivative is replaced by a
surrogate ``sigma'(u - theta)``::

    d spike = sigma'(u - theta) * (du - dtheta)

Surrogates (``x = u - theta``):

* ``superspike``: ``1 / (1 + 25 |x|)^2`` (Spyx ``superspike()``, its default);
* ``fast_sigmoid``: the same function (snnTorch ``fast_sigmoid(slope=25)``);
* ``arctan``: ``1 / (pi (1 + (2 pi x)^2))`` (Spyx ``arctan()``);
* ``atan``: ``1 / (1 + (pi x)^2)`` (snnTorch ``atan()``, its default);
* ``triangular``: ``max(0, 1 - |2 x|)`` (Spyx ``triangular()``);
* ``boxcar``: ``0.5`` where ``|x| < 1``, else 0 (Spyx ``boxcar()``);
* ``straight_through``: ``1`` (Spyx ``custom()``).

A callable ``x -> sigma'(x)`` may be given instead of a name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._deps import require

Surrogate = str | Callable[[Any], Any]


def _surrogates(jnp) -> dict[str, Callable[[Any], Any]]:
    return {
        "superspike": lambda x: 1.0 / (1.0 + 25.0 * jnp.abs(x)) ** 2,
        "fast_sigmoid": lambda x: 1.0 / (1.0 + 25.0 * jnp.abs(x)) ** 2,
        "arctan": lambda x: 1.0 / ((1.0 + (2.0 * math.pi * x) ** 2) * math.pi),
        "atan": lambda x: 1.0 / (1.0 + (math.pi * x) ** 2),
        "triangular": lambda x: jnp.maximum(0.0, 1.0 - jnp.abs(2.0 * x)),
        "boxcar": lambda x: jnp.where(jnp.abs(x) < 1.0, 0.5, 0.0).astype(x.dtype),
        "straight_through": lambda x: jnp.ones_like(x),
    }


SURROGATES = ("superspike", "fast_sigmoid", "arctan", "atan", "triangular", "boxcar", "straight_through")


def surrogate_derivative(surrogate: Surrogate) -> Callable[[Any], Any]:
    """Return ``sigma'`` for a surrogate name (see the table above) or a callable."""
    if callable(surrogate):
        return surrogate
    table = _surrogates(require("jax.numpy"))
    try:
        return table[surrogate]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown surrogate {surrogate!r}; choose one of {', '.join(SURROGATES)} or pass a callable x -> sigma'(x)"
        ) from None


def make_spike(comparison: str, surrogate: Surrogate) -> Callable[[Any, Any], Any]:
    """Return ``spike(u, theta)`` for ``comparison`` (``'>'`` or ``'>='``) with the given surrogate."""
    jax = require("jax")
    derivative = surrogate_derivative(surrogate)
    if comparison not in (">", ">="):
        raise ValueError(f"comparison must be '>' or '>=', got {comparison!r}")
    strict = comparison == ">"

    @jax.custom_jvp
    def spike(u, theta):
        return ((u > theta) if strict else (u >= theta)).astype(u.dtype)

    @spike.defjvp
    def _spike_jvp(primals, tangents):
        u, theta = primals
        du, dtheta = tangents
        slope = derivative(u - theta).astype(u.dtype)
        return spike(u, theta), slope * (du - dtheta)

    return spike
