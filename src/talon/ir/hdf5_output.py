"""HDF5 files written so that a full disk is an ordinary ``OSError`` (``docs/format.md``, "Writing rules").

libhdf5 crashes the process (SIGSEGV) when one of its writes fails: a dataset whose close failed
is flushed again, already freed, when the file closes (``H5D__flush_all_cb``), and h5py prints the
failed closes as a flood of "Exception ignored" errors first. This happens with its own POSIX
driver and with h5py's ``fileobj`` driver alike (the tests make a write fail at every size a file
reaches). talon's HDF5 writers therefore:

* :func:`reserve` the disk blocks of the whole file (``posix_fallocate`` of an upper bound of its
  size) before libhdf5 writes: a disk without room refuses here, with the bytes needed and free,
  and a process that fills the disk afterwards cannot take the blocks. libhdf5 truncates the file
  to its real end when it closes it, so an over-estimate costs nothing in the file;
* :func:`create` the file through a Python file object whose writes never fail towards libhdf5:
  a failed write (a file system that cannot reserve, a file-size limit, a bound too low) is
  recorded, later writes are dropped, libhdf5 closes the file normally, and the recorded error is
  raised (:func:`check`). The caller discards the incomplete file (:mod:`.atomic`).

The bytes are those h5py writes through any file object (an in-memory image gives the same file).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from typing import BinaryIO

import h5py

from .atomic import no_room

# errors of posix_fallocate that mean "this file system cannot preallocate", not "no room"
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENODEV}
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def create(fh: BinaryIO, **options) -> Iterator[h5py.File]:
    """``h5py.File(…, "w", **options)`` writing into the file ``fh`` (open ``r+b``; its descriptor is
    written with ``pwrite``, past its buffer).

    libhdf5 never sees a write fail: its error paths are where it crashes (a dataset whose close
    failed is flushed again, freed, when the file closes — SIGSEGV in ``H5D__flush_all_cb`` with
    any driver). The first failed write is kept, later writes are dropped, and the error is raised
    by :func:`check` and when the file has been closed; the file is then incomplete and the caller
    discards it (:mod:`.atomic`)."""
    sink = _Sink(fh.fileno())
    f = h5py.File(sink, "w", **options)
    f._talon_sink = sink
    try:
        yield f
    except BaseException:
        sink.dropping = True
        with contextlib.suppress(Exception):
            f.close()
        raise
    f.close()
    check(f)


def check(f: h5py.File) -> None:
    """Raise the first write of the file made by :func:`create` that failed, if any."""
    failed = f._talon_sink.failed
    if failed is not None:
        raise OSError(failed.errno, failed.strerror)


class _Sink:
    """The file libhdf5 writes through (h5py's ``fileobj`` driver calls these methods): positioned
    reads and writes on the descriptor ``fd``. A write that fails is recorded in ``failed`` and
    reported done, as is every write after it or after ``dropping`` is set."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pos, self.failed, self.dropping = fd, 0, None, False

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos}.get(whence)
        self.pos = (os.fstat(self.fd).st_size if base is None else base) + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if not self.dropping:
            try:
                done = 0
                while done < len(view):
                    done += os.pwrite(self.fd, view[done:], self.pos + done)
            except OSError as exc:
                self.failed, self.dropping = exc, True
        self.pos += len(view)
        return len(view)

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = os.pread(self.fd, len(view), self.pos)  # libhdf5 reads back little while it writes
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = os.pread(self.fd, size if size >= 0 else max(os.fstat(self.fd).st_size - self.pos, 0), self.pos)
        self.pos += len(data)
        return data

    def truncate(self, size: int) -> int:
        if not self.dropping:
            os.ftruncate(self.fd, size)
        return size

    def flush(self) -> None:
        pass


def reserve(fh: BinaryIO, end: int, target: str | os.PathLike | None = None) -> None:
    """Allocate the disk blocks of bytes ``[0, end)`` of ``fh`` (blocks it already has are kept; the
    file grows to ``end`` if it is shorter, until libhdf5 truncates it to its real end at close).

    Raises ``OSError`` (``ENOSPC``, ``EDQUOT`` or ``EFBIG``) with the bytes needed and free when the
    file system cannot hold them, naming ``target`` when given (as
    :func:`talon.ir.atomic.require_free_space`); a file system that cannot preallocate is left to
    the write itself, whose failure is still an ``OSError`` (:func:`create`)."""
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows: the writes go unreserved (still safe)
        return
    fd = fh.fileno()
    try:
        os.posix_fallocate(fd, 0, max(int(end), 1))
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            return
        if exc.errno not in _NO_ROOM:
            raise
        folder = os.path.dirname(os.path.abspath(fh.name)) if isinstance(fh.name, str) else "."
        raise no_room(exc.errno, end, shutil.disk_usage(folder).free, target) from None
