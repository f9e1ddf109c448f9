"""Node names the IR allows but a page could trip on, and the numbers the page shows.

The IR accepts any non-empty string as a node name (docs/format.md): markup, quotes, a viewer's
own id prefixes ("group:", "core:", "cluster:"), a ``/`` that looks like a flattened subgraph id.
Every such node is drawn, shown and searchable as itself, in the graph and partition views; the
page's parameter count is ``talon analyze``'s."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from talon import ir, sdk, viz

XSS = '<img src=x onerror="window.__xss=1">'
SCRIPT = "</script><script>window.__xss=2</script>"


def _lif(n: int) -> ir.LIF:
    return ir.LIF(tau=np.full(n, 4.0, np.float32), r=4.0, v_threshold=np.full(n, 0.5, np.float32))


def _affine(rng, n: int) -> ir.Affine:
    return ir.Affine(rng.standard_normal((n, n)).astype(np.float32), np.zeros(n, np.float32))


def hostile_graph() -> ir.Graph:
    """input -> group:x -> core:0 -> cluster:y -> <img…> -> </script>… -> r (subgraph: input ->
    neuron -> output) -> r/neuron (a top-level node whose name is the subgraph node's flat id) ->
    q"u'ote -> ünïcødé_层 -> output."""
    rng = np.random.default_rng(0)
    inner = ir.Graph(
        {"input": ir.Input(np.array([4])), "neuron": _lif(4), "output": ir.Output(np.array([4]))},
        [("input", "neuron"), ("neuron", "output")],
    )
    nodes = {
        "input": ir.Input(np.array([4])),
        "group:x": _affine(rng, 4),
        "core:0": _lif(4),
        "cluster:y": _affine(rng, 4),
        XSS: _lif(4),
        SCRIPT: _affine(rng, 4),
        "r": inner,
        "r/neuron": _lif(4),
        "q\"u'ote": ir.Scale(np.array(2.0, np.float32)),  # a 0-d parameter
        "ünïcødé_层": _affine(rng, 4),
        "output": ir.Output(np.array([4])),
    }
    names = list(nodes)
    return ir.Graph(nodes, list(itertools.pairwise(names)), metadata={"name": SCRIPT})


def test_flattened_ids_never_collide_with_a_node_name():
    document = viz.graph_to_dict(hostile_graph())
    ids = [n["id"] for n in document["nodes"]]
    assert len(ids) == len(set(ids)) == 13
    by_id = {n["id"]: n for n in document["nodes"]}
    assert by_id["r/neuron"]["name"] == "r/neuron" and by_id["r/neuron"]["group"] is None  # the top-level node
    assert by_id["r/neuron_2"]["name"] == "neuron" and by_id["r/neuron_2"]["group"] == "r"  # the subgraph's
    edges = {(e["source"], e["target"]) for e in document["edges"]}
    assert {("r/input", "r/neuron_2"), ("r/neuron_2", "r/output"), ("r/output", "r/neuron")} <= edges
    assert ("r/output", "r/neuron_2") not in edges  # no false cycle through the subgraph


def test_page_parameter_count_is_analyze_count():
    graph = hostile_graph()
    document = viz.graph_to_dict(graph)
    # 4 x Affine (4 x 4 + 4), 4 x LIF (5 arrays of 4), Scale 1
    assert document["summary"]["total_params"] == sdk.analyze_graph(graph).total_params == 161
    scale = next(n for n in document["nodes"] if n["type"] == "Scale")
    assert scale["param_count"] == 1 and scale["params"]["scale"]["shape"] == []


def _check_page(watched, path, graph_ids):
    watched.goto_graph(path)
    page = watched.page
    drawn = page.eval_on_selector_all("g.node", "els => els.map(e => e.dataset.id)")
    assert sorted(drawn) == sorted(graph_ids)
    for node_id in graph_ids:
        page.evaluate("id => window.talonViewer.select(id)", node_id)
        assert page.locator("#talon-panel code").first.text_content() == node_id
    page.fill("#talon-search", "group:")
    assert page.eval_on_selector_all("g.node.match", "els => els.map(e => e.dataset.id)") == ["group:x"]
    assert page.evaluate("window.__xss === undefined")
    assert page.title() == SCRIPT


def test_hostile_names_graph_page(watched, tmp_path):
    graph = hostile_graph()
    ids = [n["id"] for n in viz.graph_to_dict(graph)["nodes"]]
    _check_page(watched, viz.export_html(graph, tmp_path / "names.html"), ids)


def test_hostile_names_partition_view(watched, tmp_path):
    pytest.importorskip("pymetis")
    import warnings

    from talon.graph import HardwareSpec, partition

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a tiny chip: more cores than it has
        mapped = partition(hostile_graph(), HardwareSpec(max_neurons_per_core=4, num_cores=4, sram_bytes_per_core=256))
    path = viz.visualize_partitioned(mapped, tmp_path / "names_part.html", title=SCRIPT)
    _check_page(watched, path, list(mapped.nodes))
    cores = watched.page.eval_on_selector_all(
        "g.node", "els => Object.fromEntries(els.map(e => [e.dataset.id, +e.dataset.core]))"
    )
    assert cores == mapped.partition_metadata["assignments"]


def test_pan_keeps_the_selection_and_keys_zoom(watched, tmp_path):
    from talon.examples import hybrid_graph

    watched.goto_graph(viz.export_html(hybrid_graph(seed=0), tmp_path / "pan.html"))
    page = watched.page
    page.click('g.node[data-id="fc1"]')
    box = page.locator("#talon-canvas").bounding_box()
    x, y = box["x"] + 15, box["y"] + 15  # the background, above the graph
    view = page.evaluate("({...window.talonViewer.state.view})")
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 120, y + 80, steps=6)
    page.mouse.up()
    moved = page.evaluate("({...window.talonViewer.state.view})")
    assert (moved["x"], moved["y"]) == pytest.approx((view["x"] + 120, view["y"] + 80))
    assert page.evaluate("window.talonViewer.state.selected") == "fc1"  # a drag pans, it does not deselect
    page.keyboard.press("+")
    assert page.evaluate("window.talonViewer.state.view.k") == pytest.approx(moved["k"] * 1.25)
    page.keyboard.press("-")
    assert page.evaluate("window.talonViewer.state.view.k") == pytest.approx(moved["k"])
    page.keyboard.press("Escape")
    assert page.evaluate("window.talonViewer.state.selected") is None
    page.mouse.click(x, y)  # a plain click on the background still clears a selection
    page.click('g.node[data-id="lif"]')
    page.mouse.click(x, y)
    assert page.evaluate("window.talonViewer.state.selected") is None


def test_event_page_title_is_text(watched, tmp_path):
    events = np.array([(1, 2, 5, True), (3, 3, 9, False)], dtype=[("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])
    title = "R&D <b>x</b> &amp; y"
    path = viz.export_events_html(events, tmp_path / "events.html", sensor_size=(4, 4, 2), title=title)
    watched.page.goto(path.resolve().as_uri())
    watched.page.wait_for_selector("body[data-ready=yes]")
    assert watched.page.title() == watched.page.locator("h1").text_content() == title


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc (a folder no file can be created in)")
def test_unwritable_page_error_names_the_page_not_a_temporary_file(tmp_path):
    from talon.examples import hybrid_graph

    with pytest.raises(OSError) as caught:
        viz.export_html(hybrid_graph(seed=0), "/proc/talon-review-page.html")
    assert str(caught.value).startswith("cannot write /proc/talon-review-page.html: ")
    assert ".tmp" not in str(caught.value)


def test_partition_view_marks_every_cross_core_edge(watched, tmp_path):
    """A recurrent layer split over cores: its delayed feedback edge crosses cores too, and the
    view marks it so (the pairs drawn cross-core are the partition's own cross_core_edges)."""
    pytest.importorskip("pymetis")
    from talon.graph import HardwareSpec, partition
    from talon.graph.examples import recurrent_snn

    mapped = partition(recurrent_snn(), HardwareSpec(num_cores=16, sram_bytes_per_core=98_304))
    meta = mapped.partition_metadata
    assert any(tuple(e) in mapped.recurrent_edges for e in meta["cross_core_edges"])
    watched.goto_graph(viz.visualize_partitioned(mapped, tmp_path / "rec.html"))
    drawn = watched.page.eval_on_selector_all(
        "path.edge.cross-core", "els => els.map(e => [e.dataset.source, e.dataset.target])"
    )
    assert {tuple(e) for e in drawn} == {tuple(e) for e in meta["cross_core_edges"]}


@pytest.mark.parametrize("title", ["L" * 300, "é" * 200, "..", "a title/with ../ parts"])
def test_any_title_names_a_temporary_page(title, monkeypatch, tmp_path):
    """`talon visualize` writes the page under a name made from the title: a 300-character title
    exceeded the file system's 255 and failed with 'File name too long'."""
    from click.testing import CliRunner

    from talon.cli import main
    from talon.examples import hybrid_graph

    monkeypatch.setattr(viz.display, "TEMP_GRAPHS_DIR", tmp_path / "pages")
    ir.write(tmp_path / "m.t1c", hybrid_graph(seed=0))
    args = ["visualize", str(tmp_path / "m.t1c"), "--title", title, "--no-browser", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    page = Path(json.loads(result.stdout)["path"])
    assert page.parent == tmp_path / "pages" and page.is_file() and len(page.name) <= 100
    assert not page.name.startswith((".", "_")) and page.read_text().count("<title>") == 1
