"""Work the SDK does once on a large graph: counted, never timed (bench/bench_sdk.py times it).

The graphs are ``talon.examples.blocks_graph``: Affine/LIF/residual-Skip blocks with recurrent edges
and subgraph nodes. Counts are taken by wrapping ``Graph.validate`` and ``recurrent_edge_mask``.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir, sdk
from talon.cli import main as cli
from talon.examples import blocks_graph
from talon.ir import graph as ir_graph


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
