"""A model that needs more cores than the chip has: `talon pipeline` reports it as a finding (exit 1,
the summary table), `talon compile --hw` and `map_graph` refuse it with one clear error."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from talon import ir
from talon.cli import main
from talon.graph import HardwareSpec
from talon.graph.errors import MappingError
from talon.graph.examples import e2e_conv_snn
from talon.graph.pipeline import map_graph

pytest.importorskip("pymetis")

#: e2e_conv_snn needs 19 cores of 96 KiB (docs/mapping.md); this chip has 4
SMALL_CHIP = HardwareSpec(num_cores=4, sram_bytes_per_core=98_304, name="four")


def run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])


@pytest.fixture
def files(tmp_path):
    model, chip = tmp_path / "e2e.t1c", tmp_path / "four.json"
    ir.write(model, e2e_conv_snn())
    SMALL_CHIP.to_json(chip)
    return model, chip


def test_pipeline_reports_too_few_cores_as_a_finding(files):
    model, chip = files
    result = run("pipeline", model, "--hw", chip, "--steps", "3", "--json")
    assert result.exit_code == 1, result.output
    assert result.stderr == ""  # no Python warning, no error line: the table says it
    stages = {s["stage"]: s for s in json.loads(result.stdout)["stages"]}
    assert list(stages) == ["load", "lint", "partition", "place", "route", "allocate", "compile", "simulate"]
    assert not stages["partition"]["ok"] and "19 cores (the chip has 4)" in stages["partition"]["result"]
    assert all(stages[s]["result"].startswith("skipped: 19 cores") for s in ("place", "route", "compile"))
    assert not stages["allocate"]["ok"]
    assert stages["simulate"]["ok"] and "identical" in stages["simulate"]["result"]  # the split is still exact


def test_compile_with_too_few_cores_is_one_error_line(files):
    model, chip = files
    result = run("compile", model, "--hw", chip)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: the graph needs 19 cores but 'four' has 4: it does not fit this chip; use a spec with more or "
        "larger cores (talon partition reports the per-core budget)"
    ]


def test_partition_names_the_chip_not_core_none(files):
    model, chip = files
    result = run("partition", model, "--hw", chip)
    assert result.exit_code == 1
    assert "  chip: cores 19 > 4 (4.75x)" in result.stdout and "core None" not in result.stdout


def test_map_graph_refuses_without_a_warning(recwarn):
    with pytest.raises(MappingError, match="needs 19 cores but 'four' has 4"):
        map_graph(e2e_conv_snn(), SMALL_CHIP)
    assert [str(w.message) for w in recwarn] == []
