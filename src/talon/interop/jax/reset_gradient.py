"""How ``JaxGraph`` differentiates the spike in a reset: the node's ``reset_gradient`` (docs/semantics.md §3.1).

The forward is the same either way; only the derivative of ``R(v, z)`` with respect to the spike
``z`` that drives it changes:

* ``'detached'`` (snnTorch's): ``z`` is a constant (``stop_gradient``), so
  ``dR = dv`` (subtract: ``dv - z*dtheta``; value: ``where(z, dv_reset, dv)``);
* ``'through'`` (Spyx's, Norse's): ``z`` carries its surrogate derivative, and ``R`` is
  differentiated as the expression the frameworks write: ``v - z*theta`` (subtract:
  ``dR = dv - theta*dz - z*dtheta``) and ``(1 - z)*v + z*v_reset`` (value:
  ``dR = where(z, dv_reset, dv) + (v_reset - v)*dz``).

The value reset's forward stays ``where(z > 0, v_reset, v)`` in both (bit for bit what every
engine computes); with ``'through'`` a ``custom_jvp`` supplies the derivative above.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from ... import ir
from ...ir.types import coerce_enum


def convention(node: ir.Node, override: ir.ResetGradient | None) -> ir.ResetGradient:
    """The convention a spiking node is differentiated with: ``override`` when given, else its own."""
    return override if override is not None else node.reset_gradient


def check_override(value) -> ir.ResetGradient | None:
    """``JaxGraph(reset_gradient=...)``: None (each node's own) or one of ``'detached'``, ``'through'``."""
    if value is None:
        return None
    return coerce_enum(ir.ResetGradient, value, "reset_gradient", "JaxGraph")


@jax.custom_jvp
def _value_reset_through(v, z, v_reset):
    return jnp.where(z > 0, v_reset, v)


@_value_reset_through.defjvp
def _value_reset_through_jvp(primals, tangents):
    v, z, v_reset = primals
    dv, dz, dv_reset = tangents
    out = _value_reset_through(v, z, v_reset)
    return out, jnp.where(z > 0, dv_reset, dv) + (v_reset - v) * dz


def reset_rule(mode: str, through: bool) -> tuple[Callable, Callable]:
    """``(hold, reset)`` for a node with ``reset_mode`` ``mode``: ``hold(z)`` is the spike as the
    reset sees it (``z`` itself, or a constant) and ``reset(v, z, k)`` applies ``R`` with the
    coefficients ``k`` (``theta``, ``v_reset``)."""

    def hold(z):
        return z if through else lax.stop_gradient(z)

    def reset(v, z, k):
        if mode == "value":
            if through:
                return _value_reset_through(v, z, k["v_reset"])
            return jnp.where(z > 0, k["v_reset"], v)
        if mode == "subtract":
            return v - z * k["theta"]
        return v

    return hold, reset
