"""Child processes of the tests run the talon under test, not whichever talon is installed.

A test that starts ``python -c ...`` or ``python -m talon ...`` tests the talon the *child* imports.
In a git worktree run as ``PYTHONPATH=src pytest`` (the shared venv's editable install points at
another checkout), or in a clean clone with a non-editable install, that is the test process's own
talon only if the child's ``PYTHONPATH`` says so: an ``env`` without it, a minimal ``env``, or a
relative ``PYTHONPATH=src`` with another ``cwd`` silently test the installed copy, and a regression
in the source under test passes. So every such child gets its environment from :func:`child_env`
(``tests/test_subprocesses.py`` checks every call site of the suite).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import talon

# the directory holding the talon package this test process imported (src/ of the checkout under test)
SOURCE = str(Path(talon.__file__).resolve().parents[1])


def child_env(base: Mapping[str, str] | None = None, /, **changes: str | None) -> dict[str, str]:
    """The environment of a child ``python`` / ``talon`` process: ``base`` (default: this process's
    environment; ``{}`` for a minimal one) with :data:`SOURCE` first on ``PYTHONPATH`` and the other
    entries made absolute (a relative entry would be read against the child's ``cwd``), then
    ``changes`` (a value of None removes the variable)."""
    env = dict(os.environ if base is None else base)
    entries = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([SOURCE, *entries]))
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
