"""Summaries of parameter arrays and shapes for the page (JSON-ready, never the raw data)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def format_shape(shape: Any) -> str:
    """``(16, 1, 3, 3)`` → ``"[16, 1, 3, 3]"``; None → ``"?"``."""
    if shape is None:
        return "?"
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def encode_array(arr: np.ndarray) -> dict[str, Any]:
    """``{dtype, shape, size, min, max, mean}`` of an array (statistics over finite values;
    None when there are none). Booleans count as 0/1."""
    arr = np.asarray(arr)
    out: dict[str, Any] = {"dtype": str(arr.dtype), "shape": [int(d) for d in arr.shape], "size": int(arr.size)}
    values = arr.astype(np.float64, copy=False) if arr.dtype.kind in "biuf" else None
    if values is not None and values.size:
        finite = values[np.isfinite(values)]
        if finite.size:
            out.update(min=_finite(finite.min()), max=_finite(finite.max()), mean=_finite(finite.mean()))
        else:
            out.update(min=None, max=None, mean=None)
        if finite.size != values.size:
            out["non_finite"] = int(values.size - finite.size)
    return out


def plain(value: Any) -> Any:
    """A JSON-ready copy of a configuration value (enums by value, tuples as lists, small arrays
    as lists)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), (str, int)):
        return value.value
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.reshape(-1).tolist()] if value.size <= 16 else encode_array(value)
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return str(value)
