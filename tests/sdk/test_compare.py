"""compare_graphs / compare_nodes / assert_graphs_equal."""

import numpy as np
import pytest

from talon import ir, sdk

from . import graphs


@pytest.mark.parametrize("build", [graphs.hybrid, graphs.recurrent, graphs.nested])
def test_a_graph_is_identical_to_its_written_and_read_copy(build, tmp_path):
    g = build()
    g.metadata["tuple"] = (1, 2)
    path = tmp_path / "g.t1c"
    ir.write(path, g)
    diff = sdk.compare_graphs(g, path)
    assert diff.identical and diff.equivalent and diff.metadata_match
    assert diff.changes() == [] and diff.nodes_modified == [] and diff.max_weight_diff == 0.0
    assert diff.summary == "Graphs are identical"
    assert diff.nodes_unchanged == list(g.nodes)


def test_small_value_change_is_equivalent_but_not_identical():
    a, b = graphs.chain(), graphs.chain()
    b.nodes["fc1"].weight[1, 2] += np.float32(1e-7)
    diff = sdk.compare_graphs(a, b)
    assert not diff.identical and diff.equivalent and diff.structural_match and diff.numerical_match
    assert diff.nodes_modified == ["fc1"]
    d = next(d for d in diff.node_diffs if d.name == "fc1")
    expected = float(abs(np.float64(b.nodes["fc1"].weight[1, 2]) - np.float64(a.nodes["fc1"].weight[1, 2])))
    assert d.weight_diff == pytest.approx(expected) and d.values_changed and d.within_tolerance
    assert d.changes == [f"weight: max_diff={expected:.2e}"]
    total_elements = 32 + 4 + 5 * 4 + 8 + 2  # every array of the chain was compared
    assert diff.mean_weight_diff == pytest.approx(expected / total_elements)


def test_large_value_change_is_beyond_tolerance():
    a, b = graphs.chain(), graphs.chain()
    b.nodes["fc2"].bias[:] += 0.5
    diff = sdk.compare_graphs(a, b)
    assert diff.structural_match and not diff.numerical_match and not diff.equivalent
    assert diff.max_weight_diff == pytest.approx(0.5)
    assert "fc2: bias: max_diff=5.00e-01 (beyond tolerance)" in diff.changes()
    assert sdk.compare_graphs(a, b, atol=0.6).equivalent


def test_added_removed_nodes_and_edges():
    a = graphs.chain()
    nodes = dict(graphs.chain().nodes)
    nodes["relu"] = ir.ReLU()
    b = ir.Graph(nodes, [("input", "fc1"), ("fc1", "relu"), ("relu", "lif1"), ("lif1", "fc2"), ("fc2", "output")])
    diff = sdk.compare_graphs(a, b)
    assert diff.nodes_added == ["relu"] and diff.nodes_removed == []
    assert diff.edges_added == [("fc1", "relu"), ("relu", "lif1")] and diff.edges_removed == [("fc1", "lif1")]
    assert not diff.structural_match and diff.numerical_match and not diff.equivalent
    back = sdk.compare_graphs(b, a)
    assert back.nodes_removed == ["relu"] and back.edges_removed == [("fc1", "relu"), ("relu", "lif1")]


def test_edge_order_and_node_order_are_structural():
    def concat(edges, order):
        nodes = {"input": ir.Input(np.array([2, 3])), "a": ir.ReLU(), "b": ir.Sigmoid(), "cat": ir.Concat(),
                 "output": ir.Output(np.array([4, 3]))}  # fmt: skip
        return ir.Graph({k: nodes[k] for k in order}, edges)

    order = ["input", "a", "b", "cat", "output"]
    edges = [("input", "a"), ("input", "b"), ("a", "cat"), ("b", "cat"), ("cat", "output")]
    swapped = [edges[0], edges[1], edges[3], edges[2], edges[4]]
    diff = sdk.compare_graphs(concat(edges, order), concat(swapped, order))
    assert diff.edge_order_changed and not diff.structural_match and diff.edges_added == []
    reordered = sdk.compare_graphs(concat(edges, order), concat(edges, ["input", "b", "a", "cat", "output"]))
    assert reordered.node_order_changed and not reordered.structural_match


def test_parameter_dtype_and_type_changes():
    a = graphs.cnn()
    b = graphs.cnn()
    b.nodes["conv"].padding = (2, 2)
    b.nodes["fc"].weight = b.nodes["fc"].weight.astype(np.float64)
    diff = sdk.compare_graphs(a, b)
    changes = diff.changes()
    assert "conv: padding: [1, 1] -> [2, 2]" in changes  # JSON, not Python reprs: part of compare --json
    assert "fc: weight: float32[3, 64] -> float64[3, 64]" in changes
    assert not diff.structural_match

    spiking = sdk.convert_to_spiking(graphs.chain())
    d = next(d for d in sdk.compare_graphs(graphs.chain(), spiking).node_diffs if d.name == "fc1")
    assert d.changes[:2] == ["type: Affine -> SpikingAffine", "spike_mode: added"]
    assert d.weight_diff == 0.0  # the shared weights still compare


def test_metadata_only_difference():
    a, b = graphs.chain(), graphs.chain()
    b.nodes["fc1"].metadata["source"] = "fc1 of model X"
    b.metadata = {"name": "chain", "extra": 1}
    diff = sdk.compare_graphs(a, b)
    assert not diff.identical and diff.equivalent and not diff.metadata_match
    assert diff.changes() == ["fc1: metadata differs"]
    c = graphs.chain()
    c.metadata = {"name": "chain"}  # same content, so identical
    assert sdk.compare_graphs(a, c).identical


def test_nan_equals_nan_but_not_a_number():
    w = np.array([[np.nan, 1.0]], np.float32)
    a, b = (
        ir.Graph({"input": ir.Input(np.array([2])), "fc": ir.Linear(x), "output": ir.Output(np.array([1]))},
                 [("input", "fc"), ("fc", "output")])
        for x in (w, w.copy())
    )  # fmt: skip
    assert sdk.compare_graphs(a, b).identical
    b.nodes["fc"].weight[0, 0] = 0.0
    diff = sdk.compare_graphs(a, b)
    assert not diff.numerical_match and diff.max_weight_diff == np.inf


def test_differences_inside_a_subgraph():
    a, b = graphs.nested(), graphs.nested()
    b.nodes["rnn"].nodes["w"].weight[0, 0] += 1
    diff = sdk.compare_graphs(a, b)
    assert diff.nodes_modified == ["rnn"] and not diff.numerical_match
    assert diff.changes() == ["rnn: w: weight: max_diff=1.00e+00 (beyond tolerance)"]


def test_compare_nodes():
    fc = graphs.chain().nodes["fc1"]
    assert sdk.compare_nodes("fc1", None, fc).status == "added"
    assert sdk.compare_nodes("fc1", fc, None).status == "removed"
    assert sdk.compare_nodes("fc1", fc, fc).status == "unchanged"
    with pytest.raises(ValueError, match="at least one"):
        sdk.compare_nodes("x", None, None)
    with pytest.raises(TypeError):
        sdk.compare_nodes("x", fc, "fc")


def test_assert_graphs_equal():
    a, b = graphs.chain(), graphs.chain()
    sdk.assert_graphs_equal(a, b)
    b.nodes["fc1"].weight[0, 0] += 1e-8
    sdk.assert_graphs_equal(a, b)  # within tolerance
    b.nodes["fc1"].weight[0, 0] += 1.0
    with pytest.raises(AssertionError, match=r"fc1: weight: max_diff=1\.00e\+00"):
        sdk.assert_graphs_equal(a, b)
    sdk.assert_graphs_equal(a, b, check_weights=False)
    c = graphs.chain()
    c.metadata["x"] = 1
    sdk.assert_graphs_equal(a, c)
    with pytest.raises(AssertionError, match="metadata differs"):
        sdk.assert_graphs_equal(a, c, check_metadata=True)


def test_bad_tolerances_and_inputs():
    with pytest.raises(ValueError, match="atol"):
        sdk.compare_graphs(graphs.chain(), graphs.chain(), atol=-1)
    with pytest.raises(TypeError, match="b must be"):
        sdk.compare_graphs(graphs.chain(), 3)


def test_equal_infinities_do_not_make_the_difference_infinite():
    from talon import sdk

    a, b = graphs.chain(), graphs.chain()
    a.nodes["lif1"].tau = a.nodes["lif1"].tau.astype(np.float64)
    a.nodes["lif1"].tau[0] = np.inf  # a neuron without leak
    b.nodes["lif1"].tau = a.nodes["lif1"].tau.copy()
    b.nodes["lif1"].tau[1] += 1e-7  # a tiny change elsewhere in the same array
    diff = sdk.compare_graphs(a, b)
    assert 0 < diff.max_weight_diff < 1e-6 and diff.mean_weight_diff < 1e-6  # inf - inf counts as equal
    b.nodes["lif1"].tau[0] = 1e30
    assert sdk.compare_graphs(a, b).max_weight_diff == np.inf  # inf against a number is infinitely apart
