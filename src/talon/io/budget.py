"""The decode budget of event files (``docs/events.md``, "Limits").

Compressed event data expands when it is decoded: an HDF5 chunk of zeros deflates ~1000:1, an EVT
3.0 vector word holds up to 12 events (156 bytes of events from 2 bytes of file), an AEDAT4 packet
is LZ4 or zstd. So that a small hostile file cannot become an unbounded allocation, one read
(``read_events``, ``read_h5``, ``H5EventReader.read_*``, ``read_raw``, ``read_aedat4``) may
produce at most ``max_bytes`` bytes of events (:data:`~talon.io.events.EVENT_DTYPE`, 13 bytes
each), checked against the declared or counted size *before* the allocation (an AEDAT4 packet's
decompressed size is counted in 1 MiB pieces before the ``aedat`` package decompresses it whole:
:mod:`talon.io.aedat4_packets`). The default,
:func:`default_event_budget`, is ``max(1 GiB, 32 × the file's size)``; pass ``max_bytes=`` to read
more from a trusted file. Going over raises :class:`~talon.ir.budget.BudgetExceededError` naming
the file, the bytes needed and how to raise the limit.
"""

from __future__ import annotations

import os

from talon.ir.budget import BudgetExceededError, ByteBudget

MIN_EVENT_BUDGET = 1 << 30
EVENT_FILE_FACTOR = 32

__all__ = ["BudgetExceededError", "default_event_budget", "event_budget"]


def default_event_budget(file_size: int) -> int:
    """The default ``max_bytes`` for an event file of ``file_size`` bytes: ``max(1 GiB, 32 × file_size)``."""
    return max(MIN_EVENT_BUDGET, EVENT_FILE_FACTOR * int(file_size))


def event_budget(path, max_bytes: int | None, file_size: int | None = None) -> ByteBudget:
    """The budget of one read of the event file ``path`` (``max_bytes``, or the default for its size)."""
    if max_bytes is None:
        size = os.stat(path).st_size if file_size is None else file_size
        max_bytes = default_event_budget(size)
    return ByteBudget(max_bytes, os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path))
