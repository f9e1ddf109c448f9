"""The graph page in a real headless chromium: every node drawn, real parameter shapes on click,
groups that collapse and expand, recurrent edges apart, search, no console error, no request."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talon import viz
from talon.examples import hybrid_graph
from tests.viz import graphs


@pytest.fixture(scope="module")
def seed_graph():
    """The seed's hybrid ANN/SNN: talon.examples builds, without torch, the graph snnTorch's
    ``export_to_ir`` gives (same nodes, edges, types and parameter shapes)."""
    return hybrid_graph(seed=0)


def drawn_ids(page) -> list[str]:
    return page.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.id)")


def panel_param_shapes(page) -> dict[str, str]:
    rows = page.eval_on_selector_all(
        "#talon-panel table tr", "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    return {r[0]: r[1] for r in rows if len(r) == 7 and r[0] != "name"}


def test_seed_model_every_node_and_real_parameter_shapes(watched, seed_graph, tmp_path):
    path = viz.export_html(seed_graph, tmp_path / "seed.html", title="Hybrid ANN/SNN")
    watched.goto_graph(path)
    page = watched.page
    assert sorted(drawn_ids(page)) == sorted(seed_graph.nodes)
    for name in ("conv1", "fc1", "lif", "fc2"):
        page.click(f'g.node[data-id="{name}"]')
        shown = panel_param_shapes(page)
        expected = {k: str(list(v.shape)) for k, v in seed_graph.nodes[name].arrays().items() if v.ndim > 0}
        assert {k: v.replace(" ", "") for k, v in shown.items()} == {
            k: v.replace(" ", "") for k, v in expected.items()
        }, name
    page.click('g.node[data-id="fc1"]')
    text = page.inner_text("#talon-panel")
    weight = seed_graph.nodes["fc1"].weight
    assert "[64, 3136]" in text and "float32" in text and "200,704" in text
    assert f"{float(weight.min()):.4g}" in text.replace("−", "-")
    watched.screenshot("viz-seed.png", tmp_path)


def test_residual_concat_groups_collapse_and_expand(watched, tmp_path):
    graph = graphs.residual_concat()
    path = viz.export_html(graph, tmp_path / "rc.html", title="Residual / concat network")
    watched.goto_graph(path)
    page = watched.page
    assert sorted(drawn_ids(page)) == sorted(graph.nodes)  # small graph: groups start expanded
    kinds = page.eval_on_selector_all("g.cluster", "els => els.map(e => e.dataset.type).sort()")
    assert kinds == ["RepConv", "SPP", "SPPF", "SkipConnection"]
    watched.screenshot("viz-groups-expanded.png", tmp_path)

    page.click('g.cluster[data-type="SPPF"] text.cluster-label')
    watched.wait_ready()
    shown = set(drawn_ids(page))
    assert shown.isdisjoint({"p1", "p2", "p3", "sppf_cat"})
    assert {"res_add", "mp5", "head"} <= shown
    assert page.locator('g.group[data-type="SPPF"]').count() == 1

    page.click("#talon-groups")  # collapse every group
    watched.wait_ready()
    assert set(drawn_ids(page)) == {"input", "stem", "lif0", "head", "flat", "fc", "output"}
    assert page.locator("g.group").count() == 4
    shapes = page.eval_on_selector_all(
        "g.group", "els => Object.fromEntries(els.map(e => [e.dataset.type, e.dataset.shape]))"
    )
    assert shapes == {"RepConv": "hexagon", "SPP": "octagon", "SPPF": "octagon", "SkipConnection": "diamond"}
    watched.screenshot("viz-groups-collapsed.png", tmp_path)

    page.click('g.group[data-type="SkipConnection"]')  # expand one again
    watched.wait_ready()
    assert {"c1", "relu", "c2", "res_add"} <= set(drawn_ids(page))


def test_recurrent_edges_drawn_apart_and_subgraph_group(watched, tmp_path):
    graph = graphs.recurrent_nested()
    path = viz.export_html(graph, tmp_path / "rec.html", title="Recurrent network")
    watched.goto_graph(path)
    page = watched.page
    document = viz.graph_to_dict(graph)
    assert sorted(drawn_ids(page)) == sorted(n["id"] for n in document["nodes"])
    recurrent = page.eval_on_selector_all(
        "path.edge.recurrent", "els => els.map(e => [e.dataset.source, e.dataset.target]).sort()"
    )
    assert recurrent == [["rnn/inner_w", "rnn/inner_lif"], ["w_rec", "lif"]]
    assert page.locator("path.edge:not(.recurrent)").count() == len(document["edges"]) - 2
    page.click('g.node[data-id="w_rec"]')
    assert panel_param_shapes(page) == {"weight": "[5, 5]"}
    assert "(t−1)" in page.inner_text("#talon-panel")
    watched.screenshot("viz-recurrent.png", tmp_path)
    page.click('g.cluster[data-type="Subgraph"] text.cluster-label')
    watched.wait_ready()
    assert not any(i.startswith("rnn/") for i in drawn_ids(page))
    assert page.locator('g.group[data-group="rnn"]').count() == 1


def test_search_pan_zoom_fit_reset(watched, tmp_path):
    graph = graphs.residual_concat()
    watched.goto_graph(viz.export_html(graph, tmp_path / "s.html"))
    page = watched.page
    page.fill("#talon-search", "maxpool")
    matches = page.eval_on_selector_all("g.node.match", "els => els.map(e => e.dataset.id).sort()")
    assert matches == ["mp5", "mp9", "p1", "p2", "p3"]
    assert "5 matches" in page.inner_text("#talon-panel").lower()
    page.press("#talon-search", "Enter")
    assert page.locator('g.node.selected[data-id="p1"]').count() == 1

    def view():
        return page.get_attribute("#viewport", "transform")

    page.click("#talon-fit")
    fitted = view()
    page.mouse.move(400, 300)
    page.mouse.wheel(0, -400)
    assert view() != fitted
    page.mouse.move(300, 300)
    page.mouse.down()
    page.mouse.move(380, 340)
    page.mouse.up()
    page.click("#talon-reset")
    assert "scale(1)" in view()
    page.click("#talon-fit")
    assert view() == fitted


def test_large_graph_opens_collapsed_without_blocking(watched, tmp_path):
    graph = graphs.deep_residual(5000)
    path = viz.export_html(graph, tmp_path / "big.html", title="5,000 nodes")
    watched.page.goto(path.resolve().as_uri())
    # The layout runs in a worker: the page answers while it works.
    assert watched.page.evaluate("1 + 1") == 2
    watched.wait_ready(timeout=180_000)
    page = watched.page
    assert page.locator("g.group").count() == 1249  # every residual block folded
    assert sorted(drawn_ids(page)) == ["input", "output", "stem"]
    page.fill("#talon-search", "b1000_lif")
    page.press("#talon-search", "Enter")
    watched.wait_ready(timeout=180_000)
    assert page.locator('g.node.selected[data-id="b1000_lif"]').count() == 1


def test_page_is_self_contained(tmp_path):
    html = viz.export_html(graphs.residual_concat(), tmp_path / "p.html").read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html
    assert "default-src 'none'" in html  # the page may not load anything
    start = html.index('id="talon-data">') + len('id="talon-data">')
    document = json.loads(html[start : html.index("</script>", start)])
    assert document == json.loads(json.dumps(viz.graph_to_dict(graphs.residual_concat())))
    assert np.isclose(
        document["summary"]["total_params"], viz.graph_to_dict(graphs.residual_concat())["summary"]["total_params"]
    )


def test_notebook_iframe_renders(watched, tmp_path):
    """What Jupyter shows: the page inside a sandboxed <iframe srcdoc> (the layout worker included)."""
    graph = graphs.residual_concat()
    page_html = viz.render_html(viz.graph_to_dict(graph), "in a notebook")
    host = tmp_path / "notebook.html"
    host.write_text(f"<!DOCTYPE html><html><body>{viz.display.notebook_iframe(page_html, 900, 500)}</body></html>")
    watched.page.goto(host.resolve().as_uri())
    frame = watched.page.frames[1]
    frame.wait_for_selector("body[data-layout=ready]", timeout=60_000)
    assert sorted(frame.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.id)")) == sorted(graph.nodes)
