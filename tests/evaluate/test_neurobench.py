"""The NeuroBench metric set equals the `neurobench` package's on the same snnTorch model and inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talon import bridge
from talon import evaluate as ev

snn = pytest.importorskip("snntorch")
neurobench = pytest.importorskip("neurobench")

T = 20


def snntorch_model():
    from torch import nn

    torch.manual_seed(3)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, 40)
            self.lif1 = snn.Leaky(beta=0.9, reset_mechanism="zero", reset_delay=False, init_hidden=True)
            self.fc2 = nn.Linear(40, 10)
            self.lif2 = snn.Leaky(beta=0.9, reset_mechanism="zero", reset_delay=False, init_hidden=True)

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    net = Net()
    with torch.no_grad():  # strong enough to fire, and some zero weights for connection sparsity
        net.fc1.weight.mul_(4.0)
        net.fc1.weight[:, :5] = 0
    return net


def neurobench_results(net, x: np.ndarray, y: np.ndarray, model=None) -> dict:
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, ClassificationAccuracy, SynapticOperations
    from neurobench.models import SNNTorchModel
    from neurobench.processors.postprocessors.choose_max_count import ChooseMaxCount
    from snntorch import utils

    class Sequence(torch.nn.Module):  # NeuroBench's custom_forward: [B, T, ...] in, [T, B, ...] out
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, data):
            utils.reset(self.net)
            return torch.stack([self.net(data[:, t]) for t in range(data.shape[1])])

    model = model or SNNTorchModel(Sequence(net), custom_forward=True)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=25
    )
    bench = Benchmark(
        model,
        loader,
        [],
        [ChooseMaxCount()],
        [[Footprint, ConnectionSparsity], [ClassificationAccuracy, ActivationSparsity, SynapticOperations]],
    )
    return bench.run(quiet=True)


def test_neurobench_metrics_equal_the_neurobench_package():
    from neurobench.metrics.static import Footprint
    from neurobench.models import SNNTorchModel

    net = snntorch_model()
    graph = bridge.to_ir(net, torch.zeros(1, 64))
    data = ev.digits()
    x, y = data.x[:100], data.y[:100]
    encoder = ev.Rate(seed=1)
    stimulus = np.stack([encoder(x[i], i, T, (64,)) for i in range(len(x))])  # [N, T, 64], NeuroBench's layout

    result = ev.evaluate(
        graph, (x, y), n_steps=T, encoder=encoder, executor="serial", shard_size=30, reference=ev.ModuleReference(net)
    )
    ours = result["fp32"].neurobench
    theirs = neurobench_results(net, stimulus, y)

    assert result["fp32"].output_agreement == 1.0  # the same spikes as snnTorch itself
    assert 0.5 < ours["activation_sparsity"] < 0.95
    assert ours["activation_sparsity"] == pytest.approx(theirs["ActivationSparsity"], abs=1e-12)
    synops = theirs["SynapticOperations"]
    assert ours["synaptic_operations"]["effective_acs"] == pytest.approx(synops["Effective_ACs"], abs=1e-9)
    assert ours["synaptic_operations"]["effective_macs"] == pytest.approx(synops["Effective_MACs"], abs=1e-9)
    assert ours["synaptic_operations"]["dense"] == pytest.approx(synops["Dense"], abs=1e-9)
    assert ours["synaptic_operations"]["effective_acs"] < synops["Dense"]  # zero weights and silent inputs skipped
    assert round(ours["connection_sparsity"], 4) == theirs["ConnectionSparsity"] > 0
    assert ours["classification_accuracy"] == pytest.approx(theirs["ClassificationAccuracy"], abs=1e-6)
    # Footprint: NeuroBench counts a module's parameters and buffers. On talon's own PyTorch executor of the
    # graph that is exactly talon's number; snnTorch's module also holds hidden-state buffers sized by the
    # last batch, so its own footprint is not a property of the model.
    assert ours["footprint_bytes"] == Footprint()(SNNTorchModel(bridge.ir_to_torch(graph)))


def test_synaptic_operations_of_a_convolution_with_padding_and_zero_weights():
    """Dense counts only in-bounds taps (NeuroBench runs the layer on all-ones); effective skips zero weights."""
    from talon import ir
    from talon.backend.cpu.run.profiler import fan_out
    from talon.evaluate.metrics import effective_fan_out

    w = np.ones((2, 1, 3, 3), np.float32)
    w[1, 0, 0, 0] = 0.0  # one zero tap in the second filter
    conv = ir.Conv2d(weight=w, stride=1, padding=1, input_type={"input": np.array([1, 4, 4])})
    conv_t = torch.nn.Conv2d(1, 2, 3, padding=1, bias=False)
    with torch.no_grad():
        conv_t.weight.copy_(torch.from_numpy(w))
        ones = torch.ones(1, 1, 4, 4)
        dense = conv_t.weight.new_ones(conv_t.weight.shape)
        conv_t.weight.copy_(dense)
        expected_dense = int(conv_t(ones).sum())
        conv_t.weight.copy_(torch.from_numpy((w != 0).astype(np.float32)))
        expected_effective = int(conv_t(ones).sum())
    assert int(fan_out(conv).sum()) == expected_dense == 2 * (4 * 4 + 8 * 6 + 4 * 9)  # corner, edge and inner outputs
    assert int(effective_fan_out(conv).sum()) == expected_effective == 200 - 9  # zero tap in bounds for 3 x 3 outputs
