"""A reader that goes away (``talon ... | head -1``) and Ctrl-C end a command with the shells' codes
(141, 130), never with 1 ("findings") or 2 ("bad input"), and with no traceback or ``error:`` line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import talon as talon_package
from talon import ir
from talon.cli import main
from talon.examples import mlp_graph

SRC = str(Path(talon_package.__file__).resolve().parents[1])  # this checkout's talon


@pytest.fixture(scope="module")
def deep_model(tmp_path_factory):
    """800 nodes: inspect --all and analyze -v print more than a pipe buffer holds."""
    path = tmp_path_factory.mktemp("pipes") / "deep.t1c"
    ir.write(path, mlp_graph(0, (4,) * 401))
    return path


@pytest.mark.parametrize("args", [("inspect", "--all"), ("analyze", "-v")], ids=" ".join)  # long listings
def test_a_reader_that_goes_away_ends_the_command_quietly(deep_model, args):
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("COLUMNS", None)
    command = [sys.executable, "-m", "talon", args[0], str(deep_model), *args[1:]]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout.readline()  # `| head -1`: one line read, then the pipe is closed
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait() == 141  # 128 + SIGPIPE
    assert stderr == ""  # no "error: [Errno 32] Broken pipe", no traceback


def test_ctrl_c_is_exit_130_not_findings(monkeypatch, tmp_path):
    path = tmp_path / "mlp.t1c"
    ir.write(path, mlp_graph(0, (4, 3)))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("talon.backend.get_backend", interrupted)
    result = CliRunner().invoke(main, ["simulate", str(path)])
    assert result.exit_code == 130  # 128 + SIGINT
    assert result.stderr.strip() == "Aborted!"


def test_a_piped_report_has_no_progress_residue(tmp_path):
    """Progress bars draw on a terminal's stderr only: piped stdout starts with the report itself."""
    path = tmp_path / "mlp.t1c"
    ir.write(path, mlp_graph(0, (4, 3)))
    for args in (["pipeline", str(path), "--hw", "loihi", "--steps", "2"], ["simulate", str(path), "--steps", "2"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("mlp.t1c") and result.stderr == ""
