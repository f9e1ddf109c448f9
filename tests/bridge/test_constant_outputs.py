"""A ``forward`` that also returns a constant is treated alike on every export route
(talon.bridge.constant_outputs): refused with a ConversionError naming it, or — with ``lossy=True`` —
exported without it, with a warning and ``metadata["constant_outputs_not_exported"]``."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from talon.bridge import to_ir
from talon.bridge.to_ir import TALONExporter
from talon.ir import ConversionError


class ReturnsBuffer(nn.Module):
    """``return y, self.c``; with ``branch`` a data-dependent ``if`` that torch.fx cannot trace."""

    def __init__(self, branch: bool):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("c", torch.ones(3))
        self.branch = branch

    def forward(self, x):
        y = self.fc(x)
        if self.branch and bool(x.sum() > -1e9):  # always true; fx's proxy cannot decide it
            y = torch.relu(y) if False else y
        return y, self.c


class ReturnsFreshTensor(ReturnsBuffer):
    def forward(self, x):
        y = self.fc(x)
        if self.branch and bool(x.sum() > -1e9):
            y = y * 1 if False else y
        return torch.zeros(3), y


ROUTES = {"fx": False, "execution trace": True}
CASES = [(ReturnsBuffer, "c"), (ReturnsFreshTensor, "output 0")]


def _export(cls, branch: bool, **options):
    exporter = TALONExporter(**options)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.fx could not trace")  # the fallback's own notice
        graph = exporter.export(cls(branch), torch.randn(2, 4))
    return graph, exporter._route


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(("cls", "name"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_a_constant_output_is_refused_on_every_route(cls, name, route):
    with pytest.raises(ConversionError, match=rf"forward also returns '{name}', not computed from the model's input.*"
                                              r"pass lossy=True"):  # fmt: skip
        _export(cls, ROUTES[route])


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize(("cls", "name"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_lossy_exports_without_it_and_records_it_on_every_route(cls, name, route):
    with pytest.warns(
        UserWarning, match=rf"returns '{name}', not computed from its input; not exported \(lossy=True\)"
    ):
        graph, used = _export(cls, ROUTES[route], lossy=True)
    assert used == ("hooks" if ROUTES[route] else "fx")
    assert graph.metadata["constant_outputs_not_exported"] == [name]
    assert [type(n).__name__ for n in graph.nodes.values()] == ["Input", "Affine", "Output"]


def test_to_ir_takes_lossy_and_checks_it():
    with pytest.raises(ConversionError, match="'c'"):
        to_ir(ReturnsBuffer(False), torch.randn(2, 4))
    with pytest.warns(UserWarning, match="'c'"):
        assert to_ir(ReturnsBuffer(False), torch.randn(2, 4), lossy=True).metadata["constant_outputs_not_exported"] == [
            "c"
        ]
    with pytest.raises(TypeError, match="lossy must be a bool"):
        to_ir(ReturnsBuffer(False), torch.randn(2, 4), lossy="yes")
