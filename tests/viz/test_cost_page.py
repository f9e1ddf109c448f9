"""The costs on the page, in a real headless chromium: per node, per core against the chip's
limits (over-full and near-full cores marked), totals in the side panel, colour by memory /
operations / load, and long or hostile names cut in the drawing but whole in the tooltip and panel."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from talon import ir, sdk, viz
from talon.graph import partition
from talon.graph.examples import e2e_conv_snn, recurrent_snn
from talon.viz.constants import node_color
from tests.viz.test_hostile_names import XSS

pytest.importorskip("pymetis")


def panel_rows(page, selector: str = "#talon-panel table tr") -> dict[str, list[str]]:
    rows = page.eval_on_selector_all(selector, "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
    return {r[0]: r[1:] for r in rows if r}


def test_graph_page_shows_analyze_and_profile_numbers(watched, tmp_path):
    graph = recurrent_snn(inputs=20, hidden=30, outputs=4)
    stats, profile = sdk.analyze_graph(graph), sdk.profile_graph(graph)
    watched.goto_graph(viz.export_html(graph, tmp_path / "rec.html"))
    page = watched.page
    summary = panel_rows(page, "#talon-panel table.cost-summary tr")
    assert summary["parameter memory"][1] == f"{stats.total_bytes:,}"
    assert summary["MACs / step"][1] == f"{stats.total_macs:,}"
    assert summary["spike ops / step"][1] == f"{profile.spike_ops:,}" == "30"
    assert summary["ops / step"][1] == f"{profile.total_ops:,}"
    assert summary["total memory"][1] == f"{profile.total_memory:,}"
    layers = {layer.name: layer for layer in stats.layers}
    for node_id, layer_name in (("fc1", "fc1"), ("rec/w_rec", "rec.w_rec"), ("rec/neuron", "rec.neuron")):
        page.evaluate("id => window.talonViewer.select(id)", node_id)
        rows = panel_rows(page)
        assert rows["parameter bytes"] == [f"{layers[layer_name].bytes:,}"], node_id
        assert rows["MACs"] == [f"{layers[layer_name].macs:,}"], node_id
        assert rows["analyze name"] == [layer_name]
    assert rows["spike ops"] == ["30"] and rows["neurons"] == ["30"]  # rec/neuron: 30 LIF
    # the box of fc1 says its memory and operations: 600 weights + 30 biases float32 = 2,520 B, 600 MACs
    assert page.text_content('g.node[data-id="fc1"] tspan.cost') == " · 2.5 KB · 600 ops"


@pytest.fixture(scope="module")
def over_full(tmp_path_factory):
    """e2e_conv_snn on zynq_us_plus, read back with cores of 88,000 bytes instead of 98,304: core 0
    (88,588 B) is over, the 87,948-byte cores near full."""
    folder = tmp_path_factory.mktemp("over")
    ir.write(folder / "mapped.t1c", partition(e2e_conv_snn(), "zynq_us_plus"))
    graph = ir.read(folder / "mapped.t1c")
    graph.metadata["talon.partition"]["spec"]["sram_bytes_per_core"] = 88_000
    return graph


def test_partition_view_marks_over_and_near_full_cores(watched, over_full, tmp_path):
    path = viz.visualize_partitioned(over_full, tmp_path / "over.html")
    watched.goto_graph(path)
    page = watched.page
    status = dict(
        page.eval_on_selector_all("g.core-outline", "els => els.map(e => [+e.dataset.core, e.dataset.status])")
    )
    mapping = viz.graph_to_dict(over_full)["summary"]["mapping"]
    assert status == {c["core"]: c["status"] for c in mapping["cores"]}
    assert status[0] == "over" and status[1] == "near" and "ok" in status.values()
    assert page.text_content('g.core-outline[data-core="0"] text') == "core 0 · 100.7% · OVER"
    assert page.text_content('g.core-outline[data-core="1"] text') == "core 1 · 99.9% · near full"
    rows = page.eval_on_selector_all(
        "table.core-budgets tr[data-core]",
        "rs => rs.map(r => [r.className, ...Array.from(r.cells).map(c => c.textContent)])",
    )
    assert rows[0] == ["over", "core 0", "8", "7", "22,096", "88,588 B", " 100.7%"]
    assert rows[1][0] == "near"
    panel = page.inner_text("#talon-panel")
    assert "does not fit the chip · 19 of 32 cores" in panel and "core 0: sram_bytes 88,588 > 88,000" in panel
    page.evaluate("window.talonViewer.select('conv1')")
    rows = panel_rows(page)
    assert rows["core load"] == ["100.7% (over)"]
    assert rows["fp32 (mapped)"] == ["640 B"]  # 16 x 1 x 3 x 3 weights + 16 biases, 4 bytes each
    assert rows["int4"] == ["80 B"]  # two per byte
    watched.screenshot("viz-partition-cost.png", tmp_path)


def test_colour_by_memory_operations_and_load(watched, over_full, tmp_path):
    path = viz.visualize_partitioned(over_full, tmp_path / "colour.html", color_by="memory")
    watched.goto_graph(path)
    page = watched.page
    options = page.eval_on_selector_all("#talon-color-by option", "os => os.map(o => o.value)")
    assert options == ["type", "memory", "ops", "load"] and page.input_value("#talon-color-by") == "memory"

    def fills():
        return dict(
            page.eval_on_selector_all(
                "g.node", "els => els.map(e => [e.dataset.id, e.querySelector('path').getAttribute('fill')])"
            )
        )

    by_memory = fills()
    assert by_memory["pool"] == by_memory["input"] == "#f5f5f5"  # no parameters: the scale's zero
    assert by_memory["conv1"] not in (node_color("Conv2d"), by_memory["fc1_s1"])
    document = viz.graph_to_dict(over_full)
    most = max(n["cost"]["sram_bytes"]["fp32"] for n in document["nodes"])
    hottest = {n["id"] for n in document["nodes"] if n["cost"]["sram_bytes"]["fp32"] == most}
    assert {k for k, v in by_memory.items() if v == "rgb(127,0,0)"} == hottest  # the top of the scale
    assert page.locator('.heat-legend[data-color-by="memory"]').count() == 1
    page.select_option("#talon-color-by", "load")
    by_load = fills()
    assert by_load["conv1"] == by_load["lif1"]  # same core, same load
    page.select_option("#talon-color-by", "type")
    assert fills()["conv1"] == node_color("Conv2d") and page.locator(".heat-legend").count() == 0
    with pytest.raises(ValueError, match="color_by must be one of type, memory, ops, load"):
        viz.visualize_partitioned(over_full, tmp_path / "bad.html", color_by="heat")


def test_long_and_hostile_names_are_cut_in_the_drawing_only(watched, tmp_path):
    long_name = "layer_" + "x" * 288 + "_the_end"  # 300 characters
    markup = XSS + "y" * 250
    rng = np.random.default_rng(0)
    nodes = {
        "input": ir.Input(np.array([4])),
        long_name: ir.Affine(rng.standard_normal((4, 4)).astype(np.float32), np.zeros(4, np.float32)),
        markup: ir.LIF(tau=np.full(4, 4.0, np.float32), r=4.0, v_threshold=np.full(4, 0.5, np.float32)),
        "output": ir.Output(np.array([4])),
    }
    graph = ir.Graph(nodes, list(itertools.pairwise(nodes)))
    watched.goto_graph(viz.export_html(graph, tmp_path / "long.html"))
    page = watched.page
    drawn_node = """id => {
        const g = [...document.querySelectorAll("g.node")].find((e) => e.dataset.id === id);
        return { width: g.querySelector("path").getBBox().width, name: g.querySelector("text.name").textContent,
                 title: g.querySelector("title").textContent };
    }"""
    for name in (long_name, markup):
        drawn = page.evaluate(drawn_node, name)
        assert drawn["width"] < 300, name  # layout units (px at 100 %): was ~2,000 for 300 characters
        assert len(drawn["name"]) == 36 and "…" in drawn["name"] and name.startswith(drawn["name"].split("…")[0])
        assert drawn["title"].startswith(name + " (")
        page.evaluate("id => window.talonViewer.select(id)", name)
        assert page.text_content("#talon-panel h2") == name
    assert page.evaluate(drawn_node, long_name)["name"].endswith("x_the_end")
    page.fill("#talon-search", "the_end")
    assert page.eval_on_selector_all("g.node.match", "els => els.map(e => e.dataset.id)") == [long_name]
    assert page.evaluate("window.__xss === undefined")


def test_partition_view_says_why_it_has_no_budgets(watched, over_full, tmp_path):
    damaged = ir.Graph(over_full.nodes, over_full.edges, metadata=dict(over_full.metadata))
    record = dict(damaged.metadata["talon.partition"], spec={"num_cores": "many"})
    damaged.metadata["talon.partition"] = record
    with pytest.warns(UserWarning, match="cannot be budgeted"):
        path = viz.visualize_partitioned(damaged, tmp_path / "damaged.html")
    watched.goto_graph(path)
    page = watched.page
    assert "cannot be budgeted against its chip" in page.text_content(".mapping-error")
    assert page.locator("g.core-outline").count() == 19 and page.locator("g.core-outline[data-status]").count() == 0
