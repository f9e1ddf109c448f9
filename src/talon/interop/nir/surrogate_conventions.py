"""Which surrogate gradient each NIR framework's importer builds (``docs/nir.md``, "Surrogate gradient").

NIR carries no surrogate: a file says nothing of how its spikes are differentiated. What a
framework's NIR importer builds, and so trains with, is its neuron modules' default (read in
their sources; ``docs/nir.md`` cites file and line; measured against their autograd in
``tests/interop/test_nir_surrogate_frameworks.py``):

* snnTorch 1.0.0: ``Leaky`` / ``Synaptic`` with ``spike_grad=None`` -> ``atan(alpha=2.0)``;
* SpikingJelly 2.0.0: ``IFNode`` / ``LIFNode`` -> ``surrogate.Sigmoid(alpha=4)``, ``logistic(alpha=4.0)``;
  ``CUBALIFNode`` -> ``surrogate.Rect(alpha=1)``, ``boxcar(width=1.0, height=1.0)``;
* Sinabs 3.1.3: ``IAFSqueeze`` / ``LIFSqueeze`` -> ``SingleExponential(grad_width=0.5,
  grad_scale=1)``, whose width is relative to each neuron's threshold θ:
  ``threshold_exponential(width=0.5, scale=1.0)``;
* Rockpool 3.1.0: ``LIFTorch`` -> ``StepPWL`` with ``learning_window=0.5``, divided by each
  neuron's threshold: ``threshold_step_window(window=0.5)``;
* Norse 1.1.0: ``LIFBoxCell`` / ``IAFCell`` with ``method='super'`` (whose alpha Norse 1.1 ignores)
  -> ``superspike(k=1.0)``; Spyx 1.0.0: ``spyx.nn`` layers' default activation -> ``superspike(k=25.0)``.

The Sinabs and Rockpool kinds read each neuron's own threshold (``talon.ir.THRESHOLD_KINDS``), so
they hold for per-neuron thresholds; on a node whose thresholds are one value they are the same
function as ``single_exponential(width=0.5·θ)`` and ``step_window(window=0.5, threshold=θ)``, and
:func:`mismatches` compares them so (:func:`talon.ir.resolve_surrogate`).

:func:`apply` gives an imported graph's spiking nodes the producer's surrogate (or the one the
caller states, ``read_nir(..., surrogate=)``) and warns once (:class:`SurrogateWarning`) that the
model's own surrogate, if it was another, is not in the file. :func:`warn_consumer` warns when
``to_nir(graph, consumer=)`` writes neurons that train with another surrogate than the
framework's importer will give them.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

from talon import ir

SPIKING = (ir.LIF, ir.IF, ir.CubaLIF)
WITH_SURROGATE = (ir.LIF, ir.IF, ir.CubaLIF, ir.Threshold)


class SurrogateWarning(UserWarning):
    """A NIR file's neurons train with a surrogate gradient the file cannot carry: the importing
    framework uses its own default, which may not be what the model was trained with."""


# framework -> (what its importer builds, in its own words; node -> TALON IR surrogate)
IMPORTER_SURROGATES = {
    "snntorch": ("snnTorch's default atan(alpha=2)", lambda node: "atan(alpha=2.0)"),
    "spikingjelly": (
        "SpikingJelly's defaults: Sigmoid(alpha=4) for IFNode/LIFNode, Rect(alpha=1) for CUBALIFNode",
        lambda node: "boxcar(width=1.0, height=1.0)" if isinstance(node, ir.CubaLIF) else "logistic(alpha=4.0)",
    ),
    "sinabs": (
        "Sinabs' default SingleExponential(grad_width=0.5, grad_scale=1) of each neuron's threshold",
        lambda node: "threshold_exponential(width=0.5, scale=1.0)",
    ),
    "rockpool": (
        "Rockpool's default StepPWL with learning_window=0.5, divided by each neuron's threshold",
        lambda node: "threshold_step_window(window=0.5)",
    ),
    "norse": ("Norse's default method='super' (k = 1 in Norse 1.1)", lambda node: "superspike(k=1.0)"),
    "spyx": ("Spyx's default activation superspike(k=25)", lambda node: "superspike(k=25.0)"),
}
# where a user sets it in the framework
_FRAMEWORK_FIELD = {
    "snntorch": "spike_grad",
    "spikingjelly": "surrogate_function",
    "sinabs": "surrogate_grad_fn",
    "rockpool": "spike_generation_fn",
    "norse": "method",
    "spyx": "activation",
}


def importer_surrogate(framework: str, node: ir.Node) -> str:
    """The TALON IR surrogate ``framework``'s NIR importer gives ``node``."""
    return IMPORTER_SURROGATES[framework][1](node)


def _map(graph: ir.Graph, change, prefix: str = "") -> ir.Graph:
    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            node = _map(node, change, f"{prefix}{name}.")
        elif isinstance(node, WITH_SURROGATE):
            node = change(f"{prefix}{name}", node)
        nodes[name] = node
    return ir.Graph(nodes, list(graph.edges), metadata=dict(graph.metadata))


def apply(graph: ir.Graph, framework: str | None, version: str, surrogate: str | None, stacklevel: int) -> ir.Graph:
    """Every node with a surrogate gets ``surrogate`` (the caller's), else — with a producer — the
    one ``framework``'s importer builds for a LIF, IF or CubaLIF, with one :class:`SurrogateWarning`."""
    if surrogate is not None:
        return _map(graph, lambda path, node: replace(node, surrogate=surrogate))
    if framework not in IMPORTER_SURROGATES:
        return graph

    def change(path: str, node: ir.Node) -> ir.Node:
        return replace(node, surrogate=importer_surrogate(framework, node)) if isinstance(node, SPIKING) else node

    graph = _map(graph, change)
    builds = IMPORTER_SURROGATES[framework][0]
    warnings.warn(
        f"producer={framework!r}: NIR carries no surrogate gradient, so the file does not say which one the model "
        f"was trained with; talon trains its neurons with what {framework} {version}'s importer builds ({builds}). "
        f"If the model set another {_FRAMEWORK_FIELD[framework]}, pass surrogate='kind(...)' to read_nir/from_nir "
        "or set the nodes' surrogate field (docs/nir.md, 'Surrogate gradient')",
        SurrogateWarning,
        stacklevel=stacklevel,
    )
    return graph


def mismatches(graph: ir.Graph, framework: str, prefix: str = "") -> list[str]:
    """``'path: ours -> theirs'`` for each LIF, IF and CubaLIF whose surrogate is not what ``framework``'s
    importer will give it (a threshold kind and its form at the node's one threshold are the same)."""
    found = []
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            found += mismatches(node, framework, f"{prefix}{name}.")
        elif isinstance(node, SPIKING):
            theirs = importer_surrogate(framework, node)
            if ir.resolve_surrogate(node.surrogate, node.v_threshold) != ir.resolve_surrogate(theirs, node.v_threshold):
                found.append(f"{prefix}{name}: {node.surrogate} -> {theirs}")
    return found


def warn_consumer(graph: ir.Graph, framework: str, version: str, stacklevel: int = 3) -> None:
    """Warn when ``framework``'s importer will train the graph's neurons with another surrogate."""
    if framework not in IMPORTER_SURROGATES:
        return
    changes = mismatches(graph, framework)
    if not changes:
        return
    warnings.warn(
        f"consumer={framework!r}: NIR carries no surrogate gradient and {framework} {version}'s importer gives "
        f"its neurons {IMPORTER_SURROGATES[framework][0]}: {changes} (talon's -> theirs). The file spikes the same "
        f"there, but fine-tuning it in {framework} follows other gradients than talon's engines. Set "
        f"{_FRAMEWORK_FIELD[framework]} on its modules after importing, or give the nodes its surrogate to train "
        "alike (docs/nir.md, 'Surrogate gradient')",
        SurrogateWarning,
        stacklevel=stacklevel,
    )
