"""Reading HDF5 files that may be hostile: only regular files, only plain in-file datasets.

A ``.t1c`` or ``.nir`` file is data from elsewhere. HDF5 can make a dataset's bytes come from
another file (*external storage*, an ``ExternalLink``, a *virtual dataset*), can hold links that
form cycles, and can declare datasets far larger than the file (never-written chunks read as fill
values, compressed chunks). The readers therefore go through these helpers, which refuse, by
name and before anything is read:

* paths that are not regular files (a FIFO would block the reader forever, a device never ends);
* soft and external links (only hard links inside the file are followed) and hard-link cycles;
* datasets with external storage, virtual datasets, layouts other than contiguous / chunked /
  compact, filters other than deflate, shuffle, Fletcher-32 and LZF (unknown filters would load
  plugins), contiguous data that lies outside the file and chunked datasets with unwritten chunks;
* reads larger than the file's decoded-bytes budget (:mod:`talon.ir.budget`).
"""

from __future__ import annotations

import math
import os
import stat
from typing import Any

import h5py
import numpy as np

from .budget import ByteBudget, element_count
from .paths import check_path

ALLOWED_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 32000: "lzf"}

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _kind(mode: int) -> str:
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike, error: type[Exception], what: str):
    """Open ``path`` for reading if it is a regular file; return ``(binary file object, size)``.

    The type is checked before opening (opening a FIFO blocks) and again on the open descriptor
    (the path could have been swapped in between). Raises ``FileNotFoundError`` when nothing is
    there and ``error`` for anything that is not a regular file.
    """
    path = check_path(path, f"the {what} file to read")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such {what} file: {path}") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path} is {_kind(st.st_mode)}, not a regular {what} file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{path}: cannot be opened ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise error(f"{path} is {_kind(st.st_mode)}, not a regular {what} file")
    return os.fdopen(fd, "rb"), st.st_size


def child(group: h5py.Group, key: str, where: str, error: type[Exception]) -> Any:
    """``group[key]`` if it is a hard link inside the file, else None when absent; refuse other links."""
    try:
        link = group.get(key, getlink=True)
    except (KeyError, ValueError, TypeError, OSError, RuntimeError) as exc:
        raise error(f"{where}: entry {key!r} cannot be read ({exc})") from None
    if link is None:
        return None
    if isinstance(link, h5py.ExternalLink):
        raise error(f"{where}: {key!r} is an external link (to {link.filename!r}); only data inside the file is read")
    if isinstance(link, h5py.SoftLink):
        raise error(f"{where}: {key!r} is a soft link (to {link.path!r}); only hard links inside the file are read")
    if not isinstance(link, h5py.HardLink):
        raise error(f"{where}: {key!r} is a user-defined link; only hard links inside the file are read")
    try:
        return group[key]
    except (KeyError, ValueError, TypeError, OSError, RuntimeError) as exc:
        raise error(f"{where}: {key!r} cannot be opened ({exc})") from None


def object_address(obj: Any) -> Any:
    """A key identifying an HDF5 object in its file (to detect hard-link cycles)."""
    info = h5py.h5o.get_info(obj.id)
    return getattr(info, "token", None) or info.addr


def check_plain_dataset(
    ds: h5py.Dataset, where: str, error: type[Exception], file_size: int, filters: dict[int, str] = ALLOWED_FILTERS
) -> None:
    """Refuse a dataset whose bytes do not come from plain storage inside this file (chunked
    datasets: compressed with one of ``filters`` only, ``{HDF5 filter code: name}``)."""
    if ds.is_virtual:
        raise error(f"{where} is a virtual dataset (its data comes from other datasets or files); refused")
    plist = ds.id.get_create_plist()
    if plist.get_external_count() > 0:
        name = plist.get_external(0)[0]
        name = name.decode("utf-8", "replace") if isinstance(name, bytes) else name
        raise error(f"{where} has external storage (its bytes are read from {name!r}); refused")
    layout = plist.get_layout()
    nbytes = element_count(ds.shape or (), where) * ds.dtype.itemsize if ds.shape is not None else 0
    if layout == h5py.h5d.CONTIGUOUS:
        if nbytes:
            offset = ds.id.get_offset()
            if offset is None:
                raise error(f"{where} declares {nbytes:,} bytes but none are stored in the file (never written)")
            if offset + nbytes > file_size:
                raise error(f"{where}: its {nbytes:,} bytes at offset {offset:,} lie outside the file")
    elif layout == h5py.h5d.CHUNKED:
        for i in range(plist.get_nfilters()):
            code = plist.get_filter(i)[0]
            if code not in filters:
                raise error(f"{where} uses HDF5 filter {code}; only {sorted(filters.values())} are read")
        chunks = ds.chunks or ()
        expected = math.prod(-(-n // c) for n, c in zip(ds.shape, chunks, strict=False)) if nbytes else 0
        if ds.id.get_num_chunks() != expected:
            raise error(
                f"{where} has {ds.id.get_num_chunks()} of its {expected} chunks stored (the rest were never "
                "written); refused"
            )
    elif layout != h5py.h5d.COMPACT:
        raise error(f"{where} has an unsupported storage layout ({layout}); refused")


def read_dataset(
    ds: h5py.Dataset, where: str, error: type[Exception], file_size: int, budget: ByteBudget
) -> np.ndarray:
    """Check ``ds`` (:func:`check_plain_dataset`), charge its declared size, then read it."""
    check_plain_dataset(ds, where, error, file_size)
    if ds.shape is None:
        raise error(f"{where} is an empty (null) dataset")
    count = element_count(ds.shape, where)
    itemsize = 16 if ds.dtype.kind == "O" else ds.dtype.itemsize
    budget.charge(count * itemsize, where)
    return ds[()]
