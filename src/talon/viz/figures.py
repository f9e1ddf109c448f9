"""Saving matplotlib figures the way talon writes every file: atomically.

``fig.savefig(path)`` truncates ``path`` first and writes it as the figure renders, so a failure
midway (a full disk, an exception while rendering, Ctrl-C) leaves a broken file where the old one
was. :func:`save_figure` renders into a temporary file beside the target and renames it over the
target once complete (:func:`talon.ir.atomic.atomic_output`): a failed save leaves the old file
byte for byte and no temporary file; a directory as the target is refused by name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from talon.ir.paths import check_path


def save_figure(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """``fig.savefig(path, **savefig_kwargs)`` through a temporary file and a rename; returns ``path``.

    The format comes from the suffix of ``path`` (``.png``, ``.svg``, ``.pdf`` …; none: matplotlib's
    default, PNG), as ``savefig`` would choose it, unless ``format=`` is given."""
    from talon.ir.atomic import atomic_output

    path = check_path(path, "save_figure: the image file to write")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give the path of the image file to write")
    savefig_kwargs.setdefault("format", path.suffix[1:].lower() or None)
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fig.savefig(fh, **savefig_kwargs)
    return path
