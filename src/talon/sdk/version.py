"""Versions of talon's components and of the libraries around it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import sys
from typing import TextIO

from talon import __version__
from talon.ir import list_primitives

__all__ = ["COMPONENTS", "__version__", "get_dependency_versions", "get_versions", "info", "list_primitives"]

COMPONENTS = ("ir", "sdk", "bridge", "interop", "backend", "graph", "viz")
"""talon's layers (docs: architecture). They ship in one package and share its version."""
DEPENDENCIES = (
    "numpy", "h5py", "click", "rich", "torch", "snntorch", "norse", "nir", "nirtorch", "jax", "flax", "spyx",
)  # fmt: skip


def get_versions() -> dict[str, str | None]:
    """``{'talon': v, 'talon.ir': v, ...}``: the version of each component, None when a component
    is not part of this installation. Nothing is imported (optional dependencies stay unloaded)."""
    versions: dict[str, str | None] = {"talon": __version__}
    for name in COMPONENTS:
        versions[f"talon.{name}"] = __version__ if importlib.util.find_spec(f"talon.{name}") is not None else None
    return versions


def get_dependency_versions() -> dict[str, str | None]:
    """Installed versions of Python and of talon's required and optional dependencies (None: absent)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in DEPENDENCIES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def info(file: TextIO | None = None) -> None:
    """Print the version table of talon's components and dependencies (to ``file``, default stdout)."""
    out = file if file is not None else sys.stdout
    rows = [(k, v or "not installed") for k, v in get_versions().items()]
    rows += [(k, v or "not installed") for k, v in get_dependency_versions().items()]
    width = max(len(k) for k, _ in rows)
    print(f"talon {__version__}: neuromorphic toolchain around TALON IR", file=out)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}", file=out)
