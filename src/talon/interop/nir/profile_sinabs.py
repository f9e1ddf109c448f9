"""The Sinabs 3.1.3 profile: what ``sinabs.nir.from_nir`` runs, restated as talon nodes.

Sinabs' importer (``sinabs/nir.py``) builds, per NIR node:

* ``IF`` → ``IAFSqueeze(spike_threshold=θ, min_v_mem=−θ)``: ``v = v + x`` (``r`` ignored),
  ``MultiSpike`` (``n = ⌊v/θ⌋`` where ``v > 0``, i.e. ``n ≥ 1`` exactly when ``v ≥ θ``), ``v − n·θ``,
  then the floor ``relu(v − v_min) + v_min`` with ``v_min = −θ`` (``v_reset`` ignored);
* ``LIF`` → ``LIFSqueeze(tau_mem=τ, norm_input=False, min_v_mem=None)``: ``v = α·v + x`` with
  ``α = exp(−1/τ)`` computed by torch in float32 from the file's ``τ`` read **as timesteps**
  (``r`` ignored, ``v_leak ≠ 0`` refused by Sinabs), then MultiSpike and ``v − n·θ``, no floor;
* ``LI`` → ``ExpLeakSqueeze(tau_mem=τ, norm_input=False)``: ``v = α·v + x`` (``r = 1``, ``v_leak = 0``
  or Sinabs refuses);
* ``Affine``, ``Conv1d``, ``Conv2d`` (with bias), ``SumPool2d``, ``Flatten``, ``Input``, ``Output``
  as the standard; any other node (a bias-free ``Linear``, ``CubaLIF``, ``AvgPool2d`` ...) maps to
  nothing and nirtorch **drops it without error**.

In talon: IF → ``IF(r=1, reset_mode='subtract', comparison='>=', spike_mode='multi', v_min=−θ)``;
LIF → ``LIF(tau=t, r=t, v_leak=0, ...)`` with ``t = 1/(1 − α)`` in float64, so that talon's
``β = 1 − 1/t`` rounds to Sinabs' float32 ``α`` and ``g = r/t = 1`` (checked, or refused); LI
likewise. Nodes Sinabs would drop are refused by name. ``dt`` is 1 (τ in timesteps) both ways.

Writing for Sinabs (``consumer="sinabs"``) is the inverse: the graph must be what Sinabs will run
(the fields above), and each LIF / LI ``tau`` is written as a float32 ``τ`` whose
``torch.exp(−1/τ)`` is exactly the graph's ``β`` (or the export is refused naming ``tau``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from talon import ir

VERSION = "3.1.3"
#: the nodes Sinabs' importer maps (anything else is dropped by nirtorch)
RUNS = (ir.Input, ir.Output, ir.Affine, ir.Conv1d, ir.Conv2d, ir.SumPool2d, ir.Flatten, ir.IF, ir.LIF, ir.LI)


def _torch_decay(tau32: np.ndarray) -> np.ndarray:
    """``torch.exp(-1.0 / tau)`` on a float32 tensor, as Sinabs' ``alpha_mem_calculated`` (torch's
    float32 exp is not numpy's: they differ in the last bit for about half of all τ)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - Sinabs itself needs torch
        raise ir.ConversionError(
            "the Sinabs profile computes Sinabs' float32 decay exp(-1/tau) with torch, as Sinabs does: install torch"
        ) from None
    tensor = torch.as_tensor(np.ascontiguousarray(tau32), dtype=torch.float32)
    return torch.exp(-1.0 / tensor).numpy()


def _tau_for(alpha32: np.ndarray) -> np.ndarray:
    """float64 ``t`` with ``float32(1 - 1/t) == alpha32`` (talon's β), and ``r = t`` gives ``g = 1``."""
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - alpha32.astype(np.float64))


def _refuse(path: str, node: ir.Node, why: str) -> ir.ConversionError:
    return ir.ConversionError(f"node {path!r} ({type(node).__name__}): {why}")


def _multi(node: ir.Node, **fields):
    theta = np.asarray(node.v_threshold)
    return replace(node, v_reset=np.zeros_like(theta), reset_mode="subtract", reset_timing="immediate",
                   spike_timing="post", comparison=">=", spike_mode="multi", v_init=None, **fields)  # fmt: skip


def _leaky(path: str, node: ir.LIF | ir.LI) -> dict:
    if np.any(np.asarray(node.v_leak) != 0):
        raise _refuse(path, node, "Sinabs' importer refuses a non-zero v_leak (its neurons leak towards 0)")
    if isinstance(node, ir.LI) and np.any(np.asarray(node.r) != 1):
        raise _refuse(path, node, "Sinabs' importer refuses an LI with r != 1")
    alpha = _torch_decay(np.asarray(node.tau).astype(np.float32))
    if np.any(alpha >= 1):
        raise _refuse(path, node, "tau is so large that Sinabs' float32 decay exp(-1/tau) is 1; talon's LIF "
                      "cannot state that leak with unit input gain")  # fmt: skip
    tau = _tau_for(alpha)
    if not np.array_equal((1.0 - 1.0 / tau).astype(np.float32), alpha):  # pragma: no cover - 1 - (1 - a) is exact
        raise _refuse(path, node, "Sinabs' float32 decay exp(-1/tau) has no talon tau that rounds to it")
    return {"tau": tau, "r": tau.copy(), "v_leak": np.zeros_like(tau)}


def restate(graph: ir.Graph, prefix: str = "") -> ir.Graph:
    """The graph as Sinabs 3.1.3 runs it (module docstring), or ConversionError naming the node."""
    nodes = {}
    for name, node in graph.nodes.items():
        path = f"{prefix}{name}"
        if isinstance(node, ir.Graph):
            node = restate(node, f"{path}.")
        elif not isinstance(node, RUNS):
            raise _refuse(path, node, f"Sinabs {VERSION}'s NIR importer has no mapping for it and drops it without "
                          "error (its model then differs from the file)")  # fmt: skip
        elif isinstance(node, ir.IF):
            theta = np.asarray(node.v_threshold)
            node = _multi(node, r=np.ones_like(theta), v_min=-theta)
        elif isinstance(node, ir.LIF):
            node = _multi(replace(node, **_leaky(path, node), integration="decay"), v_min=None)
        elif isinstance(node, ir.LI):
            node = replace(node, **_leaky(path, node), integration="decay")
        nodes[name] = node
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


# ---- consumer ----------------------------------------------------------------------------------


def _sinabs_tau(path: str, node: ir.Node, beta32: np.ndarray) -> np.ndarray:
    """float32 τ per neuron with ``torch.exp(-1/τ) == beta32`` (Sinabs' decay of the graph's β)."""
    with np.errstate(divide="ignore"):
        guess = (-1.0 / np.log(beta32.astype(np.float64))).astype(np.float32)
    best = guess.copy()
    found = _torch_decay(best) == beta32
    up, down = guess, guess
    for _ in range(64):  # walk the float32 neighbours outwards until each neuron's decay is hit
        if found.all():
            break
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(0))
        for trial in (up, down):
            hit = ~found & (_torch_decay(trial) == beta32)
            best = np.where(hit, trial, best)
            found |= hit
    if not found.all():
        raise _refuse(path, node, "Sinabs would misread 'tau': no float32 τ gives its decay exp(-1/τ) equal to this "
                      f"node's β = 1 - 1/tau in float32 (first at index {int(np.argmin(found))})")  # fmt: skip
    return best


def check_consumer(graph: ir.Graph, prefix: str = "") -> ir.Graph:
    """Refuse what Sinabs would run differently (naming node and field); return the graph to write
    with the standard exporter at ``dt = 1`` (Sinabs reads the binary NIR neuron's τ and θ only)."""
    nodes = {}
    for name, node in graph.nodes.items():
        path = f"{prefix}{name}"
        nodes[name] = check_consumer(node, f"{path}.") if isinstance(node, ir.Graph) else _consumed(path, node)
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


def _consumed(path: str, node: ir.Node) -> ir.Node:
    kind = type(node).__name__

    def refuse(field: str, why: str) -> ir.ConversionError:
        return ir.ConversionError(f"node {path!r} ({kind}): Sinabs {VERSION} would misread {field!r}: {why}")

    if isinstance(node, ir.Linear):  # Sinabs drops a nir.Linear; the same map with a zero bias is an Affine
        return ir.Affine(node.weight, np.zeros(node.weight.shape[0], node.weight.dtype), metadata=dict(node.metadata))
    if not isinstance(node, RUNS):
        raise refuse("type", "its NIR importer maps only Affine, Conv1d, Conv2d, SumPool2d, Flatten, IF, LIF and LI, "
                     "and drops anything else without error")  # fmt: skip
    if isinstance(node, (ir.IF, ir.LIF)):
        if not node.multi_spike:
            raise refuse("spike_mode", "it emits floor(v/θ) spikes per step (MultiSpike); set spike_mode='multi'")
        if node.max_spikes is not None:
            raise refuse("max_spikes", "its MultiSpike has no per-step bound; set max_spikes=None")
        if node.v_init is not None and np.any(np.asarray(node.v_init) != 0):
            raise refuse("v_init", "it starts every membrane at 0")
        theta32 = np.asarray(node.v_threshold).astype(np.float32)
        floor = (
            None if node.v_min is None else np.broadcast_to(np.asarray(node.v_min).astype(np.float32), theta32.shape)
        )
        if isinstance(node, ir.IF) and (floor is None or not np.array_equal(floor, -theta32)):
            raise refuse("v_min", "its IF has the membrane floor -v_threshold; set v_min=-v_threshold")
        if isinstance(node, ir.LIF) and floor is not None:
            raise refuse("v_min", "its LIF has no membrane floor; set v_min=None")
        if isinstance(node, ir.IF):
            if np.any(np.asarray(node.r) != 1):
                raise refuse("r", "its IF adds the input with gain 1 whatever r")
            return replace(node, spike_mode="binary", v_min=None, reset_mode="value", comparison=">")
    if isinstance(node, (ir.LIF, ir.LI)):
        tau = np.asarray(node.tau, np.float64)
        if np.any(np.asarray(node.v_leak) != 0):
            raise refuse("v_leak", "its neurons leak towards 0")
        if np.any(np.asarray(node.r, np.float64) / tau != 1):
            raise refuse("r", "it adds the input with gain 1 (norm_input=False), whatever r; set r = tau")
        if isinstance(node, ir.LIF) and node.integration != "decay":
            raise refuse("integration", "it computes alpha*v + x; set integration='decay'")
        tau32 = _sinabs_tau(path, node, (1.0 - 1.0 / tau).astype(np.float32))
        fields = {"tau": tau32, "r": np.ones_like(tau32)}
        if isinstance(node, ir.LIF):
            fields.update(spike_mode="binary", reset_mode="value", comparison=">", v_reset=np.zeros_like(tau32))
        return replace(node, **fields)
    return node
