"""``GraphExecutor.run_sequence`` as a conformance engine.

The outputs come from one ``run_sequence`` over all ``T`` steps (the time-batched path with the
neurons' in-place loops, ``talon.bridge.sequence``); the per-step states from ``run_sequence``
over one step at a time, each continuing from the previous state, so both the loop and the
state hand-over are checked against the reference.
"""

import numpy as np

from .engine_torch import _flatten_state

REQUIRES = ("torch",)


def run(graph, x):
    import torch

    from talon.bridge import ir_to_torch

    executor = ir_to_torch(graph, return_state=True).eval()
    xs = torch.from_numpy(x)
    states: dict[str, dict[str, list]] = {}
    with torch.no_grad():
        out, _ = executor.run_sequence(xs)
        out = out if isinstance(out, tuple) else (out,)
        state = None
        for t in range(x.shape[0]):
            _, state = executor.run_sequence(xs[t : t + 1], state=state)
            for path, st in _flatten_state(state):
                for key, value in st.items():
                    states.setdefault(path, {}).setdefault(key, []).append(value.numpy().copy())
    return {
        "outputs": {n: v.numpy() for n, v in zip(graph.output_nodes, out, strict=True)},
        "states": {p: {k: np.stack(v) for k, v in d.items()} for p, d in states.items()},
    }
