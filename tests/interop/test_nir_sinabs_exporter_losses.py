"""Pinned Sinabs 3.1.3 behaviour (docs/nir.md, Framework profiles): its NIR exporter does not write a
layer's ``spike_fn``, ``reset_fn`` or ``tau_syn``, and its importer runs every IF/LIF as MultiSpike
with a subtractive reset and no synaptic current. talon's ``producer="sinabs"`` runs the file as
Sinabs' importer does, so it differs from a model that used them; restating the dropped options in
talon gives the model's spikes back."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talon import ir
from talon.interop.nir import from_nir

torch = pytest.importorskip("torch")
sl = pytest.importorskip("sinabs.layers")
sinabs_nir = pytest.importorskip("sinabs.nir")
activation = pytest.importorskip("sinabs.activation")

from .test_nir_profile_sinabs import B, T, sinabs_import, sinabs_run, talon_runs  # noqa: E402


def one_layer(neuron) -> tuple[torch.nn.Module, np.ndarray]:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), neuron)
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    return net, (np.random.default_rng(0).random((T, B, 3)) * 2).astype(np.float32)


def exported(net) -> ir.Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_nir(sinabs_nir.to_nir(net, torch.zeros(B, 3)), producer="sinabs")


@pytest.mark.parametrize(
    "neuron",
    [
        lambda: sl.IAFSqueeze(batch_size=B, spike_fn=activation.SingleSpike, reset_fn=activation.MembraneReset()),
        lambda: sl.LIFSqueeze(batch_size=B, tau_mem=5.0, norm_input=False, spike_fn=activation.SingleSpike),
        lambda: sl.LIFSqueeze(batch_size=B, tau_mem=5.0, tau_syn=3.0, norm_input=False),
    ],
    ids=["iaf-single-spike-reset-to-zero", "lif-single-spike", "lif-tau-syn"],
)
def test_sinabs_313_export_drops_spike_reset_and_synapse(neuron):
    assert version("sinabs") == "3.1.3"
    net, x = one_layer(neuron())
    own = sinabs_run(net, x)
    assert 0.1 < (own > 0).mean() < 0.9
    graph = exported(net)
    theirs = sinabs_run(sinabs_import(sinabs_nir.to_nir(net, torch.zeros(B, 3))), x)
    for engine, spikes in talon_runs(graph, x).items():
        assert np.array_equal(spikes, theirs), engine  # the profile: Sinabs' own reading of its file
        assert (spikes != own).sum() > 100, engine  # ... which is not the model


def test_restating_what_the_file_lost_gives_the_model_back():
    net, x = one_layer(sl.IAFSqueeze(batch_size=B, spike_fn=activation.SingleSpike,
                                     reset_fn=activation.MembraneReset()))  # fmt: skip
    graph = exported(net)
    (name,) = [k for k, node in graph.nodes.items() if isinstance(node, ir.IF)]
    node = graph.nodes[name]
    nodes = dict(graph.nodes)
    nodes[name] = ir.IF(**{**node.params(), "spike_mode": "binary", "reset_mode": "value",
                           "v_reset": np.zeros_like(node.v_threshold), "v_min": None})  # fmt: skip
    own = sinabs_run(net, x)
    for engine, spikes in talon_runs(ir.Graph(nodes, graph.edges), x).items():
        assert np.array_equal(spikes, own), engine


def version(package: str) -> str:
    from importlib.metadata import version as installed

    return installed(package)
