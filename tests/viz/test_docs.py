"""docs/viz.md runs as written: its Python blocks in order in one namespace, each printing exactly
the ```text block that follows it; its console block prints what the page shows."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import talon

DOC = Path(__file__).resolve().parents[2] / "docs" / "viz.md"


def blocks(text: str) -> list[tuple[str, str, bool]]:
    """(language, body, marked not-run) of every fenced block, in order."""
    out, language, body, not_run, previous = [], None, [], False, ""
    for line in text.splitlines():
        if line.startswith("```"):
            if language is None:
                language, body, not_run = line[3:].strip(), [], previous.startswith("<!-- not-run")
            else:
                out.append((language, "\n".join(body), not_run))
                language = None
        elif language is not None:
            body.append(line)
        previous = line if language is None else previous
    return out


def test_docs_viz_md_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    found = blocks(DOC.read_text())
    namespace: dict = {}
    checked = 0
    for i, (language, body, not_run) in enumerate(found):
        if language == "python":
            printed = io.StringIO()
            with redirect_stdout(printed):
                exec(compile(body, str(DOC), "exec"), namespace)
            if i + 1 < len(found) and found[i + 1][0] == "text":
                assert printed.getvalue() == found[i + 1][1] + "\n", f"block {i}"
                checked += 1
        elif language == "console" and not not_run:
            env = dict(os.environ, PYTHONPATH=str(Path(talon.__file__).resolve().parents[1]))
            for command, expected in _commands(body):
                argv = command.split()
                assert argv[0] == "talon"
                proc = subprocess.run(
                    [sys.executable, "-m", "talon", *argv[1:]], capture_output=True, text=True, env=env
                )
                assert proc.stdout == expected, command
                checked += 1
    assert checked >= 8
    for written in ("model.html", "partitioned.html", "schedule.html", "events.html", "spikes.png"):
        assert (tmp_path / written).stat().st_size > 0


def _commands(body: str) -> list[tuple[str, str]]:
    out = []
    for line in body.splitlines():
        if line.startswith("$ "):
            out.append([line[2:], ""])
        else:
            out[-1][1] += line + "\n"
    return [(c, e) for c, e in out]
