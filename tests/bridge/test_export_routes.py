"""to_ir's fast routes (a plain Sequential chain, one recorded forward pass) give exactly the graph
fx tracing gives — nodes, names, edges, parameters, metadata, fingerprint, recorded shapes — and
fall through to fx whenever they cannot prove the graph complete."""

from __future__ import annotations

import warnings

import pytest
import snntorch as snn
import torch
from norse.torch import LIFBoxCell
from torch import nn

from talon import bridge, ir
from talon.bridge.modules import ChannelSplitModule, ConcatModule
from talon.bridge.to_ir import TALONExporter
from talon.ir.compare import graph_differences
from talon.sdk.fingerprint import fingerprint_graph


def _export(model, sample, *, fx_only=False, **options):
    custom_map = options.pop("custom_map", None)
    exporter = TALONExporter(**options)
    exporter._record_first = not fx_only
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = exporter.export(model, sample, custom_map=custom_map)
    return graph, exporter, [str(w.message) for w in caught]


def assert_same_as_fx(model, sample, route, **options):
    """The default export takes ``route`` and equals the fx-only export in every respect (or
    raises the very error it raises)."""
    try:
        fx_graph, fx_exporter, fx_warnings = _export(model, sample, fx_only=True, **options)
    except Exception as exc:
        with pytest.raises(type(exc)) as raised:
            _export(model, sample, **options)
        assert str(raised.value) == str(exc)
        return None
    graph, exporter, caught = _export(model, sample, **options)
    assert exporter._route == route
    assert graph_differences(fx_graph, graph) == []
    assert fingerprint_graph(graph, include_metadata=True) == fingerprint_graph(fx_graph, include_metadata=True)
    assert (exporter._input_shapes, exporter._output_shapes) == (fx_exporter._input_shapes, fx_exporter._output_shapes)
    assert caught == fx_warnings
    return graph


# ---- models whose graph the fast routes give --------------------------------------------------


class TutorialSNN(nn.Module):
    """docs/snntorch.md's model: ``forward(x, mem1=None, mem2=None)``, membranes from ``init_leaky``."""

    def __init__(self, per_neuron=False):
        super().__init__()

        def leaky(n):
            return snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n)) if per_neuron else snn.Leaky(0.9)

        self.fc1, self.lif1, self.fc2, self.lif2 = nn.Linear(12, 10), leaky(10), nn.Linear(10, 4), leaky(4)

    def forward(self, x, mem1=None, mem2=None):
        if mem1 is None:
            mem1 = self.lif1.init_leaky()
        if mem2 is None:
            mem2 = self.lif2.init_leaky()
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, mem1, mem2


class HiddenMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(12, 10), nn.Linear(10, 4)
        self.lif1 = snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True)
        self.lif2 = snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x))))


class TimeLoop(nn.Module):
    """One module called several times, its state carried by tuple unpacking."""

    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(6, 6), snn.Leaky(beta=0.8)

    def forward(self, x):
        mem = None
        for _ in range(3):
            spk, mem = self.lif(self.fc(x), mem)
        return spk


class NorseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.cell = nn.Linear(6, 5), LIFBoxCell()

    def forward(self, x, state=None):
        z, state = self.cell(self.fc(x), state)
        return z


class TwoInputs(nn.Module):
    """Two samples, a multi-output split and a concatenation, all as modules."""

    def __init__(self):
        super().__init__()
        self.fa, self.fb = nn.Linear(4, 6), nn.Linear(3, 6)
        self.split, self.cat = ChannelSplitModule((2, 4)), ConcatModule(dim=1)
        self.out = nn.Linear(12, 2)

    def forward(self, a, b):
        left, right = self.split(self.fa(a))
        return self.out(self.cat([right, self.fb(b), left]))


class Nested(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.Sequential(nn.ReLU(), nn.Linear(8, 3)))
        self.head = snn.Leaky(beta=0.7, init_hidden=True, output=True)

    def forward(self, x):
        return self.head(self.body(x))


class Halves(nn.Module):
    """A leaf returning a list (converted by a custom map)."""

    def forward(self, x):
        return list(torch.split(x, 2, dim=1))


HALVES = {Halves: lambda m: ir.ChannelSplit(split_sections=(2, 2), dim=1)}


class SwapHalves(nn.Module):
    def __init__(self, grow=False):
        super().__init__()
        self.halves, self.cat, self.fc, self.grow = Halves(), ConcatModule(dim=1), nn.Linear(4, 2), grow

    def forward(self, x):
        parts = self.halves(x)
        if self.grow:  # the list changes after the module returned it: fx traces that as an operation
            parts.append(self.fc(x))
            return self.cat(parts)
        first, second = parts
        return self.cat([second, first])


def _executor():
    return bridge.ir_to_torch(bridge.to_ir(nn.Sequential(nn.Linear(5, 5), nn.ReLU()), torch.randn(1, 5)))


class WithExecutor(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre, self.inner = nn.Linear(4, 5), _executor()

    def forward(self, x):
        return self.inner(self.pre(x))


def _hidden_chain():
    return nn.Sequential(
        nn.Linear(12, 8), snn.Leaky(beta=0.9, init_hidden=True),
        nn.Linear(8, 3), snn.Leaky(beta=0.8, init_hidden=True, output=True),
    )  # fmt: skip


def _nested_chain():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.Sequential(nn.Identity(), nn.MaxPool2d(2)), nn.Flatten(),
        nn.Dropout(0.3), nn.Sequential(nn.Linear(4 * 4 * 4, 6), nn.Sequential()), nn.Identity(),
    ).eval()  # fmt: skip


def _shared():
    fc = nn.Linear(5, 5)
    return nn.Sequential(fc, nn.Tanh(), fc)


SEQUENTIAL = {
    "leaves and hidden neurons": lambda: (_hidden_chain(), torch.rand(2, 12) * 3),
    "nested, identity and eval dropout": lambda: (_nested_chain(), torch.randn(2, 1, 8, 8)),
    "a shared module": lambda: (_shared(), torch.randn(1, 5)),
    "hooks on its modules": lambda: (
        _hooked(nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU()))),
        torch.rand(2, 4),
    ),
    "an executor inside": lambda: (nn.Sequential(nn.Linear(3, 5), _executor()), torch.randn(2, 3)),
}
RECORDED = {
    "tutorial SNN": lambda: (TutorialSNN(), torch.rand(2, 12) * 2),
    "tutorial SNN, per-neuron": lambda: (TutorialSNN(per_neuron=True), torch.rand(2, 12) * 2),
    "hidden-state MLP": lambda: (HiddenMLP(), torch.rand(1, 12)),
    "time loop": lambda: (TimeLoop(), torch.rand(2, 6)),
    "norse cell": lambda: (NorseNet(), torch.rand(1, 6)),
    "two inputs, split and concat": lambda: (TwoInputs(), (torch.randn(2, 4), torch.randn(2, 3))),
    "nested sequentials under a custom forward": lambda: (Nested(), torch.rand(2, 8)),
    "a nested executor": lambda: (WithExecutor(), torch.randn(3, 4)),
}


@pytest.mark.parametrize("case", list(SEQUENTIAL))
def test_a_sequential_chain_is_fx_graph(case):
    torch.manual_seed(0)
    assert_same_as_fx(*SEQUENTIAL[case](), "sequential")


@pytest.mark.parametrize("case", list(RECORDED))
def test_a_recorded_forward_is_fx_graph(case):
    torch.manual_seed(0)
    assert_same_as_fx(*RECORDED[case](), "recorded")


def test_export_options_and_custom_maps_on_the_fast_routes():
    torch.manual_seed(1)

    class Swish(nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act, self.bn = nn.Linear(4, 4), Swish(), nn.BatchNorm1d(4)

        def forward(self, x):
            return self.act(self.bn(self.fc(x)))

    options = {"spiking": True, "weight_bits": 6, "accumulator_bits": 12, "fold_batchnorm": True,
               "custom_map": {Swish: lambda m: ir.Sigmoid()}}  # fmt: skip
    graph = assert_same_as_fx(Net().eval(), torch.randn(2, 4), "recorded", **options)
    assert isinstance(graph.nodes["fc"], ir.SpikingAffine) and "bn" not in graph.nodes
    assert_same_as_fx(nn.Sequential(nn.Linear(4, 4), Swish()), torch.randn(2, 4), "sequential", **options)
    assert assert_same_as_fx(SwapHalves(), torch.randn(2, 4), "recorded", custom_map=HALVES) is not None
    assert_same_as_fx(SwapHalves(grow=True), torch.randn(2, 4), "fx", custom_map=HALVES)  # fx's error


# ---- what the recording cannot prove goes to fx -------------------------------------------------


class AddAfter(nn.Module):  # an operation between modules
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) + x


class FlattenFirst(nn.Module):  # an operation on the input
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 2)

    def forward(self, x):
        return self.fc(x.flatten(1))


class IdentityInside(nn.Module):  # a leaf returns its input: which value a later use means is unknown
    def __init__(self):
        super().__init__()
        self.skip, self.fc = nn.Identity(), nn.Linear(4, 4)

    def forward(self, x):
        self.skip(x)
        return self.fc(x)


class HandedOver(nn.Module):  # data reaches a leaf through its state, not its arguments
    def __init__(self):
        super().__init__()
        self.fc, self.lif = nn.Linear(4, 4), snn.Leaky(beta=0.9)

    def forward(self, x):
        cur = self.fc(x)
        self.lif.mem = cur
        return self.lif(cur)[0]


class NumberDefault(nn.Module):  # a parameter fx traces as an input
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, gain=2.0):
        return self.fc(x)


class UsesWeight(nn.Module):  # a parameter used outside its module (fx: an unsupported operation)
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        self.fc.weight.sum()  # unused, but fx records it
        return self.fc(x)


def _hooked(model):
    """Hooks run where fx's shape pass runs them (leaves) or not at all (containers): the chain
    may have them, a recorded forward may not (a hook could hand a value over unseen)."""
    for module in model.modules():
        module.register_forward_hook(lambda m, a, out: out * 1.0 if isinstance(out, torch.Tensor) else out)
    return model


FALLBACKS = {
    "add between modules": lambda: (AddAfter(), torch.randn(2, 4), "fx"),
    "flatten of the input": lambda: (FlattenFirst(), torch.randn(2, 3, 4), "fx"),
    "identity inside a custom forward": lambda: (IdentityInside(), torch.randn(2, 4), "fx"),
    "data handed over by attribute": lambda: (HandedOver(), torch.randn(2, 4), "hooks"),
    "a non-None default": lambda: (NumberDefault(), torch.randn(2, 4), "fx"),
    "a parameter used in forward": lambda: (UsesWeight(), torch.randn(2, 4), "fx"),
    "a module with hooks": lambda: (_hooked(HiddenMLP()), torch.rand(2, 12), "fx"),
    "torch calls after a module ran": lambda: (
        nn.Sequential(nn.Linear(12, 12), TutorialSNN()),
        torch.rand(1, 12),
        "fx",
    ),
}


@pytest.mark.parametrize("case", list(FALLBACKS))
def test_what_cannot_be_proven_is_traced_with_fx(case):
    torch.manual_seed(2)
    model, sample, route = FALLBACKS[case]()
    assert_same_as_fx(model, sample, route)


def test_errors_keep_the_fx_messages():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.rnn = nn.Linear(3, 3), nn.GRU(3, 3)

        def forward(self, x):
            return self.rnn(self.fc(x))

    with pytest.raises(ir.UnsupportedModuleError, match=r"module 'rnn' of type torch\.nn\.modules\.rnn\.GRU"):
        bridge.to_ir(Net(), torch.randn(2, 3))
    with pytest.raises(ir.UnsupportedModuleError, match=r"module '1' of type torch\.nn\.modules\.rnn\.GRU"):
        bridge.to_ir(nn.Sequential(nn.Linear(3, 3), nn.GRU(3, 3)), torch.randn(2, 3))


def test_the_recording_follows_the_branch_the_model_takes():
    """A type check on the input is decided by the real tensor (fx's proxy is no Tensor and
    would skip ``fc``): the graph computes what the model computes."""

    class Checked(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(4, 4), snn.Leaky(beta=0.9, init_hidden=True)

        def forward(self, x):
            if isinstance(x, torch.Tensor):
                x = self.fc(x)
            return self.lif(x)

    model, x = Checked(), torch.rand(2, 4) * 3
    graph, exporter, _ = _export(model, x)
    assert exporter._route == "recorded" and list(graph.nodes) == ["input", "fc", "lif", "output"]
    executor = bridge.ir_to_torch(graph)
    with torch.no_grad():
        assert torch.equal(executor(x), model(x))
