"""`talon export-html --view partition|schedule`: the mapping views of a file `talon partition -o` wrote."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from talon import ir
from talon.cli import main
from talon.graph.examples import e2e_conv_snn

pytest.importorskip("pymetis")


def run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("views")
    ir.write(folder / "e2e.t1c", e2e_conv_snn())
    assert run("partition", folder / "e2e.t1c", "--hw", "zynq_us_plus", "-o", folder / "mapped.t1c").exit_code == 0
    return folder


def _document(page: str, element: str) -> dict:
    start = page.index(f'id="{element}">') + len(f'id="{element}">')
    return json.loads(page[start : page.index("</script>", start)])


def test_partition_view_of_a_partitioned_file(files):
    out = files / "partition.html"
    result = run("export-html", files / "mapped.t1c", "-o", out, "--view", "partition", "--direction", "LR", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["view"] == "partition"
    page = out.read_text()
    options, data = _document(page, "talon-options"), _document(page, "talon-data")
    assert options["view"] == "partition" and options["rankdir"] == "LR"
    assert options["title"] == "Partitioned graph (19 cores, metis)"
    mapped = ir.read(files / "mapped.t1c")
    assert {n["id"]: n["core_id"] for n in data["nodes"]} == mapped.metadata["talon.partition"]["assignments"]


def test_schedule_view_of_a_partitioned_file(files):
    out = files / "schedule.html"
    result = run("export-html", files / "mapped.t1c", "-o", out, "--view", "schedule", "--title", "ConvSNN <schedule>")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("(schedule view)")
    page = out.read_text()
    assert "<title>ConvSNN &lt;schedule&gt;</title>" in page and "19 cores · 47 nodes" in page


def test_mapping_view_of_an_unpartitioned_file_is_refused(files):
    result = run("export-html", files / "e2e.t1c", "-o", files / "x.html", "--view", "partition")
    assert result.exit_code == 2 and not (files / "x.html").exists()
    assert result.stderr.splitlines() == [
        f"error: {files / 'e2e.t1c'} is not partitioned, so it has no partition view: map it first with "
        f"'talon partition {files / 'e2e.t1c'} --hw PRESET -o mapped.t1c' and export mapped.t1c"
    ]
