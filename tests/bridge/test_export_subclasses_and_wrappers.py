"""A subclass of a convertible module that overrides how its output is computed is not exported as its
base class (the conversion reads only the parameters and would drop what the override computes);
a subclass that only changes initialisation still converts exactly. A wrapper (torch.compile,
DataParallel) exports as the model it wraps."""

from __future__ import annotations

import pytest
import torch
import torch.ao.nn.qat as qat
from torch import nn
from torch.ao.quantization import default_qat_qconfig

from talon import bridge, ir
from talon.ir import UnsupportedModuleError


class ScaledLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 3


class ClippedConv(nn.Conv2d):
    def forward(self, x):
        return self._conv_forward(x, self.weight.clamp(-0.05, 0.05), self.bias)


class StandardisedConv(nn.Conv2d):  # overrides only the method Conv2d.forward calls
    def _conv_forward(self, x, weight, bias):
        return super()._conv_forward(x, (weight - weight.mean()) / weight.std(), bias)


class ZeroInitLinear(nn.Linear):
    def reset_parameters(self):
        nn.init.normal_(self.weight, std=0.5)
        nn.init.zeros_(self.bias)


class Branchy(nn.Module):  # data-dependent control flow: exported from the execution trace
    def __init__(self):
        super().__init__()
        self.fc = ScaledLinear(10, 4)

    def forward(self, x):
        return self.fc(x) if x.sum() > -1e9 else x


CASES = {
    "forward": (
        lambda: nn.Sequential(ScaledLinear(10, 16), nn.ReLU(), nn.Linear(16, 4)),
        (4, 10),
        "ScaledLinear.forward",
    ),
    "conv forward": (lambda: nn.Sequential(ClippedConv(2, 4, 3), nn.ReLU()), (4, 2, 8, 8), "ClippedConv.forward"),
    "_conv_forward": (lambda: nn.Sequential(StandardisedConv(2, 4, 3)), (4, 2, 8, 8), "StandardisedConv._conv_forward"),
    "torch qat": (lambda: nn.Sequential(qat.Linear(10, 4, qconfig=default_qat_qconfig)), (4, 10), "Linear.forward"),
    "execution trace": (Branchy, (4, 10), "ScaledLinear.forward"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_subclass_overriding_forward_is_refused_naming_the_override(case):
    make, shape, method = CASES[case]
    torch.manual_seed(0)
    model = make().eval()
    with pytest.raises(UnsupportedModuleError, match=rf"overrides {method}, so the .* conversion would drop"):
        bridge.to_ir(model, torch.randn(*shape))


def test_a_subclass_changing_only_initialisation_converts_exactly():
    torch.manual_seed(0)
    model = nn.Sequential(ZeroInitLinear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(4, 10)
    executor = bridge.ir_to_torch(bridge.to_ir(model, x))
    with torch.no_grad():
        assert torch.equal(executor(x), model(x))


def test_a_custom_map_entry_for_the_subclass_is_used():
    model = nn.Sequential(ScaledLinear(10, 4))

    def tripled(mod):
        return ir.Affine(weight=(mod.weight.detach() * 3).numpy(), bias=(mod.bias.detach() * 3).numpy())

    graph = bridge.to_ir(model, torch.randn(2, 10), custom_map={ScaledLinear: tripled})
    x = torch.randn(5, 10)
    with torch.no_grad():
        torch.testing.assert_close(bridge.ir_to_torch(graph)(x), model(x))


def test_wrapped_models_export_as_the_model_they_wrap():
    """torch.compile, DataParallel (and DistributedDataParallel) run the wrapped model: the graph is
    its own, with its names, and a wrapped executor re-exports its graph exactly."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.randn(2, 10)
    graph = bridge.to_ir(model, x)
    executor = bridge.ir_to_torch(graph)
    for wrapped in (torch.compile(model), nn.DataParallel(model), torch.compile(nn.DataParallel(model))):
        assert ir.graph_differences(graph, bridge.to_ir(wrapped, x), metadata=False) == []
    assert ir.graph_differences(graph, bridge.to_ir(torch.compile(executor), x)) == []
