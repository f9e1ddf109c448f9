"""Which reset gradient each NIR framework trains with (``docs/nir.md``, "Reset gradient").

NIR states no training convention, so a file says nothing of how its neurons' reset
``R(v, z)`` is differentiated (docs/semantics.md §3.1). Each framework's autograd decides, and
talon records it as ``reset_gradient``:

* ``'through'``: the spike in the reset carries its surrogate derivative —
  ``∂(v − z·θ) = dv − θ·dz``, ``∂((1 − z)·v + z·v_reset) = where(z, dv_reset, dv) + (v_reset − v)·dz``;
* ``'detached'``: the spike is a constant (snnTorch's delayed ``reset``).

What each framework's NIR importer builds, and so trains (read in their sources, measured against
their autograd in ``tests/interop/test_nir_reset_gradient_frameworks.py``):

* snnTorch 1.0.0: ``Leaky`` / ``Synaptic`` / ``RLeaky`` / ``RSynaptic`` with ``reset_mechanism='zero'``
  and ``reset_delay=False`` (``import_nir.py``), whose ``mem − (spk − reset)·mem`` differentiates
  through this step's spike: ``'through'``. Its ``nir.IF`` is a ``Leaky(beta=0.9)`` with a
  subtractive reset (a pinned bug): refused by name both ways (:data:`SNNTORCH_IF`).
* SpikingJelly 2.0.0: ``detach_reset=False`` (``BaseNode``'s default, never set by its importer);
  ``_ops/reset.py`` ``voltage``: ``spike·v_reset + (1 − spike)·v``: ``'through'``.
* Sinabs 3.1.3: ``MembraneSubtract`` (the importer's default ``reset_fn``) ``v − spikes·θ`` on
  ``MultiSpike`` spikes: ``'through'`` (its ``MembraneReset``, ``v·(spikes == 0)``, is detached,
  but its importer never builds it).
* Rockpool 3.1.0: ``LIFTorch.evolve``: ``vmem − spikes·threshold``: ``'through'``.
* Norse 1.1.0 and Spyx 1.0.0: ``'through'`` (:mod:`.profile_norse`, :mod:`.profile_spyx`).

A producer profile stamps its framework's convention on the neurons it restates
(:func:`stamp`); a consumer profile warns (:class:`ResetGradientWarning`) when the graph's neurons
record another convention than the framework will train with (:func:`warn_consumer`): the file
spikes the same there, but fine-tuning it gives other gradients than talon's engines.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

from talon import ir

THROUGH = ir.ResetGradient.THROUGH

# framework profile -> the reset gradient its NIR importer's modules train with ('nir' has none)
TRAINS_WITH: dict[str, ir.ResetGradient] = {
    "snntorch": THROUGH,
    "spikingjelly": THROUGH,
    "sinabs": THROUGH,
    "rockpool": THROUGH,
    "norse": THROUGH,
    "spyx": THROUGH,
}

SPIKING = (ir.LIF, ir.IF, ir.CubaLIF)
_HOW = {ir.ResetGradient.THROUGH: "through the spike", ir.ResetGradient.DETACHED: "with the spike detached"}

SNNTORCH_IF = (
    "snnTorch 1.0.0's importer builds a nir.IF as Leaky(beta=0.9) with a subtractive reset and "
    "reset_delay=False (snntorch#416): it leaks, and its reset gradient is detached for the delayed reset "
    "but through the spike for the same-step correction, which an IF cannot state"
)


class ResetGradientWarning(UserWarning):
    """A NIR file goes to a framework that differentiates the neurons' reset otherwise than the
    graph records: the same spikes there, other gradients when it is fine-tuned."""


def stamp(graph: ir.Graph, convention: ir.ResetGradient) -> ir.Graph:
    """``graph`` with every LIF, IF and CubaLIF (subgraphs included) set to ``convention``."""
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            node = stamp(node, convention)
        elif isinstance(node, SPIKING) and node.reset_gradient != convention:
            node = replace(node, reset_gradient=convention)
        nodes[name] = node
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


def mismatches(graph: ir.Graph, convention: ir.ResetGradient, prefix: str = "") -> list[str]:
    """Paths of the spiking neurons with a reset whose ``reset_gradient`` is not ``convention``."""
    found = []
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            found += mismatches(node, convention, f"{prefix}{name}.")
        elif isinstance(node, SPIKING) and node.reset_mode != ir.ResetMode.NONE and node.reset_gradient != convention:
            found.append(f"{prefix}{name}")
    return found


def warn_consumer(graph: ir.Graph, profile_name: str, version: str, stacklevel: int = 3) -> None:
    """Warn when ``profile_name``'s framework trains the graph's resets otherwise than they record."""
    convention = TRAINS_WITH.get(profile_name)
    if convention is None:
        return
    paths = mismatches(graph, convention)
    if not paths:
        return
    (other,) = [value for value in ir.ResetGradient if value != convention]
    warnings.warn(
        f"consumer={profile_name!r}: {profile_name} {version} differentiates the reset {_HOW[convention]} "
        f"(reset_gradient={convention.value!r}), but node(s) {paths} record reset_gradient="
        f"{other.value!r}: the file spikes the same there, but fine-tuning it in {profile_name} "
        f"follows other gradients than talon's engines. Set reset_gradient={convention.value!r} on them to train "
        "alike (docs/nir.md, 'Reset gradient')",
        ResetGradientWarning,
        stacklevel=stacklevel,
    )
