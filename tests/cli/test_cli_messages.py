"""Issue #17, items 5–7: the command line speaks in flags and commands, ``--json`` is data, output
suits a pipe, and the demo does not report success when a step could not run."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir, sdk
from talon.cli import main
from talon.examples import hybrid_graph
from tests.subprocesses import child_env


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_messages") / "model.t1c"
    ir.write(path, hybrid_graph(seed=0))
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def talon(*args, cwd=None):
    """The real command, its output piped (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "talon", *map(str, args)], capture_output=True, text=True, cwd=cwd,
        env=child_env(COLUMNS=None), check=False,
    )  # fmt: skip


def test_bare_talon_lists_the_commands_without_an_error():
    result = talon()
    assert result.returncode == 0
    assert result.stderr == ""
    assert "Commands:" in result.stdout and "simulate" in result.stdout
    assert "error" not in result.stdout


@pytest.mark.parametrize(
    ("args", "names", "not_named"),
    [
        (["hash", "{model}", "--verify", "deadbeef"], ["--verify", "64 hexadecimal digits"], "expected_hash"),
        (["hash", "{model}", "--check-stamp"], ["talon stamp", "--verify HASH"], "expected_hash"),
        (["convert", "{model}", "-o", "x.t1c", "--quantize", "1"], ["--quantize"], "bits must"),
        (
            ["convert", "{model}", "-o", "x.t1c", "--spiking", "--weight-bits", "12", "--accumulator-bits", "8"],
            ["--accumulator-bits", "--weight-bits"],
            "accumulator_bits",
        ),
        (["energy", "{model}", "--preset", "7nm"], ["--preset", "45nm_cmos", "neuromorphic_int8"], "KeyError"),
    ],
)
def test_errors_name_flags_and_commands(model, tmp_path, args, names, not_named):
    result = talon(*(a.format(model=model) for a in args), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for name in names:
        assert name in lines[0]
    assert not_named not in lines[0]


def test_preset_choices_are_listed_in_help():
    from talon.backend import ENERGY_PRESETS

    help_text = "".join(run("energy", "-h").stdout.split())
    assert "--preset[" + "|".join(ENERGY_PRESETS) + "]" in help_text


def test_energy_json_is_data_not_a_repr(model):
    result = run("energy", model, "--steps", "5", "--json")
    assert result.exit_code == 0, result.stdout
    text = result.stdout
    assert len(text) < 12_000
    assert "SimulationResult(" not in text and "array(" not in text and "LayerProfile(" not in text
    doc = json.loads(text)
    assert "preset" not in doc and doc["energy_preset"] == "45nm_cmos"
    assert doc["layers"]["fc1"]["macs"] > 0
    assert (
        doc["simulation"]["spike_counts"]["lif"]
        == sdk.get_backend("cpu").simulate(ir.read(model), n_steps=5).spike_counts["lif"]
    )


def test_json_refuses_objects_without_a_json_form():
    from talon.sdk._common import jsonable

    with pytest.raises(TypeError, match="no JSON form"):
        jsonable({"x": object()})


def test_compare_says_identical_once(model):
    result = run("compare", model, model)
    assert result.exit_code == 0
    assert result.stdout.count("identical") == 1


def test_one_layer_is_not_layers(tmp_path):
    from talon.examples import mlp_graph

    path = tmp_path / "one.t1c"
    ir.write(path, mlp_graph(sizes=(4, 3)))
    result = run("convert", path, "--spiking", "-o", tmp_path / "out.t1c")
    assert result.stdout.splitlines()[0] == "✓ Converted 1 Affine layer to SpikingAffine"


def test_piped_tables_do_not_wrap_at_80_columns():
    result = talon("primitives")
    assert result.returncode == 0
    summaries = {row["name"]: row["summary"] for row in json.loads(talon("primitives", "--json").stdout)}
    longest = max(summaries, key=lambda name: len(summaries[name]))
    assert len(summaries[longest]) > 80
    row = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {longest} "))
    assert summaries[longest] in row  # the whole row on one line, however long
    assert "\x1b[" not in result.stdout  # no colour codes into a pipe


def test_the_demo_fails_loudly_when_a_step_cannot_run(tmp_path):
    code = (
        "import sys; sys.modules['sklearn'] = None\n"  # as on a base install without the dev extra
        "from talon.cli import main\n"
        f"main(['demo', '--quick', '--out', {str(tmp_path)!r}])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=False)
    assert result.returncode == 1
    assert "NOT RUN" in result.stdout and "pip install -e '.[snntorch,dev]'" in result.stdout
    assert result.stderr.strip().startswith("error: the demo did not complete")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [status for _, _, status in summary["steps"]] == ["NOT RUN"]


def test_a_lint_hint_wrapped_at_the_terminal_width_keeps_its_indentation(tmp_path):
    path = tmp_path / "big.t1c"
    weight = np.zeros((3000, 4000), np.float32)  # LARGE_MODEL: its hint is longer than 60 columns
    nodes = {"input": ir.Input(np.array([4000])), "fc": ir.Affine(weight, np.zeros(3000, np.float32)),
             "output": ir.Output(np.array([3000]))}  # fmt: skip
    ir.write(path, ir.Graph(nodes, [("input", "fc"), ("fc", "output")]))
    out = CliRunner(env={"COLUMNS": "60"}).invoke(main, ["lint", str(path)]).stdout
    hint = out[out.index("      hint: ") :].splitlines()
    assert len(hint) > 1 and all(line.startswith("      ") and len(line) <= 60 for line in hint), out
    assert " ".join(line.strip() for line in hint).startswith("hint: consider pruning or quantizing (sdk.quantize")
