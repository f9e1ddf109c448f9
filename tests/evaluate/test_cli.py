"""`talon evaluate` and `talon sweep`: JSON equal to the Python API, files written, bad input exits 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from click.testing import CliRunner

from talon import evaluate as ev
from talon import ir
from talon.cli import main

from .models import digits_graph


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate") / "model.t1c"
    ir.write(path, digits_graph())
    return path


def test_evaluate_json_equals_the_python_api(model, tmp_path):
    args = [
        "evaluate",
        str(model),
        "--data",
        "digits",
        "--steps",
        "10",
        "--encoder",
        "rate",
        "--serial",
        "--precision",
        "fp32",
        "--precision",
        "int8",
        "--reference",
        "fp32",
        "-o",
        str(tmp_path / "r.json"),
        "--json",
    ]
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    api = ev.evaluate(
        ir.read(model),
        ev.digits(),
        n_steps=10,
        encoder=ev.Rate(),
        precisions=["fp32", "int8"],
        reference="fp32",
        executor="serial",
    )
    for name in ("fp32", "int8"):
        ours, theirs = doc["precisions"][name], api[name].to_dict()
        for key in ("accuracy", "confusion_matrix", "spike_agreement", "energy_per_sample_uj", "neurobench"):
            assert ours[key] == theirs[key], key
    assert json.loads((tmp_path / "r.json").read_text())["samples"] == 360


def test_evaluate_a_data_file_with_a_table(model, tmp_path):
    data = ev.digits()
    np.savez(tmp_path / "d.npz", x=data.x[:50], y=data.y[:50])
    run = CliRunner().invoke(
        main,
        ["evaluate", str(model), "--data", str(tmp_path / "d.npz"), "--steps", "10", "--encoder", "rate", "--serial"],
    )
    assert run.exit_code == 0, run.output
    assert "50 samples x 10 steps" in run.output and "fp32" in run.output


def test_sweep_writes_its_table_and_plot(model, tmp_path):
    run = CliRunner().invoke(
        main,
        [
            "sweep",
            str(model),
            "--data",
            "digits",
            "--steps",
            "10",
            "--encoder",
            "rate",
            "--serial",
            "--weight-bits",
            "4",
            "--weight-bits",
            "8",
            "-o",
            str(tmp_path / "s.csv"),
            "--plot",
            str(tmp_path / "s.png"),
            "--json",
        ],
    )
    assert run.exit_code == 0, run.output
    doc = json.loads(run.stdout)
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert (
        [r["label"] for r in rows]
        == [r["label"] for r in doc["rows"]]
        == ["fp32 @ neuromorphic_int8", "int8/w4 @ neuromorphic_int8", "int8/w8 @ neuromorphic_int8"]
    )
    assert doc["pareto"] and (tmp_path / "s.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "missing.npz", "--steps", "5"], "missing.npz: no such data file"),
        (["--data", "digits", "--steps", "5", "--encoder", "sequence"], "a sequence sample must be"),
        (["--data", "digits", "--steps", "5", "--serial", "--scheduler", "tcp://127.0.0.1:1"], "exclude each other"),
        (["--data", "digits", "--labels", __file__, "--steps", "5"], "--labels is for an .npy --data file"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(model, args, message):
    run = CliRunner().invoke(main, ["evaluate", str(model), *args])
    assert run.exit_code == 2
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("error: ") and message in run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "table.txt"], "-o table.txt: the table is written as .csv or .json"),
        (["--plot", "plot.txt"], "--plot plot.txt: matplotlib cannot write '.txt' images"),
    ],
)
def test_sweep_refuses_an_output_it_cannot_write_before_running(model, tmp_path, monkeypatch, args, message):
    # '-o table.txt' wrote CSV under that name; '--plot plot.txt' failed with matplotlib's error after the sweep
    monkeypatch.chdir(tmp_path)
    run = CliRunner().invoke(main, ["sweep", str(model), "--data", "digits", "--steps", "2", "--serial", *args])
    assert run.exit_code == 2 and run.stderr.startswith(f"error: {message}") and run.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())  # refused before any work


def test_sweep_json_suffix_is_case_insensitive(model, tmp_path):
    run = CliRunner().invoke(
        main, ["sweep", str(model), "--data", "digits", "--steps", "2", "--serial", "-o", str(tmp_path / "T.JSON")]
    )
    assert run.exit_code == 0, run.output
    assert json.loads((tmp_path / "T.JSON").read_text())["rows"]  # was written as CSV
