"""graph_to_dict (schema 1) and the pattern detectors, on graphs whose answers are worked out by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talon import ir, viz
from talon.viz import patterns
from talon.viz.constants import NODE_COLORS
from tests.sdk import graphs as sdk_graphs
from tests.subprocesses import child_env
from tests.viz import graphs


def test_schema_keys_and_summary():
    document = viz.graph_to_dict(sdk_graphs.chain())
    assert list(document) == ["version", "nodes", "edges", "metadata", "summary", "groups", "node_to_group"]
    assert document["version"] == "1"
    # fc1 32+4, lif1 5 params x 4 neurons, fc2 8+2 (tests/sdk/graphs.py: 66)
    assert document["summary"]["total_params"] == 66
    assert document["summary"]["node_count"] == 5 and document["summary"]["edge_count"] == 4
    assert document["summary"]["inputs"] == [{"id": "input", "shape": [8]}]
    assert document["summary"]["outputs"] == [{"id": "output", "shape": [2]}]
    fc1 = document["nodes"][1]
    weight = sdk_graphs.chain().nodes["fc1"].weight
    assert fc1["params"]["weight"] == {
        "dtype": "float32",
        "shape": [4, 8],
        "size": 32,
        "min": float(weight.min()),
        "max": float(weight.max()),
        "mean": float(weight.astype(np.float64).mean()),
    }
    assert fc1["color"] == NODE_COLORS["Affine"] == "#bbdefb"
    assert document["nodes"][2]["config"]["comparison"] == ">="
    json.dumps(document, allow_nan=False)  # strict JSON


def test_non_finite_parameters_are_counted_not_averaged():
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "fc": ir.Affine(np.array([[1.0, np.inf], [np.nan, -2.0]], dtype=np.float32), np.zeros(2, np.float32)),
            "output": ir.Output(np.array([2])),
        },
        [("input", "fc"), ("fc", "output")],
    )
    weight = viz.graph_to_dict(graph)["nodes"][1]["params"]["weight"]
    assert (weight["min"], weight["max"], weight["mean"], weight["non_finite"]) == (-2.0, 1.0, -0.5, 2)


def test_patterns_of_the_residual_concat_network():
    found = {
        p.pattern_type: (p.fan_out, p.merge, sorted(p.nodes))
        for p in patterns.detect_all_patterns(graphs.residual_concat())
    }
    assert found == {
        "RepConv": ("lif0", "rep_add", ["rep1", "rep3", "rep_add"]),
        "SkipConnection": ("rep_add", "res_add", ["c1", "c2", "relu", "res_add"]),
        "SPPF": ("res_add", "sppf_cat", ["p1", "p2", "p3", "sppf_cat"]),
        "SPP": ("sppf_cat", "spp_cat", ["ident", "mp5", "mp9", "spp_cat"]),
    }
    graph = graphs.residual_concat()
    assert [p.group_id for p in patterns.detect_sppf_patterns(graph)] == ["sppf_res_add_sppf_cat"]
    assert [p.group_id for p in patterns.detect_spp_patterns(graph)] == ["spp_sppf_cat_spp_cat"]
    # a RepConv merge is also a residual bypass; detect_all_patterns keeps the more specific one
    assert {p.merge for p in patterns.detect_skip_connection_patterns(graph)} == {"rep_add", "res_add"}
    assert patterns.find_fan_out_points(graph) == ["lif0", "rep_add", "res_add", "p1", "p2", "sppf_cat"]
    assert patterns.find_merge_points(graph) == ["rep_add", "res_add", "sppf_cat", "spp_cat"]


def test_docs_skip_connection_example_group_id():
    """The TALON tutorial's residual block: group 'skip_input_skip' with members skip, conv1, lif1, conv2."""
    rng = np.random.default_rng(0)
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([4, 6, 6])),
            "conv1": ir.Conv2d(
                rng.standard_normal((4, 4, 3, 3)).astype(np.float32), np.zeros(4, np.float32), padding=1
            ),
            "lif1": ir.LIF(tau=np.full(4, 2.0)),
            "conv2": ir.Conv2d(
                rng.standard_normal((4, 4, 3, 3)).astype(np.float32), np.zeros(4, np.float32), padding=1
            ),
            "skip": ir.Skip(skip_type="residual"),
            "output": ir.Output(np.array([4, 6, 6])),
        },
        [
            ("input", "conv1"),
            ("conv1", "lif1"),
            ("lif1", "conv2"),
            ("conv2", "skip"),
            ("input", "skip"),
            ("skip", "output"),
        ],
    )
    (pattern,) = viz.patterns.PatternDetector(graph).detect_all_patterns()
    assert (pattern.pattern_type, pattern.group_id, pattern.nodes) == (
        "SkipConnection",
        "skip_input_skip",
        ["skip", "conv1", "lif1", "conv2"],
    )


def test_nested_residual_blocks_become_nested_groups():
    """An outer bypass around two inner residual blocks: the inner groups' parent is the outer group."""
    w = np.eye(3, dtype=np.float32)
    nodes = {"input": ir.Input(np.array([3]))}
    edges = []
    for name in ("a1", "a2", "b1", "b2"):
        nodes[name] = ir.Linear(w)
    for name in ("add_a", "add_b", "add_out"):
        nodes[name] = ir.Skip(skip_type="residual")
    nodes["output"] = ir.Output(np.array([3]))
    edges = [("input", "a1"), ("a1", "a2"), ("a2", "add_a"), ("input", "add_a"),
             ("add_a", "b1"), ("b1", "b2"), ("b2", "add_b"), ("add_a", "add_b"),
             ("add_b", "add_out"), ("input", "add_out"), ("add_out", "output")]  # fmt: skip
    document = viz.graph_to_dict(ir.Graph(nodes, edges))
    groups = {g["id"]: g for g in document["groups"]}
    assert groups["skip_input_add_a"]["parent"] == "skip_input_add_out"
    assert groups["skip_add_a_add_b"]["parent"] == "skip_input_add_out"
    assert sorted(groups["skip_input_add_out"]["nodes"]) == ["add_out", "skip_add_a_add_b", "skip_input_add_a"]
    assert document["node_to_group"] == {
        "a1": "skip_input_add_a", "a2": "skip_input_add_a", "add_a": "skip_input_add_a",
        "b1": "skip_add_a_add_b", "b2": "skip_add_a_add_b", "add_b": "skip_add_a_add_b",
        "add_out": "skip_input_add_out",
    }  # fmt: skip


def test_subgraph_is_flattened_into_a_group_and_edges_enter_its_boundary():
    document = viz.graph_to_dict(graphs.recurrent_nested())
    ids = [n["id"] for n in document["nodes"]]
    assert ids == ["input", "fc_in", "lif", "w_rec", "rnn/input", "rnn/inner_lif", "rnn/inner_w", "rnn/output",
                   "fc_out", "output"]  # fmt: skip
    edges = {(e["source"], e["target"]): e for e in document["edges"]}
    assert ("lif", "rnn/input") in edges and ("rnn/output", "fc_out") in edges
    assert [k for k, e in edges.items() if e["recurrent"]] == [("rnn/inner_w", "rnn/inner_lif"), ("w_rec", "lif")]
    assert edges[("lif", "rnn/input")]["shape"] == [5]
    (group,) = document["groups"]
    assert group["type"] == "Subgraph" and group["nodes"] == ["rnn/input", "rnn/inner_lif", "rnn/inner_w", "rnn/output"]


def test_partition_annotations_give_cores_and_cross_core_edges():
    graph = graphs.annotate_partition(sdk_graphs.chain(), {"input": 0, "fc1": 0, "lif1": 1, "fc2": 1, "output": 0})
    document = viz.graph_to_dict(graph)
    assert document["summary"]["cores"] == [0, 1]
    assert [(e["source"], e["target"]) for e in document["edges"] if e["cross_core"]] == [
        ("fc1", "lif1"),
        ("fc2", "output"),
    ]
    assert document["metadata"]["partition_metadata"]["num_cores_used"] == 2


def test_bad_input():
    with pytest.raises(TypeError, match=r"talon\.ir\.Graph"):
        viz.graph_to_dict({"nodes": {}})
    with pytest.raises(ValueError, match="no nodes"):
        viz.graph_to_dict(ir.Graph({}, []))
    with pytest.raises(ValueError, match="graph_to_dict"):
        viz.render_html({"nodes": []})
    with pytest.raises(ValueError, match="rankdir"):
        viz.render_html(viz.graph_to_dict(sdk_graphs.chain()), rankdir="up")


def test_script_breaking_text_is_escaped(tmp_path):
    graph = sdk_graphs.chain()
    graph.metadata["name"] = "</script><script>alert(1)</script>"
    graph.nodes["fc1"].metadata["note"] = "</script>&<!--"
    html = viz.export_html(graph, tmp_path / "x.html").read_text()
    assert html.count("</script>") == 4  # data, options, worker source, viewer: nothing else closes a script
    assert "<script>alert(1)" not in html


def test_export_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "page.html"
    target.write_text("old page")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("talon.viz.display.os.replace", broken)  # the page is written, the rename fails
    with pytest.raises(OSError, match="disk full"):
        viz.export_html(sdk_graphs.chain(), target)
    assert target.read_text() == "old page"
    assert list(tmp_path.iterdir()) == [target]
    with pytest.raises(IsADirectoryError):
        viz.display.write_text_atomic(tmp_path, "x")


def test_sdk_passthroughs_and_the_legacy_display_module(tmp_path):
    import subprocess
    import sys

    from talon import sdk

    path = sdk.export_html(sdk_graphs.chain(), tmp_path / "sdk.html")
    assert path == tmp_path / "sdk.html" and 'id="talon-data"' in path.read_text()
    assert sdk.graph_to_dict is viz.graph_to_dict and sdk.visualize_partitioned is viz.visualize_partitioned
    served = viz.display.export_html(sdk_graphs.chain(), tmp_path / "served.html", serve=True)
    try:
        assert served.exists()
    finally:
        assert viz.stop_servers() == 1
    # the viz layer never imports torch
    code = "import sys, talon.viz; print('torch' in sys.modules, 'jax' in sys.modules)"
    assert subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env()
    ).stdout.split() == [
        "False",
        "False",
    ]
