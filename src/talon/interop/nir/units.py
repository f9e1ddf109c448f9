"""Continuous-time NIR parameters <-> discrete talon parameters.

NIR states its neurons as ODEs in seconds; talon counts timesteps (``dt = 1``). Forward Euler of
the NIR equations with step ``dt`` is *exactly* talon's update (``docs/semantics.md`` §3) when:

* LIF, LI: ``tau' = tau / dt``. Euler gives ``v + dt/tau·(v_leak − v + r·I)`` =
  ``(1 − 1/tau')·v + (r/tau')·I + v_leak/tau'``, talon's ``β·v + g·x + c``.
* CubaLI, CubaLIF: ``tau_syn`` and ``tau_mem`` divided by ``dt`` (the same identity for the current,
  ``i' = (1 − 1/tau_syn')·i + (w_in/tau_syn')·x``, and the membrane, which sees the new current).
* IF, I: ``r' = r · dt`` (Euler ``v + dt·r·I``; talon's gain is ``r``).
* Delay: ``steps = delay / dt`` (it must be whole).
* ``r``, ``v_leak``, ``w_in`` of LIF, LI, CubaLI, CubaLIF, and thresholds and resets: unchanged (the
  gains ``r/tau'``, ``v_leak/tau'``, ``w_in/tau_syn'`` already carry ``dt``).

Values keep their dtype (float32 stays float32; integers become float64); the product or quotient
is computed in float64 and rounded once. Rounding makes the two directions not always exact
inverses, so the callers keep the value they started from (see ``importer`` / ``exporter``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from talon import ir
from talon.ir.graph import walk

from ._common import NIRFormatError, ShortTimeConstantWarning, float_dtype

SAME, TIME, RATE = "same", "time", "rate"

# NIR node type -> {NIR field: (talon field, kind)}; the talon class is in NEURON_CLASSES.
NEURON_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "LIF": {
        "tau": ("tau", TIME),
        "r": ("r", SAME),
        "v_leak": ("v_leak", SAME),
        "v_threshold": ("v_threshold", SAME),
        "v_reset": ("v_reset", SAME),
    },
    "LI": {"tau": ("tau", TIME), "r": ("r", SAME), "v_leak": ("v_leak", SAME)},
    "IF": {"r": ("r", RATE), "v_threshold": ("v_threshold", SAME), "v_reset": ("v_reset", SAME)},
    "I": {"r": ("r", RATE)},
    "CubaLI": {
        "tau_syn": ("tau_syn", TIME),
        "tau_mem": ("tau_mem", TIME),
        "r": ("r", SAME),
        "v_leak": ("v_leak", SAME),
        "w_in": ("w_in", SAME),
    },
    "CubaLIF": {
        "tau_syn": ("tau_syn", TIME),
        "tau_mem": ("tau_mem", TIME),
        "r": ("r", SAME),
        "v_leak": ("v_leak", SAME),
        "v_threshold": ("v_threshold", SAME),
        "v_reset": ("v_reset", SAME),
        "w_in": ("w_in", SAME),
    },
    "Threshold": {"threshold": ("threshold", SAME)},
}

# NIR fields that may be absent from a file, with the value NIR assumes.
OPTIONAL_NEURON_FIELDS = {"v_reset": 0.0, "w_in": 1.0}


def _scaled(values, dt: float, op: Callable) -> np.ndarray:
    arr = np.asarray(values)
    return np.asarray(op(arr.astype(np.float64), dt)).astype(float_dtype(arr))


def to_talon(values, kind: str, dt: float) -> np.ndarray:
    """Convert a NIR parameter (seconds) to talon's (timesteps)."""
    if kind == TIME:
        return _scaled(values, dt, np.divide)
    if kind == RATE:
        return _scaled(values, dt, np.multiply)
    return np.asarray(values)


def to_nir(values, kind: str, dt: float) -> np.ndarray:
    """Convert a talon parameter (timesteps) to NIR's (seconds)."""
    if kind == TIME:
        return _scaled(values, dt, np.multiply)
    if kind == RATE:
        return _scaled(values, dt, np.divide)
    return np.asarray(values)


TIME_CONSTANTS = ("tau", "tau_syn", "tau_mem")  # in timesteps once converted


def warn_short_time_constants(graph: ir.Graph, dt: float, where: str, stacklevel: int) -> None:
    """Warn (:class:`ShortTimeConstantWarning`) naming every node whose time constant is below one
    step at ``dt``: forward Euler with a step longer than ``tau`` gives ``beta = 1 - dt/tau < 0``, a
    state that flips sign every step and, for ``dt > 2 tau``, grows without bound (overflowing to
    inf / NaN in a long run). The conversion itself is exact; the usual cause is a wrong ``dt``."""
    short = []
    for path, node, _ in walk(graph):
        for name in TIME_CONSTANTS:
            tau = getattr(node, name, None)
            if tau is None:
                continue
            tau = np.asarray(tau, np.float64)
            below = tau[np.isfinite(tau) & (tau < 1)]
            if below.size:
                t = float(below.min())
                short.append(f"{path!r} {name} = {t * dt:.4g} s = {t:.4g} steps (beta = {1 - 1 / t:.4g})")
    if short:
        warnings.warn(
            f"{where}: at dt={dt!r} s these time constants are shorter than one step: {'; '.join(short)}. Forward "
            "Euler with dt > tau flips the state's sign every step and, with dt > 2 tau, grows it without bound "
            "(lint: TAU_BELOW_ONE_STEP). Pass the dt the model was run at (dt=, seconds per step); it must not "
            "exceed the shortest time constant",
            ShortTimeConstantWarning,
            stacklevel=stacklevel,
        )


MAX_DELAY_STEPS = 1 << 53  # delays are whole steps exactly representable as float64


def delay_to_steps(delay, dt: float) -> np.ndarray | None:
    """Whole timesteps of a NIR delay in seconds, or None if some delay is not a whole number of steps.

    A delay written as ``n * dt`` in float32 or float64 is accepted (rounding of the stored value
    is tolerated up to four units in its last place).
    """
    arr = np.asarray(delay)
    steps = arr.astype(np.float64) / dt
    whole = np.round(steps)
    eps = np.finfo(float_dtype(arr)).eps
    if not np.all(np.isfinite(steps)) or np.any(np.abs(steps - whole) > 4 * eps * np.maximum(1.0, np.abs(steps))):
        return None
    if np.any(whole < 0):
        return None
    if np.any(whole > MAX_DELAY_STEPS):
        raise NIRFormatError(
            f"a delay of {float(np.max(arr))!r} s is {float(np.max(whole)):.3g} timesteps of dt={dt} s, more than "
            f"the {MAX_DELAY_STEPS:,} talon accepts"
        )
    return whole.astype(np.int64)


def steps_to_delay(steps, dt: float) -> np.ndarray:
    """A talon delay in steps as NIR seconds (float64)."""
    return np.asarray(steps).astype(np.float64) * dt
