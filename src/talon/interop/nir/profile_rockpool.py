"""The Rockpool 3.1.0 profile: what ``rockpool.nn.modules.torch.nir.from_nir`` runs, restated as talon nodes.

Rockpool's importer builds, per NIR node:

* ``CubaLIF`` → ``LIFTorch(tau_mem, tau_syn, threshold, bias=v_leak, dt=min(tau_mem / (1 + r)))``
  (the ``dt`` derived from the file, computed in float32; ``w_in`` and ``v_reset`` ignored), which
  runs, per step, ``i = β·(i + x)``, ``v = α·v + i + bias`` with ``α = exp(−dt/tau_mem)``,
  ``β = exp(−dt/tau_syn)`` computed by torch in float32, ``n = (v ≥ θ)·⌊v/θ⌋`` spikes (at most
  2^16) and ``v − n·θ``;
* ``Linear`` / ``Affine`` → ``LinearTorch`` (the same map); ``Input`` / ``Output`` → nothing;
* ``LIF`` crashes (``'LIF' object has no attribute 'tau_mem'``), ``IF`` and every other node raise
  ``NotImplementedError``, ``LI`` truncates τ to whole seconds, and a subgraph is read only as a
  recurrent CubaLIF whose recurrent current joins after the input (an order talon's fan-in does not
  state): talon refuses all of these by name.

In talon: ``CubaLIF(synapse='input_first', spike_mode='multi', max_spikes=65536,
reset_mode='subtract', comparison='>=')`` with ``tau_mem = r = 1/(1 − α)``, ``tau_syn = w_in =
1/(1 − β)`` (so talon's decays round to Rockpool's float32 ``α``, ``β`` and both gains are 1) and
``v_leak = bias·tau_mem``.

Writing for Rockpool (``consumer="rockpool"``) is the inverse: a CubaLIF of that form is written
with float32 time constants in seconds whose torch ``exp(−dt/τ)`` are exactly the graph's decays at
``dt = 1e-3``, and an ``r`` that makes Rockpool's derived ``dt`` exactly 1e-3 (or refused naming the
field).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from talon import ir

VERSION = "3.1.0"
MAX_SPIKES = 2**16  # LIFTorch's default max_spikes_per_dt
WRITE_DT = np.float32(1e-3)  # the dt the consumer profile makes Rockpool derive
RUNS = (ir.Input, ir.Output, ir.Linear, ir.Affine, ir.CubaLIF)


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - Rockpool's torch modules need torch
        raise ir.ConversionError(
            "the Rockpool profile computes Rockpool's float32 decays exp(-dt/tau) with torch, as Rockpool does: "
            "install torch"
        ) from None
    return torch


def _as_rockpool_tensor(values: np.ndarray):
    """``_to_tensor`` then ``torch.as_tensor(dtype=float)``: one element becomes a 0-d tensor."""
    torch = _torch()
    arr = np.asarray(values)
    if arr.size == 1:
        return torch.as_tensor(float(arr.reshape(-1)[0]), dtype=torch.float32)
    return torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float32)


def _decay(dt: float, tau: np.ndarray) -> np.ndarray:
    """``torch.exp(-dt / tau)`` as ``tau_to_decay`` computes it (float32)."""
    torch = _torch()
    return np.asarray(torch.exp(-dt / _as_rockpool_tensor(tau)).numpy())


def _derived_dt(tau_mem: np.ndarray, r: np.ndarray) -> float:
    """``torch.min(torch.as_tensor(_to_tensor(tau_mem / (1 + r)))).item()`` (numpy float32 arithmetic)."""
    torch = _torch()
    ratio = np.asarray(tau_mem) / (1 + np.asarray(r))
    return float(torch.min(_as_rockpool_tensor(ratio)).item())


def _refuse(path: str, node: ir.Node, why: str) -> ir.ConversionError:
    return ir.ConversionError(f"node {path!r} ({type(node).__name__}): {why}")


def _steps(path: str, node: ir.Node, decay: np.ndarray, field: str) -> np.ndarray:
    if np.any(decay >= 1) or np.any(decay <= 0):
        raise _refuse(path, node, f"Rockpool's float32 decay of {field} is {decay.min()!r}..{decay.max()!r}; talon's "
                      "CubaLIF states decays strictly between 0 and 1 with unit input gain")  # fmt: skip
    return 1.0 / (1.0 - decay.astype(np.float64))


_WHY = {
    ir.LIF: "Rockpool 3.1.0's NIR importer crashes on a LIF ('LIF' object has no attribute 'tau_mem')",
    ir.IF: "Rockpool 3.1.0's NIR importer has no IF (NotImplementedError)",
    ir.LI: "Rockpool 3.1.0's NIR importer truncates an LI's tau to whole seconds (tau.int())",
}


def restate(graph: ir.Graph) -> ir.Graph:
    """The graph as Rockpool 3.1.0 runs it (module docstring), or ConversionError naming the node."""
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            raise ir.ConversionError(
                f"node {name!r} (a subgraph): Rockpool reads a subgraph only as a recurrent CubaLIF, adding the "
                "recurrent current after the input; talon sums the fan-in first, which rounds differently"
            )
        if not isinstance(node, RUNS):
            raise _refuse(name, node, _WHY.get(type(node), f"Rockpool {VERSION}'s NIR importer has no mapping for it "
                                                              "(NotImplementedError)"))  # fmt: skip
        if isinstance(node, ir.CubaLIF):
            node = _restate_cubalif(name, node)
        nodes[name] = node
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


def _restate_cubalif(path: str, node: ir.CubaLIF) -> ir.CubaLIF:
    tau_mem, tau_syn = np.asarray(node.tau_mem), np.asarray(node.tau_syn)  # the file's values and dtype
    dt = _derived_dt(tau_mem, np.asarray(node.r))
    tm = _steps(path, node, _decay(dt, tau_mem), "tau_mem")
    ts = _steps(path, node, _decay(dt, tau_syn), "tau_syn")
    bias = np.asarray(node.v_leak, np.float32).astype(np.float64)
    theta = np.asarray(node.v_threshold)
    return replace(node, tau_mem=tm, r=tm.copy(), tau_syn=ts, w_in=ts.copy(), v_leak=bias * tm,
                   v_reset=np.zeros_like(theta), reset_mode="subtract", reset_timing="immediate", spike_timing="post",
                   comparison=">=", spike_mode="multi", max_spikes=MAX_SPIKES, synapse="input_first",
                   v_init=None, v_min=None)  # fmt: skip


# ---- consumer ----------------------------------------------------------------------------------


def _search(target: np.ndarray, compute, guess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 values near ``guess`` whose ``compute`` equals ``target`` per element; (values, found)."""
    best = guess.astype(np.float32)
    found = compute(best) == target
    up = down = best
    for _ in range(64):
        if found.all():
            break
        up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(0))
        for trial in (up, down):
            hit = ~found & (compute(trial) == target)
            best, found = np.where(hit, trial, best), found | hit
    return best, found


def check_consumer(graph: ir.Graph) -> ir.Graph:
    """Refuse what Rockpool would run differently (naming node and field); return the graph to write."""
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            raise ir.ConversionError(f"node {name!r} (a subgraph): Rockpool would misread 'graph': it reads a "
                                     "subgraph only as a recurrent CubaLIF")  # fmt: skip
        nodes[name] = _consumed(name, node)
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


def _consumed(path: str, node: ir.Node) -> ir.Node:
    kind = type(node).__name__

    def refuse(field: str, why: str) -> ir.ConversionError:
        return ir.ConversionError(f"node {path!r} ({kind}): Rockpool {VERSION} would misread {field!r}: {why}")

    if not isinstance(node, RUNS):
        raise refuse("type", "its NIR importer maps only Linear, Affine and CubaLIF")
    if not isinstance(node, ir.CubaLIF):
        return node
    wanted = {"synapse": "input_first", "spike_mode": "multi", "reset_mode": "subtract", "comparison": ">=",
              "reset_timing": "immediate", "spike_timing": "post"}  # fmt: skip
    for field, value in wanted.items():
        if getattr(node, field) != value:
            raise refuse(field, f"its LIFTorch runs {field}={value!r}")
    if node.max_spikes != MAX_SPIKES:
        raise refuse(
            "max_spikes", f"its LIFTorch emits at most {MAX_SPIKES} spikes per step; set max_spikes={MAX_SPIKES}"
        )
    if node.v_min is not None:
        raise refuse("v_min", "its LIFTorch has no membrane floor")
    if node.v_init is not None and np.any(np.asarray(node.v_init) != 0):
        raise refuse("v_init", "it starts every membrane at 0")
    tm, ts = np.asarray(node.tau_mem, np.float64), np.asarray(node.tau_syn, np.float64)
    if np.any(np.asarray(node.r, np.float64) / tm != 1):
        raise refuse("r", "it adds the synaptic current to the membrane with gain 1; set r = tau_mem")
    if np.any(np.asarray(node.w_in, np.float64) / ts != 1):
        raise refuse("w_in", "it adds the input to the synaptic current with gain 1; set w_in = tau_syn")
    dt = float(WRITE_DT)
    taus = {}
    for field, tau in (("tau_mem", tm), ("tau_syn", ts)):
        decay = (1.0 - 1.0 / tau).astype(np.float32)
        if np.any(decay <= 0):
            raise refuse(field, "its decay exp(-dt/tau) is above 0; talon's decay 1 - 1/tau here is not")
        with np.errstate(divide="ignore"):
            guess = -dt / np.log(decay.astype(np.float64))
        seconds, found = _search(decay, lambda t: _decay(dt, t).reshape(np.shape(t)), guess)
        if not found.all():
            raise refuse(field, "no float32 time constant gives a torch exp(-dt/tau) equal to this node's decay")
        taus[field] = seconds
    # r with min(tau_mem / (1 + r)) == dt exactly (float32, as Rockpool derives it): r = tau_mem/dt - 1
    r_guess = (taus["tau_mem"].astype(np.float64) / dt - 1.0).astype(np.float32)
    dts = np.full(r_guess.shape, WRITE_DT)
    r, found = _search(dts, lambda r: taus["tau_mem"] / (1 + r), r_guess)
    if not found.all() or _derived_dt(taus["tau_mem"], r) != dt:
        raise refuse(
            "r", "no float32 r makes its derived dt = tau_mem/(1 + r) exactly the dt the decays were written for"
        )
    v_leak = (np.asarray(node.v_leak, np.float64) / tm).astype(np.float32)  # its bias is talon's c = v_leak/tau_mem
    # float32 arrays, written as they are (dt = 1): Rockpool derives its dt from them in float32
    return replace(node, tau_mem=taus["tau_mem"], tau_syn=taus["tau_syn"], r=r, w_in=np.ones_like(r), v_leak=v_leak,
                   spike_mode="binary", max_spikes=None, synapse="decay", reset_mode="value", comparison=">",
                   v_reset=np.zeros_like(r), v_init=None)  # fmt: skip
