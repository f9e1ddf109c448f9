"""``talon nir import|export``: the Python readers and writers of ``talon.interop.nir`` from the command
line, ``--producer`` / ``--consumer`` with the names of the same registry (``profiles.PROFILES``)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from talon import ir
from tests.cli.test_cli import run, run_json
from tests.paths import NIR_PAPER
from tests.subprocesses import child_env

pytest.importorskip("nir")  # write_nir (the nir extra)
from talon.interop.nir import read_nir, write_nir
from talon.interop.nir.profiles import PROFILES

THETA = np.array([0.5, 0.8, 1.2])


@pytest.fixture
def sinabs_file(tmp_path):
    """A NIR file as Sinabs writes an IAF layer: per-neuron thresholds, read back by talon's own writer."""
    neuron = ir.IF(v_threshold=THETA, reset_mode="subtract", spike_mode="multi", v_min=-THETA, comparison=">=",
                   reset_gradient="through")  # fmt: skip
    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "n": neuron, "output": ir.Output(np.array([3]))},
        [("input", "n"), ("n", "output")],
    )
    path = tmp_path / "sinabs.nir"
    with pytest.warns(UserWarning):  # talon's default surrogate is not Sinabs'
        write_nir(path, graph, consumer="sinabs")
    return path


def test_import_with_producer_is_read_nir_with_it(sinabs_file, tmp_path):
    out = tmp_path / "m.t1c"
    doc = run_json("nir", "import", sinabs_file, "-o", out, "--producer", "Sinabs")
    with pytest.warns(UserWarning, match="producer='sinabs'"):
        expected = read_nir(sinabs_file, producer="sinabs")
    assert ir.graph_differences(ir.read(out), expected) == []
    assert ir.read(out).nodes["n"].surrogate == "threshold_exponential(width=0.5, scale=1.0)"
    assert doc["producer"] == "sinabs 3.1.3" and doc["dt"] == 1.0 and doc["nodes"] == 3
    assert [w.split(":")[0] for w in doc["warnings"]] == ["producer='sinabs'"]  # NIR carries no surrogate

    plain = run("nir", "import", sinabs_file, "-o", tmp_path / "plain.t1c")  # NIR's semantics: another graph
    assert plain.exit_code == 0, plain.output
    assert ir.graph_differences(ir.read(tmp_path / "plain.t1c"), expected) != []

    result = run("nir", "import", sinabs_file, "-o", out, "--producer", "sinabs", "--surrogate", "gaussian(sigma=0.3)")
    assert result.exit_code == 0 and result.stderr == "", result.output  # stated: nothing to warn about
    assert ir.read(out).nodes["n"].surrogate == "gaussian(mu=0.0, sigma=0.3, scale=1.0)"
    assert "✓ Read" in result.stdout and "as sinabs runs it" in result.stdout


def test_producer_and_consumer_offer_the_registry():
    for command, option in (("import", "--producer"), ("export", "--consumer")):
        result = run("nir", command, "-h")
        assert f"{option} [{'|'.join(PROFILES)}]" in result.stdout
        bad = run("nir", command, "x", "-o", "y", option, "brian2")
        assert bad.exit_code == 2
        assert f"Invalid value for '{option}': 'brian2' is not one of 'nir', 'snntorch'" in bad.stderr


def test_export_with_consumer_round_trips_and_refuses_by_node(sinabs_file, tmp_path):
    graph_file, back = tmp_path / "m.t1c", tmp_path / "back.nir"
    assert run("nir", "import", sinabs_file, "-o", graph_file, "--producer", "sinabs").exit_code == 0
    doc = run_json("nir", "export", graph_file, "-o", back, "--consumer", "sinabs")
    assert doc["warnings"] == [] and doc["consumer"] == "sinabs"
    with pytest.warns(UserWarning):
        again = read_nir(back, producer="sinabs")
    assert ir.graph_differences(again, ir.read(graph_file), metadata=False) == []
    assert again.metadata == ir.read(graph_file).metadata

    refused = run("nir", "export", graph_file, "-o", tmp_path / "r.nir", "--consumer", "rockpool")
    assert refused.exit_code == 2 and not (tmp_path / "r.nir").exists()
    assert refused.stderr.startswith("error: node 'n' (IF): Rockpool 3.1.0 would misread 'type'")
    lossy = run("nir", "export", graph_file, "-o", tmp_path / "l.nir", "--lossy")  # NIR cannot state it exactly
    assert lossy.exit_code == 0 and "warning: " in lossy.stderr and (tmp_path / "l.nir").is_file()


def test_bad_files_are_one_line_errors(tmp_path):
    missing = run("nir", "import", tmp_path / "none.nir", "-o", tmp_path / "m.t1c")
    assert (missing.exit_code, missing.stderr) == (2, f"error: no such NIR file: {tmp_path / 'none.nir'}\n")
    text = tmp_path / "text.nir"
    text.write_text("not hdf5")
    result = run("nir", "import", text, "-o", tmp_path / "m.t1c")
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    result = run("nir", "import", text, "-o", tmp_path / "m.t1c", "--dt", "-1")  # the caller's value, not the file
    assert result.stderr == "error: read_nir: dt must be a positive finite number of seconds, got -1.0\n"


def test_help_does_not_load_the_nir_layer():
    code = "import sys; from talon.cli import main; main(['-h'], standalone_mode=False); print(sorted(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True)
    assert "'talon.interop.nir'" not in out.stdout and "'talon.interop.nir.profiles'" not in out.stdout


def test_a_file_whose_shapes_contradict_its_structure_names_the_option(tmp_path):
    """Rockpool's own files declare an Output of shape [1, 1, 1] on a one-neuron graph: the error
    says how to read them from the command line too, and that option reads them."""
    path = NIR_PAPER / "01_lif__lif_rockpool.nir"
    refused = run("nir", "import", path, "-o", tmp_path / "m.t1c")
    assert refused.exit_code == 2 and "talon nir import --no-type-check" in refused.stderr
    read = run("nir", "import", path, "-o", tmp_path / "m.t1c", "--no-type-check")
    assert read.exit_code == 0 and ir.read(tmp_path / "m.t1c").nodes
