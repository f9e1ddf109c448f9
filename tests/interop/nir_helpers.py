"""Shared helpers of the NIR tests: small graphs, the engines to run them on, the paper files."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from talon import ir
from tests.conformance import reference
from tests.conformance.engines import engine_names, load
from tests.paths import NIR_PAPER

PAPER_FILES = sorted(p.name for p in NIR_PAPER.glob("*.nir"))
MALFORMED = {"03_rnn__extras__braille_noDelay_bias_zero_subgraph.nir"}  # dangling inner edge (nir.md §2.2)
TYPE_INCONSISTENT = {"01_lif__lif_rockpool.nir"}  # Output [1, 1, 1] after a LIF [1] (nir.md §2.2)

# The reference transcription of docs/semantics.md, then every engine that has landed.
ENGINES = ["reference", *engine_names()]


def run(engine: str, graph: ir.Graph, x: np.ndarray) -> dict:
    """Run ``graph`` on time-major ``x`` [T, B, *shape] with an engine of the conformance registry."""
    if engine == "reference":
        return reference.run(graph, x)
    module = load(engine)
    for requirement in module.REQUIRES:
        pytest.importorskip(requirement)
    return module.run(graph, x)


def chain(shape, *layers: tuple[str, ir.Node]) -> ir.Graph:
    """input -> layers... -> output, with the output shape inferred."""
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array(shape))}
    edges, prev = [], "input"
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    probe = ir.Graph(dict(nodes), list(edges))
    nodes["output"] = ir.Output(np.array(probe.nodes[prev].output_shape))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


def spikes_in(rng: np.random.Generator, t: int, b: int, n: int, p: float = 0.3) -> np.ndarray:
    return (rng.random((t, b, n)) < p).astype(np.float32)


def nir_chain(shape, *layers, type_check=True) -> nir.NIRGraph:
    nodes = {"input": nir.Input(np.array(shape))}
    edges, prev = [], "input"
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    out = layers[-1][1].output_type["output"] if layers else np.array(shape)
    nodes["output"] = nir.Output(None if out is None else np.array(out))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes, edges, type_check=type_check)
