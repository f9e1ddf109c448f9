"""`talon simulate` and `talon energy`: the CPU backend from the command line."""

import subprocess
import sys

import numpy as np

from talon import ir
from talon.backend import get_backend
from tests.subprocesses import child_env

from ..sdk import graphs
from .test_cli import run, run_json


def test_simulate_reports_the_backend_spike_counts(tmp_path):
    path = tmp_path / "hybrid.t1c"
    graph = graphs.hybrid()
    ir.write(path, graph)
    doc = run_json("simulate", path, "--steps", "12")
    expected = get_backend("cpu").simulate(graph, n_steps=12)
    assert doc["spike_counts"] == expected.spike_counts and doc["timesteps_run"] == 12
    assert sum(doc["spike_counts"].values()) > 0  # the default stimulus makes the network fire
    quantized = run_json("simulate", path, "--steps", "12", "--precision", "int8")
    assert 0.0 <= quantized["spike_agreement_with_fp32"] <= 1.0
    text = run("simulate", path, "--steps", "12")
    assert text.exit_code == 0 and "lif" in text.output


def test_energy_matches_the_backend_profile(tmp_path):
    path = tmp_path / "chain.t1c"
    graph = graphs.chain()
    ir.write(path, graph)
    doc = run_json("energy", path, "--steps", "8", "--preset", "45nm_cmos")
    prof = get_backend("cpu").profile(graph, n_steps=8, energy_preset="45nm_cmos")
    assert doc["mac_ops"] == prof.mac_ops and doc["synaptic_ops"] == prof.synaptic_ops
    assert doc["energy_estimate_uj"] == prof.energy_estimate_uj
    assert "energy:" in run("energy", path, "--steps", "8").output


def test_backend_commands_refuse_bad_input(tmp_path):
    missing = run("simulate", tmp_path / "nope.t1c")
    assert missing.exit_code == 2 and "no such .t1c file" in missing.stderr
    bad_preset = tmp_path / "chain.t1c"
    ir.write(bad_preset, graphs.chain())
    result = run("energy", bad_preset, "--preset", "warp_drive")
    assert result.exit_code == 2 and "warp_drive" in result.stderr and "Traceback" not in result.output
    result = run("simulate", bad_preset, "--steps", "0")
    assert result.exit_code == 2  # click's usage error
    for options, named in ((["--sensor-size", "4", "4"], "--sensor-size"), (["--bin-us", "500"], "--bin-us")):
        result = run("simulate", bad_preset, "--steps", "3", *options)  # was ignored: the default stimulus ran
        assert result.exit_code == 2 and f"error: {named}: only with --events REC" in result.stderr


def test_simulate_as_a_subprocess(tmp_path):
    path = tmp_path / "chain.t1c"
    ir.write(path, graphs.chain())
    out = subprocess.run([sys.executable, "-m", "talon", "simulate", str(path), "--steps", "5", "--json"],
                         capture_output=True, text=True, check=False, env=child_env())  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"timesteps_run": 5' in out.stdout


def test_usage_errors_are_one_line():
    for args in (["simulate"], ["simulate", "x.t1c", "--steps", "0"], ["--bogus"], ["convert", "x.t1c"]):
        result = run(*args)
        assert result.exit_code == 2, args
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr


def test_simulate_and_energy_exit_1_when_an_output_is_not_finite(tmp_path):
    overflowing = tmp_path / "overflow.t1c"
    nodes = {
        "input": ir.Input(np.array([2])),
        "big": ir.Scale(np.array([3e38, 3e38], np.float32)),  # finite, but any stimulus overflows to inf
        "twice": ir.Scale(np.array([10.0, 10.0], np.float32)),
        "output": ir.Output(np.array([2])),
    }
    ir.write(overflowing, ir.Graph(nodes, [("input", "big"), ("big", "twice"), ("twice", "output")]))
    simulated = run_json("simulate", overflowing, "--steps", "4", code=1)
    assert simulated["outputs_valid"] is False
    profiled = run_json("energy", overflowing, "--steps", "4", code=1)
    assert profiled["simulation"]["outputs_valid"] is False
    assert run("energy", overflowing, "--steps", "4").exit_code == 1
