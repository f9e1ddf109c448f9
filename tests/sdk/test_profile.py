"""profile_graph / format_profile against hand-computed numbers."""

import numpy as np
import pytest

from talon import ir, sdk

from . import graphs


def test_chain_by_hand():
    p = sdk.profile_graph(graphs.chain())
    assert p.weight_memory == 344
    assert p.activation_memory == 8 * 4  # the largest output is the Input's 8 values
    assert p.state_memory == 4 * 4  # 4 LIF membranes
    assert p.total_memory == 344 + 32 + 16
    assert p.estimated_quantized_memory == 66 + 32 + 16  # 1 byte per parameter
    assert (p.mac_ops, p.spike_ops, p.total_ops) == (40, 4, 44)
    assert (p.fc_layers, p.conv_layers, p.lif_layers, p.neuron_layers, p.pooling_layers) == (2, 0, 1, 1, 0)
    assert (p.largest_layer, p.largest_layer_memory) == ("lif1", 20 * 8)  # float64 neuron parameters
    assert not (p.uses_spiking_affine or p.uses_skip or p.uses_sepconv)
    assert p.quantization_savings == pytest.approx(1 - 114 / 392)


def test_cnn_by_hand():
    p = sdk.profile_graph(graphs.cnn())
    assert p.activation_memory == 4 * 8 * 8 * 4  # conv and lif outputs [4, 8, 8]
    assert p.state_memory == 256 * 4 and p.spike_ops == 256
    assert (p.conv_layers, p.pooling_layers, p.mac_ops) == (1, 1, 5056)


def test_recurrent_edge_buffer_and_cuba_state():
    p = sdk.profile_graph(graphs.recurrent())
    assert p.state_memory == (2 * 5 + 5) * 4  # CubaLIF v and i, plus the recurrent edge's buffer
    assert (p.recurrent_edges, p.spike_ops, p.lif_layers, p.mac_ops) == (1, 5, 1, 55)


def test_nested_subgraph_state_is_included():
    p = sdk.profile_graph(graphs.nested())
    assert p.state_memory == (4 + 4) * 4  # inner LIF membranes + inner recurrent edge (w -> lif)
    assert p.recurrent_edges == 1


def test_hybrid_seed_model():
    p = sdk.profile_graph(graphs.hybrid())
    assert p.weight_memory == 808_872
    assert p.activation_memory == 16 * 28 * 28 * 4 == 50_176
    assert p.state_memory == 64 * 4
    assert p.total_memory == 808_872 + 50_176 + 256
    assert p.estimated_quantized_memory == 201_898 + 50_176 + 256
    assert (p.mac_ops, p.spike_ops, p.largest_layer) == (314_240, 64, "fc1")
    assert any("'fc1' holds 784.2 KB" in w for w in p.warnings)
    assert "8-bit quantization could reduce memory by ~70%" in p.recommendations
    assert any(r.startswith("Consider using SpikingAffine") for r in p.recommendations)


def test_recommendations_follow_the_graph():
    spiking = sdk.convert_to_spiking(graphs.hybrid())
    p = sdk.profile_graph(spiking)
    assert p.uses_spiking_affine
    assert not any("SpikingAffine" in r for r in p.recommendations)
    int8 = ir.Graph(
        {"input": ir.Input(np.array([4])), "fc": ir.Linear(np.ones((2, 4), np.int8)), "output": ir.Output([2])},
        [("input", "fc"), ("fc", "output")],
    )
    assert not any("8-bit" in r for r in sdk.profile_graph(int8).recommendations)  # already 1 byte per weight


def test_delay_lines_and_flags():
    g = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "d": ir.Delay(delay=np.array([0, 1, 3])),
            "skip": ir.Skip(skip_type="passthrough"),
            "output": ir.Output(np.array([3])),
        },
        [("input", "d"), ("d", "skip"), ("skip", "output")],
    )
    p = sdk.profile_graph(g)
    assert p.state_memory == 4 * 4 and p.uses_skip
    assert p.spike_ops == 0 and p.largest_layer == "d"


def test_format_profile():
    text = sdk.format_profile(sdk.profile_graph(graphs.hybrid()))
    lines = text.splitlines()
    assert lines[0] == "TALON Hardware Profile"
    assert "  Weight memory:     789.9 KB" in lines
    assert "  Activation memory: 49.0 KB (peak)" in lines
    assert "  MAC operations: 314.2K" in lines and "  Spike operations: 64" in lines
    assert "Warnings:" in lines and "Recommendations:" in lines
    with pytest.raises(TypeError):
        sdk.format_profile(graphs.hybrid())


def test_profile_to_dict_is_json_ready():
    d = sdk.profile_graph(graphs.recurrent()).to_dict()
    assert d["state_memory"] == 60 and isinstance(d["warnings"], list)
