"""Partition and execution-schedule views on graphs annotated as talon.graph.partition documents
(node.core_id, metadata["partition_metadata"])."""

from __future__ import annotations

import re

import pytest

from talon import viz
from talon.viz.compiled import schedule
from talon.viz.constants import core_color
from talon.viz.serialize import partition_assignments
from tests.sdk import graphs as sdk_graphs
from tests.viz import graphs

RC_CORES = {
    "input": 0, "stem": 0, "lif0": 0, "rep3": 0, "rep1": 0, "rep_add": 0,
    "c1": 1, "relu": 1, "c2": 1, "res_add": 1, "p1": 1, "p2": 1, "p3": 1, "sppf_cat": 1,
    "mp5": 2, "mp9": 2, "ident": 2, "spp_cat": 2, "head": 2, "flat": 2, "fc": 2, "output": 2,
}  # fmt: skip


def test_partition_view_one_outline_per_core(watched, tmp_path):
    graph = graphs.annotate_partition(graphs.residual_concat(), RC_CORES, algorithm="edgemap")
    path = viz.visualize_partitioned(graph, tmp_path / "partitioned.html")
    watched.goto_graph(path)
    page = watched.page
    outlines = page.eval_on_selector_all("g.core-outline", "els => els.map(e => e.dataset.core).sort()")
    assert outlines == ["0", "1", "2"]
    strokes = page.eval_on_selector_all(
        "g.node", "els => els.map(e => [e.dataset.id, e.querySelector('path').getAttribute('stroke')])"
    )
    assert dict(strokes) == {n: core_color(c) for n, c in RC_CORES.items()}
    cross = page.eval_on_selector_all(
        "path.edge.cross-core", "els => els.map(e => [e.dataset.source, e.dataset.target]).sort()"
    )
    assert cross == sorted([list(e) for e in graph.metadata["partition_metadata"]["cross_core_edges"]])
    assert page.locator("path.edge:not(.cross-core)").count() == len(graph.edges) - len(cross)
    legend = page.inner_text("#talon-panel")
    assert "core 0 · 6 nodes" in legend and "core 2 · 8 nodes" in legend and "cross-core edge (5)" in legend
    assert "(3 cores, edgemap)" in page.title()
    watched.screenshot("viz-partition.png", tmp_path)


def test_partition_view_refuses_a_node_without_core(tmp_path):
    cores = dict(RC_CORES)
    graph = graphs.annotate_partition(graphs.residual_concat(), cores)
    graph.nodes["head"].core_id = None
    del graph.metadata["partition_metadata"]["assignments"]["head"]
    with pytest.raises(ValueError, match=r"1 node\(s\) have no core \('head'\)"):
        viz.visualize_partitioned(graph, tmp_path / "p.html")
    with pytest.raises(ValueError, match="partition the graph first"):
        viz.visualize_execution_schedule(sdk_graphs.chain(), tmp_path / "s.html")
    assert not (tmp_path / "p.html").exists()


def test_schedule_by_hand():
    """chain: input(0) fc1(0) | lif1(1) fc2(1) | output(0); latencies input 0, fc1 2, lif1 1, fc2 3, output 0.5.

    input 0-0, fc1 0-2 (core 0); lif1 waits for fc1: 2-3, fc2 3-6 (core 1); output waits for fc2: 6-6.5.
    makespan 6.5; busy core 0 = 2.5 (idle 4), core 1 = 4 (idle 2.5); critical path: every node.
    """
    graph = sdk_graphs.chain()
    cores = {"input": 0, "fc1": 0, "lif1": 1, "fc2": 1, "output": 0}
    plan = schedule(graph, cores, {"input": 0.0, "fc1": 2.0, "lif1": 1.0, "fc2": 3.0, "output": 0.5})
    assert plan["start"] == {"input": 0.0, "fc1": 0.0, "lif1": 2.0, "fc2": 3.0, "output": 6.0}
    assert plan["makespan"] == 6.5
    assert plan["busy"] == {0: 2.5, 1: 4.0}
    assert plan["critical_path"] == ["input", "fc1", "lif1", "fc2", "output"]


def test_schedule_critical_path_skips_the_short_branch():
    """residual: input -> c1 (2) -> relu (1) -> c2 (2) -> add; input -> add. c1 relu on core 1, the rest on 0.

    core 0: input 0-0, then c2 waits for relu (finish 3): 3-5, add 5-6, output 6-6; the bypass
    input -> add is not on the critical path: input, c1, relu, c2, add, output.
    """
    graph = sdk_graphs.residual()
    cores = {"input": 0, "c1": 1, "relu": 1, "c2": 0, "add": 0, "output": 0}
    plan = schedule(graph, cores, {"input": 0, "c1": 2, "relu": 1, "c2": 2, "add": 1, "output": 0})
    assert plan["start"]["c2"] == 3 and plan["makespan"] == 6
    assert plan["critical_path"] == ["input", "c1", "relu", "c2", "add", "output"]
    assert plan["order"] == {0: ["input", "c2", "add", "output"], 1: ["c1", "relu"]}


def test_schedule_page(watched, tmp_path):
    graph = graphs.annotate_partition(sdk_graphs.chain(), {"input": 0, "fc1": 0, "lif1": 1, "fc2": 1, "output": 0})
    latency = {"input": 0.0, "fc1": 2.0, "lif1": 1.0, "fc2": 3.0, "output": 0.5}
    path = viz.visualize_execution_schedule(graph, tmp_path / "schedule.html", profile_result=latency)
    watched.page.goto(path.resolve().as_uri())
    page = watched.page
    assert page.locator("g.core-row").count() == 2
    assert page.locator("g.task").count() == 5 and page.locator("g.task.critical").count() == 5
    assert page.locator("path.dependency").count() == 2  # fc1 -> lif1, fc2 -> output
    summary = page.inner_text("#summary")
    assert "2 cores · 5 nodes · latency 6.50 µs" in summary
    assert re.search(r"input → fc1 → lif1 → fc2 → output", summary)
    watched.screenshot("viz-schedule.png", tmp_path)
    # without a profile: one unit per node
    path = viz.visualize_execution_schedule(graph, tmp_path / "order.html")
    assert "latency 5 steps" in path.read_text()
    with pytest.raises(TypeError, match="ProfileResult"):
        viz.visualize_execution_schedule(graph, tmp_path / "bad.html", profile_result=[1, 2])


def test_schedule_from_a_cpu_profile(tmp_path):
    from talon.backend import get_backend

    graph = graphs.annotate_partition(sdk_graphs.chain(), {"input": 0, "fc1": 0, "lif1": 1, "fc2": 1, "output": 1})
    profile = get_backend("cpu").profile(graph, n_steps=3)
    path = viz.visualize_execution_schedule(graph, tmp_path / "profiled.html", profile_result=profile)
    text = path.read_text()
    expected = sum(layer.latency_us for layer in profile.layers.values())
    latency = {n: profile.layers[n].latency_us if n in profile.layers else 0.0 for n in graph.nodes}
    plan = schedule(graph, partition_assignments(graph), latency)
    assert plan["makespan"] == pytest.approx(expected)  # a chain: the critical path is the whole run
    assert f"latency {plan['makespan']:,.2f} µs" in text


def test_views_of_a_real_partition(watched, tmp_path):
    """talon.graph.partition's own output: layers split into slices, one outline per used core,
    also after a .t1c round trip."""
    pytest.importorskip("pymetis")
    from talon import ir
    from talon.graph import HardwareSpec, partition

    spec = HardwareSpec(max_neurons_per_core=256, num_cores=16, sram_bytes_per_core=65536)
    mapped = partition(graphs.residual_concat(), spec)
    meta = mapped.partition_metadata
    used = sorted(set(meta["assignments"].values()))
    assert len(used) == meta["num_cores_used"] > 1 and meta["split_layers"]  # some layers were split
    ir.write(tmp_path / "mapped.t1c", mapped)
    reread = ir.read(tmp_path / "mapped.t1c")
    path = viz.visualize_partitioned(reread, tmp_path / "mapped.html")
    watched.goto_graph(path)
    page = watched.page
    outlines = page.eval_on_selector_all(
        "g.core-outline", "els => els.map(e => Number(e.dataset.core)).sort((a, b) => a - b)"
    )
    assert outlines == used
    drawn = page.eval_on_selector_all("g.node", "els => els.map(e => [e.dataset.id, Number(e.dataset.core)])")
    assert dict(drawn) == meta["assignments"]
    cross = page.eval_on_selector_all(
        "path.edge.cross-core", "els => els.map(e => [e.dataset.source, e.dataset.target])"
    )
    assert sorted(cross) == sorted(list(e) for e in meta["cross_core_edges"])
    schedule_page = viz.visualize_execution_schedule(reread, tmp_path / "mapped-schedule.html")
    assert f"{len(used)} cores · {len(reread.nodes)} nodes" in schedule_page.read_text()
