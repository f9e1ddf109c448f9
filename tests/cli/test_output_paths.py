"""Commands that write an artefact (HTML page, descriptor JSON, result table, plot) never overwrite
one of their own input files: exit 2 with one line, the input intact."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir
from talon.cli import main
from talon.examples import mlp_graph


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def files(tmp_path):
    model = tmp_path / "m.t1c"
    ir.write(model, mlp_graph(0, sizes=(64, 16, 10)))
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((6, 64)).astype(np.float32))
    np.save(tmp_path / "y.npy", np.arange(6) % 10)
    return model, tmp_path / "x.npy", tmp_path / "y.npy"


def _commands(model, x, y):
    data = ["--data", x, "--labels", y, "--steps", 2, "--serial"]
    return [
        ["export-html", model, "-o", model],
        ["compile", model, "-o", model],
        ["evaluate", model, *data, "-o", model],
        ["evaluate", model, *data, "-o", x],
        ["sweep", model, *data, "--precision", "fp32", "-o", y],
        ["sweep", model, *data, "--precision", "fp32", "--plot", model],
    ]


def test_an_output_that_names_an_input_is_refused_and_the_input_kept(files):
    model, x, y = files
    before = {p: p.read_bytes() for p in files}
    for args in _commands(model, x, y):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "is an input of this command; writing there would destroy it" in result.output, result.output
        assert {p: p.read_bytes() for p in files} == before, args
    ir.read(model)


def test_other_outputs_are_written(files, tmp_path):
    model, _, _ = files
    assert run("export-html", model, "-o", tmp_path / "page.html").exit_code == 0
    assert run("compile", model, "-o", tmp_path / "d.json").exit_code == 0


def test_written_artefacts_take_their_mode_from_the_umask(files, tmp_path):
    """Pages, descriptors, specs and result tables are for sharing: not the 0600 of a temporary file."""
    from talon.graph import HardwareSpec

    model, x, y = files
    old = os.umask(0o022)
    try:
        outputs = {
            "page.html": ["export-html", model, "-o"],
            "d.json": ["compile", model, "-o"],
            "r.json": ["evaluate", model, "--data", x, "--labels", y, "--steps", 2, "--serial", "-o"],
            "s.csv": [
                "sweep",
                model,
                "--data",
                x,
                "--labels",
                y,
                "--steps",
                2,
                "--serial",
                "--precision",
                "fp32",
                "-o",
            ],
        }
        for name, args in outputs.items():
            assert run(*args, tmp_path / name).exit_code == 0, name
        HardwareSpec(num_cores=4).to_json(tmp_path / "spec.json")
        for name in [*outputs, "spec.json"]:
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    finally:
        os.umask(old)


def test_a_graph_output_that_is_not_a_t1c_file_is_refused_before_any_work(files):
    # 'talon convert m.t1c --prune -o x.npy' replaced the data set with a graph
    model, x, y = files
    before = {p: p.read_bytes() for p in files}
    for args in (
        ["convert", model, "--prune", "-o", x],
        ["stamp", model, "-o", y],
        ["partition", model, "--hw", "loihi", "-o", x.with_suffix(".h5")],
        ["convert", model, "--prune", "-o", model.with_suffix("")],
    ):
        result = run(*args)
        assert result.exit_code == 2 and result.output.count("\n") == 1, (args, result.output)
        assert "the graph is written as a .t1c file; give a path ending in .t1c" in result.output
    assert {p: p.read_bytes() for p in files} == before
    assert not x.with_suffix(".h5").exists() and not model.with_suffix("").exists()
    assert run("convert", model, "--prune", "-o", model.with_name("pruned.T1C")).exit_code == 0
    assert run("stamp", model).exit_code == 0  # in place, as before
