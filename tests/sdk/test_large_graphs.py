"""Work the SDK does once on a large graph: counted, never timed (bench/bench_sdk.py times it).

The graphs are ``talon.examples.blocks_graph``: Affine/LIF/residual-Skip blocks with recurrent edges
and subgraph nodes. Counts are taken by wrapping ``Graph.validate``, ``recurrent_edge_mask`` and
``count_node``.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir, sdk
from talon.cli import main as cli
from talon.examples import blocks_graph
from talon.ir import graph as ir_graph
from talon.ir.counting import totals


@pytest.fixture
def validations(monkeypatch):
    """The graphs validated meanwhile (one entry per ``Graph.validate`` call)."""
    seen: list[ir.Graph] = []
    original = ir.Graph.validate

    def counting(self):
        seen.append(self)
        return original(self)

    monkeypatch.setattr(ir.Graph, "validate", counting)
    return seen


@pytest.fixture
def masks(monkeypatch):
    """The number of recurrent-edge masks computed meanwhile (a one-item list)."""
    count = [0]
    original = ir_graph.recurrent_edge_mask

    def counting(*args):
        count[0] += 1
        return original(*args)

    monkeypatch.setattr(ir_graph, "recurrent_edge_mask", counting)
    return count


def _levels(graph: ir.Graph) -> int:
    """The graph and its subgraphs, at every depth."""
    return 1 + sum(_levels(node) for node in graph.nodes.values() if isinstance(node, ir.Graph))


@pytest.fixture(scope="module")
def large():
    graph = blocks_graph(300)
    assert len(graph.nodes) == 300 and _levels(graph) > 1 and not graph.is_dag
    return graph


def test_blocks_graph_has_the_documented_blocks():
    """7 blocks of 3 nodes, a subgraph after block 6, Input and Output: 24 nodes; block 4 has the
    recurrent edge lif4 -> fc4."""
    graph = blocks_graph(24)
    assert len(graph.nodes) == 24 and "sub6" in graph.nodes and "fc7" not in graph.nodes
    assert graph.recurrent_edges == [("lif4", "fc4")]
    assert graph.nodes["sub6"].output_shape == (8,)


def test_analyze_graph_computes_the_recurrent_mask_once(large, masks):
    """Once per graph level: the top level's for depth, width and the count, each subgraph's for the
    recurrent buffers ``talon.ir.counting.count_graph`` sums."""
    stats = sdk.analyze_graph(large)
    assert masks[0] == _levels(large)
    assert stats.recurrent_edge_count == len(large.recurrent_edges)


def test_cli_lint_and_validate_validate_each_level_once(tmp_path, large, validations):
    """ir.read validates every level of the file's graph; lint does not validate copies of them again."""
    path = tmp_path / "large.t1c"
    ir.write(path, large)
    for command in ("lint", "validate"):
        validations.clear()
        result = CliRunner().invoke(cli, [command, str(path), "--json"])
        assert result.exit_code == 0, result.output
        assert len(validations) == _levels(large)


def test_lint_of_a_graph_object_still_infers_shapes(tmp_path, large):
    """A Graph may have changed since it was validated: lint_graph(graph) checks its shapes anew."""
    path = tmp_path / "large.t1c"
    ir.write(path, large)
    graph = ir.read(path)
    assert sdk.lint_graph(graph).is_valid
    graph.nodes["fc3"].weight = np.zeros((8, 5), np.float32)  # no longer fits the 8 values it receives
    result = sdk.lint_graph(graph)
    assert "SHAPE_MISMATCH" in result.codes and not result.is_valid
    assert sdk.lint_graph(path).is_valid  # the file is unchanged


def test_merge_graphs_validates_the_union_once(large, validations):
    merged = sdk.merge_graphs(large, large)
    subgraphs = _levels(large) - 1
    assert len(validations) == 2 * subgraphs + 1 and validations[-1] is merged
    assert merged.nodes["g1_res3"].output_shape == (8,) and len(merged.recurrent_edges) == 2 * len(
        large.recurrent_edges
    )


def test_merge_graphs_still_refuses_an_invalid_part():
    bad = ir.Graph(
        {"input": ir.Input(np.array([4])), "fc": ir.Affine(np.ones((2, 3), np.float32)), "output": ir.Output([2])},
        [("input", "fc"), ("fc", "output")],
        validate=False,
    )
    with pytest.raises(ir.ShapeError, match="node 'fc' "):  # named as in the part
        sdk.merge_graphs(blocks_graph(24), bad)


def test_prune_without_anything_to_prune_validates_once(large, validations):
    pruned = sdk.prune_disconnected(large)
    assert "pruned_nodes" not in pruned.metadata
    assert sum(1 for g in validations if len(g.nodes) == len(large.nodes)) == 1


def test_compare_keeps_the_canonical_rules_for_plain_values():
    """1 and 1.0, 0.0 and -0.0, True and 1 differ; equal strings, ints, enums and empty dicts do not."""
    a, b = ir.Flatten(start_dim=1), ir.Flatten(start_dim=1)
    assert sdk.compare_nodes("f", a, b).status == "unchanged"
    for x, y in ((1, 1.0), (0.0, -0.0), (True, 1)):
        a.metadata, b.metadata = {"k": x}, {"k": y}
        assert sdk.compare_nodes("f", a, b).metadata_changed, (x, y)
    a.metadata, b.metadata = {}, {}
    assert not sdk.compare_nodes("f", a, b).changes


def test_extract_subgraph_validates_the_part_only(large, validations):
    """The part and copies of the subgraph nodes it holds; never the whole graph again."""
    names = list(large.nodes)[100:200]
    part = sdk.extract_subgraph(large, names, add_boundaries=True)
    subgraphs = sum(isinstance(large.nodes[n], ir.Graph) for n in names)
    assert subgraphs and len(validations) == subgraphs + 1 and validations[-1] is part
    assert part.metadata["extracted_from"] == names and part.input_nodes == ["res31__in0", "res31__in1"]


def test_extract_subgraph_of_a_graph_broken_elsewhere():
    """Only the part must be valid: a shape error outside it does not matter, inside it is named."""
    rng = np.random.default_rng(0)
    nodes = {
        "input": ir.Input(np.array([4])),
        "fc1": ir.Affine(rng.standard_normal((4, 4)).astype(np.float32)),
        "lif1": ir.LIF(tau=np.full(4, 5.0), r=5.0),
        "fc2": ir.Affine(np.ones((3, 5), np.float32)),  # receives 4 values
        "output": ir.Output(np.array([3])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "output")]
    broken = ir.Graph(nodes, edges, validate=False)
    part = sdk.extract_subgraph(broken, ["fc1", "lif1"], add_boundaries=True)
    assert list(part.nodes) == ["fc1__in0", "fc1", "lif1", "lif1__out0"] and part.nodes["lif1"].output_shape == (4,)
    with pytest.raises(ir.GraphValidationError, match=r"the extracted graph is invalid: node 'fc2'"):
        sdk.extract_subgraph(broken, ["fc2", "output"], add_boundaries=True)


def test_profile_graph_counts_each_node_once(large, masks, monkeypatch):
    calls = [0]
    original = totals.count_node

    def counting(*args):
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(totals, "count_node", counting)
    profile = sdk.profile_graph(large)
    assert calls[0] == sum(1 for _ in ir_graph.walk(large)) and masks[0] == _levels(large)
    assert profile.recurrent_edges == len(large.recurrent_edges)
