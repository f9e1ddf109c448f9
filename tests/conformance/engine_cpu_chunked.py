"""The CPU backend (fp32) run in chunks of 7 steps: the 40 golden steps cut at 7, 14, ..., 35, so
every neuron state, Delay history and recurrent edge crosses chunk boundaries (run_memory.py)."""

from __future__ import annotations

import numpy as np

from talon import ir
from talon.backend import get_backend

REQUIRES = ()


def run(graph: ir.Graph, x: np.ndarray) -> dict:
    (name,) = graph.input_nodes
    result = get_backend("cpu").simulate(graph, {name: x}, step_by_step=True, chunk_steps=7)
    states = {
        path: {k: v for k, v in entry.items() if k in ("v", "i")}
        for path, entry in result.node_states.items()
        if "v" in entry
    }
    return {"outputs": result.outputs, "states": states}
