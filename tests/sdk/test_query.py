"""inspect_node, trace_path, extract_subgraph, find_pattern, get_node_statistics."""

import numpy as np
import pytest

from talon import ir, sdk

from . import graphs


def test_inspect_node():
    g = graphs.chain()
    info = sdk.inspect_node(g, "fc1")
    w = g.nodes["fc1"].weight.astype(np.float64)
    assert (info["name"], info["type"], info["inputs"], info["outputs"]) == ("fc1", "Affine", ["input"], ["lif1"])
    weight = info["parameters"]["weight"]
    assert weight["shape"] == (4, 8) and weight["dtype"] == "float32" and weight["nonfinite"] == 0
    assert weight["mean"] == pytest.approx(w.mean()) and weight["std"] == pytest.approx(w.std())
    assert (weight["min"], weight["max"]) == (pytest.approx(w.min()), pytest.approx(w.max()))
    assert info["shapes"] == {"input_type": {"input": [8]}, "output_type": {"output": [4]}}
    lif = sdk.inspect_node(g, "lif1")
    assert lif["attributes"]["reset_mode"] == "value" and lif["parameters"]["tau"]["mean"] == 5.0


def test_inspect_node_in_a_subgraph_and_recurrent_inputs():
    info = sdk.inspect_node(graphs.nested(), "rnn.lif")
    assert info["inputs"] == ["rnn.input", "rnn.w"] and info["recurrent_inputs"] == ["rnn.w"]
    sub = sdk.inspect_node(graphs.nested(), "rnn")
    assert sub["type"] == "Graph" and sub["attributes"]["nodes"] == ["input", "lif", "w", "output"]


def test_inspect_node_statistics_skip_non_finite_values():
    g = ir.Graph({"s": ir.Scale(np.array([1.0, np.nan, 3.0, np.inf]))}, [])
    stats = sdk.inspect_node(g, "s")["parameters"]["scale"]
    assert stats["mean"] == 2.0 and stats["nonfinite"] == 2


def test_unknown_node_is_a_key_error_with_suggestions():
    with pytest.raises(KeyError) as err:
        sdk.inspect_node(graphs.chain(), "fc3")
    assert isinstance(err.value, sdk.UnknownNodeError)
    assert str(err.value).startswith("no node 'fc3' in the graph (did you mean 'fc2', 'fc1'?); nodes are: input, fc1")
    with pytest.raises(sdk.UnknownNodeError, match="subgraph 'rnn'"):
        sdk.inspect_node(graphs.nested(), "rnn.nothing")


def test_trace_path():
    assert sdk.trace_path(graphs.residual(), "input", "output") == [
        ["input", "c1", "relu", "c2", "add", "output"],
        ["input", "add", "output"],
    ]
    rec = graphs.recurrent()
    assert sdk.trace_path(rec, "w_rec", "fc_out") == [["w_rec", "lif", "fc_out"]]
    assert sdk.trace_path(rec, "lif", "lif") == [["lif"]]
    assert sdk.trace_path(rec, "output", "input") == []
    with pytest.raises(sdk.UnknownNodeError):
        sdk.trace_path(rec, "input", "nowhere")
    with pytest.raises(TypeError, match="node name must be a string"):
        sdk.trace_path(rec, "input", 3)
    with pytest.raises(ValueError, match="more than 1 paths"):
        sdk.trace_path(graphs.residual(), "input", "output", limit=1)


def test_extract_subgraph():
    g = graphs.hybrid()
    part = sdk.extract_subgraph(g, ["fc1", "lif", "fc2"])
    assert list(part.nodes) == ["fc1", "lif", "fc2"] and part.edges == [("fc1", "lif"), ("lif", "fc2")]
    assert part.nodes["fc1"] is not g.nodes["fc1"] and part.nodes["fc1"].weight is g.nodes["fc1"].weight
    runnable = sdk.extract_subgraph(g, ["lif", "fc1", "fc2"], add_boundaries=True)
    assert list(runnable.nodes) == ["fc1__in0", "fc1", "lif", "fc2", "fc2__out0"]
    assert runnable.nodes["fc1__in0"].shape == (3136,) and runnable.nodes["fc2__out0"].shape == (10,)
    assert runnable.metadata["extracted_from"] == ["fc1", "lif", "fc2"]
    assert sdk.lint_graph(runnable).issues == []
    with pytest.raises(sdk.UnknownNodeError):
        sdk.extract_subgraph(g, ["fc1", "fc9"])


def test_extract_subgraph_keeps_split_and_concat_arity_with_boundaries():
    g = ir.Graph(
        {"input": ir.Input(np.array([4, 2])), "split": ir.ChannelSplit(split_sections=(1, 3)), "a": ir.ReLU(),
         "b": ir.Tanh(), "cat": ir.Concat(num_inputs=2), "output": ir.Output(np.array([4, 2]))},
        [("input", "split"), ("split", "a"), ("split", "b"), ("a", "cat"), ("b", "cat"), ("cat", "output")],
    )  # fmt: skip
    with pytest.raises(ir.GraphValidationError, match="add_boundaries=True"):
        sdk.extract_subgraph(g, ["split", "a"])
    part = sdk.extract_subgraph(g, ["split", "a", "cat"], add_boundaries=True)
    assert part.edges == [
        ("split__in0", "split"), ("split", "a"), ("split", "split__out0"), ("a", "cat"), ("cat__in0", "cat"),
        ("cat", "cat__out0"),
    ]  # fmt: skip
    assert part.nodes["split__out0"].shape == (3, 2) and part.nodes["cat__in0"].shape == (3, 2)


def test_find_pattern():
    g = graphs.hybrid()
    assert sdk.find_pattern(g, "Conv2d->ReLU->MaxPool2d") == [("conv1", "relu", "pool")]
    assert sdk.find_pattern(g, "Affine -> LIF") == [("fc1", "lif")]
    assert sdk.find_pattern(g, "LIF|ReLU->*") == [("relu", "pool"), ("lif", "fc2")]
    assert sdk.find_pattern(g, "Conv2d->LIF->MaxPool2d") == []
    nested = graphs.nested()
    assert sdk.find_pattern(nested, "LIF->Linear->LIF") == [("rnn.lif", "rnn.w", "rnn.lif")]
    assert sdk.find_pattern(graphs.cnn(), "Conv2d->LIF->AvgPool2d") == [("conv", "lif", "pool")]
    with pytest.raises(ValueError, match="unknown node type 'Conv3d'"):
        sdk.find_pattern(g, "Conv3d->LIF")
    with pytest.raises(ValueError, match="bad pattern step"):
        sdk.find_pattern(g, "Conv2d->->LIF")


def test_get_node_statistics():
    stats = sdk.get_node_statistics(graphs.hybrid())
    assert list(stats) == ["Input", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Affine", "LIF", "Output"]
    assert stats["Affine"] == {"count": 2, "nodes": ["fc1", "fc2"], "total_params": 200_768 + 650}
    assert stats["LIF"]["total_params"] == 5 * 64


def test_extract_subgraph_delays_a_cut_recurrent_edge_and_runs_like_the_whole_graph(tmp_path):
    from talon.backend import get_backend
    from tests.graph.nets import recurrent_net, spikes

    g = recurrent_net(hidden=24)  # fc_in -> lif <-> fc_rec, lif -> fc_out
    assert g.recurrent_edges == [("fc_rec", "lif")]
    part = sdk.extract_subgraph(g, ["lif"], add_boundaries=True)
    assert list(part.nodes) == ["lif__in0", "lif__in1", "lif__in1_delay", "lif", "lif__out0", "lif__out1"]
    assert part.edges == [
        ("lif__in0", "lif"), ("lif", "lif__out0"), ("lif__in1", "lif__in1_delay"), ("lif__in1_delay", "lif"),
        ("lif", "lif__out1"),
    ]  # fmt: skip
    assert part.nodes["lif__in1_delay"].delay.tolist() == [1] * 24
    cut = {"source": "fc_rec", "target": "lif", "recurrent": True, "boundary": "lif__in1", "delay": "lif__in1_delay"}
    assert part.nodes["lif__in1"].metadata["talon.cut_edge"] == cut
    assert part.metadata["cut_edges"][2] == cut  # in edge order: fc_in -> lif, lif -> fc_rec, fc_rec -> lif, ...
    assert [c["recurrent"] for c in part.metadata["cut_edges"]] == [False, False, True, False]
    # fed the sources' traces of the whole graph (each at its own step), the part computes the whole graph's lif
    backend = get_backend("cpu")
    whole = backend.simulate(g, {"input": spikes((20,), steps=20, batch=2)}, step_by_step=True)
    assert whole.spike_counts["lif"] > 30
    feeds = {"lif__in0": whole.node_states["fc_in"]["output"], "lif__in1": whole.node_states["fc_rec"]["output"]}
    alone = backend.simulate(part, feeds, step_by_step=True)
    np.testing.assert_array_equal(alone.outputs["lif__out0"], whole.node_states["lif"]["output"])
    np.testing.assert_array_equal(alone.node_states["lif"]["v"], whole.node_states["lif"]["v"])
    ir.write(tmp_path / "part.t1c", part)
    back = ir.read(tmp_path / "part.t1c")
    assert back.metadata["cut_edges"] == part.metadata["cut_edges"]
    assert back.nodes["lif__in1"].metadata["talon.cut_edge"] == cut
    # the loop kept whole: nothing cut is recurrent, the recurrent edge stays inside
    loop = sdk.extract_subgraph(g, ["lif", "fc_rec"], add_boundaries=True)
    assert loop.recurrent_edges == [("fc_rec", "lif")] and not any(c["recurrent"] for c in loop.metadata["cut_edges"])
    bare = sdk.extract_subgraph(g, ["fc_in", "lif"])
    assert [c["recurrent"] for c in bare.metadata["cut_edges"]] == [False, False, True, False]
    assert all(c["boundary"] is None for c in bare.metadata["cut_edges"])


def test_extract_subgraph_refuses_a_part_whose_loop_would_be_entered_elsewhere():
    leaky = ir.LIF(tau=np.full(3, 5.0), r=np.full(3, 5.0), v_leak=0.0, v_threshold=1.0)
    g = ir.Graph(
        {"input": ir.Input(np.array([3])), "x": ir.ReLU(), "y": ir.ReLU(), "a": leaky, "b": ir.Tanh(),
         "out": ir.Output(np.array([3]))},
        [("x", "b"), ("y", "a"), ("input", "y"), ("input", "x"), ("a", "b"), ("b", "a"), ("a", "out")],
    )  # fmt: skip
    assert g.recurrent_edges == [("b", "a")]  # the search enters the loop at a (input -> y -> a)
    with pytest.raises(ir.GraphValidationError, match=r"edge \('a', 'b'\) does not carry the previous step"):
        sdk.extract_subgraph(g, ["a", "b"], add_boundaries=True)
