"""A model exported in training mode: the graph holds the eval() behaviour of BatchNorm and
Dropout (the running statistics the model has, not those a training-mode pass of the exporter
would leave), so the export says so, naming the modules; modules that do not depend on the mode stay
silent (a spiking model is usually exported straight after training, without .eval())."""

from __future__ import annotations

import warnings

import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge


def hybrid() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.2), nn.Linear(8, 3))
    model[1].running_mean.uniform_(-1, 1), model[1].running_var.uniform_(0.5, 2)
    return model


def test_batchnorm_and_dropout_in_training_mode_are_named_and_the_graph_is_the_eval_model():
    model = hybrid().train()
    with pytest.warns(UserWarning, match=r"'1' \(BatchNorm1d\), '2' \(Dropout\) in training mode: .*model.eval\(\)"):
        graph = bridge.to_ir(model, torch.randn(4, 6))
    assert all(m.training for m in model.modules())  # the model is left in its own mode
    x = torch.randn(5, 6)
    with torch.no_grad():
        assert torch.equal(bridge.ir_to_torch(graph)(x), model.eval()(x))


@pytest.mark.parametrize(
    "model",
    [
        hybrid().eval(),
        nn.Sequential(nn.Linear(6, 3), nn.Dropout(0.0)).train(),
        nn.Sequential(nn.Linear(6, 3), snn.Leaky(0.9, init_hidden=True)).train(),
    ],
)
def test_modules_that_do_not_depend_on_the_mode_do_not_warn(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bridge.to_ir(model, torch.randn(4, 6))
