"""The command line as a new user meets it: ``--help`` and docs/cli.md name the same options, and
``--json`` documents carry data, not Python reprs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from talon import ir
from talon.cli import main
from talon.examples import hybrid_graph, mlp_graph
from tests.cli.test_cli import run

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        full = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            yield from _commands(command, full)
        else:
            yield full, command


def _doc_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"\| `talon ([a-z-]+(?: [a-z]+)?)\b", line)
        if match:
            rows.setdefault(match.group(1), line)
    return rows


COMMANDS = dict(_commands(main))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_help_is_in_the_commands_table(name):
    """Each command has a row in docs/cli.md's table naming each of its options (long, short or
    ``--no-`` form); ``sweep`` shares ``evaluate``'s data and run options, as its row says."""
    rows = _doc_rows()
    assert name in rows, f"docs/cli.md has no row for 'talon {name}'"
    row = rows[name] + (rows["evaluate"] if name == "sweep" else "")
    for param in COMMANDS[name].params:
        if not isinstance(param, click.Option) or "--help" in param.opts:
            continue
        forms = param.opts + param.secondary_opts
        assert any(re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", row) for f in forms), f"{name}: {forms}"
    known = {f for command in COMMANDS.values() for p in command.params for f in p.opts + p.secondary_opts}
    unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rows[name])) - known
    assert not unknown, f"docs/cli.md names options no command has: {unknown}"


_REPR = re.compile(r"\{'|'\}|\(\d+, \d+|array\(|np\.(float|int)|dtype\(|PosixPath\(|<[\w.]+ object at")


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_compare_json_describes_changes_without_python_reprs(tmp_path):
    """compare's change list said ``input_type: {'input': [1, 28, 28]} -> {'input': [784]}`` and
    ``reset_mode: 'subtract' -> 'value'``: Python reprs inside a JSON document. Values are JSON now."""
    a, b = tmp_path / "a.t1c", tmp_path / "b.t1c"
    ir.write(a, hybrid_graph(0))
    other = hybrid_graph(0)
    other.nodes["lif"].reset_mode = "zero"
    ir.write(b, other)
    ir.write(tmp_path / "mlp.t1c", mlp_graph(0))
    for pair in ((a, b), (a, tmp_path / "mlp.t1c")):
        result = run("compare", *pair, "--json")
        assert result.exit_code == 1
        doc = json.loads(result.stdout)
        reprs = [s for s in _strings(doc) if _REPR.search(s)]
        assert not reprs, reprs
    changes = json.loads(run("compare", a, tmp_path / "mlp.t1c", "--json").stdout)["node_diffs"][0]["changes"]
    assert changes[0] == 'input_type: {"input": [1, 28, 28]} -> {"input": [784]}'
    lif = next(d for d in json.loads(run("compare", a, b, "--json").stdout)["node_diffs"] if d["name"] == "lif")
    assert lif["changes"] == ['reset_mode: "subtract" -> "value"']  # "zero" is stored as "value" with v_reset 0


@pytest.mark.parametrize("args", [["analyze"], ["lint"], ["inspect"], ["hash"], ["partition"]], ids=" ".join)
def test_long_work_shows_a_spinner_on_a_terminal_only(monkeypatch, tmp_path, args):
    """A 30,000-node graph takes seconds to read and lint: a transient spinner on a terminal's
    stderr says what is going on; with --json (or in a pipe, as in every other test) nothing."""
    import io

    from rich.console import Console

    from talon import _terminal

    path = tmp_path / "m.t1c"
    ir.write(path, mlp_graph(0, (8, 4)))
    screen = io.StringIO()
    real = _terminal.console
    monkeypatch.setattr(
        _terminal, "console", lambda *, stderr=False: Console(file=screen, force_terminal=True) if stderr else real()
    )
    assert run(*args, path).exit_code == 0
    assert f"{path}" in screen.getvalue() and "ing " in screen.getvalue()  # "linting /…/m.t1c"
    screen.seek(0)
    screen.truncate()
    assert run(*args, path, "--json").exit_code == 0
    assert screen.getvalue() == ""
