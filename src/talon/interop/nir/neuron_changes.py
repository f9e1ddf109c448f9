"""What exporting a neuron to NIR changes when NIR cannot state it (the lossy path and its error messages)."""

from __future__ import annotations

import numpy as np

from talon import ir

_GE_CHANGE = (
    "comparison '>=' -> '>' against the float32 just below v_threshold (exact when the consumer computes in float32)"
)


def _exact_fix(change: str) -> str:
    """The node field that gives a neuron NIR's behaviour instead of ``change`` (for the error message)."""
    for prefix, fix in (
        ("comparison", "comparison='>'"),
        ("reset by subtraction", "reset_mode='value'"),
        ("reset_timing", "reset_timing='immediate'"),
        ("spike_timing", "spike_timing='post'"),
        ("v_init", "v_init=None"),
        ("spike_mode", "spike_mode='binary'"),
        ("v_min", "v_min=None"),
        ("synapse", "synapse='decay'"),
    ):
        if change.startswith(prefix):
            return fix
    return change.split(" -> ")[0]


_V_INIT_CHANGE = "v_init (the membrane at t = 0; NIR has no initial state) -> the membrane starts at 0"


_MULTI_CHANGE = "spike_mode='multi' (floor(u/v_threshold) spikes per step; NIR has one) -> one spike per step"
_V_MIN_CHANGE = "v_min (a membrane floor; NIR has none) -> no floor"


_SYNAPSE_CHANGE = "synapse='input_first' (i = alpha*(i + g_s*x); NIR's step decays first) -> i = alpha*i + g_s*x"


def multi_spike_changes(node: ir.Node) -> list[str]:
    """What NIR cannot state of a multi-spike neuron, a membrane floor or an input-first synapse
    (``spike_mode``, ``v_min``, ``synapse``)."""
    changes = [_MULTI_CHANGE] if getattr(node, "multi_spike", False) else []
    changes += [_SYNAPSE_CHANGE] if getattr(node, "synapse", "decay") == "input_first" else []
    return changes + ([_V_MIN_CHANGE] if getattr(node, "v_min", None) is not None else [])


def _starts_off_zero(node: ir.Node) -> bool:
    """Whether the neuron's membrane starts anywhere but 0 (``v_init``), which NIR cannot state."""
    return node.v_init is not None and bool(np.any(np.asarray(node.v_init) != 0))


def _just_below(theta: np.ndarray) -> np.ndarray:
    """The float32 just below float32(theta): in float32, ``x >= theta`` iff ``x > _just_below(theta)``.

    talon's engines (and the torch and JAX frameworks) cast thresholds to float32 and compare in
    float32, so this is exact for them; a consumer computing in float64 may differ for values
    strictly between the two thresholds.
    """
    theta32 = np.asarray(theta).astype(np.float32)
    return np.nextafter(theta32, np.float32(-np.inf)).astype(np.asarray(theta).dtype)


def _compare(a, theta, comparison) -> np.ndarray:
    return a >= theta if comparison == ">=" else a > theta
