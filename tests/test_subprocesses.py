"""Child processes of the suite run the talon under test (tests/subprocesses.py)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import talon
from tests.subprocesses import SOURCE, child_env

TESTS = Path(__file__).resolve().parent
_SPAWN = {"run", "Popen", "check_output", "check_call", "call"}
_PRINT_TALON = "import talon; print(talon.__file__)"


def _child_talon(cwd, base=None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _PRINT_TALON], env=child_env(base), cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_child_imports_the_talon_under_test_from_any_directory(tmp_path, monkeypatch):
    """As run in a worktree (``PYTHONPATH=src``, relative) with the child in another directory, and
    from a minimal environment (no PYTHONPATH at all): the child's talon is this process's."""
    assert Path(talon.__file__).resolve().parent == Path(SOURCE) / "talon"
    monkeypatch.chdir(Path(SOURCE).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([Path(SOURCE).name, "elsewhere"]))
    assert child_env()["PYTHONPATH"].split(os.pathsep) == [SOURCE, str(Path(SOURCE).parent / "elsewhere")]
    assert _child_talon(tmp_path) == talon.__file__
    assert _child_talon(tmp_path, {"PATH": ""}) == talon.__file__
    changed = child_env({"A": "1", "B": "2"}, A=None, C="3")
    assert changed == {"B": "2", "C": "3", "PYTHONPATH": SOURCE}


def _spawns_python(call: ast.Call) -> bool:
    """``subprocess.run([sys.executable, ...])`` (or Popen ...) or a command starting with python / talon."""
    func = call.func
    if not (
        isinstance(func, ast.Attribute) and func.attr in _SPAWN and getattr(func.value, "id", None) == "subprocess"
    ):
        return False
    if not call.args or not isinstance(call.args[0], ast.List) or not call.args[0].elts:
        return False
    first = call.args[0].elts[0]
    if isinstance(first, ast.Attribute):
        return first.attr == "executable" and getattr(first.value, "id", None) == "sys"
    return isinstance(first, ast.Constant) and first.value in ("python", "python3", "talon", "t1c")


def _env_is_child_env(call: ast.Call) -> bool:
    env = next((k.value for k in call.keywords if k.arg == "env"), None)
    return isinstance(env, ast.Call) and getattr(env.func, "id", None) == "child_env"


def test_every_python_child_of_the_suite_gets_child_env():
    """A ``python`` / ``talon`` child without ``env=child_env(...)`` would test whichever talon is
    installed: with no ``env`` it inherits a PYTHONPATH that may be relative (read against its own
    ``cwd``) or absent (the test process found talon another way); a hand-made ``env`` may drop it."""
    found, offenders = 0, []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _spawns_python(node):
                found += 1
                if not _env_is_child_env(node):
                    offenders.append(f"{path.relative_to(TESTS.parent)}:{node.lineno}")
    assert found >= 25, found  # the scan sees the suite's child processes
    assert offenders == [], f"pass env=child_env(...) (tests/subprocesses.py) at {offenders}"
