"""Reusable large buffers for ``GraphExecutor.run_sequence``'s intermediate values.

A large tensor allocated afresh is fresh memory from the operating system: glibc maps blocks of
more than its threshold (and returns freed ones when the heap's top grows past its trim
threshold), and every 4 KiB page of a new mapping costs a page fault and a zeroing at first
touch — 6,400 of them for one ``[100·32, 2048]`` float32 layer, several milliseconds per call,
which a per-step loop reusing small blocks never pays. So the intermediate values of a sequence
(a Linear's products, a hidden layer's spikes, a plan's partial sums) are taken from here and,
once the executor knows that nothing can still read them (``release``), kept for the next call.

Contract: :func:`empty` returns an uninitialised contiguous CPU tensor, like ``torch.empty``;
:func:`release` takes back only a tensor :func:`empty` handed out (anything else is ignored), and
the caller guarantees that no reference or view of it is used afterwards. At most
``_MAX_FREE_BYTES`` are kept (per process; :func:`release_buffers` frees them). Small tensors
(under ``_MIN_BYTES``) come from ``torch.empty`` directly: the allocator reuses them already.
"""

from __future__ import annotations

import math
import threading
import weakref

import torch

_MIN_BYTES = 1 << 20
_MAX_FREE_BYTES = 512 << 20
_MAX_FREE_PER_KEY = 4

_LOCK = threading.RLock()  # a weakref callback may run while the lock is held
_FREE: dict[tuple, list[torch.Tensor]] = {}  # (shape, dtype) -> tensors nothing references
_HANDED: dict[int, weakref.ref] = {}  # id -> the tensor handed out, while it lives
_free_bytes = 0


def empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor of ``shape`` and ``dtype``, reused when one was released."""
    shape = tuple(int(s) for s in shape)
    nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    if nbytes < _MIN_BYTES:
        return torch.empty(shape, dtype=dtype)
    global _free_bytes
    key = (shape, dtype)
    with _LOCK:
        free = _FREE.get(key)
        if free:
            tensor = free.pop()
            _free_bytes -= nbytes
        else:
            tensor = torch.empty(shape, dtype=dtype)
        handle = id(tensor)
        _HANDED[handle] = weakref.ref(tensor, lambda _: _forget(handle))
    return tensor


def _forget(key: int) -> None:
    with _LOCK:
        ref = _HANDED.get(key)
        if ref is not None and ref() is None:
            del _HANDED[key]


def handed_out(tensor: object) -> bool:
    """Whether ``tensor`` is a buffer :func:`empty` handed out (not a view of one, not released)."""
    if not isinstance(tensor, torch.Tensor):
        return False
    with _LOCK:
        ref = _HANDED.get(id(tensor))
        return ref is not None and ref() is tensor


def release(tensor: torch.Tensor) -> None:
    """Keep ``tensor`` (handed out by :func:`empty`) for a later call; the caller no longer uses it."""
    global _free_bytes
    nbytes = tensor.numel() * tensor.element_size()
    with _LOCK:
        ref = _HANDED.get(id(tensor))
        if ref is None or ref() is not tensor:
            return
        del _HANDED[id(tensor)]
        free = _FREE.setdefault((tuple(tensor.shape), tensor.dtype), [])
        if len(free) < _MAX_FREE_PER_KEY and _free_bytes + nbytes <= _MAX_FREE_BYTES:
            free.append(tensor)
            _free_bytes += nbytes


def release_buffers() -> None:
    """Free every kept buffer (they are allocated again at next use)."""
    global _free_bytes
    with _LOCK:
        _FREE.clear()
        _free_bytes = 0


def kept_bytes() -> int:
    """How many bytes of released buffers are kept for reuse now."""
    with _LOCK:
        return _free_bytes


def empty_like(tensor: torch.Tensor) -> torch.Tensor:
    """:func:`empty` of ``tensor``'s shape and dtype for a CPU tensor, else ``torch.empty_like``."""
    if tensor.device.type != "cpu" or tensor.layout is not torch.strided:
        return torch.empty_like(tensor)
    return empty(tuple(tensor.shape), tensor.dtype)
