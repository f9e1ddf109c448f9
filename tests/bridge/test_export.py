"""to_ir captures the real topology: functional ops, routing, custom maps, errors, fallbacks, re-export."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
import torch.nn.functional as F
from torch import nn

from talon import bridge, ir
from talon.bridge.to_ir import TALONExporter
from talon.ir import ConversionError, UnsupportedModuleError


def roundtrip_output(model, x, graph=None):
    graph = graph or bridge.to_ir(model, x)
    executor = bridge.ir_to_torch(graph)
    with torch.no_grad():
        return graph, model(x), executor(x)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.fc2 = nn.Linear(8, 8)

    def forward(self, x):
        return torch.add(self.fc2(F.relu(self.fc1(x))), x)


def test_residual_add_becomes_a_skip():
    torch.manual_seed(0)
    graph, want, got = roundtrip_output(Residual(), torch.randn(3, 8))
    assert list(graph.nodes) == ["input", "fc1", "relu", "fc2", "add", "output"]
    assert graph.nodes["add"].skip_type == "residual"
    assert ("input", "add") in graph.edges and ("fc2", "add") in graph.edges
    assert torch.equal(want, got)


class SplitCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.fa = nn.Linear(3, 4)
        self.fb = nn.Linear(5, 2)

    def forward(self, x):
        x1, x2 = torch.split(x, [3, 5], dim=1)
        a, b = self.fa(x1), self.fb(x2)
        return torch.cat([b, a, b], dim=1) * 0.5


def test_split_concat_order_and_scale():
    torch.manual_seed(1)
    graph, want, got = roundtrip_output(SplitCat(), torch.randn(2, 8))
    split = graph.nodes["split"]
    assert isinstance(split, ir.ChannelSplit) and split.split_sections == (3, 5)
    assert isinstance(graph.nodes["cat"], ir.Concat) and graph.nodes["cat"].num_inputs == 3
    assert [s for s, d in graph.edges if d == "cat"] == ["fb", "fa", "fb"]  # concatenation order kept
    assert isinstance(graph.nodes["mul"], ir.Scale)
    assert torch.equal(want, got)


class ChunkConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.left = nn.Conv2d(3, 2, 1)
        self.right = nn.Conv2d(3, 2, 3, padding="same")

    def forward(self, x):
        a, b = self.conv(x).chunk(2, dim=1)
        y = torch.cat([self.left(a), self.right(b)], dim=1)
        return torch.sigmoid(y.view(y.size(0), -1))


def test_chunk_same_padding_and_view_flatten():
    torch.manual_seed(2)
    graph, want, got = roundtrip_output(ChunkConv(), torch.randn(2, 2, 5, 5))
    assert graph.nodes["chunk"].split_sections == (3, 3)
    assert graph.nodes["right"].padding == (1, 1)
    assert isinstance(graph.nodes["view"], ir.Flatten) and graph.nodes["output"].shape == (100,)
    assert isinstance(graph.nodes["sigmoid"], ir.Sigmoid)
    assert torch.allclose(want, got, atol=1e-6)


def test_module_called_twice_gives_two_nodes():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(torch.tanh(self.fc(x)))

    torch.manual_seed(3)
    graph, want, got = roundtrip_output(Twice(), torch.randn(2, 4))
    assert list(graph.nodes) == ["input", "fc", "tanh", "fc_1", "output"]
    assert torch.equal(want, got)


def test_every_supported_layer_round_trips_exactly():
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 2), dilation=1, groups=1),
        nn.BatchNorm2d(8),
        nn.LeakyReLU(0.1),
        nn.Conv2d(8, 8, 3, padding=1, groups=4),
        nn.ELU(0.5),
        nn.AvgPool2d(2, ceil_mode=True),
        nn.Upsample(scale_factor=2),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(8 * 4 * 2, 16),
        nn.LayerNorm(16),
        nn.PReLU(),
        nn.GELU(approximate="tanh"),
        nn.Identity(),
        nn.Linear(16, 5, bias=False),
        nn.Softmax(dim=1),
    ).eval()
    x = torch.randn(2, 3, 8, 8)
    graph = bridge.to_ir(model, x)
    assert [type(n).__name__ for n in graph.nodes.values()][1:-1] == [
        "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "ELU", "AvgPool2d", "Upsample", "MaxPool2d", "Flatten",
        "Dropout", "Affine", "LayerNorm", "PReLU", "GELU", "Skip", "Linear", "Softmax",
    ]  # fmt: skip
    executor = bridge.ir_to_torch(graph)  # eval mode: BatchNorm with running statistics, like the model
    assert not executor.training
    with torch.no_grad():
        assert torch.equal(executor(x), model(x))


def test_fold_batchnorm_option():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    x = torch.randn(3, 2, 6, 6)
    kept = bridge.to_ir(model, x)
    with pytest.warns(UserWarning, match=r"fold_batchnorm: BatchNorm '1' folded .* change by float rounding"):
        folded = bridge.to_ir(model, x, fold_batchnorm=True)
    assert "1" in kept.nodes and "1" not in folded.nodes
    assert folded.metadata["folded_batchnorm"] == ["1"]
    executor = bridge.ir_to_torch(folded)
    with torch.no_grad():
        assert torch.allclose(executor(x), model(x), atol=1e-5)


def test_custom_map_overrides_and_unsupported_modules_are_named():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(4, 4)
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.rnn(x)[0])

    with pytest.raises(UnsupportedModuleError, match=r"module 'rnn' of type torch\.nn\.modules\.rnn\.GRU.*custom_map"):
        bridge.to_ir(Net(), torch.randn(1, 4))

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(nn.Linear(4, 4))
            self.act = Swish()

        def forward(self, x):
            return self.act(self.block(x))

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    with pytest.raises(ConversionError, match=r"operation 'mul' \(mul\) in module 'act' \(Swish\): only tensor \* "
                       r"number converts .*custom_map=\{Swish: fn\}"):  # fmt: skip
        bridge.to_ir(Wrapper(), torch.randn(1, 4))  # x * sigmoid(x) is a tensor product
    graph = bridge.to_ir(Wrapper(), torch.randn(1, 4), custom_map={Swish: lambda m: ir.Sigmoid()})
    assert type(graph.nodes["act"]).__name__ == "Sigmoid"


def test_unsupported_functions_are_named():
    class Net(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    with pytest.raises(ConversionError, match=r"operation 'exp' \(exp\) in .*has no TALON IR equivalent"):
        bridge.to_ir(Net(), torch.randn(1, 3))


def test_untraceable_forward_falls_back_to_hooks_and_warns():
    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 6)
            self.lif = snn.Leaky(beta=0.9, init_hidden=True)
            self.fc2 = nn.Linear(6, 2)

        def forward(self, x):
            h = self.fc1(x)
            if h.sum() > -1e9:  # data-dependent: symbolic tracing cannot decide
                h = self.lif(h)
            return self.fc2(h)

    model = Branchy()
    with pytest.warns(UserWarning, match="could not trace Branchy.forward"):
        graph = bridge.to_ir(model, torch.randn(1, 4))
    assert graph.edges == [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "output")]
    assert graph.metadata["exporter"].endswith("(execution hooks)")


def test_execution_trace_refuses_an_operation_it_cannot_convert():
    # Before: the execution trace wired fc's second call to fc's first (relu and * 2 lost) and warned.
    class Loop(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            for _ in range(int(x.shape[0] > 0) + 1):  # dynamic loop
                x = torch.relu(self.fc(x)) * 2
            return x

    with pytest.raises(ConversionError, match=r"operation 'relu' in Loop.forward computes an input of module 'fc'"):
        bridge.to_ir(Loop(), torch.randn(1, 3))


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        bridge.to_ir("model", torch.randn(1, 3))
    with pytest.raises(TypeError, match="batch dimension"):
        bridge.to_ir(nn.Linear(3, 3), [1, 2, 3])
    with pytest.raises(ValueError, match="weight_bits must be in"):
        bridge.to_ir(nn.Linear(3, 3), torch.randn(1, 3), spiking=True, weight_bits=40)


def test_executor_reexport_is_exact_and_tracks_training(tmp_path):
    rng = np.random.default_rng(0)
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2, 6, 6])),
            "conv": ir.SConv(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), padding=1),
            "split": ir.ChannelSplit(split_sections=[1, 3]),
            "dw": ir.SDConv(rng.standard_normal((3, 1, 3, 3)).astype(np.float32), padding=1),
            "cat": ir.Skip("concatenate"),
            "lif": ir.LIF(tau=np.full(4, 3.0), reset_mode="subtract", comparison=">", reset_timing="delayed"),
            "flat": ir.Flatten(),
            "fc": ir.SpikingAffine(
                rng.standard_normal((5, 144)).astype(np.float64), spike_mode="rate", weight_bits=6, accumulator_bits=20
            ),
            "output": ir.Output(np.array([5])),
        },
        [
            ("input", "conv"),
            ("conv", "split"),
            ("split", "cat"),
            ("split", "dw"),
            ("dw", "cat"),
            ("cat", "lif"),
            ("lif", "flat"),
            ("flat", "fc"),
            ("fc", "output"),
        ],
        metadata={"note": "kept"},
    )
    executor = bridge.ir_to_torch(graph, return_state=True)
    again = bridge.to_ir(executor, torch.randn(1, 2, 6, 6))
    assert ir.graph_differences(graph, again) == []  # float64 weights stay float64, types and hints kept
    with torch.no_grad():
        executor.module_of("fc").weight.mul_(2)
    trained = bridge.to_ir(executor, torch.randn(1, 2, 6, 6))
    assert trained.nodes["fc"].weight.dtype == np.float64
    assert np.allclose(trained.nodes["fc"].weight, graph.nodes["fc"].weight * 2, atol=1e-6)
    assert trained.edges == graph.edges and type(trained.nodes["dw"]) is ir.SDConv


def test_snntorch_model_returning_membranes_records_them():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.lif = snn.Leaky(beta=0.5)

        def forward(self, x):
            spk, mem = self.lif(self.fc(x))
            return spk, mem

    graph = bridge.to_ir(Net(), torch.randn(1, 3))
    assert graph.output_nodes == ["output"]
    assert graph.metadata["state_outputs_not_exported"] == ["lif"]


@pytest.mark.parametrize(
    ("module", "sample", "name", "kind"),
    [
        (nn.Linear(4, 3), torch.randn(2, 4), "linear", ir.Affine),
        (nn.Conv2d(1, 2, 3), torch.randn(2, 1, 6, 6), "conv2d", ir.Conv2d),
        (snn.Leaky(beta=0.9, init_hidden=True), torch.randn(2, 5), "leaky", ir.LIF),
        (snn.Leaky(beta=0.9), torch.randn(2, 5), "leaky", ir.LIF),
        (nn.ReLU(), torch.randn(2, 3), "relu", ir.ReLU),
    ],
)
def test_a_convertible_module_exported_on_its_own_is_its_node(module, sample, name, kind):
    # Before: tracing looked inside the module — nn.Linear failed on F.linear, and snnTorch's
    # untraceable forward went to the hooks, which saw no module: an Input -> Output graph.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = bridge.to_ir(module, sample)
    assert list(graph.nodes) == ["input", name, "output"] and isinstance(graph.nodes[name], kind)
    assert graph.metadata["source"].endswith(type(module).__qualname__)
    executor = bridge.ir_to_torch(graph)
    with torch.no_grad():
        want = module(sample)
        got = executor(sample)
    want = want[0] if isinstance(want, tuple) else want
    assert torch.equal(want, got[0] if isinstance(got, tuple) else got)


def test_a_network_computed_tensor_passed_by_keyword_is_not_dropped():
    class StateByKeyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.fc2, self.lif = nn.Linear(4, 4), nn.Linear(4, 4), snn.Leaky(beta=0.9)

        def forward(self, x):
            spk, _ = self.lif(self.fc(x), mem=self.fc2(x))
            return spk

    class InputByKeyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True)

        def forward(self, x):
            return self.lif(input_=self.fc(x))

    with pytest.raises(ConversionError, match="'lif': its state argument 'mem' is computed by the network"):
        bridge.to_ir(StateByKeyword(), torch.randn(1, 4))
    graph = bridge.to_ir(InputByKeyword(), torch.randn(1, 4))
    assert graph.edges == [("input", "fc"), ("fc", "lif"), ("lif", "output")]


def test_a_module_with_its_own_call_in_a_sequential_keeps_that_work():
    class DoubledLinear(nn.Linear):
        def __call__(self, x):
            return super().__call__(x) * 2

    class DoubledChain(nn.Sequential):
        def __call__(self, x):
            return super().__call__(x) * 2

    torch.manual_seed(0)
    for model in (nn.Sequential(DoubledLinear(4, 3), nn.ReLU()), nn.Sequential(DoubledChain(nn.Linear(4, 3)))):
        graph, want, got = roundtrip_output(model, torch.randn(2, 4))
        assert any(isinstance(n, ir.Scale) for n in graph.nodes.values()), list(graph.nodes)
        assert torch.equal(want, got)


def test_forward_hooks_are_named_in_a_warning():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    model[0].register_forward_hook(lambda m, a, out: out * 2)
    with pytest.warns(UserWarning, match=r"forward hooks on '0': the graph holds what the modules compute"):
        bridge.to_ir(model, torch.randn(2, 4))


def test_slices_of_a_neuron_tuple_keep_spikes_as_outputs_and_report_states():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 3), snn.Leaky(0.9, init_hidden=True, output=True)

        def forward(self, x):
            out = self.lif(self.fc(x))
            return out[::-1]

    for fx_only in (True, False):
        exporter = TALONExporter()
        exporter._record_first = not fx_only
        graph = exporter.export(Reversed(), torch.randn(2, 4))
        assert list(graph.nodes) == ["input", "fc", "lif", "output"], exporter._route
        assert graph.metadata["state_outputs_not_exported"] == ["lif"]


def test_a_returned_module_state_is_never_dropped_silently():
    class StateRead(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 3), snn.Leaky(0.9, init_hidden=True, output=True)

        def forward(self, x):
            spk, _ = self.lif(self.fc(x))
            return spk, self.lif.mem

    fx_only = TALONExporter()
    fx_only._record_first = False
    with pytest.raises(ConversionError, match=r"forward also returns 'lif.mem', not computed from the model's input"):
        fx_only.export(StateRead(), torch.randn(2, 4))
    fx_only = TALONExporter(lossy=True)  # asked for: exported without it, warned and recorded
    fx_only._record_first = False
    with pytest.warns(UserWarning, match=r"returns 'lif.mem', not computed from its input; not exported"):
        graph = fx_only.export(StateRead(), torch.randn(2, 4))
    assert graph.metadata["constant_outputs_not_exported"] == ["lif.mem"]
    assert bridge.to_ir(StateRead(), torch.randn(2, 4)).metadata["state_outputs_not_exported"] == ["lif"]
