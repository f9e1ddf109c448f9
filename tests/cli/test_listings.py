"""Long listings (``inspect``, ``analyze -v``): the first rows and a count of the rest by default,
every row on request, and above ``RICH_TABLE_ROWS`` rows aligned plain text, one row per line."""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.cli._common import RICH_TABLE_ROWS
from talon.examples import chain, leaky, mlp_graph
from tests.cli.test_cli import run

LAYERS = 80  # 2 nodes per layer + input + output: 162 nodes, 161 edges


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    path = tmp_path_factory.mktemp("listings") / "deep.t1c"
    ir.write(path, mlp_graph(0, (3,) * (LAYERS + 1)))
    return path


def _rows(text: str, title: str) -> list[str]:
    """The lines of the listing titled ``title``, header and rule left out."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 3 :]:
        if "  " not in line:  # columns are two spaces apart; a title or a "… more" line is not
            break
        rows.append(line)
    return rows


def test_inspect_shows_the_first_rows_and_counts_the_rest(deep):
    result = run("inspect", deep)
    assert result.exit_code == 0, result.output
    assert f"deep.t1c: {2 * LAYERS + 2} nodes" in result.stdout
    assert "… 112 more nodes (--all shows every one, --json dumps them all)" in result.stdout
    assert "… 111 more edges (--all shows every one, --json dumps them all)" in result.stdout
    assert "│ 49 │ fc25 " in result.stdout and " fc26 " not in result.stdout  # rows 0..49, a rich table
    limited = run("inspect", deep, "--limit", "3").stdout
    assert "… 159 more nodes" in limited and "… 158 more edges" in limited and " lif2 " not in limited


def test_inspect_all_lists_every_row_as_plain_text(deep):
    result = run("inspect", deep, "--all")
    assert result.exit_code == 0 and "more node" not in result.stdout
    assert "┃" not in result.stdout and "│" not in result.stdout  # more than RICH_TABLE_ROWS rows: no boxes
    nodes = _rows(result.stdout, str(deep))
    assert len(nodes) == 2 * LAYERS + 2
    assert nodes[1].split() == ["1", "fc1", "Affine", "[3]", "[3]", "12"]
    assert nodes[-1].split() == [str(2 * LAYERS + 1), "output", "Output", "[3]", "[3]", "0"]
    edges = _rows(result.stdout, f"{2 * LAYERS + 1} edges")
    assert len(edges) == 2 * LAYERS + 1 and edges[0].split() == ["0", "input", "fc1", "[3]"]
    header = result.stdout.splitlines()[1]
    assert header.split() == ["#", "name", "type", "input", "output", "params"]
    assert all(len(line) <= len(result.stdout.splitlines()[2]) for line in nodes)  # aligned under the rule


def test_analyze_verbose_lists_every_layer(deep):
    text = run("analyze", deep, "-v").stdout
    layers = _rows(text, "Layers")
    assert len(layers) == 2 * LAYERS + 2
    assert layers[2].split() == ["lif1", "LIF", "[3]", "[3]", "15", "0"]


def test_plain_listing_escapes_control_characters(tmp_path):
    """A node name cannot move the cursor or forge a line in the plain listing either."""
    layers = [(f"n{i}", leaky(2)) for i in range(RICH_TABLE_ROWS)]
    layers.append(("evil\x1b[2J\nerror: x", ir.Affine(np.ones((2, 2), np.float32))))
    path = tmp_path / "evil.t1c"
    ir.write(path, chain([2], *layers))
    out = run("inspect", path, "--all").stdout
    assert "\x1b" not in out and "evil\\x1b[2J\\x0aerror: x" in out
    assert not any(line.startswith("error:") for line in out.splitlines())
