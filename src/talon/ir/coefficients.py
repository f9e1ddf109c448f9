"""Per-step coefficients of the stateful IR neurons, and their exact inverse (numpy only).

Every engine computes a neuron's per-step coefficients **in float64 from the stored parameters
and casts them once** to its compute dtype (docs/semantics.md §3):

* LIF, LI: ``beta = 1 - 1/tau``, ``g = r/tau``, ``c = v_leak/tau``; with
  ``integration='euler'`` instead ``k = 1/tau``, ``r``, ``v_leak``;
* CubaLIF, CubaLI: the same with ``tau_mem``, plus ``alpha = 1 - 1/tau_syn``, ``gs = w_in/tau_syn``;
* IF, Integrator: ``g = r`` (``beta = 1`` and ``c = 0`` are implicit);

plus ``theta`` (``v_threshold``) and ``v_reset`` for the spiking ones.

An engine whose coefficients were changed (trained in JAX, edited in a PyTorch executor) writes
them back with :func:`fields_from_coefficients`, the inverse in float64::

    tau = 1 / (1 - beta)     r = g * tau     v_leak = c * tau      (LIF, LI; tau_mem for Cuba*)
    tau_syn = 1 / (1 - alpha)     w_in = gs * tau_syn               (CubaLIF, CubaLI)
    r = g                                                           (IF, Integrator)
    tau = 1 / k              r, v_leak as they are                  (LIF, LI with integration 'euler')

checked by :mod:`.timeconst`: recomputing the coefficients the way every engine does must give
back the changed values bit for bit, or :class:`~talon.ir.ConversionError` names the node and the
value. Coefficients that did not change keep the original parameters untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import neurons as nrn
from .errors import ConversionError
from .node import Node
from .timeconst import time_constant, time_constant_of_rate
from .types import Integration

STATEFUL = (nrn.LIF, nrn.IF, nrn.CubaLIF, nrn.LI, nrn.CubaLI, nrn.Integrator)
SPIKING = (nrn.LIF, nrn.IF, nrn.CubaLIF)


def is_euler(node: Node) -> bool:
    """Whether ``node`` is a LIF / LI with ``integration='euler'`` (``u = v + k*((v_leak - v) + r*x)``)."""
    return isinstance(node, (nrn.LIF, nrn.LI)) and node.integration == Integration.EULER


def neuron_coefficients(node: Node, dtype: Any, *, decay_form: bool = False) -> dict[str, np.ndarray]:
    """The per-step coefficients of a stateful node, computed in float64 and cast to ``dtype``.

    Arrays keep the parameters' shape (the layer's shape, or ``(C,)`` per channel). ``decay_form``
    gives ``beta``, ``g``, ``c`` (from ``tau``) for a LIF / LI with ``integration='euler'`` too: the
    fixed-point datapath has the decay order only (docs/backend.md).
    """

    def f64(value) -> np.ndarray:
        return np.asarray(value, dtype=np.float64)

    with np.errstate(divide="ignore", invalid="ignore"):
        if is_euler(node) and not decay_form:
            out = {"k": 1.0 / f64(node.tau), "r": f64(node.r), "v_leak": f64(node.v_leak)}
        elif isinstance(node, (nrn.LIF, nrn.LI)):
            tau = f64(node.tau)
            out = {"beta": 1.0 - 1.0 / tau, "g": f64(node.r) / tau, "c": f64(node.v_leak) / tau}
        elif isinstance(node, (nrn.CubaLIF, nrn.CubaLI)):
            tau_mem, tau_syn = f64(node.tau_mem), f64(node.tau_syn)
            out = {
                "beta": 1.0 - 1.0 / tau_mem,
                "g": f64(node.r) / tau_mem,
                "c": f64(node.v_leak) / tau_mem,
                "alpha": 1.0 - 1.0 / tau_syn,
                "gs": f64(node.w_in) / tau_syn,
            }
        elif isinstance(node, (nrn.IF, nrn.Integrator)):
            out = {"g": f64(node.r)}
        else:
            raise TypeError(f"{type(node).__name__} is not a stateful neuron")
    if isinstance(node, SPIKING):
        out["theta"] = f64(node.v_threshold)
        out["v_reset"] = f64(node.v_reset)
    return {k: np.ascontiguousarray(v.astype(dtype)) for k, v in out.items()}


def check_coefficients_fit(where: str, coefficients: dict[str, np.ndarray], dtype: Any, cast: Any = None) -> None:
    """Refuse coefficients that are finite in float64 but overflow ``dtype`` (``tau = 1e-300`` gives
    ``g = r/tau = 1e300``: ``inf`` in float32, then a NaN membrane that never spikes, silently).

    ``coefficients`` are the float64 values of :func:`neuron_coefficients`. Non-finite *parameters*
    are left to :func:`talon.ir.warn_non_finite` (readers keep such graphs readable); this is the
    rule the CPU backend applies to its own dtype, so every engine refuses the same graphs. ``cast``
    (float64 array -> numpy array of the values in ``dtype``) serves dtypes numpy lacks (bfloat16)."""
    cast = cast or (lambda value: value.astype(np.dtype(dtype)))
    with np.errstate(over="ignore", invalid="ignore"):
        bad = [
            name
            for name, value in coefficients.items()
            if value is not None
            and np.asarray(value).dtype.kind == "f"
            and np.any(np.isfinite(value) & ~np.isfinite(cast(np.asarray(value, np.float64))))
        ]
    if bad:
        raise ConversionError(
            f"{where}: its coefficient(s) {', '.join(bad)} (docs/semantics.md §3) overflow {dtype}; check the "
            "neuron's parameters for extreme values (e.g. r = 1e300 or tau near 0), or compute in a wider dtype"
        )


def keep_dtype(original, new: np.ndarray) -> np.ndarray:
    """``new`` in the dtype of ``original`` when the cast is lossless, else as it is."""
    original = np.asarray(original)
    new = np.asarray(new)
    if original.dtype.kind == "f" and original.dtype != new.dtype:
        cast = new.astype(original.dtype)
        if np.array_equal(cast.astype(new.dtype), new, equal_nan=True):
            return cast
    return new.copy()


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def fields_from_coefficients(node: Node, where: str, new: dict[str, np.ndarray], dtype) -> dict[str, np.ndarray]:
    """The node fields reproducing the coefficients ``new`` (every key of :func:`neuron_coefficients`,
    in ``dtype``) exactly; only the fields of changed coefficients are returned.

    ``where`` names the node in errors (``"node 'lif1'"``). Raises :class:`ConversionError` when a
    changed coefficient has no exact time-constant form.
    """
    old = neuron_coefficients(node, dtype)
    changed = {k for k in new if not _same(new[k], old[k])}
    out: dict[str, np.ndarray] = {}
    if is_euler(node):  # k = 1/tau, r, v_leak: the node keeps integration='euler'
        if "k" in changed:
            try:
                out["tau"] = time_constant_of_rate(new["k"], dtype)
            except ValueError as exc:
                raise ConversionError(f"{where}: the changed parameters have no exact tau: {exc}") from None
        for name in ("r", "v_leak"):
            if name in changed:
                out[name] = keep_dtype(getattr(node, name), new[name])
    elif {"beta", "g", "c"} & changed:
        if isinstance(node, (nrn.IF, nrn.Integrator)):  # g = r
            out["r"] = keep_dtype(node.r, new["g"])
        else:
            tau = "tau" if isinstance(node, (nrn.LIF, nrn.LI)) else "tau_mem"
            inverted = _invert(where, new["beta"], (new["g"], new["c"]), tau, dtype)
            out.update(zip((tau, "r", "v_leak"), inverted, strict=True))
    if {"alpha", "gs"} & changed:
        inverted = _invert(where, new["alpha"], (new["gs"],), "tau_syn", dtype)
        out.update(zip(("tau_syn", "w_in"), inverted, strict=True))
    if "theta" in changed:
        out["v_threshold"] = keep_dtype(node.v_threshold, new["theta"])
    if "v_reset" in changed:
        out["v_reset"] = keep_dtype(node.v_reset, new["v_reset"])
    return out


def _invert(where: str, decay: np.ndarray, gains: tuple[np.ndarray, ...], name: str, dtype) -> list[np.ndarray]:
    try:
        return time_constant(decay, gains, dtype)
    except ValueError as exc:
        raise ConversionError(f"{where}: the changed parameters have no exact {name}: {exc}") from None
