"""Step a source model (snnTorch / Norse / plain torch) and a talon executor side by side."""

from __future__ import annotations

from collections.abc import Callable

import torch

from talon import bridge


def neuron_spikes(model: torch.nn.Module, names: list[str]) -> tuple[dict[str, list], list]:
    """Forward hooks recording the spike output of the named neuron modules at every call."""
    record: dict[str, list] = {n: [] for n in names}
    handles = []
    for name in names:
        module = model.get_submodule(name)

        def hook(mod, args, out, name=name):
            record[name].append((out[0] if isinstance(out, tuple) else out).detach().clone())

        handles.append(module.register_forward_hook(hook))
    return record, handles


def lookup(state, path: tuple):
    for key in path:
        state = state[key]
    return state


def run_parity(
    source_step: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]],
    executor: bridge.GraphExecutor,
    xs: torch.Tensor,
    membranes: dict[str, tuple],
) -> dict:
    """Returns the number of output mismatches, the largest membrane difference (relative to
    ``max(1, |v|)``) and the source's
    output and membrane traces. ``source_step(x) -> (output, {name: membrane})``; ``membranes``
    maps each name to its path in the executor's state."""
    state = None
    mismatches, worst = 0, 0.0
    outputs = []
    with torch.no_grad():
        for t in range(xs.shape[0]):
            want, want_mem = source_step(xs[t])
            got, state = executor(xs[t], state)
            mismatches += int((got != want).sum())
            outputs.append(want)
            for name, path in membranes.items():
                want_v = want_mem[name]
                # relative to max(1, |v|): below 1 an absolute 1e-6, above it float32 resolution
                err = (lookup(state, path) - want_v).abs() / want_v.abs().clamp(min=1.0)
                worst = max(worst, float(err.max()))
    return {"mismatches": mismatches, "max_membrane_diff": worst, "outputs": torch.stack(outputs)}


def firing_rate(spikes: list[torch.Tensor]) -> float:
    return float(torch.stack(spikes).float().mean())
