"""Framework profiles: how a framework really runs a NIR file, not how the NIR standard says it should.

NIR states continuous-time equations; each framework's importer runs its own discrete update,
and they disagree (``docs/nir.md``, "Other frameworks"). A profile restates that for talon:

* **producer** (``read_nir(path, producer=...)``): the file came from that framework, and the
  graph should spike as that framework's own run of it. Where talon's IR can state the
  framework's behaviour, the imported neurons are changed to it (and the change is recorded in
  ``graph.metadata["nir"]["producer"]``); where it cannot, the import is refused naming the node
  and the behaviour.
* **consumer** (``to_nir(graph, consumer=...)``): the file goes to that framework, which will run
  it with its own update. The export goes through when that update is exactly the graph's, and is
  refused otherwise, naming the node and the field the framework would misread.

Profiles (measured against the frameworks' own runs; versions as tested):

* ``"spikingjelly"`` (2.0.0): spikes on ``v >= θ`` (NIR says ``>``) and starts every membrane at
  ``v_reset`` (read: ``v_init = v_reset``; written: only a graph whose ``v_init`` is its
  ``v_reset``, with 0 for no ``v_init``); hard reset,
  immediate, from the charged membrane; ``dt`` 1e-4 when the file records none. Its importer also
  requires uniform parameters, IF ``r = 1/dt``, LIF ``r ∈ {1, τ/dt}``, ``v_leak = v_reset``.
* ``"sinabs"`` (3.1.3): several spikes per step (``spike_mode='multi'``), subtractive reset, IF's
  membrane floor ``v_min = −θ``, LIF decay ``exp(−1/τ)`` (torch float32) with τ in timesteps (dt = 1
  both ways), ``r`` and ``v_reset`` ignored; nodes its importer drops are refused
  (:mod:`.profile_sinabs`).
* ``"rockpool"`` (3.1.0): CubaLIF with multi-spike (at most 2^16 per step), subtractive reset,
  ``i = e^{−dt/τs}(i + x)`` (``synapse='input_first'``) and a ``dt`` it derives from ``τ_mem/(1 + r)``;
  its importer crashes on LIF and has no IF (refused by name) (:mod:`.profile_rockpool`).
* ``"snntorch"`` (1.0.0): its importer runs NIR's LIF and CubaLIF as the standard says (zero reset,
  immediate, ``>``); it writes no ``dt`` and assumes 1e-4. Its ``nir.IF`` is a leaky neuron (a pinned
  bug): refused by name both ways.
* ``"nir"``: the standard itself (the default).

Every producer profile also gives the neurons the reset gradient its framework trains with, and a
consumer profile warns when the graph's neurons record another (:mod:`.reset_conventions`: all six
frameworks differentiate the reset through the spike, ``'through'``; NIR itself states none), and
the surrogate gradient its importer builds, with a warning that the model's own is not in the file
(:mod:`.surrogate_conventions`; applied by the importer after :func:`restate`).

* ``"norse"`` (1.1.0, producer only): LIF as its Euler box at the importer's dt (default 1e-3),
  ``>``, reset to 0, ``r`` and ``v_reset`` ignored; IF ``v + x`` (:mod:`.profile_norse`); the reset
  differentiated through the spike (``reset_gradient='through'``).

* ``"spyx"`` (1.0.0): its ``spyx.nn`` neurons (spike on the membrane before the update, ``>``,
  subtractive reset with the input) with decays ``1 − dt/τ`` at its importer's dt (default 1);
  ``r``, ``w_in``, ``v_leak``, ``v_reset`` ignored; nodes it drops refused (:mod:`.profile_spyx`);
  the reset differentiated through the spike (``reset_gradient='through'``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from talon import ir

from . import profile_norse, profile_rockpool, profile_sinabs, profile_spyx, reset_conventions

SPIKING = (ir.LIF, ir.IF, ir.CubaLIF)
NEURONS = (ir.LIF, ir.IF, ir.CubaLIF, ir.LI, ir.CubaLI, ir.Integrator, ir.Threshold)


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    default_dt: float | None  # what the framework assumes when a file records no dt
    # why the framework does not use a dt for the file (its importer has its own time unit): the
    # profile then reads and writes the file's own values (dt = 1) and restates the time constants
    own_dt: str | None = None
    # the framework's importer runs a file at the dt it is given (this default), whatever the file
    # records: the profile reads the file's own values and restates them at that dt
    runs_at: float | None = None
    # the dt a file for this consumer is written at (its importer's default), and the only one allowed:
    # the framework recomputes its decays from the written time constants at that dt
    writes_at: float | None = None


PROFILES = {
    "nir": Profile("nir", "1.0.8", None),
    "snntorch": Profile("snntorch", "1.0.0", 1e-4),
    "spikingjelly": Profile("spikingjelly", "2.0.0", 1e-4),
    "sinabs": Profile("sinabs", profile_sinabs.VERSION, 1.0, own_dt="reads time constants as timesteps whatever dt"),
    "norse": Profile("norse", profile_norse.VERSION, 1e-3, runs_at=1e-3),
    "rockpool": Profile("rockpool", profile_rockpool.VERSION, 1.0,
                        own_dt="derives its dt from each CubaLIF's tau_mem / (1 + r) whatever dt"),
    "spyx": Profile("spyx", profile_spyx.VERSION, 1.0, runs_at=1.0, writes_at=1.0),
}  # fmt: skip


def get_profile(name: str | None) -> Profile:
    if name is None:
        return PROFILES["nir"]
    if not isinstance(name, str) or name.lower() not in PROFILES:
        raise ValueError(f"unknown framework profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name.lower()]


def _neurons(graph: ir.Graph, prefix: str = ""):
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            yield from _neurons(node, f"{prefix}{name}.")
        elif isinstance(node, NEURONS):
            yield f"{prefix}{name}", node


def _nonzero(value) -> bool:
    return value is not None and bool(np.any(np.asarray(value) != 0))


# ---- producer: restate the framework's run ------------------------------------------------------


def restate(graph: ir.Graph, profile: Profile, where: str, dt: float | None = None) -> ir.Graph:
    """The graph as ``profile``'s framework runs it (see the module docstring), or ConversionError.
    ``dt``: the step a ``runs_at`` framework runs the file at. The neurons train with the framework's
    reset gradient (:mod:`.reset_conventions`)."""
    if profile.name == "nir":
        return graph
    graph = _restate_forward(graph, profile, dt)
    convention = reset_conventions.TRAINS_WITH.get(profile.name)
    return graph if convention is None else reset_conventions.stamp(graph, convention)


def _restate_forward(graph: ir.Graph, profile: Profile, dt: float | None) -> ir.Graph:
    if profile.name == "norse":
        return profile_norse.restate(graph, profile.runs_at if dt is None else dt)
    if profile.name == "sinabs":
        return profile_sinabs.restate(graph)
    if profile.name == "rockpool":
        return profile_rockpool.restate(graph)
    if profile.name == "spyx":
        return profile_spyx.restate(graph, profile.runs_at if dt is None else dt)
    if profile.name == "snntorch":
        _refuse_if(graph, "producer='snntorch'")
        return graph
    if profile.name == "spikingjelly":
        # SpikingJelly spikes on '>=' and starts every membrane at v_reset
        return _map_spiking(
            graph,
            lambda node: replace(node, comparison=">=", v_init=node.v_reset.copy() if _nonzero(node.v_reset) else None),
        )
    return graph


def _refuse_if(graph: ir.Graph, direction: str) -> None:
    for path, node in _neurons(graph):
        if isinstance(node, ir.IF):
            raise ir.ConversionError(f"{direction}: node {path!r} (IF): {reset_conventions.SNNTORCH_IF}")


def _map_spiking(graph: ir.Graph, change) -> ir.Graph:
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            node = _map_spiking(node, change)
        elif isinstance(node, SPIKING):
            node = change(node)
        nodes[name] = node
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


def _show(value) -> str:
    arr = np.asarray(value)
    flat = np.unique(arr)
    return repr(float(flat[0])) if flat.size == 1 else f"{arr.min()!r}..{arr.max()!r}"


# ---- consumer: what the framework will run -----------------------------------------------------


def check_consumer(graph: ir.Graph, profile: Profile) -> ir.Graph:
    """Refuse (naming node and field) what ``profile``'s framework would run differently; return the
    graph to hand to the standard exporter."""
    if profile.name == "nir":
        return graph
    neurons = list(_neurons(graph))
    if profile.name == "norse":
        raise ir.ConversionError(
            "consumer='norse' is not profiled: write without consumer= (NIR's semantics; what Norse 1.1.0 "
            "misreads is listed in docs/nir.md) or check the node fields profile_norse names"
        )
    if profile.name == "sinabs":
        return profile_sinabs.check_consumer(graph)
    if profile.name == "rockpool":
        return profile_rockpool.check_consumer(graph)
    if profile.name == "spyx":
        return profile_spyx.check_consumer(graph)
    if profile.name == "snntorch":
        _refuse_if(graph, "consumer='snntorch'")
        return graph
    if profile.name == "spikingjelly":
        for path, node in neurons:
            _check_spikingjelly(path, node)
        # SpikingJelly runs '>=' whatever the file says and starts the membrane at v_reset (checked
        # above to be the graph's v_init): the file carries NIR's neuron, the spikes stay ours.
        return _map_spiking(graph, lambda node: replace(node, comparison=">", v_init=None))
    return graph


def _check_spikingjelly(path: str, node: ir.Node) -> None:
    kind = type(node).__name__

    def refuse(field: str, why: str) -> None:
        raise ir.ConversionError(f"node {path!r} ({kind}): SpikingJelly would misread {field!r}: {why}")

    if not isinstance(node, SPIKING):
        refuse("type", "its NIR importer maps only LIF, IF and CubaLIF neurons")
    if node.comparison != ">=":
        refuse("comparison", "it spikes on v >= v_threshold; set comparison='>=' to export what it runs")
    if node.reset_mode != "value" or node.reset_timing != "immediate" or node.spike_timing != "post":
        refuse("reset_mode", "it resets to v_reset immediately, from the charged membrane (reset_mode='value', "
               "reset_timing='immediate', spike_timing='post')")  # fmt: skip
    start = np.broadcast_to(node.initial_membrane, np.shape(node.v_reset))
    if np.any(start != np.asarray(node.v_reset, np.float64)):
        refuse("v_init", f"it starts the membrane at v_reset={_show(node.v_reset)}, this node at "
               f"{_show(start)}; set v_init=v_reset (or v_reset=v_init)")  # fmt: skip
    for field in ("tau", "tau_mem", "tau_syn", "r", "v_threshold", "v_leak", "v_reset", "w_in"):
        value = getattr(node, field, None)
        if value is not None and np.unique(np.asarray(value)).size > 1:
            refuse(field, "its importer takes one value per layer")
    if isinstance(node, ir.IF) and np.any(np.asarray(node.r) != 1):
        refuse("r", "its IF has unit input gain (NIR r = 1/dt)")
    if isinstance(node, ir.LIF):
        if np.any(np.asarray(node.v_leak) != np.asarray(node.v_reset)):
            refuse("v_leak", f"its LIF leaks towards v_reset={_show(node.v_reset)}; set v_leak = v_reset")
        r, tau = float(np.asarray(node.r).reshape(-1)[0]), float(np.asarray(node.tau).reshape(-1)[0])
        if r not in (1.0, tau):
            refuse("r", "its LIF has input gain 1 (decay_input=True) or τ (decay_input=False)")
    if isinstance(node, ir.CubaLIF):
        if _nonzero(node.v_leak):
            refuse("v_leak", "its CUBALIF has no leak potential")
        first = {f: float(np.asarray(getattr(node, f)).reshape(-1)[0]) for f in ("r", "w_in", "tau_mem", "tau_syn")}
        if first["r"] != first["tau_mem"]:
            refuse("r", "its importer requires r = tau_mem (NIR r = τ_mem/dt, the snnTorch convention)")
        if first["w_in"] != first["tau_syn"]:
            refuse("w_in", "its importer requires w_in = tau_syn (NIR w_in = τ_syn/dt)")
