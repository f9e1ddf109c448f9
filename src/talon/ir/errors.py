"""Exceptions shared by every talon layer.

Each one is raised with a message that names the node, edge, module path or file concerned and
says what to do about it.
"""

from __future__ import annotations


class TalonError(Exception):
    """Base class of every error talon raises on purpose."""


class GraphValidationError(TalonError, ValueError):
    """A graph is structurally wrong: unknown node in an edge, bad arity, shape mismatch ..."""


class ShapeError(GraphValidationError):
    """A node's parameters or incoming shapes are inconsistent."""


class T1CFormatError(TalonError, OSError):
    """A `.t1c` file cannot be read or written: damaged, foreign, too new or inconsistent."""


class ConversionError(TalonError, ValueError):
    """A conversion between talon and another representation cannot be exact."""


class UnsupportedModuleError(ConversionError):
    """A framework module has no talon equivalent and no custom converter was given."""


class MissingDependencyError(TalonError, ImportError):
    """An optional dependency is not installed; the message names the pip extra to add (:func:`install_hint`)."""


def install_hint(extra: str) -> str:
    """How to add an optional extra of talon, for error messages (the commands of ``docs/install.md``).

    talon is installed from its checkout (it is not published on PyPI), so the command is the
    editable install of the checkout with that extra.
    """
    return f"install talon's '{extra}' extra: pip install -e '.[{extra}]' in the talon checkout (docs/install.md)"
