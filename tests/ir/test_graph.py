"""Graph construction, validation, cycles, subgraphs and multi-output routing."""

import numpy as np
import pytest

from talon import ir
from talon.ir import GraphValidationError, ShapeError


def eye(n):
    return ir.Affine(weight=np.eye(n, dtype=np.float32), bias=np.zeros(n, dtype=np.float32))


def mlp(hidden=16):
    return ir.Graph(
        {
            "input": ir.Input(np.array([8])),
            "fc1": ir.Affine(np.ones((hidden, 8), np.float32), np.zeros(hidden, np.float32)),
            "lif1": ir.LIF(tau=np.full(hidden, 10.0), r=10.0),
            "fc2": ir.Affine(np.ones((3, hidden), np.float32), np.zeros(3, np.float32)),
            "output": ir.Output(np.array([3])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "output")],
    )


def test_node_order_edges_and_io():
    g = mlp()
    assert list(g.nodes) == ["input", "fc1", "lif1", "fc2", "output"]
    assert g.edges[0] == ("input", "fc1")
    assert g.input_nodes == ["input"] and g.output_nodes == ["output"]
    assert g.is_dag and g.recurrent_edges == []
    assert g.topological_order() == list(g.nodes)
    assert g.input_type["input"].tolist() == [8] and g.output_type["output"].tolist() == [3]


def test_topological_order_ignores_insertion_order():
    g = ir.Graph(
        {"output": ir.Output(np.array([4])), "b": eye(4), "a": eye(4), "input": ir.Input(np.array([4]))},
        [("input", "a"), ("a", "b"), ("b", "output")],
    )
    assert g.topological_order() == ["input", "a", "b", "output"]


@pytest.mark.parametrize(
    ("nodes", "edges", "message"),
    [
        ({"input": ir.Input(np.array([4]))}, [("input", "ghost")], "unknown node 'ghost'"),
        ({"input": ir.Input(np.array([4])), "a": eye(4)}, [("a", "input")], "Input node cannot have incoming"),
        ({"o": ir.Output(np.array([4])), "a": eye(4)}, [("o", "a")], "Output node cannot have outgoing"),
        (
            {"input": ir.Input(np.array([4])), "s": ir.Skip("passthrough"), "a": eye(4)},
            [("input", "s"), ("a", "s")],
            "passthrough Skip takes exactly 1 input",
        ),
        (
            {"input": ir.Input(np.array([4])), "split": ir.ChannelSplit((2, 2)), "a": eye(2)},
            [("input", "split"), ("split", "a")],
            "2 sections but 1 outgoing edges",
        ),
        (
            {"input": ir.Input(np.array([4])), "c": ir.Concat(num_inputs=3), "o": ir.Output(np.array([8]))},
            [("input", "c"), ("input", "c"), ("c", "o")],
            "num_inputs=3 but has 2 incoming",
        ),
        ({"input": ir.Input(np.array([4])), "a": eye(5)}, [("input", "a")], r"node 'a' \(Affine\).*5 features"),
        (
            {"input": ir.Input(np.array([4])), "o": ir.Output(np.array([5]))},
            [("input", "o")],
            r"node 'o' \(Output\): its declared input_type",
        ),
        (
            {"x": ir.Input(np.array([4])), "y": ir.Input(np.array([5])), "a": eye(4)},
            [("x", "a"), ("y", "a")],
            "incoming shapes .* differ",
        ),
        ([("a", eye(2)), ("a", eye(2))], [], "duplicate node name 'a'"),
        ({"": eye(2)}, [], "non-empty strings"),
        ({"a": "not a node"}, [], "not a talon.ir Node"),
        ({"a": eye(2)}, [("a",)], r"\(src, dst\) pair"),
    ],
)
def test_validation_errors_name_the_culprit(nodes, edges, message):
    with pytest.raises(GraphValidationError, match=message):
        ir.Graph(nodes, edges)


def test_shape_mismatch_is_a_shape_error():
    with pytest.raises(ShapeError):
        ir.Graph({"input": ir.Input(np.array([4])), "a": eye(5)}, [("input", "a")])


def test_cycle_is_allowed_and_its_closing_edge_is_recurrent():
    # seed 001 section 5: feedback fc_fb -> fc1
    g = ir.Graph(
        {
            "input": ir.Input(np.array([64])),
            "fc1": ir.Affine(np.zeros((32, 64), np.float32)),
            "lif1": ir.LIF(tau=np.full(32, 10.0), r=1.0),
            "fc_fb": ir.Affine(np.zeros((64, 32), np.float32)),
            "output": ir.Output(np.array([32])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output"), ("lif1", "fc_fb"), ("fc_fb", "fc1")],
    )
    assert not g.is_dag
    assert g.recurrent_edges == [("fc_fb", "fc1")]
    assert g.recurrent_mask() == [False, False, False, False, True]
    assert g.topological_order() == ["input", "fc1", "lif1", "fc_fb", "output"]


def test_self_loop_is_recurrent():
    g = ir.Graph(
        {"input": ir.Input(np.array([3])), "lif": ir.LIF(tau=np.full(3, 2.0)), "output": ir.Output(np.array([3]))},
        [("input", "lif"), ("lif", "lif"), ("lif", "output")],
    )
    assert g.recurrent_edges == [("lif", "lif")]


def test_recurrent_edge_shape_is_checked():
    with pytest.raises(ShapeError, match="lif"):
        ir.Graph(
            {
                "input": ir.Input(np.array([3])),
                "lif": ir.LIF(tau=np.full(3, 2.0)),
                "w": ir.Linear(np.zeros((4, 3))),
                "output": ir.Output(np.array([3])),
            },
            [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
        )


def test_channel_split_branches_concat_seed_001():
    nodes = {
        "input": ir.Input(np.array([32])),
        "split": ir.ChannelSplit(split_sections=(16, 16)),
        "branch0": eye(16),
        "branch1": eye(16),
        "concat": ir.Concat(dim=1),
        "output": ir.Output(np.array([32])),
    }
    edges = [
        ("input", "split"),
        ("split", "branch0"),
        ("split", "branch1"),
        ("branch0", "concat"),
        ("branch1", "concat"),
        ("concat", "output"),
    ]
    g = ir.Graph(nodes=nodes, edges=edges)
    assert g.nodes["split"].output_shapes() == [(16,), (16,)]
    assert g.nodes["concat"].output_shape == (32,)


def test_multi_output_routing_follows_edge_order():
    g = ir.Graph(
        {
            "input": ir.Input(np.array([6, 4, 4])),
            "split": ir.ChannelSplit(split_sections=[1, 5]),
            "big": ir.Conv2d(np.zeros((2, 5, 1, 1), np.float32)),
            "small": ir.Conv2d(np.zeros((2, 1, 1, 1), np.float32)),
            "cat": ir.Skip("concatenate"),
            "output": ir.Output(np.array([4, 4, 4])),
        },
        # the 1-channel section is output 0, so the first outgoing edge must go to `small`
        [("input", "split"), ("split", "small"), ("split", "big"), ("big", "cat"), ("small", "cat"), ("cat", "output")],
    )
    assert g.edge_shape(1) == (1, 4, 4) and g.edge_shape(2) == (5, 4, 4)
    with pytest.raises(ShapeError, match="expects 5 input channels"):
        ir.Graph(
            g.nodes,
            [("input", "split"), ("split", "big"), ("split", "small"), ("big", "cat"), ("small", "cat")],
        )


def test_residual_skip_and_summed_fan_in():
    g = ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "a": eye(4),
            "skip": ir.Skip("residual"),
            "output": ir.Output(np.array([4])),
        },
        [("input", "a"), ("a", "skip"), ("input", "skip"), ("skip", "output"), ("input", "output")],
    )
    assert g.nodes["skip"].output_shape == (4,)


def test_subgraph_as_a_node():
    inner = ir.Graph(
        {
            "input": ir.Input(np.array([5])),
            "lif": ir.LIF(tau=np.full(5, 4.0)),
            "w_rec": ir.Linear(np.zeros((5, 5), np.float32)),
            "output": ir.Output(np.array([5])),
        },
        [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )
    outer = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "fc": ir.Affine(np.zeros((5, 3), np.float32)),
            "rnn": inner,
            "output": ir.Output(np.array([5])),
        },
        [("input", "fc"), ("fc", "rnn"), ("rnn", "output")],
    )
    assert outer.nodes["rnn"].output_shape == (5,)
    assert not inner.is_dag and outer.is_dag
    with pytest.raises(ShapeError, match="subgraph input 'input' has shape"):
        ir.Graph(
            {"input": ir.Input(np.array([4])), "rnn": inner, "output": ir.Output(np.array([5]))},
            [("input", "rnn"), ("rnn", "output")],
        )


def test_shapes_unknown_until_an_edge_brings_them():
    conv = ir.Conv2d(np.zeros((2, 1, 3, 3), np.float32))
    assert conv.input_type is None
    g = ir.Graph({"input": ir.Input(np.array([1, 5, 5])), "conv": conv}, [("input", "conv")])
    assert g.nodes["conv"].output_shape == (2, 3, 3)
