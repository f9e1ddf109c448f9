"""Refusals of modules talon does not convert name the module, even when fx traced into its forward
(its operations would otherwise be blamed on the model's own forward, or on no module at all), and
for the frameworks whose own NIR exporter talon reads (Sinabs, SpikingJelly, Rockpool) they name
that route."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from talon import bridge
from talon.ir import ConversionError, UnsupportedModuleError

nt = pytest.importorskip("norse.torch")


@pytest.mark.parametrize(
    ("make", "kind", "operation"),
    [
        (lambda: nt.LIFRefracCell(), "LIFRefracCell", r"operation 'full' \(full\)"),
        (lambda: nt.IzhikevichCell(nt.functional.izhikevich.tonic_spiking), "IzhikevichCell", "adding a constant"),
    ],
    ids=["lif-refrac", "izhikevich"],
)
def test_an_operation_traced_inside_an_unconverted_module_names_that_module(make, kind, operation):
    model = nt.SequentialState(nn.Linear(12, 16), make())
    with pytest.raises(UnsupportedModuleError) as caught:
        bridge.to_ir(model, torch.randn(2, 12))
    message = str(caught.value)
    assert "module '1' of type norse.torch.module." in message.lower() and f"custom_map={{{kind}: fn}}" in message
    assert "SequentialState.forward" not in message
    assert re.search(operation, message)


def test_an_output_no_data_reaches_names_the_module_that_returned_it():
    """Norse's LSNNCell feeds its input into the current, which reaches the spike a step later: at
    the traced step its output depends on its state only."""
    model = nt.SequentialState(nn.Linear(12, 16), nt.LSNNCell())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the execution-trace route's warning
        with pytest.raises(UnsupportedModuleError, match=r"module '1' of type norse\.torch\.module\.lsnn\.LSNNCell "
                           r"has no TALON IR conversion, and the value forward returns is its output"):  # fmt: skip
            bridge.to_ir(model, torch.randn(2, 12))


def test_an_operation_of_a_user_submodule_names_it_and_one_of_the_root_does_not():
    class AddsOne(nn.Module):
        def forward(self, x):
            return x + 1.0

    class Root(nn.Module):
        def __init__(self, inner: bool):
            super().__init__()
            self.fc, self.block = nn.Linear(4, 4), AddsOne() if inner else nn.Identity()

        def forward(self, x):
            h = self.block(self.fc(x))
            return h if isinstance(self.block, AddsOne) else h + 1.0

    with pytest.raises(UnsupportedModuleError, match=r"operation 'add' \(add\) in module 'block' \(AddsOne\): adding "
                       r"a constant .* custom_map=\{AddsOne: fn\}"):  # fmt: skip
        bridge.to_ir(Root(inner=True), torch.randn(1, 4))
    with pytest.raises(ConversionError, match=r"^operation 'add' \(add\): adding a constant") as caught:
        bridge.to_ir(Root(inner=False), torch.randn(1, 4))
    assert not isinstance(caught.value, UnsupportedModuleError)


def _sinabs():
    sl = pytest.importorskip("sinabs.layers")
    return nn.Sequential(nn.Linear(10, 8), sl.IAF()), "sinabs", r"sinabs\.nir\.to_nir\(model, sample\)"


def _spikingjelly():
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    return (nn.Sequential(nn.Linear(10, 8), neuron.LIFNode(tau=2.0)), "spikingjelly",
            r"spikingjelly\.activation_based\.nir_exchange\.export_to_nir\(model, sample, dt\)")  # fmt: skip


@pytest.mark.parametrize("build", [_sinabs, _spikingjelly], ids=["sinabs", "spikingjelly"])
def test_neurons_of_frameworks_with_a_nir_exporter_point_to_it(build):
    model, producer, exporter = build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnsupportedModuleError, match=rf"module '1' .*\(nir\.write\(path, {exporter}\)\) and read "
                           rf"the file with talon\.interop\.nir\.read_nir\(path, producer='{producer}'\)"):  # fmt: skip
            bridge.to_ir(model, torch.randn(3, 10))


def test_a_learnable_graded_spikes_factor_of_one_exports_quietly_and_exactly():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), snn.Leaky(beta=0.9, graded_spikes_factor=1.0,
                                                     learn_graded_spikes_factor=True, init_hidden=True))  # fmt: skip
    xs = torch.randn(40, 3, 6) * 3
    always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # torch warns "Converting a tensor with requires_grad=True to a scalar" once
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            graph = bridge.to_ir(model, xs[0])
    finally:
        torch.set_warn_always(always)
    assert [str(w.message) for w in caught] == []
    pytest.importorskip("snntorch.utils").reset(model)
    with torch.no_grad():
        expected = torch.stack([model(x) for x in xs])
        got, _ = bridge.ir_to_torch(graph).run_sequence(xs)
    assert 0.05 < expected.mean() < 0.95
    assert torch.equal(got, expected)
