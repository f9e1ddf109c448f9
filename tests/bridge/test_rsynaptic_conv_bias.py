"""A convolutional snnTorch RSynaptic with a recurrent bias (its default) exports: the bias enters the
synaptic current at every step, t = 0 included, through a constant branch — a 1×1 ``Conv2d`` with
zero weights and the bias (the linear RSynaptic's ``Affine(0, b)``) — so the spikes are snnTorch's
on every engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from talon import bridge, ir
from talon.backend import get_backend

snn = pytest.importorskip("snntorch")
utils = pytest.importorskip("snntorch.utils")

T, B = 40, 3


def model() -> nn.Sequential:
    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        snn.RSynaptic(alpha=0.7, beta=0.9, conv2d_channels=4, kernel_size=3, init_hidden=True),
        nn.Flatten(), nn.Linear(4 * 8 * 8, 10),
        snn.Leaky(beta=0.8, init_hidden=True, output=True),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[3].weight.mul_(6.0)
        net[1].recurrent.bias.copy_(torch.tensor([0.3, -0.2, 0.5, 0.1]))  # a bias that matters
    return net


def snntorch_run(net: nn.Module, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes of the output layer and the RSynaptic's membranes, from a fresh model (snnTorch 1.0.0's
    ``utils.reset`` leaves an init_hidden RSynaptic's previous spikes in place: run it once only)."""
    utils.reset(net)
    spikes, membranes = [], []
    with torch.no_grad():
        for x in xs:
            spikes.append(net(x)[0])
            membranes.append(net[1].mem.clone())
    return torch.stack(spikes), torch.stack(membranes)


def test_a_conv_rsynaptic_with_bias_spikes_as_snntorch():
    net = model()
    xs = (torch.rand(T, B, 2, 8, 8, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    graph = bridge.to_ir(net, xs[0])
    rsyn = graph.nodes["1"]
    assert isinstance(rsyn.nodes["bias"], ir.Conv2d) and not np.any(rsyn.nodes["bias"].weight)
    np.testing.assert_array_equal(rsyn.nodes["bias"].bias, net[1].recurrent.bias.detach().numpy())
    want, want_mem = snntorch_run(net, xs)
    assert 0.05 < want.mean() < 0.95
    executor = bridge.ir_to_torch(graph)
    with torch.no_grad():
        got, _ = executor.run_sequence(xs)
    assert torch.equal(got, want)
    cpu = next(iter(get_backend("cpu").simulate(graph, xs.numpy()).outputs.values()))
    np.testing.assert_array_equal(cpu, want.numpy())
    # the membranes agree to float32 rounding (the IR sums the neuron's inputs before adding β·m)
    stepper, state, mems = bridge.ir_to_torch(graph, return_state=True), None, []
    with torch.no_grad():
        for x in xs:
            _, state = stepper(x, state)
            mems.append(state["1"]["neuron"][0])  # (v, i)
    mem = torch.stack(mems)
    assert torch.all((mem - want_mem).abs() <= 1e-5 * torch.clamp(want_mem.abs(), min=1.0))
    # snnTorch 1.0.0's utils.reset keeps the RSynaptic's last spikes: its second run differs (docs/bridge.md §2)
    again, _ = snntorch_run(net, xs)
    assert not torch.equal(again, want)
