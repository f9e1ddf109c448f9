"""An upper bound of the size of the HDF5 file :mod:`.hdf5_write` makes of a NIR dict, for the
blocks :func:`talon.ir.hdf5_output.reserve` allocates before the write: the parts below are exact
on the test graphs and paper files, and the bound exceeds them by 2 KiB (1.01-1.14 times the file).

The file is HDF5's original layout (h5py's default ``libver``: superblock 0, symbol-table groups,
version-1 object headers and B-trees), so its size is a sum over what the dict holds:

* the superblock and root group: 800 bytes;
* a group: 704 bytes (an object header of 40, a local heap of 32 + 88 and a B-tree node of 544),
  plus its symbol-table nodes of 328 bytes (one holds 8 links; HDF5 splits a full one into halves,
  so past 8 links there are at most one per 4), B-tree nodes of 544 more past 32 symbol-table
  nodes (at least 16 children each, one more per 256 for the next level), and the local heap's growth:
  the link names (each ``len + 1`` bytes rounded up to 8, after an empty name of 8) live in a heap
  that doubles when a name does not fit (leaving either nothing or a 16-byte free entry), and every
  size it has had is counted (when it cannot grow in place, the freed block may stay a hole);
* a dataset: an object header of 272 bytes (16 + 256 bytes of messages, more for a high rank);
* its data: contiguous, its bytes; chunked (``compression="gzip"``), the exact compressed chunks
  (:mod:`.hdf5_write` compresses them itself, before the file is created) and a chunk B-tree node
  of ``24 + 65·(8 + 8·(rank + 1)) + 64·8`` bytes (K = 32), one more per 32 chunks past 64;
* a variable-length string: an object of ``16 + len`` rounded up to 8 in a global heap collection
  of 4096 bytes, which HDF5 doubles when full (so past the first, at most half is empty); a
  string dataset holds a 16-byte reference to it per element;
* HDF5 allocates small metadata and small raw data from aggregation blocks of 2 KiB whose unused
  tails can stay inside the file as holes: 2 KiB once (the most measured, on 600 random dicts of
  up to 5 MB, was 802 bytes; none in the test graphs and paper files).

``tests/interop/test_nir_reservation.py`` checks ``actual <= bound <= 1.2 × actual`` on every test
graph and paper file, with and without compression.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

FILE_BASE = 800
GROUP = 704
SNOD = 328
GROUP_BTREE = 544
HEAP_INITIAL = 88
HEADER = 272
HEAP_COLLECTION = 4096
AGGREGATION = 2048


def chunk_btree(rank: int, chunks: int) -> int:
    """Bytes of the version-1 B-tree that indexes ``chunks`` chunks of a rank-``rank`` dataset (K = 32)."""
    node = 24 + 65 * (8 + 8 * (rank + 1)) + 64 * 8
    return node * (1 if chunks <= 64 else 1 + math.ceil(chunks / 32))


def header(rank: int) -> int:
    """A dataset's object header: 272 bytes hold its messages up to rank 6; a dataspace grows by 16
    bytes a dimension, and past the first chunk HDF5 adds a continuation."""
    return HEADER if rank <= 6 else HEADER + 24 + 32 * rank


class SizeBound:
    """Sums the parts of the file for a NIR dict. ``chunked(value)`` gives ``(bytes, chunks)`` of an
    array :mod:`.hdf5_write` compresses itself, or None for one h5py writes (bounded here)."""

    def __init__(self, compression: Any, chunked: Callable[[np.ndarray], tuple[int, int] | None]):
        self.compression, self.chunked = compression, chunked
        self.total = FILE_BASE + AGGREGATION
        self.strings: list[int] = []  # global heap objects

    def file(self, tree: dict, version: str) -> int:
        self.links(["version", "node"])  # the root group itself is in FILE_BASE
        self.string(version)
        self.group(tree)
        self.total += self.global_heap()
        return self.total

    def group(self, node: dict) -> None:
        self.total += GROUP
        names = []
        for key, value in node.items():
            if key == "metadata" and isinstance(value, dict) and not value:  # nir.write skips {}
                continue
            names.append(key)
            if isinstance(value, dict):
                self.group(value)
            elif isinstance(value, str):
                self.string(value)
            elif isinstance(value, np.ndarray):
                self.array(value)
            else:
                self.other(value)
        self.links(names)

    def links(self, names: list) -> None:
        """The symbol-table nodes, B-tree nodes and local heap growth of a group of ``names``."""
        n = len(names)
        snods = (1 if n <= 8 else n // 4) if n else 0  # a split leaves every node at least half full
        self.total += SNOD * snods + GROUP_BTREE * (snods // 16 + snods // 256 + 1 if snods > 32 else 0)
        size, free = HEAP_INITIAL, HEAP_INITIAL - 8  # after the empty name
        for name in names:
            need = _align(len(str(name).encode("utf-8", "surrogatepass")) + 1)
            while not (free == need or free - need >= 16):  # a block left must hold a 16-byte free-list entry
                grow = max(need, size, 16)
                size, free = size + grow, free + grow
                self.total += size + 32  # moved when it cannot grow in place: count every size it has
            free -= need

    def string(self, value: str) -> None:
        self.dataset(0, 16)
        self.strings.append(len(value.encode("utf-8", "surrogatepass")))

    def array(self, value: np.ndarray) -> None:
        if self.compression is None or value.ndim == 0 or value.size == 0:
            self.dataset(value.ndim, value.nbytes)
            return
        known = self.chunked(value)
        if known is None:  # h5py's own chunking and deflate: at most 1 chunk per element, deflate's worst case
            known = (value.nbytes + value.nbytes // 1000 + 64 * value.size, value.size)
        data, chunks = known
        self.dataset(value.ndim, data + chunk_btree(value.ndim, chunks))

    def other(self, value: Any) -> None:
        """A number, a tuple of numbers, a list (edges: pairs of names) or a bool: h5py's ``np.asarray``."""
        try:
            data = np.asarray(value)
        except (ValueError, TypeError):  # h5py refuses it too; whatever it writes is no bigger than its repr
            self.dataset(1, 64 + 16 * len(repr(value)))
            return
        if data.dtype.kind in "USO":
            flat = [str(v) for v in data.reshape(-1)]
            self.strings.extend(len(s.encode("utf-8", "surrogatepass")) for s in flat)
            self.dataset(data.ndim, 16 * len(flat))
        else:
            self.dataset(data.ndim, data.nbytes)

    def dataset(self, rank: int, data: int) -> None:
        self.total += header(rank) + data

    def global_heap(self) -> int:
        """The global heap collections of the variable-length strings: one of 4096 bytes while they
        fit in it; past that HDF5 doubles a collection at the end of the file when it is full, so at
        most half of the space is empty: twice the objects, plus the first collection."""
        need = sum(16 + _align(length) for length in self.strings)
        if not self.strings:
            return 0
        return HEAP_COLLECTION if need + 32 <= HEAP_COLLECTION else HEAP_COLLECTION + 2 * (need + 32)


def _align(n: int) -> int:
    return (n + 7) // 8 * 8
