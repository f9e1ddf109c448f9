"""``.npy`` event files: one saved array, in any layout :func:`~talon.io.events.as_events` converts.

:func:`open_npy` loads (or memory-maps) the array and checks it is a 1-D structured array;
:func:`npy_events` converts it, or a slice of it. A damaged, truncated or foreign file raises
:class:`~talon.io.events.EventFormatError` naming the file, never numpy's parsing errors.
"""

from __future__ import annotations

import math
import os
import tokenize

import numpy as np

from talon.ir.paths import check_path

from .events import EventFormatError, as_events

# what np.load raises on a damaged header or body (its header is parsed as a Python literal)
_LOAD_ERRORS = (ValueError, OSError, EOFError, SyntaxError, tokenize.TokenError, TypeError, KeyError)


def open_npy(path, *, mmap: bool = False) -> np.ndarray:
    """The array of the ``.npy`` file ``path`` (memory-mapped, read-only, with ``mmap``), 1-D and structured.

    The array's size from its header is checked against the file's before anything is allocated:
    a header claiming more data than the file holds (damaged, truncated) is refused, not loaded.
    """
    path = check_path(path, "open_npy: the .npy file to read")
    try:
        _check_size(path)
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except EventFormatError:
        raise
    except _LOAD_ERRORS as exc:
        raise EventFormatError(f"{path}: not a readable numpy event array ({_first_line(exc)})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive under a .npy name
        raise EventFormatError(f"{path}: not a single numpy array (an .npz archive?)")
    if array.ndim != 1 or not array.dtype.names:
        raise EventFormatError(
            f"{path}: holds a {array.dtype} array of shape {array.shape}, not a 1-D structured event array"
        )
    return array


def npy_events(array: np.ndarray, path, start: int = 0) -> np.ndarray:
    """``array`` (events ``start`` onwards of the file ``path``) as an event array of its own (a copy)."""
    try:
        return as_events(np.asarray(array), copy=True)
    except EventFormatError as exc:
        where = f" (events from {start})" if start else ""
        raise EventFormatError(f"{path}{where}: {exc}") from None


def _check_size(path) -> None:
    """Raise unless the file holds the bytes its ``.npy`` header declares (the header's own
    errors propagate as numpy's, which :func:`open_npy` turns into an ``EventFormatError``)."""
    with open(path, "rb") as fh:
        if fh.read(6) != b"\x93NUMPY":
            return  # not an .npy (an .npz archive, a foreign file): np.load says what it is
        fh.seek(0)
        version = np.lib.format.read_magic(fh)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(fh)
        declared = math.prod(shape) * dtype.itemsize
        available = os.fstat(fh.fileno()).st_size - fh.tell()
    if declared > available:
        raise EventFormatError(
            f"{path}: its header declares {math.prod(shape):,} elements ({declared:,} bytes) but the file holds "
            f"{available:,} bytes after it (truncated or damaged)"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else "") or type(exc).__name__
