"""Chunked reading, a ring buffer and a random event source.

* :class:`BufferedEventReader` iterates an event file in blocks of ``chunk_size`` events: ``.h5``
  files are read chunk by chunk (never whole), ``.npy`` files through a memory map, ``.raw`` files
  are read and decoded ``chunk_size`` words at a time (the decoder's state carried across, see
  :func:`talon.io.prophesee.iter_raw`).
* :class:`EventBuffer` keeps the newest ``capacity`` events; older ones are overwritten and
  counted in ``dropped``.
* :func:`generate_random_events` draws time-sorted events from a seeded generator.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from talon.ir.paths import check_path

from .events import EVENT_DTYPE, EventFormatError, as_events
from .h5 import H5EventReader
from .npy import npy_events, open_npy
from .prophesee import iter_raw


class BufferedEventReader:
    """Iterate the events of ``path`` in blocks of at most ``chunk_size`` (``.h5``, ``.npy``, ``.raw``)."""

    def __init__(self, path, chunk_size: int = 10_000) -> None:
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise EventFormatError(f"chunk_size must be a positive integer, got {chunk_size!r}")
        self.path = check_path(path, "BufferedEventReader: the event file to read")
        self.chunk_size = int(chunk_size)
        if self.path.is_dir():
            raise EventFormatError(f"{self.path} is a directory, not a regular event file")
        if not self.path.is_file():
            raise FileNotFoundError(f"no such event file: {self.path}")
        if self.path.suffix.lower() not in (".h5", ".hdf5", ".npy", ".raw"):
            raise EventFormatError(f"{self.path}: BufferedEventReader reads .h5, .npy and .raw files")

    def __iter__(self) -> Iterator[np.ndarray]:
        suffix = self.path.suffix.lower()
        if suffix in (".h5", ".hdf5"):
            with H5EventReader(self.path) as reader:
                yield from reader.iter_chunks(self.chunk_size)
            return
        if suffix == ".npy":
            arr = open_npy(self.path, mmap=True)
            for start in range(0, len(arr), self.chunk_size):
                yield npy_events(arr[start : start + self.chunk_size], self.path, start)
            return
        yield from iter_raw(self.path, self.chunk_size)


class EventBuffer:
    """A ring buffer of the newest ``capacity`` events (``push`` appends, ``pop`` removes the oldest)."""

    def __init__(self, capacity: int = 100_000) -> None:
        if isinstance(capacity, bool) or int(capacity) != capacity or capacity < 1:
            raise EventFormatError(f"capacity must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=EVENT_DTYPE)
        self._start = 0
        self._size = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self._size

    def push(self, events) -> None:
        """Append events; when full, the oldest are overwritten (and counted in ``dropped``)."""
        events = as_events(events)
        n = events.size
        if n >= self.capacity:
            self.dropped += self._size + n - self.capacity
            self._data[:] = events[n - self.capacity :]
            self._start, self._size = 0, self.capacity
            return
        overflow = max(self._size + n - self.capacity, 0)
        self.dropped += overflow
        self._start = (self._start + overflow) % self.capacity
        self._size -= overflow
        end = (self._start + self._size) % self.capacity
        first = min(n, self.capacity - end)
        self._data[end : end + first] = events[:first]
        self._data[: n - first] = events[first:]
        self._size += n

    def pop(self, n: int | None = None) -> np.ndarray:
        """Remove and return the oldest ``n`` events (all when None)."""
        n = self._size if n is None else min(int(n), self._size)
        out = self.peek(n)
        self._start = (self._start + n) % self.capacity
        self._size -= n
        return out

    def peek(self, n: int | None = None) -> np.ndarray:
        """The oldest ``n`` events (all when None), without removing them."""
        n = self._size if n is None else min(int(n), self._size)
        idx = (self._start + np.arange(n)) % self.capacity
        return self._data[idx]


def generate_random_events(
    n: int,
    sensor_size=(32, 32),
    *,
    duration_us: int = 1_000_000,
    t_start: int = 0,
    seed: int | None = 0,
) -> np.ndarray:
    """``n`` uniform random events on a ``(width, height)`` sensor over ``duration_us``, time-sorted."""
    if isinstance(n, bool) or int(n) != n or n < 0:
        raise EventFormatError(f"n must be a non-negative integer, got {n!r}")
    width, height = int(sensor_size[0]), int(sensor_size[1])
    rng = np.random.default_rng(seed)
    events = np.empty(int(n), dtype=EVENT_DTYPE)
    events["x"] = rng.integers(0, width, int(n))
    events["y"] = rng.integers(0, height, int(n))
    events["t"] = np.sort(rng.integers(t_start, t_start + max(int(duration_us), 1), int(n)))
    events["p"] = rng.random(int(n)) < 0.5
    return events
