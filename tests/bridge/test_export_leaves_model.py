"""to_ir leaves the model as it was: hidden state, in-place statistics, attributes and containers
changed by tracing or by the probe's forward pass are put back, without deep-copying the model
(which fails on a hidden state that carries autograd history)."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge, ir


def _trained_init_hidden_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True),
        nn.Linear(3, 2), snn.Leaky(beta=0.8, init_hidden=True, output=True),
    )  # fmt: skip
    x = torch.rand(2, 4) * 3
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    spk, mem = net(x)  # one training step; the hidden membranes keep their autograd history
    (spk.sum() + mem.sum()).backward()
    optimizer.step()
    return net, x


def test_export_after_a_training_step_with_init_hidden_state_carrying_grad():
    net, x = _trained_init_hidden_net()
    hidden = net[1].mem
    assert hidden.grad_fn is not None, "the hidden membrane must carry autograd history (the bug's setting)"
    before = hidden.detach().clone()
    graph = bridge.to_ir(net, x)  # used to fail: deepcopy of a non-leaf tensor
    assert [type(graph.nodes[n]).__name__ for n in ("0", "1", "2", "3")] == ["Affine", "LIF", "Affine", "LIF"]
    assert net[1].mem is hidden and torch.equal(hidden.detach(), before)  # the same object, the same values
    # the exported graph computes what the network computes from a fresh state
    from snntorch import utils

    utils.reset(net)
    executor = bridge.ir_to_torch(graph, return_state=True)
    state = None
    with torch.no_grad():
        for _ in range(4):
            spk, _ = net(x)
            out, state = executor(x, state)
            assert torch.equal(out, spk)


class _Counting(nn.Module):
    """Changes itself in forward: an attribute, a list, a buffer in place and a reassigned tensor."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.bn = nn.BatchNorm1d(3)
        self.calls = 0
        self.seen: list = ["start"]
        self.register_buffer("total", torch.zeros(3))
        self.last = torch.ones(3)

    def forward(self, x):
        self.calls += 1
        self.seen.append("call")
        self.total += 1
        self.last = x
        return self.bn(self.fc(x))


class _Untraceable(_Counting):
    def forward(self, x):
        return super().forward(x) if x.sum() > -1e9 else x  # data-dependent: the hook fallback runs


@pytest.mark.parametrize("untraceable", [False, True])
def test_attributes_buffers_and_statistics_are_restored(untraceable):
    model = (_Untraceable() if untraceable else _Counting()).train()
    seen, last, total, mean = model.seen, model.last, model.total, model.bn.running_mean
    expected_mean = mean.clone()
    with pytest.warns(UserWarning, match="'bn' \\(BatchNorm1d\\) in training mode"):
        graph = bridge.to_ir(model, torch.rand(4, 3))
    assert isinstance(graph.nodes["bn"], ir.BatchNorm1d)
    assert np.array_equal(graph.nodes["bn"].running_mean, expected_mean.numpy())  # not the export pass's
    assert model.training and model.bn.training
    assert model.calls == 0 and model.seen is seen and seen == ["start"]
    assert model.last is last and model.total is total and torch.equal(total, torch.zeros(3))
    assert model.bn.running_mean is mean and torch.equal(mean, expected_mean)
    assert int(model.bn.num_batches_tracked) == 0
    assert not model.bn._forward_hooks and not model.fc._forward_hooks  # the shape hooks are gone


def test_parameters_are_not_copied():
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU())
    weight = model[0].weight
    graph = bridge.to_ir(model, torch.rand(1, 5))
    assert model[0].weight is weight
    np.testing.assert_array_equal(graph.nodes["0"].weight, weight.detach().numpy())
