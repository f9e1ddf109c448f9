"""Shared constants, errors and small helpers of the NIR exchange."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from talon.ir import ConversionError, MissingDependencyError
from talon.ir.errors import install_hint

DEFAULT_DT = 1e-4
"""Default NIR time step in seconds (the snnTorch / Lava / NIR-paper convention)."""


class NIRFormatError(ConversionError):
    """A NIR file or graph is malformed: not HDF5, no ``node`` group, a missing field, a dangling edge ..."""


class MissingDtWarning(UserWarning):
    """A NIR file records no ``dt`` and none was passed: its time constants were converted with an assumed one."""


class ShortTimeConstantWarning(UserWarning):
    """A time constant read from NIR is shorter than one step at the ``dt`` used: ``beta = 1 - dt/tau < 0``."""


class LossyConversionWarning(UserWarning):
    """``to_nir(..., lossy=True)`` changed the behaviour of at least one node (listed in the message)."""


def import_nir():
    """Import the ``nir`` package, or raise :class:`MissingDependencyError` naming the extra."""
    try:
        import nir
    except ImportError as exc:
        raise MissingDependencyError(
            "talon.interop.nir needs the 'nir' package (>= 1.0.6) for this operation; " + install_hint("nir")
        ) from exc
    return nir


def check_dt(dt: Any, where: str = "dt") -> float:
    """Return ``dt`` as a positive finite Python float, or raise ValueError."""
    if isinstance(dt, bool):
        raise ValueError(f"{where} must be a positive number of seconds, got {dt!r}")
    try:
        value = float(np.asarray(dt).reshape(()))
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a positive number of seconds, got {dt!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{where} must be a positive finite number of seconds, got {dt!r}")
    return value


def same_bits(a: Any, b: Any) -> bool:
    """Whether two arrays are identical: dtype, shape and every byte."""
    a, b = np.asarray(a), np.asarray(b)
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()
    )


def float_dtype(arr: np.ndarray) -> np.dtype:
    """The float dtype a converted parameter keeps: its own if floating, else float64."""
    return arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float64)


def fmt_shape(shape: Any) -> str:
    return "?" if shape is None else str([int(d) for d in np.asarray(shape).reshape(-1)])


def _broadcast(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast a talon neuron parameter (scalar, per-channel ``(C,)`` or full) to ``shape``."""
    value = np.asarray(value)
    if value.shape == tuple(shape):
        return value
    if value.ndim == 1 and len(shape) > 1 and value.shape[0] == shape[0]:
        value = value.reshape((shape[0],) + (1,) * (len(shape) - 1))
    elif value.ndim == 1 and value.shape[0] == 1:
        value = value.reshape(())
    return np.ascontiguousarray(np.broadcast_to(value, shape))


def _shape(value: Any, label: str) -> tuple[int, ...]:
    arr = np.asarray(value)
    if arr.ndim > 1 or (arr.size and arr.dtype.kind not in "iuf"):
        raise NIRFormatError(f"{label}: a shape must be a 1-d list of integers, got {value!r}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise NIRFormatError(f"{label}: {value!r} is not a shape (not finite)")
    dims = tuple(int(d) for d in arr.reshape(-1))
    if any(not 0 <= d < 2**63 for d in dims):
        raise NIRFormatError(f"{label}: {value!r} is not a shape (dimensions must be 0 .. 2**63-1)")
    if arr.size and not all(float(a) == d for a, d in zip(arr.reshape(-1).tolist(), dims, strict=True)):
        raise NIRFormatError(f"{label}: {value!r} is not a shape")
    return dims


def unique_name(name: str, taken) -> str:
    """``name``, or the first of ``name_0``, ``name_1`` ... not in ``taken``."""
    candidate, i = name, 0
    while candidate in taken:
        candidate = f"{name}_{i}"
        i += 1
    return candidate
