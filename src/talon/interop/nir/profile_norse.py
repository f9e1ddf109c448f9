"""The Norse 1.1.0 profile: what ``norse.torch.from_nir(graph, dt=...)`` runs, restated as talon nodes.

Norse's importer (``norse/torch/utils/import_nir.py``) runs a file at the ``dt`` passed to it
(default 1e-3), whatever the file records, and builds:

* ``LIF`` → ``LIFBoxCell(tau_mem_inv=1/τ, v_th, v_leak)``: ``v = v + (dt·(1/τ))·((x + v_leak) − v)``
  in float32 (torch), spike on ``v − θ > 0``, reset ``(1 − z)·v + z·0`` (``r`` and the file's
  ``v_reset`` ignored), membrane starting at ``v_leak``;
* ``IF`` → ``IAFCell(v_th)``: ``v + x`` (``r`` ignored), the same spike and reset to 0, start 0;
* ``Affine``, ``Linear``, ``Conv2d`` as the standard.

In talon: LIF → ``LIF(tau=1/k, r=1, v_leak=0, integration='euler', comparison='>', v_reset=0)``
with ``k = dt·(1/τ)`` computed as Norse does (so talon's ``k = 1/tau`` rounds to it), IF → ``IF(r=1,
comparison='>', v_reset=0)``. Refused by name: a LIF with ``v_leak ≠ 0`` (Norse adds ``x + v_leak``
before subtracting ``v``, an order talon's Euler step does not state), ``CubaLIF`` (Norse chains an
Euler leaky-integrator synapse, ``r`` and a LIF box: not talon's CubaLIF), ``LI``, ``Flatten``
(Norse's keeps NIR's ``start_dim``, which then counts the batch axis), ``SumPool2d`` (Norse runs
``LPPool2d(1)``) and every node its importer has no mapping for.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from talon import ir

VERSION = "1.1.0"
RUNS = (ir.Input, ir.Output, ir.Affine, ir.Linear, ir.Conv2d, ir.LIF, ir.IF)
_WHY = {
    ir.CubaLIF: "Norse runs it as an Euler leaky-integrator synapse, a gain r and a LIF box, which talon's CubaLIF "
    "does not state",
    ir.LI: "Norse's LIBoxCell adds v_leak and the input in its own order, which talon's LI does not state",
    ir.Flatten: "Norse's Flatten keeps NIR's start_dim, which then counts the batch axis",
    ir.SumPool2d: "Norse runs it as LPPool2d(norm_type=1), an average times the window, which rounds differently",
}


def _refuse(path: str, node: ir.Node, why: str) -> ir.ConversionError:
    return ir.ConversionError(f"node {path!r} ({type(node).__name__}): {why}")


def _step(dt: float, tau: np.ndarray) -> np.ndarray:
    """``dt * (1 / _to_tensor(tau))`` in float32, as Norse's LIF box computes its Euler factor."""
    try:
        import torch
    except ImportError:  # pragma: no cover - Norse needs torch
        raise ir.ConversionError("the Norse profile computes Norse's float32 dt/τ with torch: install torch") from None
    inv = 1 / torch.from_numpy(np.ascontiguousarray(tau)).float()
    return np.asarray((dt * inv).numpy())


def restate(graph: ir.Graph, dt: float, prefix: str = "") -> ir.Graph:
    """The graph (read with the file's own values, dt = 1) as Norse 1.1.0 runs it at ``dt``."""
    nodes = {}
    for name, node in graph.nodes.items():
        path = f"{prefix}{name}"
        if isinstance(node, ir.Graph):
            raise ir.ConversionError(f"node {path!r} (a subgraph): Norse {VERSION}'s NIR importer does not read "
                                     "subgraphs (its recurrent CubaLIF import is disabled)")  # fmt: skip
        if not isinstance(node, RUNS):
            raise _refuse(path, node, _WHY.get(type(node), f"Norse {VERSION}'s NIR importer has no mapping for it"))
        if isinstance(node, ir.LIF):
            if np.any(np.asarray(node.v_leak) != 0):
                raise _refuse(path, node, "Norse computes (x + v_leak) - v, an order talon's Euler step "
                              "(v_leak - v) + x does not state for v_leak != 0")  # fmt: skip
            k = _step(dt, np.asarray(node.tau))
            tau = 1.0 / k.astype(np.float64)
            node = replace(node, tau=tau, r=np.ones_like(tau), v_leak=np.zeros_like(tau), integration="euler",
                           **_box(node))  # fmt: skip
        elif isinstance(node, ir.IF):
            theta = np.asarray(node.v_threshold)
            node = replace(node, r=np.ones(theta.shape, np.float64), **_box(node))
        nodes[name] = node
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


def _box(node: ir.Node) -> dict:
    """Norse's spike ``v - θ > 0`` and its reset ``(1 - z)·v + z·0`` (the file's v_reset ignored),
    differentiated through the spike ``z`` (whose surrogate, the SuperSpike of the cells Norse's importer
    builds, ``superspike(k=1.0)``, is given by :mod:`.surrogate_conventions`)."""
    return dict(comparison=">", reset_mode="value", reset_timing="immediate", spike_timing="post",
                v_reset=np.zeros(np.shape(node.v_threshold), np.float64), v_init=None, spike_mode="binary",
                v_min=None, max_spikes=None, reset_gradient="through")  # fmt: skip
