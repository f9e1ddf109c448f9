"""Every page writer checks its output path first (talon.viz.display.page_path): a path that is no
path, or a directory, is refused naming the function before the page is built — also where the page
scripts are not built, whose error used to come first and hide the bad path."""

from __future__ import annotations

import numpy as np
import pytest

from talon import io
from talon.examples import mlp_graph
from talon.ir.errors import MissingDependencyError
from talon.viz import events as viz_events
from talon.viz import export_html, render
from talon.viz.compiled import visualize_execution_schedule, visualize_partitioned

GRAPH = mlp_graph(0, (4, 8, 3))
WRITERS = {
    "export_html": lambda p: export_html(GRAPH, p),
    "export_events_html": lambda p: viz_events.export_events_html(io.make_events(x=[1], y=[1], t=[1], p=[1]), p),
    "export_frames_html": lambda p: viz_events.export_frames_html(np.zeros((2, 4, 4)), p),
    "visualize_partitioned": lambda p: visualize_partitioned(GRAPH, p),  # not partitioned: refused after the path
    "visualize_execution_schedule": lambda p: visualize_execution_schedule(GRAPH, p),
}


@pytest.fixture
def unbuilt_scripts(monkeypatch):
    """The page scripts missing, as in a checkout where `make viz-assets` has not run."""

    def missing(name):
        raise MissingDependencyError(f"the talon.viz page scripts are not built (missing {name})")

    monkeypatch.setattr(render, "load_asset", missing)
    monkeypatch.setattr(viz_events, "load_asset", missing)


@pytest.mark.parametrize("name", WRITERS)
def test_a_bad_output_path_is_refused_first_naming_the_writer(name, unbuilt_scripts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write = WRITERS[name]
    for bad in (None, 42):
        with pytest.raises(TypeError, match=rf"^{name}: the .html file to write must be given as a path"):
            write(bad)
    with pytest.raises(IsADirectoryError, match=rf"^{name}: .* is a directory; give the path of the .html file"):
        write(tmp_path)
    assert list(tmp_path.iterdir()) == []
    if name in ("export_html", "export_events_html", "export_frames_html"):
        with pytest.raises(MissingDependencyError, match="page scripts are not built"):
            write(tmp_path / "page.html")  # a good path gets to the scripts
    assert list(tmp_path.iterdir()) == []
