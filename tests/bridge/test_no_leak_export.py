"""snnTorch neurons at the decay clamp 1 next to leaky ones (a learned per-neuron β after training,
Synaptic(alpha=1.3)) export as ``tau = r = 2**30`` and run bit for bit like snnTorch in every engine:
the PyTorch executor (stepping and run_sequence), the CPU backend and the JAX engine."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge, ir
from talon.backend import get_backend

T, B, N = 60, 3, 8
BETA = torch.tensor([0.9, 1.0, 1.2, 0.5, 1.0, 0.95, 1.0, 0.8])  # 1.2 is clamped to 1 by snnTorch


def _neuron(kind: str, reset: str) -> nn.Module:
    if kind == "Leaky":
        return snn.Leaky(beta=BETA.clone(), learn_beta=True, reset_mechanism=reset, init_hidden=True)
    return snn.Synaptic(alpha=1.3, beta=BETA.clone(), reset_mechanism=reset, init_hidden=True)


def _snntorch_run(neuron: nn.Module, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    neuron.reset_mem()
    with torch.no_grad():
        spikes = torch.stack([neuron(x) for x in xs])
    return spikes, neuron.mem.clone()


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("kind", ["Leaky", "Synaptic"])
def test_a_decay_at_the_clamp_exports_as_2_to_the_30_and_runs_bit_for_bit(kind, reset):
    # Before: refused ("a per-neuron beta mixing 1.0 (no leak) with leaky neurons" /
    # "alpha or beta = 1 (no decay) has no CubaLIF time constant").
    neuron = _neuron(kind, reset)
    xs = torch.rand(T, B, N, generator=torch.Generator().manual_seed(0)) * 0.6
    graph = bridge.to_ir(neuron, xs[0])
    node = graph.nodes[kind.lower()]
    tau = node.tau if kind == "Leaky" else node.tau_mem
    assert isinstance(node, ir.LIF if kind == "Leaky" else ir.CubaLIF)
    assert np.array_equal(tau == 2.0**30, (BETA >= 1).numpy())
    if kind == "Synaptic":
        assert np.all(node.tau_syn == 2.0**30) and np.all(node.w_in == 2.0**30)

    want, want_mem = _snntorch_run(neuron, xs)
    no_leak = (BETA >= 1).numpy()
    assert want[:, :, no_leak].sum() > 0 and want[:, :, ~no_leak].sum() > 0  # both kinds of neurons fire

    executor = bridge.ir_to_torch(graph, return_state=True)
    with torch.no_grad():
        seq, final = executor.run_sequence(xs)
        state, steps = None, []
        for x in xs:
            out, state = executor(x, state)
            steps.append(out)
    assert torch.equal(seq, want) and torch.equal(torch.stack(steps), want)
    v = final[kind.lower()] if kind == "Leaky" else final[kind.lower()][0]
    assert torch.equal(v, want_mem)

    cpu = get_backend("cpu").simulate(graph, inputs=xs.numpy()).outputs["output"]
    np.testing.assert_array_equal(cpu, want.numpy())

    jax = pytest.importorskip("jax")
    from talon.interop.jax import JaxGraph

    model = JaxGraph(graph)
    y, _ = model.run(model.params, xs.numpy())
    np.testing.assert_array_equal(np.asarray(jax.device_get(y)), want.numpy())
