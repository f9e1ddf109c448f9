"""Writing a NIR dict to HDF5 as ``nir.write`` does, with h5py's low-level API.

``nir.write(path, graph)`` stores ``graph.to_dict()`` through h5py's high-level ``create_group`` /
``create_dataset``, which build a Python object, a property list and a type per call; for a NIR
file of many small arrays that overhead is most of the write. :func:`write_nir_dict` makes the same
file — the same groups, datasets, names, dtypes, shapes, chunk shapes, filters and values — by
following ``nir.write``'s rules on the same dict and making the same HDF5 calls h5py would, with
the property lists and types built once per shape and dtype:

* ``metadata``: a group, unless it is ``{}``;
* a ``str``: a scalar variable-length UTF-8 string dataset;
* a ``dict``: a group;
* a numeric array (at least one element): a dataset with ``compression`` (h5py's chunk guess,
  deflate level 4 for ``"gzip"``), or contiguous when ``compression`` is None;
* a number or a tuple of numbers: an uncompressed dataset of ``np.asarray(value)``;
* anything else (lists such as edges, bools, string or empty arrays) and any name h5py would
  treat specially: h5py's own ``create_dataset``, with ``nir.write``'s arguments.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import h5py
import numpy as np
from h5py import h5d, h5g, h5p, h5s, h5t

from talon.ir import hdf5_output

from .hdf5_size import SizeBound

try:  # the function h5py's create_dataset makes its property lists with (not public API: h5py is pinned in CI)
    from h5py._hl.filters import fill_dcpl
except ImportError:  # pragma: no cover - another h5py: every array goes through create_dataset
    fill_dcpl = None

_STRING = h5py.string_dtype()
GZIP_LEVEL = 4  # h5py's compression="gzip" without compression_opts
_FAST_COMPRESSION = (None, "gzip")
_NUMBERS = (int, float, np.integer, np.floating, tuple)


def write_nir_dict(
    fh: BinaryIO, tree: dict[str, Any], version: str, *, compression: str | None = "gzip", reserve: bool = True
) -> None:
    """Write the NIR dict ``tree`` (``NIRGraph.to_dict()``) and ``version`` as a new HDF5 file into
    ``fh`` (a binary file object open ``r+b``), with ``reserve`` the blocks of an upper bound of
    its size allocated first (:mod:`.hdf5_size`, :mod:`talon.ir.hdf5_output`).

    The file is the one ``nir.write(path, graph, compression=compression)`` writes. With gzip the
    chunks are compressed here, before the file is created (their sizes are part of the bound),
    exactly as HDF5's deflate filter compresses them (zlib, level 4, edge chunks zero-padded), and
    written as they are; they are held in memory until then."""
    writer = _Writer(compression)
    bound = 0
    if reserve:
        bound = SizeBound(compression, writer.chunks).file(tree, version)
        if not writer.plain:  # h5py's track_order layout (creation-order indexes): a looser bound
            bound *= 3
    with hdf5_output.create(fh) as f:
        hdf5_output.reserve(fh, bound)
        f.create_dataset("version", data=version, dtype=h5py.string_dtype())
        node = f.create_group("node")
        writer.group(node.id, tree)


class _Writer:
    def __init__(self, compression: Any):
        self.compression = compression
        # h5py's global track_order option adds creation-order indexes: leave those files to h5py
        self.plain = not h5py.get_config().track_order
        self.fast = self.plain and compression in _FAST_COMPRESSION and fill_dcpl is not None
        self.types: dict[np.dtype, Any] = {}
        self.layouts: dict[tuple[tuple[int, ...], int], Any] = {}
        self.unfiltered = self._finish(h5p.create(h5p.DATASET_CREATE))  # contiguous or scalar
        self.group_plist = h5p.create(h5p.GROUP_CREATE)
        self.group_plist.set_obj_track_times(False)
        self.link_plists: dict[int, Any] = {}
        self.compressed: dict[int, tuple[np.ndarray, list[tuple[tuple[int, ...], bytes]]]] = {}

    def group(self, gid, node: dict) -> None:
        """``nir.write``'s ``write_recursive``: the entries of ``node`` into the group ``gid``."""
        stack = [(gid, node)]
        while stack:
            gid, node = stack.pop()
            for key, value in node.items():
                if key == "metadata":
                    if not value == {}:  # noqa: SIM201 - nir.write's own test (an array would raise here too)
                        stack.append((self.new_group(gid, key), value))
                elif isinstance(value, str):
                    self.string(gid, key, value)
                elif isinstance(value, np.ndarray):
                    self.array(gid, key, value)
                elif isinstance(value, dict):
                    stack.append((self.new_group(gid, str(key)), value))
                else:
                    self.other(gid, key, value)

    def new_group(self, gid, name: str):
        encoded, coding = _encode(name)
        if not self.plain or not encoded:
            return h5py.Group(gid).create_group(name).id
        lcpl = self.link_plists.get(coding)
        if lcpl is None:  # h5py's: intermediate groups created, the name's character set
            lcpl = self.link_plists[coding] = h5p.create(h5p.LINK_CREATE)
            lcpl.set_create_intermediate_group(True)
            lcpl.set_char_encoding(coding)
        return h5g.create(gid, encoded, lcpl=lcpl, gcpl=self.group_plist)

    def string(self, gid, name: str, value: str) -> None:
        encoded, _ = _encode(name)
        if not self.plain or not _plain_name(encoded):
            h5py.Group(gid).create_dataset(name, data=value, dtype=_STRING)
            return
        data = np.array(value, dtype=_STRING)
        dsid = h5d.create(gid, encoded, self.type_of(_STRING), h5s.create_simple(()), dcpl=self.unfiltered)
        dsid.write(h5s.ALL, h5s.ALL, data)

    def array(self, gid, name: str, value: np.ndarray) -> None:
        encoded, _ = _encode(name)
        dtype = value.dtype
        if (
            not self.fast
            or not _plain_name(encoded)
            or value.ndim == 0
            or value.size == 0
            or dtype.kind not in "iuf"
            or dtype == np.float16  # h5py converts float16 in Python first
        ):
            h5py.Group(gid).create_dataset(name, data=value, dtype=dtype, compression=self.compression)
            return
        dsid = h5d.create(gid, encoded, self.type_of(dtype), h5s.create_simple(value.shape), dcpl=self.layout(value))
        if self.compression is None:
            dsid.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(value))
            return
        self.chunks(value)
        for offset, chunk in self.compressed.pop(id(value))[1]:
            dsid.write_direct_chunk(offset, chunk)

    def chunks(self, value: np.ndarray) -> tuple[int, int] | None:
        """``(bytes, count)`` of the deflated chunks of ``value`` when this writer compresses them
        itself (gzip, the arrays :meth:`array` writes), compressed now and kept for :meth:`array`;
        None for the arrays h5py writes."""
        if not self.fast or self.compression != "gzip" or value.ndim == 0 or value.size == 0:
            return None
        if value.dtype.kind not in "iuf" or value.dtype == np.float16:
            return None
        entry = self.compressed.get(id(value))
        if entry is None:
            shape = self.layout(value).get_chunk()
            entry = self.compressed[id(value)] = (value, list(_deflated_chunks(value, shape)))
        return sum(len(chunk) for _, chunk in entry[1]), len(entry[1])

    def other(self, gid, name: str, value: Any) -> None:
        """``create_dataset(name, data=value)`` (no compression): numbers and tuples of numbers here."""
        encoded, _ = _encode(name)
        data = None
        if self.plain and _plain_name(encoded) and isinstance(value, _NUMBERS) and not isinstance(value, bool):
            data = np.asarray(value, order="C")  # what h5py makes of a number or a tuple of numbers
            if data.dtype.kind not in "iuf" or data.dtype == np.float16 or data.size == 0:
                data = None
        if data is None:
            h5py.Group(gid).create_dataset(name, data=value)
            return
        dsid = h5d.create(gid, encoded, self.type_of(data.dtype), h5s.create_simple(data.shape), dcpl=self.unfiltered)
        dsid.write(h5s.ALL, h5s.ALL, data)

    def type_of(self, dtype: np.dtype):
        tid = self.types.get(dtype)
        if tid is None:
            tid = self.types[dtype] = h5t.py_create(dtype, logical=1)
        return tid

    def layout(self, value: np.ndarray):
        """The dataset creation property list h5py makes for ``value`` with this compression."""
        key = (value.shape, value.dtype.itemsize)
        dcpl = self.layouts.get(key)
        if dcpl is None:
            plist = fill_dcpl(h5p.create(h5p.DATASET_CREATE), value.shape, value.dtype, None, self.compression,
                              None, None, None, None, None, None)  # fmt: skip
            dcpl = self.layouts[key] = self._finish(plist)
        return dcpl

    @staticmethod
    def _finish(dcpl):
        """What ``h5py``'s ``make_new_dset`` adds: no timestamps, attributes not tracked by creation order."""
        dcpl.set_obj_track_times(False)
        dcpl.set_attr_creation_order(0)
        return dcpl


def _deflated_chunks(value: np.ndarray, chunk: tuple[int, ...]) -> Iterator[tuple[tuple[int, ...], bytes]]:
    """``(offset, bytes)`` of every chunk of ``value`` as HDF5's deflate filter stores it with h5py's
    ``"gzip"``: zlib at level 4 of the chunk's bytes, an edge chunk padded with zeros (the fill value)."""
    for offset in itertools.product(*(range(0, n, c) for n, c in zip(value.shape, chunk, strict=True))):
        block = value[tuple(slice(o, o + c) for o, c in zip(offset, chunk, strict=True))]
        if block.shape != chunk:
            padded = np.zeros(chunk, value.dtype)
            padded[tuple(slice(0, n) for n in block.shape)] = block
            block = padded
        yield offset, zlib.compress(np.ascontiguousarray(block).data, GZIP_LEVEL)


def _encode(name: Any) -> tuple[bytes | None, int]:
    """A name as h5py encodes it: bytes as given, text as ASCII if it can be, else UTF-8 (None: not a name)."""
    if isinstance(name, bytes):
        return name, h5t.CSET_ASCII
    if not isinstance(name, str):
        return None, h5t.CSET_ASCII
    try:
        return name.encode("ascii"), h5t.CSET_ASCII
    except UnicodeEncodeError:
        return name.encode("utf8"), h5t.CSET_UTF8


def _plain_name(encoded: bytes | None) -> bool:
    """A dataset name h5py passes to HDF5 as it is (not empty, no parent groups to create first)."""
    return bool(encoded) and b"/" not in encoded.lstrip(b"/")
