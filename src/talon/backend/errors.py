"""Errors raised by the backends (all are :class:`talon.ir.TalonError` subclasses)."""

from __future__ import annotations

from talon.ir.errors import ConversionError, TalonError


class BackendError(TalonError, ValueError):
    """A backend cannot run this graph or these inputs; the message names the node or input at fault."""


class UnsupportedNodeError(BackendError, ConversionError):
    """A node type (or a node at the requested precision) has no implementation in the backend."""
