"""analyze_graph / analyze_node / summarize / format_* against hand-computed numbers."""

from dataclasses import dataclass

import numpy as np
import pytest

from talon import ir, sdk
from talon.ir.counting import count_node

from . import graphs


def test_chain_by_hand():
    s = sdk.analyze_graph(graphs.chain())
    # fc1 8*4 + 4, lif1 5 arrays * 4 neurons, fc2 4*2 + 2
    assert s.total_params == 36 + 20 + 10
    # float32 weights, float64 neuron parameters
    assert s.total_bytes == 36 * 4 + 20 * 8 + 10 * 4
    assert s.total_macs == 8 * 4 + 4 * 2
    assert s.total_flops == 2 * s.total_macs
    assert (s.node_count, s.edge_count, s.depth, s.width) == (5, 4, 4, 1)
    assert s.type_counts == {"Input": 1, "Affine": 2, "LIF": 1, "Output": 1}
    assert s.memory_breakdown == {"Affine": 184, "LIF": 160}
    assert (s.lif_count, s.affine_count, s.conv_count, s.subgraph_count) == (1, 2, 0, 0)
    assert s.input_shapes == {"input": (8,)} and s.output_shapes == {"output": (2,)}
    assert s.spiking_neurons == 4 and s.recurrent_edge_count == 0 and s.uncounted == []
    fc1 = s.layers[1]
    assert (fc1.name, fc1.node_type, fc1.params, fc1.bytes, fc1.macs, fc1.flops) == ("fc1", "Affine", 36, 144, 32, 64)
    assert (fc1.input_shape, fc1.output_shape) == ((8,), (4,))
    assert fc1.config == {"weight_shape": (4, 8), "bias_shape": (4,)}


def test_cnn_by_hand():
    s = sdk.analyze_graph(graphs.cnn())
    conv = 4 * 8 * 8 * (2 * 3 * 3)  # C_out * H_out * W_out * (C_in / groups) * kH * kW
    pool = (4 * 4 * 4) * (2 * 2)  # AvgPool2d: outputs * window
    fc = 64 * 3
    assert s.total_macs == conv + pool + fc == 5056
    assert s.total_params == (72 + 4) + 5 * 4 + (192 + 3)  # the LIF parameters are per channel (4,)
    assert s.conv_count == 1 and s.depth == 6
    assert s.spiking_neurons == 4 * 8 * 8  # neurons = elements of the layer, not of the parameters


def test_residual_block_counts_the_residual_sum():
    s = sdk.analyze_graph(graphs.residual())
    conv = 4 * 6 * 6 * 4 * 9
    assert s.total_macs == 2 * conv + 4 * 6 * 6
    add = next(layer for layer in s.layers if layer.name == "add")
    assert add.macs == 144
    assert (s.depth, s.width) == (5, 1)


def test_recurrent_graph_counts_recurrent_weights_and_ignores_recurrent_edges_for_depth():
    s = sdk.analyze_graph(graphs.recurrent())
    assert s.total_macs == 3 * 5 + 5 * 5 + 5 * 2 + 5  # fc_in, w_rec, fc_out, lif sums two edges
    assert s.recurrent_edge_count == 1
    # levels: input 0, fc_in 1, lif 2, w_rec 3, fc_out 3, output 4
    assert (s.depth, s.width) == (4, 2)
    assert s.total_params == 20 + 7 * 5 + 25 + 12  # CubaLIF holds 7 arrays


def test_hybrid_seed_model():
    s = sdk.analyze_graph(graphs.hybrid())
    assert s.total_params == 160 + 200_768 + 320 + 650 == 201_898
    assert s.total_bytes == (160 + 200_768 + 650) * 4 + 320 * 8 == 808_872
    assert s.total_macs == 16 * 28 * 28 * 9 + 3136 * 64 + 64 * 10 == 314_240
    assert s.depth == 8
    assert list(s.type_counts.items()) == [
        ("Input", 1), ("Conv2d", 1), ("ReLU", 1), ("MaxPool2d", 1), ("Flatten", 1), ("Affine", 2), ("LIF", 1),
        ("Output", 1),
    ]  # fmt: skip


def test_subgraph_nodes_are_counted_with_qualified_names():
    s = sdk.analyze_graph(graphs.nested())
    names = [layer.name for layer in s.layers]
    assert names == ["input", "fc", "rnn.input", "rnn.lif", "rnn.w", "rnn.output", "out_fc", "output"]
    assert s.node_count == 5 and s.subgraph_count == 1
    assert s.total_params == 16 + 20 + 16 + 10
    assert s.total_macs == 12 + 16 + 8 + 4  # the inner LIF sums its input and the recurrent edge
    sub = sdk.analyze_node("rnn", graphs.nested().nodes["rnn"])
    assert (sub.node_type, sub.params, sub.macs, sub.input_shape) == ("Graph", 36, 20, (4,))


def test_width_of_parallel_branches():
    g = ir.Graph(
        {
            "input": ir.Input(np.array([2, 3])),
            "a": ir.ReLU(),
            "b": ir.Sigmoid(),
            "cat": ir.Concat(),
            "output": ir.Output(np.array([4, 3])),
        },
        [("input", "a"), ("input", "b"), ("a", "cat"), ("b", "cat"), ("cat", "output")],
    )
    s = sdk.analyze_graph(g)
    assert (s.depth, s.width) == (3, 2)
    assert s.total_macs == 0  # concatenation adds nothing


def _single(node, shape, n_in=1):
    nodes = {f"input{i}": ir.Input(np.array(shape)) for i in range(n_in)}
    nodes["node"] = node
    g = ir.Graph(nodes, [(f"input{i}", "node") for i in range(n_in)], validate=False)
    g.validate()
    return count_node(g.nodes["node"], n_in)


f32 = np.float32


@pytest.mark.parametrize(
    ("node", "shape", "macs"),
    [
        (ir.Conv2d(np.ones((8, 2, 3, 5), f32), stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2),
         (4, 10, 12), 8 * 8 * 4 * (2 * 3 * 5)),
        (ir.SDConv(np.ones((5, 1, 3, 3), f32), padding=1), (5, 9, 9), 5 * 9 * 9 * 9),
        (ir.SepConv2d(np.ones((3, 1, 3, 3), f32), np.ones((7, 3, 1, 1), f32), stride=2, padding=1),
         (3, 9, 9), 3 * 5 * 5 * 9 + 7 * 5 * 5 * 3),
        (ir.Conv1d(np.ones((4, 3, 5), f32), stride=2, padding=1, dilation=2), (3, 20), 4 * 7 * 3 * 5),
        (ir.AvgPool2d(kernel_size=(2, 3)), (2, 8, 9), 2 * 4 * 3 * 6),
        (ir.SumPool2d(kernel_size=2, stride=1), (2, 5, 5), 2 * 4 * 4 * 4),
        (ir.MaxPool2d(kernel_size=2), (2, 4, 4), 0),
        (ir.Affine(np.ones((5, 7), f32)), (3, 7), 3 * 7 * 5),
        (ir.Linear(np.ones((5, 7), f32)), (7,), 35),
        (ir.Scale(np.ones(6, f32)), (6,), 6),
        (ir.BatchNorm2d(3), (3, 4, 4), 48),
        (ir.LayerNorm([4, 2], np.ones((4, 2), f32), np.zeros((4, 2), f32)), (3, 4, 2), 24),
        (ir.LayerNorm([4, 2]), (3, 4, 2), 0),
        (ir.Upsample(scale_factor=2, mode="bilinear"), (3, 4, 5), 4 * 3 * 8 * 10),
        (ir.Upsample(scale_factor=2), (3, 4, 5), 0),
        (ir.LIF(tau=np.full(3, 2.0)), (3,), 0),
    ],
)  # fmt: skip
def test_mac_rule_per_primitive(node, shape, macs):
    assert _single(node, shape).macs == macs


def test_fan_in_sums_count_except_concatenation():
    assert _single(ir.Skip(skip_type="residual"), (2, 2), n_in=3).macs == 2 * 4
    assert _single(ir.ReLU(), (5,), n_in=2).macs == 5
    assert _single(ir.Concat(), (2, 2), n_in=3).macs == 0
    assert _single(ir.Skip(skip_type="concatenate"), (2, 2), n_in=2).macs == 0


def test_state_values_per_neuron_type():
    assert _single(ir.CubaLIF(tau_syn=2.0, tau_mem=4.0), (3,)).state_values == 6
    assert _single(ir.LI(tau=2.0), (3,)).state_values == 3
    assert _single(ir.Delay(delay=np.array([0, 1, 3])), (3,)).state_values == 4
    assert _single(ir.Threshold(), (3,)).state_values == 0


@dataclass(eq=False)
class Mystery(ir.Node):
    """An unregistered custom node without a counting rule."""

    gain: float = 2.0


def test_unknown_node_types_and_unknown_shapes_are_reported_as_uncounted():
    g = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "m": Mystery(),
            "floating": ir.Conv2d(np.ones((2, 1, 3, 3), f32)),  # no incoming edge: no input shape
            "output": ir.Output(np.array([3])),
        },
        [("input", "m"), ("m", "output")],
    )
    s = sdk.analyze_graph(g)
    assert s.uncounted == ["m", "floating"]
    assert s.total_macs == 0
    assert "Not counted" in sdk.summarize(g)


def test_paths_are_accepted_and_give_the_same_numbers(tmp_path):
    path = tmp_path / "h.t1c"
    ir.write(path, graphs.hybrid())
    assert sdk.analyze_graph(path) == sdk.analyze_graph(graphs.hybrid())
    assert sdk.analyze_graph(str(path)).total_params == 201_898


def test_summarize_text():
    text = sdk.summarize(graphs.hybrid())
    assert text.splitlines()[:4] == [
        "TALON IR Graph Summary",
        "=" * 50,
        "Nodes: 9  |  Edges: 8  |  Depth: 8  |  Width: 1",
        "Parameters: 201.9K  |  Memory: 789.9 KB  |  FLOPs: 628.5K",
    ]
    assert "  Affine: 2" in text and "SNN: 1 spiking neuron layer(s) (1 LIF), 64 neurons" in text
    verbose = sdk.summarize(graphs.hybrid(), verbose=True)
    fc1 = next(line for line in verbose.splitlines() if line.strip().startswith("fc1"))
    assert fc1.split()[-2:] == ["200,768", "200,704"]


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (500, "500"), (1500, "1,500"), (99_999, "99,999"), (100_000, "100.0K"), (150_000, "150.0K"),
     (235_1 * 100, "235.1K"), (999_999, "1.00M"), (1_500_000, "1.50M"), (2_500_000_000, "2.50B"), (-1500, "-1,500"),
     (12.5, "12.50"), (np.int64(1500), "1,500")],
)  # fmt: skip
def test_format_number(n, text):
    assert sdk.format_number(n) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (500, "500 B"), (1023, "1023 B"), (1024, "1.0 KB"), (940_544, "918.5 KB"), (1_048_575, "1.0 MB"),
     (1_048_576, "1.0 MB"), (3 * 1024**3, "3.0 GB")],
)  # fmt: skip
def test_format_bytes(n, text):
    assert sdk.format_bytes(n) == text


def test_bad_arguments():
    with pytest.raises(TypeError, match="format_number expects a number"):
        sdk.format_number(True)
    with pytest.raises(TypeError):
        sdk.format_bytes("12")
    with pytest.raises(ValueError, match="non-negative"):
        sdk.format_bytes(-1)
    with pytest.raises(TypeError, match=r"talon\.ir\.Graph or the path"):
        sdk.analyze_graph(42)
    with pytest.raises(TypeError, match=r"not a talon\.ir Node"):
        sdk.analyze_node("x", object())
    with pytest.raises(FileNotFoundError):
        sdk.analyze_graph("/nonexistent/model.t1c")
    broken = ir.Graph({"input": ir.Input(np.array([2]))}, [("input", "ghost")], validate=False)
    with pytest.raises(ir.GraphValidationError, match="ghost"):
        sdk.analyze_graph(broken)
