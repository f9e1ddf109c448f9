"""Stateful nodes in JAX: per-step coefficients and the update of ``docs/semantics.md`` §3.

The coefficients are computed **in float64 with numpy from the stored parameters and cast once**
to the compute dtype (:func:`coefficients`, shared: :mod:`talon.ir.coefficients`); they are the
engine's trainable neuron parameters:

* LIF, LI: ``beta = 1 - 1/tau``, ``g = r/tau``, ``c = v_leak/tau``; with
  ``integration='euler'`` instead ``k = 1/tau``, ``r``, ``v_leak``;
* CubaLIF, CubaLI: the same with ``tau_mem``, plus ``alpha = 1 - 1/tau_syn``, ``gs = w_in/tau_syn``;
* IF, Integrator: ``g = r`` (``beta = 1`` and ``c = 0`` are implicit);

plus ``theta`` (``v_threshold``) and ``v_reset`` for the spiking ones. One step of a spiking node,
in exactly this order (``cmp`` is the spike function of :mod:`.spike`)::

    z_prev = cmp(v, theta)
    if reset_timing == 'delayed_pre_decay': v = R(v, z_prev)
    i = alpha*i + gs*x;  x = i                      # CubaLIF ('input_first': alpha*(i + gs*x))
    u = (beta*v + g*x) + c                          # integration 'decay'
    u = v + k*((v_leak - v) + r*x)                  # integration 'euler' (LIF, LI)
    if reset_timing in ('delayed', 'snntorch_immediate'): u = R(u, z_prev)
    z = cmp(u, theta)
    if reset_timing == 'immediate':         u = R(u, z)
    if reset_timing == 'snntorch_immediate': u = u - (z - z_prev)*theta   # subtract only
    v = u;  output = z if spike_timing == 'post' else z_prev

``spike_mode='multi'`` (immediate subtract reset only): ``z = floor(u / theta)`` where ``u >= theta``,
else 0, before the reset ``u - rounded(z*theta)`` (the gradient goes straight through the first
spike: the extra spikes are a stopped gradient). ``v_min`` (a constant, not a trainable
coefficient): after the reset, ``u = max(u - v_min, 0) + v_min``.

with ``R(v, z) = where(z, v_reset, v)`` (value), ``v - z*theta`` (subtract) or ``v`` (none).

Gradients through the reset follow the node's ``reset_gradient`` (or ``JaxGraph``'s override),
as the PyTorch executor does (``docs/semantics.md`` §3.1, :mod:`.reset_gradient`): with
``'detached'`` (snnTorch's) the spike in ``R`` is a constant (``stop_gradient``; a delayed reset is
snnTorch's detached ``reset``, an immediate one is detached too); with ``'through'`` (Spyx's,
Norse's) it carries its surrogate. The output spike — ``z``, or ``z_prev`` with
``spike_timing='pre'`` — always carries the surrogate, and so does ``z`` in the same-step
correction of ``'snntorch_immediate'`` (snnTorch's ``mem - (spk - reset)*theta``).

Every product that feeds a sum goes through :func:`rounded`: XLA on CPU fuses ``a*b + c`` into
one fused multiply-add (rounding once instead of twice), which would make the JAX engine differ
from the other engines in the last bit. ``rounded(a*b)`` is the product rounded on its own.

A coefficient given as None (``g`` of exactly 1, ``c`` of exactly ``+0.0`` on every neuron, see
:mod:`.spread`) leaves its product or sum out, with the same bits (:func:`_decay`).
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import numpy as np
from jax import lax

from ... import ir

# the coefficients are computed alike by every engine (talon.ir.coefficients); re-exported here
from ...ir.coefficients import SPIKING, STATEFUL, is_euler  # noqa: F401
from ...ir.coefficients import neuron_coefficients as coefficients  # noqa: F401
from .reset_gradient import convention, reset_rule


def state_keys(node: ir.Node) -> tuple[str, ...]:
    """Names of the state variables of a stateful node (``v``, and ``i`` for the current-based ones)."""
    return ("v", "i") if isinstance(node, (ir.CubaLIF, ir.CubaLI)) else ("v",)


def per_neuron(param, ndim: int):
    """Reshape a per-channel ``(C,)`` parameter to broadcast over ``[B, C, *spatial]`` (rank ``ndim``).

    Layer-shaped and scalar parameters broadcast as they are.
    """
    if param.ndim == 1 and ndim > 2:
        return param.reshape(param.shape + (1,) * (ndim - 2))
    return param


def per_neuron_channels_last(param, ndim: int):
    """:func:`per_neuron` for a channels-last layer ``[B, *spatial, C]``: a per-channel ``(C,)``
    or scalar parameter broadcasts as it is, a layer-shaped one is given channels-last already
    (:func:`.channels_last.coefficient_axes`)."""
    return param


def exact_zero(dtype):
    """A ``+0.0`` that XLA cannot see through (an optimization barrier keeps it from folding ``p + 0``)."""
    return lax.optimization_barrier(jnp.zeros((), dtype))


def rounded(product, zero):
    """``product`` rounded to the compute dtype before any sum it feeds.

    With ``zero`` from :func:`exact_zero`, LLVM turns ``a*b + 0`` into ``fma(a, b, 0)`` — the
    correctly rounded product — and the sum that follows is no longer fused with the
    multiplication. (The sign of a zero product may become ``+0``; values are unchanged.)
    """
    return product + zero


def _input_term(g, x, zero):
    """``rounded(g*x)``. ``g`` None stands for a ``g`` of exactly 1 on every neuron (see
    :mod:`.spread`): ``1*x == x`` for every float, so the term is ``rounded(x)`` without the product."""
    return rounded(x, zero) if g is None else rounded(g * x, zero)


def _decay(k: dict, v, x, zero, plain: bool = False):
    """``(rounded(beta*v) + rounded(g*x)) + c`` in exactly this order.

    With ``g`` None and ``x`` ``plain`` (never a multiplication, :mod:`.products`) the term is
    ``x`` itself: ``rounded(x)`` only turns a ``-0.0`` into ``+0.0``, which ``rounded(beta*v)``
    (never ``-0.0``) + ``x`` does too.

    ``c`` None stands for a ``c`` of exactly ``+0.0`` on every neuron (see :mod:`.spread`), and
    the sum is then left as it is: both its terms are ``p + (+0.0)``, never ``-0.0``, so their
    sum is never ``-0.0`` either (a zero sum rounds to ``+0.0``), and ``s + (+0.0) == s`` bit for
    bit for every other ``s``.
    """
    s = rounded(k["beta"] * v, zero) + (x if plain and k["g"] is None else _input_term(k["g"], x, zero))
    return s if k["c"] is None else s + k["c"]


def _expand_all(params: dict, expand, ndim: int) -> dict:
    return {name: None if p is None else expand(p, ndim) for name, p in params.items()}


def _multi_spike_count(z, u, theta, limit):
    """``floor(u / theta)`` where the comparison ``z`` fired, else 0, at most ``limit``
    (``max_spikes``); the gradient is ``z``'s."""
    n = jnp.where(lax.stop_gradient(z) > 0, jnp.floor(lax.stop_gradient(u) / theta), jnp.zeros((), u.dtype))
    if limit is not None:
        n = jnp.minimum(n, jnp.asarray(limit, u.dtype))
    return z + lax.stop_gradient(n - z)


def _euler(k: dict, v, x, zero):
    """``v + k*((v_leak - v) + r*x)`` in exactly this order, each product rounded on its own."""
    return v + rounded(k["k"] * ((k["v_leak"] - v) + rounded(k["r"] * x, zero)), zero)


def make_step(
    node: ir.Node,
    spike: Callable | None,
    channels_last: bool = False,
    plain: bool = False,
    reset_gradient: ir.ResetGradient | None = None,
) -> Callable:
    """Return ``step(params, state, x, zero) -> (output, new_state)`` for one stateful node.

    ``params`` are this node's coefficients (see :func:`coefficients`), ``state`` the dict of
    :func:`state_keys` arrays ``[B, *shape]``, ``zero`` a :func:`exact_zero` (made once per
    compiled function, outside any loop, so that it does not split XLA's fusions).
    ``spike`` is the spike function (spiking nodes). With ``channels_last`` the layer is
    ``[B, *spatial, C]`` and its layer-shaped coefficients come channels-last too (the same
    arithmetic on every neuron, only stored in another order). ``plain``: the input ``x`` is
    never a multiplication XLA could fuse into the update's sums (:mod:`.products`).

    A spiking node whose output is its previous spike (``spike_timing='pre'``; ``step.defers``
    is then true) also takes ``defer=True``: ``step(params, state, x, zero, defer=True)`` returns
    ``(output, update)``, ``update(zero) -> new_state`` making the same update with the zero given
    then (:mod:`.deferred`).
    ``reset_gradient`` overrides the node's own convention (:mod:`.reset_gradient`).
    """
    cuba = isinstance(node, (ir.CubaLIF, ir.CubaLI))
    euler = is_euler(node)
    expand = per_neuron_channels_last if channels_last else per_neuron

    if isinstance(node, ir.Integrator):

        def integrator_step(params, state, x, zero):
            g = params["g"]
            v = state["v"] + _input_term(None if g is None else expand(g, x.ndim), x, zero)
            return v, {"v": v}

        return integrator_step

    if isinstance(node, (ir.LI, ir.CubaLI)):

        def li_step(params, state, x, zero):
            k = _expand_all(params, expand, x.ndim)
            new = {}
            if cuba:
                x = rounded(k["alpha"] * state["i"], zero) + rounded(k["gs"] * x, zero)
                new["i"] = x
            v = _euler(k, state["v"], x, zero) if euler else _decay(k, state["v"], x, zero, plain or cuba)
            new["v"] = v
            return v, new

        return li_step

    mode = node.reset_mode.value
    timing = node.reset_timing.value
    post = node.spike_timing.value == "post"
    leaky = not isinstance(node, ir.IF)
    multi = node.multi_spike
    limit = node.max_spikes
    v_min = None if node.v_min is None else np.asarray(node.v_min, np.float64)
    if channels_last and v_min is not None and v_min.ndim == len(node.output_shape):
        v_min = np.moveaxis(v_min, 0, -1)
    input_first = getattr(node, "synapse", None) == ir.SynapseOrder.INPUT_FIRST
    hold, reset = reset_rule(mode, convention(node, reset_gradient) == ir.ResetGradient.THROUGH)

    def spiking_step(params, state, x, zero, defer: bool = False):
        k = _expand_all(params, expand, x.ndim)
        v = state["v"]
        z_prev = spike(v, k["theta"])
        z_reset = hold(z_prev)  # the spike as the delayed reset sees it (a constant if 'detached')

        def update(zero):  # the new state (and this step's spike) from v, x and the rounding zero
            v = state["v"]
            if timing == "delayed_pre_decay":
                v = reset(v, z_reset, k)
            new = {}
            x_in = x
            if input_first:  # i = alpha*(i + gs*x)
                x_in = k["alpha"] * (state["i"] + rounded(k["gs"] * x_in, zero))
                new["i"] = x_in
            elif cuba:
                x_in = rounded(k["alpha"] * state["i"], zero) + rounded(k["gs"] * x_in, zero)
                new["i"] = x_in
            if euler:
                u = _euler(k, v, x_in, zero)
            elif leaky:  # after a synapse i = alpha*i + gs*x, x is a sum
                u = _decay(k, v, x_in, zero, (plain or cuba) and not input_first)
            else:  # IF: beta = 1 and c = 0, so u = (1*v + g*x) + 0 == v + g*x (up to the sign of a zero)
                u = v + _input_term(k["g"], x_in, zero)
            if timing in ("delayed", "snntorch_immediate"):
                u = reset(u, z_reset, k)
            z = spike(u, k["theta"])
            if multi:
                z = _multi_spike_count(z, u, k["theta"], limit)
                u = u - rounded(hold(z) * k["theta"], zero)
            elif timing == "immediate":
                u = reset(u, hold(z), k)
            elif timing == "snntorch_immediate":  # subtract only: correct the delayed reset to this step's spike
                u = u - (z - z_reset) * k["theta"]  # snnTorch's `mem - (spk - reset)*theta`: spk carries a gradient
            if v_min is not None:  # the floor (immediate reset only), after the reset
                floor = expand(jnp.asarray(v_min, u.dtype), x.ndim)
                u = jnp.maximum(u - floor, jnp.zeros((), u.dtype)) + floor
            new["v"] = u
            return z, new

        if defer:  # the output is z_prev: the update can be made later (see .deferred)
            return z_prev, lambda zero: update(zero)[1]
        z, new = update(zero)
        return (z if post else z_prev), new

    spiking_step.defers = not post  # its output does not depend on this step's update
    return spiking_step
