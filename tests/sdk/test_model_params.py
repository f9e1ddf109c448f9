"""The model's own parameter count next to the stored count (``talon.ir.counting``).

The IR stores a neuron parameter per neuron even when the source model has one value for the layer
(snnTorch ``Leaky(beta=0.9)``, Spyx ``LIF(beta=0.9)``). ``total_params`` keeps the documented rule
(every stored element); ``weight_params`` must equal the framework's own count of weights and
biases, and ``neuron_constants`` counts a layer-uniform neuron array once.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from talon import ir, sdk
from talon.examples import chain, hybrid_graph, leaky, uniform
from talon.ir.counting import count_node, is_uniform
from tests.cli.test_cli import run

WIDTH = 300  # a wide layer: the per-neuron copies dominate the neuron count


def test_uniform_arrays_count_once_per_layer_by_hand():
    """LIF(6): tau = r = 10 everywhere, v_leak 0, v_threshold (1, 1, 1, 1, 1, 2), v_reset 0.

    stored: 5 arrays x 6 = 30; constants: tau 1 + r 1 + v_leak 1 + v_threshold 6 + v_reset 1 = 10.
    bytes: float64 arrays, 30 x 8 = 240 stored; model 10 x 8 = 80."""
    node = leaky(6, tau=np.full(6, 10.0), r=np.full(6, 10.0), v_threshold=np.array([1, 1, 1, 1, 1, 2.0]))
    node.infer_types([(6,)])
    c = count_node(node)
    assert (c.params, c.neuron_params, c.neuron_constants, c.model_params) == (30, 30, 10, 10)
    assert (c.nbytes, c.model_nbytes) == (240, 80)
    weights = ir.Affine(np.ones((6, 4), np.float32), np.zeros(6, np.float32))
    c = count_node(weights)  # not a neuron: every element is the model's
    assert (c.params, c.neuron_params, c.neuron_constants, c.model_params, c.model_nbytes) == (30, 0, 0, 30, 120)


def test_is_uniform():
    assert is_uniform(np.full((3, 4), 0.5)) and is_uniform(np.zeros(0)) and is_uniform(np.array(7.0))
    assert is_uniform(np.full(3, np.nan)) and not is_uniform(np.array([np.nan, 1.0]))
    assert not is_uniform(np.array([1.0, 1.0, 1.0 + 1e-12]))


def test_graph_totals_and_subgraphs():
    """hybrid_graph: 201,578 weights and biases (PyTorch's count) + LIF(64) with 5 uniform arrays."""
    graph = hybrid_graph()
    stats = sdk.analyze_graph(graph)
    assert stats.total_params == 201_898  # the documented rule, unchanged
    assert (stats.weight_params, stats.neuron_params, stats.neuron_constants) == (201_578, 320, 5)
    assert stats.model_params == 201_583
    assert stats.model_bytes == stats.total_bytes - 320 * 8 + 5 * 8
    lif = next(layer for layer in stats.layers if layer.node_type == "LIF")
    assert (lif.params, lif.model_params) == (320, 5)
    outer = ir.Graph(
        {"input": ir.Input(np.array([1, 28, 28])), "net": graph, "output": ir.Output(np.array([10]))},
        [("input", "net"), ("net", "output")],
    )
    nested = sdk.analyze_graph(outer)
    assert (nested.model_params, nested.neuron_constants) == (201_583, 5)
    assert sdk.analyze_node("net", graph).model_params == 201_583
    profile = sdk.profile_graph(graph)
    assert (profile.weight_memory, profile.model_weight_memory) == (stats.total_bytes, stats.model_bytes)
    assert "Model parameters: 201,583 (201,578 weights and biases + 5 neuron constants)" in sdk.summarize(graph)
    lines = sdk.format_profile(profile).splitlines()
    assert lines[4:6] == [
        "  Weight memory:     789.9 KB",  # the documented line, unchanged
        "    model's own:     787.5 KB (layer-uniform neuron parameters once)",
    ]


def test_no_neurons_no_extra_line():
    rng = np.random.default_rng(0)
    graph = chain([4], ("fc", ir.Affine(uniform(rng, (3, 4), 4), uniform(rng, 3, 4))))
    stats = sdk.analyze_graph(graph)
    assert stats.model_params == stats.total_params == stats.weight_params == 15
    assert "Model parameters" not in sdk.summarize(graph)
    assert "model's own" not in sdk.format_profile(sdk.profile_graph(graph))


def test_snntorch_counts_match_torch():
    """A shared decay (beta=0.9, a buffer) adds no torch parameter; a learned per-neuron decay adds
    one per neuron, which the IR holds twice (tau and r both follow from beta)."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from talon import bridge

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(20, WIDTH),
        snn.Leaky(beta=0.9, init_hidden=True),
        torch.nn.Linear(WIDTH, 10),
        snn.Leaky(beta=torch.linspace(0.5, 0.9, 10), learn_beta=True, init_hidden=True),
    )
    graph = bridge.to_ir(model, torch.zeros(1, 20))
    stats = sdk.analyze_graph(graph)
    linear = sum(p.numel() for name, p in model.named_parameters() if not name.endswith("beta"))
    assert linear == 20 * WIDTH + WIDTH + WIDTH * 10 + 10
    assert stats.weight_params == linear
    assert stats.neuron_params == 5 * WIDTH + 5 * 10  # what total_params adds per neuron
    assert stats.neuron_constants == 5 + (2 * 10 + 3)  # uniform layer: 5; learned beta: tau, r per neuron
    assert stats.model_params == linear + 28
    assert stats.total_params == linear + 5 * (WIDTH + 10)


def test_spyx_counts_match_nnx_params():
    """Spyx LIF(beta=0.9) holds one scalar Param; LIF without beta one Param per neuron."""
    jax = pytest.importorskip("jax")
    nnx = pytest.importorskip("flax.nnx")
    spyx_nn = pytest.importorskip("spyx.nn")
    from talon.interop import spyx as tspyx

    rngs = nnx.Rngs(0)
    model = spyx_nn.Sequential(
        nnx.Linear(20, WIDTH, rngs=rngs),
        spyx_nn.LIF((WIDTH,), beta=0.9, rngs=rngs),
        nnx.Linear(WIDTH, 10, rngs=rngs),
        spyx_nn.LIF((10,), rngs=rngs),
    )
    graph = tspyx.to_ir(model, {"input": (20,)})
    stats = sdk.analyze_graph(graph)
    nnx_params = sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
    betas = 1 + 10  # the scalar beta, the per-neuron betas
    assert stats.weight_params == nnx_params - betas == 20 * WIDTH + WIDTH + WIDTH * 10 + 10
    assert stats.neuron_constants == 5 + (2 * 10 + 3)
    assert stats.total_params == stats.weight_params + 5 * (WIDTH + 10)


def test_cli_reports_both_counts(tmp_path):
    path = tmp_path / "m.t1c"
    ir.write(path, hybrid_graph())
    doc = json.loads(run("analyze", path, "--json", "-v").stdout)
    assert (doc["total_params"], doc["model_params"], doc["weight_params"], doc["neuron_constants"]) == (
        201_898,
        201_583,
        201_578,
        5,
    )
    assert {layer["name"]: layer["model_params"] for layer in doc["layers"]}["lif"] == 5
    profile = json.loads(run("profile", path, "--json").stdout)
    assert profile["model_weight_memory"] == doc["model_bytes"] < profile["weight_memory"]
    text = run("analyze", path).stdout
    assert "Model parameters: 201,583 (201,578 weights and biases + 5 neuron constants)" in text
