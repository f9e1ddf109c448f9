"""Human output on an 80-column terminal: no line wider than the terminal (tables fold their cells,
reports wrap with their indentation kept, titles are a line of their own), and the same report
unwrapped at 200 columns or into a pipe."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from rich.cells import cell_len

from talon import ir, sdk
from talon.cli import main
from talon.examples import hybrid_graph, mlp_graph


def run(*args, columns: int | None = 80):
    env = {"COLUMNS": str(columns)} if columns else {"COLUMNS": ""}
    return CliRunner(env=env).invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("narrow")
    long_name = folder / "a_model_file_with_a_rather_long_descriptive_name.t1c"
    ir.write(long_name, hybrid_graph(0))
    ir.write(folder / "mlp.t1c", mlp_graph(0, (16, 8, 4)))
    return {"model": long_name, "mlp": folder / "mlp.t1c", "folder": folder}


COMMANDS = [
    ["info"],
    ["primitives"],
    ["analyze", "{model}", "-v"],
    ["profile", "{model}"],
    ["lint", "{model}", "--strict"],
    ["validate", "{model}"],
    ["inspect", "{model}"],
    ["node", "{model}", "fc1"],
    ["trace", "{model}", "input", "output"],
    ["hash", "{model}"],
    ["compare", "{model}", "{mlp}"],
    ["simulate", "{model}", "--steps", "3"],
    ["simulate", "{mlp}", "--steps", "3", "--precision", "int8"],
    ["partition", "{model}"],
    ["compile", "{mlp}", "--hw", "loihi"],
    ["pipeline", "{mlp}", "--hw", "loihi", "--steps", "2"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:1] + a[2:]))
def test_no_line_is_wider_than_an_80_column_terminal(files, args):
    result = run(*(a.format(**files) for a in args))
    assert result.exit_code in (0, 1), result.output
    wide = [line for line in result.stdout.splitlines() if cell_len(line) > 80]
    assert not wide, "\n".join(wide)


def test_a_table_title_is_one_line_not_wrapped_at_the_tables_width(files):
    """rich wraps a title at the table's width: the two-column spike table of simulate split
    '<file>: 3 steps, fp32' over three lines."""
    lines = run("simulate", files["model"], "--steps", "3").stdout.splitlines()
    assert lines[0] == f"{files['model'].name}: 3 steps, fp32"
    assert lines[1].startswith("┏")


def test_reports_wrap_with_a_hanging_indent_only_when_the_width_is_known(files):
    report = sdk.format_profile(sdk.profile_graph(files["model"]))
    narrow = run("profile", files["model"]).stdout.splitlines()
    i = next(i for i, line in enumerate(narrow) if line.startswith("  - Consider using SpikingAffine"))
    assert narrow[i + 1].startswith("    ") and not narrow[i + 1].startswith("     ")  # under the item's text
    assert " ".join(" ".join(narrow).split()) == " ".join(report.split())  # same words, only re-wrapped
    assert run("profile", files["model"], columns=200).stdout == report + "\n"
    assert run("profile", files["model"], columns=None).stdout == report + "\n"  # a pipe: never wrapped


def test_counts_of_one_are_singular(files):
    text = run("pipeline", files["mlp"], "--hw", "loihi", "--steps", "2", columns=200).stdout
    assert "│ 1 core, 0 layers split," in text
