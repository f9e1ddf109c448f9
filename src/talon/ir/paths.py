"""The path argument of talon's public readers and writers, checked before any file is touched.

``open(42)`` would take a number for a file descriptor and ``os.stat(None)`` fails with "expected
str, bytes or os.PathLike object, not NoneType", naming neither the function nor the argument.
:func:`check_path` refuses anything that is not a path — None, a number, an open file, a list — with
a ``TypeError`` saying what was expected where. (An empty path is left to the readers and writers,
which name it: a writer's "cannot write : '' is not a file name", a reader's "is a directory".)
"""

from __future__ import annotations

import os
from pathlib import Path


def check_path(path, what: str) -> Path:
    """``path`` (a ``str``, ``bytes`` or ``os.PathLike`` naming a file) as a :class:`~pathlib.Path`;
    ``what`` names the file in the error (e.g. ``"the .t1c file to read"``)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        shown = repr(path) if len(repr(path)) <= 60 else f"a {type(path).__name__}"
        raise TypeError(f"{what} must be given as a path (str or os.PathLike), got {shown} ({type(path).__name__})")
    return Path(os.fsdecode(os.fspath(path)))
