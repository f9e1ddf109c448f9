"""Errors of the hardware mapping."""

from __future__ import annotations

from ..ir.errors import TalonError


class MappingError(TalonError):
    """A graph cannot be mapped onto the hardware as asked (the message says why and what to do)."""


class HardwareSpecError(MappingError, ValueError):
    """A hardware spec is invalid (the message names the field)."""
