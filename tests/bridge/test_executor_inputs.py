"""What a GraphExecutor accepts: inputs checked once per call (batch, feature shape, dtype), the
state positionally in run_sequence, and the dtype an imported graph computes in."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge, ir


class _Net(nn.Module):
    def __init__(self, recurrent: bool):
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.n = (snn.RLeaky(beta=0.9, linear_features=16, init_hidden=True) if recurrent
                  else snn.Leaky(beta=0.9, init_hidden=True))  # fmt: skip
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(self.n(self.fc1(x)))


@pytest.fixture(scope="module", params=[False, True], ids=["feed-forward", "recurrent"])
def executor(request):
    torch.manual_seed(0)
    return bridge.ir_to_torch(bridge.to_ir(_Net(request.param), torch.randn(1, 10)), return_state=True)


def test_an_unbatched_or_misshaped_input_is_refused_naming_the_input(executor):
    x = torch.randn(10)
    with pytest.raises(ValueError, match=r"input 'input': expected a tensor \[B, 10\], got \[10\]; add the batch"):
        executor(x, {})
    with pytest.raises(ValueError, match=r"input 'input': expected a tensor \[B, 10\], got \[2, 7\]$"):
        executor.step(torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"input 'input': expected a tensor \[T, B, 10\], got \[5, 10\]; add the"):
        executor.run_sequence(torch.randn(5, 10))
    with pytest.raises(ValueError, match=r"T >= 1 step; got \(0, 2, 10\)"):
        executor.run_sequence(torch.randn(0, 2, 10))
    with pytest.raises(TypeError, match=r"input 'input' is torch.float64 but the executor computes in torch.float32"):
        executor(torch.randn(1, 10, dtype=torch.float64), {})
    with pytest.raises(TypeError, match=r"expected 1 input tensor"):
        executor.step(torch.randn(1, 10), torch.randn(1, 10))


def test_run_sequence_takes_the_state_positionally_as_a_call_does(executor):
    xs = torch.randn(12, 3, 10) * 3
    with torch.no_grad():
        first, state = executor.run_sequence(xs[:6])
        positional, _ = executor.run_sequence(xs[6:], state)
        keyword, _ = executor.run_sequence(xs[6:], state=state)
        whole, _ = executor.run_sequence(xs, None)
        from_zero, _ = executor.run_sequence(xs[6:])
    assert torch.equal(positional, keyword) and torch.equal(torch.cat([first, positional]), whole)
    assert not torch.equal(positional, from_zero)  # the state was used
    with pytest.raises(TypeError, match="state twice"):
        executor.run_sequence(xs, {}, state={})


def test_several_inputs_must_share_the_batch():
    graph = ir.Graph(
        {
            "a": ir.Input(np.array([3])),
            "b": ir.Input(np.array([3])),
            "relu": ir.ReLU(),
            "output": ir.Output(np.array([3])),
        },
        [("a", "relu"), ("b", "relu"), ("relu", "output")],
    )
    executor = bridge.ir_to_torch(graph)
    assert torch.equal(executor(torch.ones(2, 3), -torch.ones(2, 3) * 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"input 'b' has batch \[4\], input 'a' \[2\]: they must be the same"):
        executor(torch.ones(2, 3), torch.ones(4, 3))


def test_a_float64_model_imports_with_dtype_float64_and_round_trips_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 4)).double()
    x = torch.randn(8, 10, dtype=torch.float64)
    graph = bridge.to_ir(model, x)
    default = bridge.ir_to_torch(graph)  # float32, as the CPU backend and JaxGraph
    assert next(default.parameters()).dtype == torch.float32
    with pytest.raises(
        TypeError,
        match=r"pass x.to\(torch.float32\), or import the graph with ir_to_torch\(graph, dtype=torch.float64\)",
    ):
        default(x)
    executor = bridge.ir_to_torch(graph, dtype=torch.float64)
    assert {p.dtype for p in executor.parameters()} == {torch.float64}
    with torch.no_grad():
        assert torch.equal(executor(x), model(x))
    again = bridge.to_ir(executor, x)
    assert again.nodes["0"].weight.dtype == np.float64 and np.array_equal(
        again.nodes["0"].weight, graph.nodes["0"].weight
    )
    assert next(bridge.ir_to_torch(graph, dtype="float64").parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match="dtype must be a floating torch dtype"):
        bridge.ir_to_torch(graph, dtype=torch.int32)


def test_a_float64_spiking_executor_keeps_its_neurons_in_float64():
    n = 8
    rng = np.random.default_rng(0)
    graph = ir.Graph(
        {"input": ir.Input(np.array([n])), "fc": ir.Linear(rng.standard_normal((n, n))),
         "lif": ir.LIF(tau=np.full(n, 3.0), r=np.full(n, 3.0), v_leak=np.zeros(n), v_threshold=np.full(n, 0.1)),
         "output": ir.Output(np.array([n]))},
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )  # fmt: skip
    executor = bridge.ir_to_torch(graph, dtype=torch.float64)
    lif = executor.module_of("lif")
    assert lif.beta.dtype == torch.float64 and lif.beta[0].item() == 1.0 - 1.0 / 3.0  # no float32 rounding
    xs = torch.from_numpy(rng.standard_normal((20, 2, n)))
    with torch.no_grad():
        spikes, _ = executor.run_sequence(xs)
    assert spikes.dtype == torch.float64 and spikes.sum() > 0


def test_bfloat16_is_refused_naming_the_module_and_parameter():
    model = nn.Sequential(nn.Linear(4, 5)).to(torch.bfloat16)
    with pytest.raises(ir.ConversionError, match=r"module '0', parameter 'weight': a bfloat16 tensor has no TALON IR"):
        bridge.to_ir(model, torch.randn(1, 4, dtype=torch.bfloat16))
    # the advertised way: export in float32 (exact), compute in bfloat16 again
    graph = bridge.to_ir(model.float(), torch.randn(1, 4))
    executor = bridge.ir_to_torch(graph, dtype=torch.bfloat16)
    x = torch.randn(3, 4).to(torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(executor(x), model.to(torch.bfloat16)(x))
    with pytest.raises(ir.ConversionError, match=r"node '0' \(weight\): a bfloat16 tensor"):
        bridge.to_ir(executor, x)


def test_a_float64_executor_of_a_float32_graph_reexports_its_float64_weights_exactly():
    torch.manual_seed(0)
    graph = bridge.to_ir(nn.Sequential(nn.Linear(3, 2)), torch.randn(1, 3))
    executor = bridge.ir_to_torch(graph, dtype=torch.float64)
    with torch.no_grad():
        executor.module_of("0").weight.add_(1e-12)  # not representable in float32
    weight = bridge.to_ir(executor, torch.randn(1, 3, dtype=torch.float64)).nodes["0"].weight
    assert weight.dtype == np.float64 and np.array_equal(weight, executor.module_of("0").weight.detach().numpy())
    # an untouched parameter keeps its float32 array
    assert bridge.to_ir(executor, torch.randn(1, 3, dtype=torch.float64)).nodes["0"].bias.dtype == np.float32


def test_every_weighted_layer_imports_in_float64_exactly():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(), nn.Identity(),
        nn.Upsample(scale_factor=2), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 16), nn.LayerNorm(16),
        nn.Linear(16, 5, bias=False),
    ).double().eval()  # fmt: skip
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    executor = bridge.ir_to_torch(bridge.to_ir(model, x), dtype=torch.float64)
    assert {t.dtype for t in [*executor.parameters(), *executor.buffers()] if t.is_floating_point()} == {torch.float64}
    with torch.no_grad():
        assert torch.equal(executor(x), model(x))
