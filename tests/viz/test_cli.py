"""`talon visualize` and `talon export-html`: output, exit codes, JSON, the served page."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from talon import ir, viz
from talon.cli import main
from tests.subprocesses import child_env
from tests.viz import graphs


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "rc.t1c"
    ir.write(path, graphs.residual_concat())
    return path


def test_export_html(model, tmp_path, watched):
    out = tmp_path / "out" / "rc.html"
    result = CliRunner().invoke(main, ["export-html", str(model), "-o", str(out), "--direction", "LR"])
    assert result.exit_code == 0, result.output
    assert result.output == f"✓ Exported 22 nodes to: {out}\n"
    watched.goto_graph(out)
    assert watched.page.locator("g.node").count() == 22
    assert watched.page.input_value("#talon-direction") == "LR"
    assert watched.page.title() == "residual_concat"

    result = CliRunner().invoke(main, ["export-html", str(model), "-o", str(out), "--title", "RC", "--json"])
    document = json.loads(result.output)
    assert document == {
        "file": str(model),
        "output": str(out),
        "view": "graph",
        "bytes": out.stat().st_size,
        "nodes": 22,
        "top_level_nodes": 22,
    }
    assert "<title>RC</title>" in out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export-html", "missing.t1c", "-o", "x.html"], "error: no such .t1c file: missing.t1c"),
        (["export-html", "{model}"], "error: Missing option '-o'"),
        (["visualize", "{model}", "--port", "8000"], "error: --port needs --serve"),
        (["visualize", "{model}", "--serve", "--port", "0"], "error: Invalid value for '--port'"),
    ],
)
def test_bad_input_exit_2(model, args, message, tmp_path):
    args = [a.replace("{model}", str(model)) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "talon", *args], capture_output=True, text=True, cwd=tmp_path, env=child_env()
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr


def test_visualize_writes_to_the_temp_folder(model):
    before = set(viz.list_graphs())
    result = CliRunner().invoke(main, ["visualize", str(model), "--no-browser", "--json"])
    assert result.exit_code == 0, result.output
    path = Path(json.loads(result.output)["path"])
    assert path.parent == viz.TEMP_GRAPHS_DIR and path.name.startswith("residual_concat_")
    assert path in set(viz.list_graphs()) - before
    path.unlink()


def test_visualize_serve_on_loopback(model, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "talon", "visualize", str(model), "--serve", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert line.startswith("Serving visualization at: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split("at: ")[1].split(" ")[0]
        with urllib.request.urlopen(url, timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200 and 'id="talon-data"' in page
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_python_serve_and_stop(tmp_path):
    url = viz.serve(graphs.residual_concat(), title="Served graph", open_browser=False)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"<title>Served graph</title>" in response.read()
    finally:
        assert viz.stop_servers() == 1
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)
