"""One pass over a NIR file's HDF5 group tree with h5py's low-level API.

h5py's high-level objects (``h5py.Group``, ``h5py.Dataset``) cost tens of microseconds each to
create and to query, and a NIR file is mostly small datasets (a 200-layer network has 2,000 of
them), so walking the tree through them dominates reading. This walk opens each member once
(``h5o.open``), learns every member's link type from one link iteration per group, and reads a
dataset straight into a numpy array, applying the same refusals as :mod:`talon.ir.hdf5_guard`:

* only hard links are followed; groups nest at most ``MAX_NESTING`` levels and a hard link to an
  ancestor group (a cycle) is refused;
* a dataset is read only from plain in-file storage (contiguous within the file, compact, or
  chunked with every chunk written and only the allowed filters) and after its declared size is
  charged to the read's :class:`~talon.ir.budget.ByteBudget`.

Anything outside the common case (a soft or external link, a virtual or external dataset, a
layout or filter that is refused, a null dataspace, a type other than integer, float or string)
is handed to the high-level helpers of :mod:`talon.ir.hdf5_guard`, which refuse it with their
usual message or read it exactly as before. The values returned are what ``h5py.Dataset[()]``
returns: an array, or for a scalar dataspace a numpy scalar (bytes for a string).
"""

from __future__ import annotations

import math
import os
from typing import Any

import h5py
import numpy as np
from h5py import h5, h5d, h5i, h5l, h5o, h5p, h5s, h5t

from talon.ir.budget import MAX_NESTING, ByteBudget, element_count
from talon.ir.hdf5_guard import ALLOWED_FILTERS, child, read_dataset

from ._common import NIRFormatError

_PLAIN_TYPES = (h5t.INTEGER, h5t.FLOAT, h5t.STRING)
_OPEN_ERRORS = (KeyError, ValueError, TypeError, OSError, RuntimeError)


def read_group_tree(root: h5py.Group, where: str, size: int, budget: ByteBudget, value) -> dict[str, Any]:
    """The group tree under ``root`` as nested dicts, each dataset passed through ``value(data, label)``.

    Iterative (depth and cycles are checked, not recursed); members are visited in HDF5's name
    order, as iterating an ``h5py.Group`` does.
    """
    return _TreeReader(size, budget).tree(root.id, where, value)


class _TreeReader:
    def __init__(self, file_size: int, budget: ByteBudget):
        self.file_size, self.budget = file_size, budget
        self.types: list[tuple[Any, np.dtype, Any]] = []  # (HDF5 type, its numpy dtype, memory type) seen so far

    def tree(self, root, where: str, value) -> dict[str, Any]:
        out: dict[str, Any] = {}
        stack = [(root, out, where, (h5o.get_info(root).addr,))]
        while stack:
            gid, target, loc, ancestors = stack.pop()
            if len(ancestors) > MAX_NESTING:
                raise NIRFormatError(f"{loc}: groups nest deeper than {MAX_NESTING} levels")
            for name, link_type, address in _members(gid):
                key = _decode_name(name, loc)
                here = f"{loc}/{key}"
                if link_type != h5l.TYPE_HARD:
                    child(h5py.Group(gid), key, loc, NIRFormatError)  # raises, naming the kind of link
                    raise NIRFormatError(f"{loc}: {key!r} is not a hard link; only hard links inside the file are read")
                try:
                    oid = h5o.open(gid, name)
                except _OPEN_ERRORS as exc:
                    raise NIRFormatError(f"{loc}: {key!r} cannot be opened ({exc})") from None
                kind = h5i.get_type(oid)
                if kind == h5i.GROUP:
                    if address in ancestors:
                        raise NIRFormatError(f"{here} is a hard link to one of its own parent groups (a cycle)")
                    target[key] = {}
                    stack.append((oid, target[key], here, (*ancestors, address)))
                elif kind == h5i.DATASET:
                    target[key] = value(self.read(oid, here), here)
                else:
                    raise NIRFormatError(f"{here} is neither a group nor a dataset")
        return out

    def read(self, dsid, where: str) -> Any:
        """``Dataset[()]`` of a plain dataset after the checks of ``hdf5_guard.read_dataset``."""
        space = dsid.get_space()
        tid = dsid.get_type()
        if space.get_simple_extent_type() == h5s.NULL or tid.get_class() not in _PLAIN_TYPES:
            return self.fallback(dsid, where)  # refused, or read by h5py's high-level path exactly as before
        shape = space.shape
        dtype, memory_type = self.dtype(tid)
        if not self.stored_in_file(dsid, shape, dtype.itemsize):
            return self.fallback(dsid, where)
        count = element_count(shape, where)
        self.budget.charge(count * (16 if dtype.kind == "O" else dtype.itemsize), where)
        if memory_type is None:  # numbers
            arr = np.empty(shape, dtype)
            if count:
                dsid.read(h5s.ALL, h5s.ALL, arr)
        else:  # strings: h5py's conversion fills an object (vlen) or bytes (fixed-length) array
            arr = np.zeros(shape, dtype)
            if count:
                dsid.read(h5s.ALL, h5s.ALL, arr, memory_type)
        return arr[()] if shape == () else arr

    def stored_in_file(self, dsid, shape: tuple[int, ...], itemsize: int) -> bool:
        """Whether the dataset's bytes all lie in this file, with allowed filters only.

        A dataset with an address is contiguous and stored here (external, virtual, compact,
        chunked and never-written data have none), so only the others need their creation
        property list, the costlier query.
        """
        offset = dsid.get_offset()
        if offset is not None:
            return all(d < 2**63 for d in shape) and offset + math.prod(shape) * itemsize <= self.file_size
        plist = dsid.get_create_plist()
        return plist.get_external_count() == 0 and _stored_in_file(dsid, plist, shape, itemsize, self.file_size)

    def fallback(self, dsid, where: str) -> Any:
        return read_dataset(h5py.Dataset(dsid, readonly=True), where, NIRFormatError, self.file_size, self.budget)

    def dtype(self, tid) -> tuple[np.dtype, Any]:
        """``tid``'s numpy dtype (``h5py.Dataset.dtype``) and, for strings, the memory type h5py reads them
        with; computed once per distinct type (a file has a handful), as comparing types is cheap."""
        for known, dtype, memory_type in self.types:
            if known == tid:
                return dtype, memory_type
        dtype = tid.dtype
        memory_type = None if dtype.kind in "iuf" else h5t.py_create(dtype)
        self.types.append((tid, dtype, memory_type))
        return dtype, memory_type


def _members(gid) -> list[tuple[bytes, int, int]]:
    """``(name, link type, object address)`` of every member of a group, from one link iteration
    (the address, ``h5o.get_info(obj).addr``, is meaningful for hard links only), in h5py's order:
    creation order where the group tracks it (``track_order=True``), else name order."""
    tracked = gid.get_create_plist().get_link_creation_order() & h5p.CRT_ORDER_TRACKED
    members: list[tuple[bytes, int, int]] = []
    gid.links.iterate(
        lambda name, info: members.append((name, info.type, info.u)),
        info=True,
        idx_type=h5.INDEX_CRT_ORDER if tracked else h5.INDEX_NAME,
    )
    return members


def _decode_name(name: bytes, loc: str) -> str:
    """A member name as text; a name that is not UTF-8 is refused (NIR names are strings)."""
    try:
        return name.decode("utf8")
    except UnicodeDecodeError as exc:
        raise NIRFormatError(f"{loc}: entry {name!r} cannot be read ({exc})") from None


def _stored_in_file(dsid, plist, shape: tuple[int, ...], itemsize: int, file_size: int) -> bool:
    """Whether the dataset's bytes are all stored inside the file, with allowed filters only."""
    if any(not 0 <= d < 2**63 for d in shape):
        return False
    layout = plist.get_layout()
    nbytes = math.prod(shape) * itemsize
    if layout == h5d.CONTIGUOUS:
        if not nbytes:
            return True
        offset = dsid.get_offset()
        return offset is not None and offset + nbytes <= file_size
    if layout == h5d.CHUNKED:
        if any(plist.get_filter(i)[0] not in ALLOWED_FILTERS for i in range(plist.get_nfilters())):
            return False
        chunks = plist.get_chunk()
        expected = math.prod(-(-n // c) for n, c in zip(shape, chunks, strict=False)) if nbytes else 0
        return dsid.get_num_chunks() == expected
    return layout == h5d.COMPACT


def open_hdf5(fh) -> h5py.File:
    """``fh`` (a regular file opened for reading) as an HDF5 file, read-only.

    On Linux the file is reopened through ``/proc/self/fd``: that names the very file ``fh`` has
    open (a path swapped since cannot redirect it) and lets HDF5 read with its native driver,
    several times faster for small datasets than h5py's Python file-object driver, which is used
    where ``/proc`` is missing.
    """
    proc = f"/proc/self/fd/{fh.fileno()}"
    if os.path.exists(proc):
        return h5py.File(proc, "r")
    return h5py.File(fh, "r")
