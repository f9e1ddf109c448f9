"""snnTorch spikes with ``spike_grad(mem - threshold)`` in the forward pass: a function whose forward is
not the step ``x > 0`` is refused (the exported neuron would compute something else), every
``snntorch.surrogate`` function exports exactly, the surrogates TALON IR states become the node's
``surrogate``, and the others are recorded in the node's metadata with a warning."""

from __future__ import annotations

import re
import warnings

import pytest
import snntorch as snn
import snntorch.utils
import torch
from snntorch import surrogate
from torch import nn

from talon import bridge
from talon.ir import ConversionError

T, B = 30, 3


class SoftSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.sigmoid(4 * x)

    @staticmethod
    def backward(ctx, grad):
        return grad


def _model(spike_grad=None, **kwargs) -> nn.Module:
    return nn.Sequential(
        nn.Linear(10, 16),
        snn.Leaky(beta=0.8, init_hidden=True, spike_grad=spike_grad, **kwargs),
        nn.Linear(16, 4),
    )


@pytest.mark.parametrize(
    "spike_grad",
    [lambda x: torch.sigmoid(5 * x), lambda x: 2 * (x > 0).float(), lambda x: (x >= 0).float(), SoftSpike.apply],
    ids=["sigmoid", "graded", "greater-equal", "autograd-function"],
)
def test_a_spike_function_that_is_not_the_step_is_refused(spike_grad):
    with pytest.raises(ConversionError, match=r"module '1': its spike_grad's forward pass is not the step"):
        bridge.to_ir(_model(spike_grad), torch.randn(2, 10))


# snntorch.surrogate functions talon states exactly -> the node's surrogate
REPRESENTED = {
    "atan(alpha=5.0)": surrogate.atan(alpha=5.0),
    "superspike(k=25.0)": surrogate.fast_sigmoid(),
    "sigmoid(slope=25.0)": surrogate.sigmoid(),
    "straight_through": surrogate.straight_through_estimator(),
    "heaviside": surrogate.heaviside(),
    "triangle_slope(threshold=1.0)": surrogate.triangular(),
    "spike_rate_escape(beta=1.0, slope=25.0)": surrogate.spike_rate_escape(),
    "sparse_fast_sigmoid(k=25.0, b=1.0)": surrogate.SFS(),
}
# ... and those it cannot (a backward that draws noise): warned about, recorded in the metadata, the
# node keeps the default
UNREPRESENTED = {
    "SSO(mean=0, variance=0.2)": surrogate.SSO(),
    "SSO(mean=0.1, variance=0.5)": surrogate.SSO(mean=0.1, variance=0.5),
}


def _exact_forward(model, graph, xs):
    snntorch.utils.reset(model)
    with torch.no_grad():
        expected = torch.stack([model(x) for x in xs])
        got, _ = bridge.ir_to_torch(graph).run_sequence(xs)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("name", list(REPRESENTED))
def test_snntorch_surrogates_export_exactly_and_become_the_node_surrogate(name):
    torch.manual_seed(0)
    model = _model(REPRESENTED[name])
    xs = torch.randn(T, B, 10) * 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = bridge.to_ir(model, xs[0])
    assert graph.nodes["1"].surrogate == name
    assert "snntorch_spike_grad" not in graph.nodes["1"].metadata
    _exact_forward(model, graph, xs)


@pytest.mark.parametrize("name", list(UNREPRESENTED))
def test_other_snntorch_surrogates_export_exactly_and_are_recorded(name):
    torch.manual_seed(0)
    model = _model(UNREPRESENTED[name])
    xs = torch.randn(T, B, 10) * 3
    with pytest.warns(UserWarning, match=rf"spike_grad={re.escape(name)} has no TALON IR form"):
        graph = bridge.to_ir(model, xs[0])
    assert graph.nodes["1"].metadata["snntorch_spike_grad"] == name
    assert graph.nodes["1"].surrogate == "atan(alpha=2.0)"
    _exact_forward(model, graph, xs)


def test_the_default_surrogate_is_not_recorded():
    for model in (_model(), _model(surrogate.atan())):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            graph = bridge.to_ir(model, torch.randn(2, 10))
        assert "snntorch_spike_grad" not in graph.nodes["1"].metadata


def test_a_recurrent_neuron_records_its_surrogate_and_a_re_export_keeps_it():
    model = nn.Sequential(
        nn.Linear(4, 3), snn.RLeaky(beta=0.5, linear_features=3, init_hidden=True, spike_grad=surrogate.fast_sigmoid())
    )
    graph = bridge.to_ir(model, torch.randn(2, 4))
    assert graph.nodes["1"].nodes["neuron"].surrogate == "superspike(k=25.0)"
    again = bridge.to_ir(bridge.ir_to_torch(graph), torch.randn(2, 4))
    assert again.nodes["1"].nodes["neuron"].surrogate == "superspike(k=25.0)"
