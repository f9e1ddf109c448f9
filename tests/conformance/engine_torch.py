"""The PyTorch executor (talon.bridge.GraphExecutor) as a conformance engine."""

import numpy as np

REQUIRES = ("torch",)


def run(graph, x):
    import torch

    from talon.bridge import ir_to_torch

    executor = ir_to_torch(graph, return_state=True).eval()  # inference semantics: Dropout is the identity
    state = None
    outputs = {n: [] for n in graph.output_nodes}
    states: dict[str, dict[str, list]] = {}
    with torch.no_grad():
        for t in range(x.shape[0]):
            out, state = executor(torch.from_numpy(x[t]), state)
            out = out if isinstance(out, tuple) else (out,)
            for name, value in zip(graph.output_nodes, out, strict=True):
                outputs[name].append(value.numpy())
            for path, st in _flatten_state(state):
                for key, value in st.items():
                    states.setdefault(path, {}).setdefault(key, []).append(value.numpy().copy())
    return {
        "outputs": {n: np.stack(v) for n, v in outputs.items()},
        "states": {p: {k: np.stack(v) for k, v in d.items()} for p, d in states.items()},
    }


def _flatten_state(state, prefix=""):
    for name, value in state.items():
        if isinstance(value, dict):  # a subgraph's ExecutorState
            yield from _flatten_state(value, f"{prefix}{name}.")
        elif isinstance(value, tuple):  # (v, i) of current-based neurons
            yield f"{prefix}{name}", {"v": value[0], "i": value[1]}
        else:
            yield f"{prefix}{name}", {"v": value}
