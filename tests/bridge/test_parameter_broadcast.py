"""Neuron parameters shaped for PyTorch broadcasting, not per channel.

snnTorch and Norse apply a parameter to the membrane with PyTorch broadcasting, which aligns a
1-D tensor with the *last* axis: on a ``[B, C, H, W]`` layer ``beta`` of shape ``(W,)`` is one
value per column, not per channel. When ``C == W`` nothing in the shapes tells the two apart, so
the export must follow broadcasting, and the executor must then reproduce the model's spikes. A
neuron whose parameters come in both layouts (β per channel, threshold per neuron) becomes one node
with every parameter of the layer's shape.
"""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils
from torch import nn

from talon import bridge, ir


def _spikes_of(model: nn.Module, xs: torch.Tensor) -> torch.Tensor:
    utils.reset(model)
    with torch.no_grad():
        return torch.stack([model(x) for x in xs])


def _norse_spikes_of(model: nn.Module, xs: torch.Tensor) -> torch.Tensor:
    state, out = None, []
    with torch.no_grad():
        for x in xs:
            y, state = model(x, state)
            out.append(y)
    return torch.stack(out)


def _exported_spikes_of(model: nn.Module, xs: torch.Tensor) -> torch.Tensor:
    executor = bridge.ir_to_torch(bridge.to_ir(model, xs[0]))
    with torch.no_grad():
        return executor.run_sequence(xs)[0]


def _square_conv(gen: torch.Generator) -> nn.Conv2d:
    """Conv2d(2, 4, 3) on 6x6 inputs: a [B, 4, 4, 4] layer, channels == width."""
    conv = nn.Conv2d(2, 4, 3)
    with torch.no_grad():
        conv.weight.uniform_(-0.05, 0.15, generator=gen)
        conv.bias.zero_()
    return conv


def test_a_last_axis_beta_on_a_square_conv_layer_broadcasts_over_columns(tmp_path):
    gen = torch.Generator().manual_seed(3)
    conv = _square_conv(gen)
    beta = torch.tensor([0.1, 0.5, 0.9, 0.99])
    threshold = torch.tensor([1.5, 1.0, 3.0, 2.0])
    model = nn.Sequential(conv, snn.Leaky(beta=beta, threshold=threshold, init_hidden=True)).eval()
    xs = torch.rand(60, 4, 2, 6, 6, generator=gen) * 3
    graph = bridge.to_ir(model, xs[0])
    lif = graph.nodes["1"]
    tau = np.broadcast_to(np.asarray(lif.tau), (4, 4, 4))
    assert np.all(tau == tau[:1]) and not np.all(tau == tau[..., :1])  # one value per column
    want = _spikes_of(model, xs)
    assert 0.05 < float(want.mean()) < 0.7
    ir.write(tmp_path / "m.t1c", graph)
    executor = bridge.ir_to_torch(ir.read(tmp_path / "m.t1c"))
    with torch.no_grad():
        got, _ = executor.run_sequence(xs)
    assert torch.equal(got, want)


def test_a_per_channel_beta_still_exports_per_channel():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), snn.Leaky(beta=torch.tensor([0.1, 0.5, 0.9, 0.99]).reshape(4, 1, 1),
                                                         init_hidden=True)).eval()  # fmt: skip
    graph = bridge.to_ir(model, torch.rand(1, 2, 6, 6))
    assert graph.nodes["1"].tau.shape == (4,)


def test_a_last_axis_norse_parameter_on_a_square_conv_layer_broadcasts_over_columns():
    norse = pytest.importorskip("norse.torch")
    gen = torch.Generator().manual_seed(4)
    conv = _square_conv(gen)
    p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor([100.0, 200.0, 300.0, 400.0]),
                               v_th=torch.tensor([0.5, 1.0, 1.5, 2.0]))  # fmt: skip
    model = norse.SequentialState(conv, norse.LIFBoxCell(p)).eval()
    xs = torch.rand(60, 4, 2, 6, 6, generator=gen) * 3
    want = _norse_spikes_of(model, xs)
    assert 0.05 < float(want.mean()) < 0.7
    assert torch.equal(_exported_spikes_of(model, xs), want)


@pytest.mark.parametrize("kind", ["Leaky", "Synaptic", "RLeaky"])
def test_per_channel_and_per_neuron_parameters_in_one_snntorch_neuron(kind):
    """β per channel ``(C, 1, 1)`` with a threshold per neuron: one node, parameters of the layer's shape."""
    gen = torch.Generator().manual_seed(5)
    beta = torch.tensor([0.1, 0.5, 0.9, 0.99]).reshape(4, 1, 1)
    threshold = torch.rand(4, 4, 4, generator=gen) * 2 + 0.5
    if kind == "Leaky":
        neuron = snn.Leaky(beta=beta, threshold=threshold, init_hidden=True)
    elif kind == "Synaptic":
        alpha = torch.rand(4, 4, 4, generator=gen)
        neuron = snn.Synaptic(alpha=alpha, beta=beta, threshold=threshold * 3, init_hidden=True)
    else:
        neuron = snn.RLeaky(beta=beta, threshold=threshold, conv2d_channels=4, kernel_size=3, init_hidden=True)
    model = nn.Sequential(_square_conv(gen), neuron).eval()
    xs = torch.rand(60, 4, 2, 6, 6, generator=gen) * 3
    want = _spikes_of(model, xs)
    assert 0.05 < float(want.mean()) < 0.7
    assert torch.equal(_exported_spikes_of(model, xs), want)


def test_per_channel_and_per_neuron_parameters_in_one_norse_cell():
    norse = pytest.importorskip("norse.torch")
    gen = torch.Generator().manual_seed(6)
    tau_mem_inv = torch.tensor([100.0, 200.0, 300.0, 400.0]).reshape(4, 1, 1)
    v_th = torch.rand(4, 4, 4, generator=gen) * 2 + 1.5
    p = norse.LIFParameters(tau_mem_inv=tau_mem_inv, tau_syn_inv=torch.full((4, 4, 4), 200.0), v_th=v_th)
    model = norse.SequentialState(_square_conv(gen), norse.LIFCell(p)).eval()
    xs = torch.rand(60, 4, 2, 6, 6, generator=gen) * 3
    want = _norse_spikes_of(model, xs)
    assert 0.05 < float(want.mean()) < 0.7
    assert torch.equal(_exported_spikes_of(model, xs), want)
