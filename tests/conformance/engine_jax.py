"""The JAX engine (talon.interop.jax) under the conformance suite."""

from __future__ import annotations

import numpy as np

REQUIRES = ("jax",)


def run(graph, x: np.ndarray) -> dict:
    from talon.interop.jax import JaxGraph

    model = JaxGraph(graph)
    outputs, _, trace = model.run(model.params, x, record=True)
    if not isinstance(outputs, dict):
        outputs = {model.output_names[0]: outputs}
    return {
        "outputs": {name: np.asarray(value) for name, value in outputs.items()},
        "states": {path: {k: np.asarray(v) for k, v in state.items()} for path, state in trace.items()},
    }
