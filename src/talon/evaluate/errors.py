"""Errors of :mod:`talon.evaluate`."""

from talon.ir.errors import TalonError


class EvaluationError(TalonError, ValueError):
    """Bad evaluation input (data, encoder, options) or a shard that failed after its retries."""
