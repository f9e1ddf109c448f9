"""Weight quantizations reused across engine builds, never stale.

Every ``simulate`` at a fixed-point precision builds its integer kernels again (the formats
depend on the calibration of that call), and each weight layer quantizes its weights: several
float64 passes over the tensor, although the weights rarely change between calls. :func:`reuse`
keeps, per weight array (found by identity, through a weak reference), a private copy of the
bytes the result was computed from; a lookup returns the stored result only if the array still
holds exactly those bytes (one comparison pass, cheaper than quantizing) — an array modified in
place, replaced by another or freed is computed afresh. Results are made read-only, so no caller
can alter what a later call receives. At most :data:`MAX_ENTRIES` entries and :data:`MAX_BYTES`
of copied weights are kept (least recently used first out); an array larger than a quarter of
that is not copied (computed every time), so large models do not hold their weights twice.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

MAX_ENTRIES = 64
MAX_BYTES = 64 * 2**20


class _Entry:
    __slots__ = ("ref", "source", "value")

    def __init__(self, array: np.ndarray, value: Any) -> None:
        self.ref = weakref.ref(array)
        self.source = np.array(array, copy=True, order="C")  # the bytes the value was computed from
        self.value = value


_entries: OrderedDict[tuple, _Entry] = OrderedDict()
_lock = threading.Lock()


_COMPARED = 1 << 20  # bytes compared at a time: no large temporary, and the first difference ends it


def same_bytes(a: np.ndarray, b: np.ndarray | None) -> bool:
    """Whether ``a`` and ``b`` have the same dtype, shape and bytes (compared a MiB at a time, as
    64-bit words when the size allows, stopping at the first difference)."""
    if b is None or a.dtype != b.dtype or a.shape != b.shape:
        return False
    x, y = (np.ascontiguousarray(v).reshape(-1).view(np.uint8) for v in (a, b))
    if x.size % 8 == 0:
        x, y = x.view(np.uint64), y.view(np.uint64)
    step = _COMPARED // x.itemsize
    return all(np.array_equal(x[i : i + step], y[i : i + step]) for i in range(0, x.size, step))


def _freeze(value: Any) -> None:
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, tuple):
        for item in value:
            _freeze(item)


def reuse(array: np.ndarray, params: tuple, compute: Callable[[], T]) -> T:
    """``compute()`` — a pure function of ``array``'s values and ``params`` — or the result a
    previous call stored for this array and ``params`` if the array still holds the same bytes."""
    if not isinstance(array, np.ndarray) or array.dtype.hasobject or array.nbytes > MAX_BYTES // 4:
        return compute()
    key = (id(array), params)
    with _lock:
        entry = _entries.get(key)
        if entry is not None and entry.ref() is array and same_bytes(entry.source, array):
            _entries.move_to_end(key)
            return entry.value
    value = compute()
    _freeze(value)
    entry = _Entry(array, value)
    with _lock:
        _entries[key] = entry
        _entries.move_to_end(key)
        total = sum(e.source.nbytes for e in _entries.values())
        while _entries and (len(_entries) > MAX_ENTRIES or total > MAX_BYTES):
            _, dropped = _entries.popitem(last=False)
            total -= dropped.source.nbytes
    return value


def clear() -> None:
    """Forget every stored result."""
    with _lock:
        _entries.clear()
