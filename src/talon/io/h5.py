"""HDF5 event files: a chunked, compressed, time-indexed layout readable by DSEC tools (and DSEC files by talon).

Layout (format version 1)::

    /                 attrs: talon_format = "talon-events", format_version = 1,
                             sensor_size = [width, height] (when known)
    /events/x         int16  [N]   chunked, compressed
    /events/y         int16  [N]
    /events/t         int64  [N]   microseconds minus t_offset, never decreasing
    /events/p         uint8  [N]   1 = ON, 0 = OFF
    /ms_to_idx        uint64 [M]   ms_to_idx[k] = index of the first event with t >= k * 1000
    /t_offset         int64  []    added to /events/t to give the events' timestamps

This is the DSEC layout (``events/{x,y,t,p}``, ``ms_to_idx``, ``t_offset``) with wider ``x``, ``y``
and ``t`` and the two root attributes; DSEC's own files (uint16 / uint32 fields, Blosc compression:
install ``hdf5plugin``) are read the same way. ``read_time_window(t0, t1)`` looks up the window's
millisecond bounds in ``ms_to_idx`` and reads only the chunks of ``[t0, t1)``.

Events must arrive in time order (across ``write`` calls too): the writer refuses the first event
that goes back in time; ``write_h5(..., sort=True)`` sorts first (stable). Files are written to a
temporary file and renamed into place on ``close``, so a failed write never damages an old file.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

import h5py
import numpy as np

from talon.ir import hdf5_output
from talon.ir.atomic import atomic_output, require_free_space, write_error
from talon.ir.budget import BudgetExceededError, ByteBudget
from talon.ir.hdf5_guard import ALLOWED_FILTERS, check_plain_dataset, child, open_regular
from talon.ir.paths import check_path

from .budget import event_budget
from .events import EVENT_DTYPE, EventFormatError, as_events, first_unsorted, sort_events
from .h5_attributes import root_attribute

FORMAT_NAME = "talon-events"
FORMAT_VERSION = 1
DEFAULT_CHUNK_EVENTS = 1 << 16
_FIELDS = ("x", "y", "t", "p")
_STORED = {"x": np.int16, "y": np.int16, "t": np.int64, "p": np.uint8}
_METADATA_SLACK = 4 << 20  # bytes kept free beyond the events for libhdf5's metadata, chunk index and flushes

with contextlib.suppress(ImportError):  # DSEC files use the Blosc filter; hdf5plugin registers it
    import hdf5plugin  # noqa: F401

# the filters an event dataset may use: HDF5's own and hdf5plugin's (DSEC: Blosc); any other would
# make libhdf5 search HDF5_PLUGIN_PATH for a plugin to load
EVENT_FILTERS = {**ALLOWED_FILTERS, 32001: "blosc", 32004: "lz4", 32008: "bitshuffle", 32015: "zstd", 32026: "blosc2"}


class H5EventWriter:
    """Append time-sorted events to a new ``.h5`` event file (a context manager).

    ``sensor_size``: ``(width, height)``, stored as an attribute (optional). ``chunk_events``: events
    per HDF5 chunk. ``compression``: an h5py filter (``"gzip"``, ``"lzf"``, None).
    """

    def __init__(
        self,
        path,
        sensor_size=None,
        *,
        chunk_events: int = DEFAULT_CHUNK_EVENTS,
        compression: str | None = "lzf",
    ) -> None:
        if isinstance(chunk_events, bool) or int(chunk_events) != chunk_events or chunk_events < 1:
            raise EventFormatError(f"chunk_events must be a positive integer, got {chunk_events!r}")
        size = None if sensor_size is None else [int(s) for s in sensor_size][:2]
        if size is not None and (len(size) != 2 or min(size) < 1):
            raise EventFormatError(f"sensor_size must be (width, height), got {sensor_size!r}")
        self.path = check_path(path, "H5EventWriter: the event file to write")
        self._stack = contextlib.ExitStack()
        try:
            tmp = self._tmp = self._stack.enter_context(atomic_output(self.path))
            # through a Python file object: a disk that fills under libhdf5 is an OSError, never its crash
            fh = self._stack.enter_context(open(tmp, "r+b"))  # noqa: SIM115 - closed by the stack
            self._file = self._stack.enter_context(hdf5_output.create(fh))
            self._file.attrs["talon_format"] = FORMAT_NAME
            self._file.attrs["format_version"] = FORMAT_VERSION
            if size is not None:
                self._file.attrs["sensor_size"] = np.array(size, dtype=np.int64)
            group = self._file.create_group("events")
            for name in _FIELDS:
                group.create_dataset(
                    name, shape=(0,), maxshape=(None,), dtype=_STORED[name], chunks=(int(chunk_events),),
                    compression=compression,
                )  # fmt: skip
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)  # removes the temporary file
            raise
        self._size = None if size is None else (size[0], size[1])
        self._index: list[np.ndarray] = []
        self._index_len = 0
        self._count = 0
        self._t_offset: int | None = None
        self._last_t: int | None = None
        self._closed = False

    def write(self, events) -> None:
        """Append events (time-sorted, not earlier than the events already written)."""
        if self._closed:
            raise EventFormatError(f"{self.path}: the writer is closed")
        events = as_events(events)
        if events.size == 0:
            return
        t = events["t"]
        bad = first_unsorted(t)
        if bad is not None:
            raise EventFormatError(
                f"event {bad} of this batch (t={int(t[bad])}) is earlier than event {bad - 1} (t={int(t[bad - 1])}); "
                "events must be time-sorted (write_h5(..., sort=True) or talon.io.sort_events)"
            )
        if self._last_t is not None and t[0] < self._last_t:
            raise EventFormatError(
                f"this batch starts at t={int(t[0])}, before the last event written (t={self._last_t}); "
                "events must be time-sorted across writes"
            )
        self._check_pixels(events)
        if self._t_offset is None:
            self._t_offset = int(t[0]) // 1000 * 1000
        rel = t - self._t_offset
        group = self._file["events"]
        n = events.size
        self._check_free_space(n * sum(np.dtype(d).itemsize for d in _STORED.values()))
        try:
            for name in _FIELDS:
                ds = group[name]
                ds.resize((self._count + n,))
                ds[self._count :] = rel if name == "t" else events[name]
            hdf5_output.check(self._file)
        except OSError as exc:  # the file is incomplete: discard it (the old file stays)
            self.abort()
            raise write_error(exc, self.path) from None
        last_ms = int(rel[-1]) // 1000
        if last_ms >= self._index_len:
            ms = np.arange(self._index_len, last_ms + 1, dtype=np.int64) * 1000
            self._index.append(self._count + np.searchsorted(rel, ms, side="left").astype(np.uint64))
            self._index_len = last_ms + 1
        self._count += n
        self._last_t = int(t[-1])

    def _check_free_space(self, nbytes: int) -> None:
        """Refuse, before libhdf5 writes ``nbytes`` more (uncompressed) and its metadata, when the
        file system cannot hold them (:func:`talon.ir.atomic.require_free_space`)."""
        require_free_space(self._tmp.parent, nbytes + _METADATA_SLACK, self.path)

    def _check_pixels(self, events: np.ndarray) -> None:
        """Refuse what the reader would refuse (negative addresses) and events off the recorded sensor."""
        width, height = self._size if self._size is not None else (32768, 32768)
        for name, limit in (("x", width), ("y", height)):
            bad = np.flatnonzero((events[name] < 0) | (events[name] >= limit))
            if bad.size:
                k = int(bad[0])
                where = f"the {width}x{height} sensor" if self._size is not None else "[0, 32767]"
                raise EventFormatError(
                    f"{self.path}: event {self._count + k} has {name}={int(events[name][k])}, outside {where}; "
                    "pixel addresses are non-negative and within sensor_size (width, height)"
                )

    def close(self) -> None:
        """Finish the file (writes the time index) and move it into place."""
        if self._closed:
            return
        self._closed = True
        try:
            index = np.concatenate(self._index) if self._index else np.zeros(0, dtype=np.uint64)
            self._check_free_space(index.nbytes)
            self._file.create_dataset("ms_to_idx", data=index, dtype=np.uint64)
            self._file.create_dataset("t_offset", data=np.int64(self._t_offset or 0))
        except BaseException as exc:
            self._stack.__exit__(type(exc), exc, exc.__traceback__)  # removes the temporary file
            raise
        try:
            self._stack.close()  # libhdf5 writes its metadata now; a failure removes the temporary file
        except OSError as exc:
            raise write_error(exc, self.path) from None

    def abort(self) -> None:
        """Discard the file being written (an existing file at ``path`` stays as it was)."""
        if not self._closed:
            self._closed = True
            with contextlib.suppress(_Abort):
                self._stack.__exit__(_Abort, _Abort(), None)

    def __enter__(self) -> H5EventWriter:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


class _Abort(Exception):
    pass


class H5EventReader:
    """Read an ``.h5`` event file (talon's layout or DSEC's); ``path`` may also be a binary file object.

    ``max_bytes``: the most bytes of events one read may decode, and of one HDF5 chunk (default
    :func:`talon.io.budget.default_event_budget` of the file's size); more raises
    :class:`~talon.ir.budget.BudgetExceededError` before anything is allocated.

    ``len(reader)`` events; ``sensor_size`` (or None); ``t_range`` ``(first t, last t)``.
    Raises :class:`~talon.io.events.EventFormatError` naming the file for any damaged or foreign file.
    """

    def __init__(self, path, *, max_bytes: int | None = None) -> None:
        if not hasattr(path, "read"):
            path = check_path(path, "H5EventReader: the event file to read (or a binary file object)")
        self.name = str(getattr(path, "name", path))
        self._size = None
        if isinstance(path, (str, os.PathLike)):
            if not os.path.exists(path):
                raise FileNotFoundError(f"no such event file: {path}")
            fh, self._size = open_regular(path, EventFormatError, "event")  # a FIFO would block h5py forever
            fh.close()
        else:
            with contextlib.suppress(AttributeError, OSError):
                self._size = os.fstat(path.fileno()).st_size
        self._source = path
        # one read may decode at most this many bytes of events (talon.io.budget)
        self._shown = os.fspath(path) if isinstance(path, (str, os.PathLike)) else self.name
        self._budget = event_budget(self._shown, max_bytes, self._size or 0).limit
        try:
            self._file = h5py.File(path, "r")
        except OSError as exc:
            raise EventFormatError(f"{self.name}: not a readable HDF5 file ({_first_line(exc)})") from None
        try:
            with self._damage_is_format_error():
                self._check()
        except BaseException:
            self._file.close()
            raise

    def _check(self) -> None:
        f = self._file
        fmt = root_attribute(f, self._source, "talon_format", self.name)
        if isinstance(fmt, bytes):
            fmt = fmt.decode("utf-8", "replace")
        if fmt is not None and fmt != FORMAT_NAME:
            raise EventFormatError(f"{self.name}: a {fmt!r} file, not an event file (talon_format={fmt!r})")
        if fmt == FORMAT_NAME:
            version = root_attribute(f, self._source, "format_version", self.name)
            if not isinstance(version, (int, np.integer)) or version < 1:
                raise EventFormatError(f"{self.name}: format_version attribute missing or invalid ({version!r})")
            if version > FORMAT_VERSION:
                raise EventFormatError(
                    f"{self.name}: event file format version {int(version)} is newer than {FORMAT_VERSION}; "
                    "upgrade talon"
                )
        # only hard links inside the file, only data stored in it (talon.ir.hdf5_guard): an event
        # file cannot make talon read another file, nor declare events it does not hold
        group = child(f, "events", self.name, EventFormatError)
        fields = {k: child(group, k, f"{self.name}: events", EventFormatError) for k in _FIELDS} if (
            isinstance(group, h5py.Group)) else {}  # fmt: skip
        if not fields or any(not isinstance(ds, h5py.Dataset) for ds in fields.values()):
            raise EventFormatError(
                f"{self.name}: no events/x, events/y, events/t, events/p datasets (not an event file)"
            )
        self._ds = fields
        for k, ds in fields.items():
            self._check_stored(ds, f"events/{k}")
        lengths = {k: ds.shape for k, ds in self._ds.items()}
        if len(set(lengths.values())) != 1 or len(next(iter(lengths.values()))) != 1:
            raise EventFormatError(f"{self.name}: event fields have different shapes {lengths} (damaged file)")
        for k, ds in self._ds.items():
            if ds.dtype.kind not in "iub":
                raise EventFormatError(f"{self.name}: events/{k} has dtype {ds.dtype}, not an integer type")
        self._n = int(self._ds["t"].shape[0])
        index = child(f, "ms_to_idx", self.name, EventFormatError)
        self._index = index if isinstance(index, h5py.Dataset) and index.ndim == 1 else None
        if self._index is not None:
            self._check_stored(self._index, "ms_to_idx")
        offset = child(f, "t_offset", self.name, EventFormatError)
        self.t_offset = int(offset[()]) if isinstance(offset, h5py.Dataset) and offset.shape == () else 0
        size = root_attribute(f, self._source, "sensor_size", self.name)
        self.sensor_size = None if size is None else tuple(int(s) for s in np.asarray(size).reshape(-1)[:2])

    def _check_stored(self, ds: h5py.Dataset, name: str) -> None:
        """Refuse ``ds`` unless its bytes are stored in this file (no external storage, virtual
        dataset, unwritten chunks or contiguous data past the end of the file)."""
        size = self._size if self._size is not None else 1 << 62  # a file object of unknown size
        check_plain_dataset(ds, f"{self.name}: {name}", EventFormatError, size, EVENT_FILTERS)
        if ds.chunks:  # libhdf5 decodes a whole chunk to read any element of it
            self._charge(math.prod(ds.chunks) * ds.dtype.itemsize, f"one chunk of {name} ({ds.chunks})")

    def _charge(self, nbytes: int, what: str) -> None:
        ByteBudget(self._budget, self._shown).charge(nbytes, what)

    @contextlib.contextmanager
    def _damage_is_format_error(self):
        try:
            yield
        except (EventFormatError, BudgetExceededError):
            raise
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise EventFormatError(f"{self.name}: damaged event file ({_first_line(exc)})") from None

    def __len__(self) -> int:
        return self._n

    @property
    def t_range(self) -> tuple[int, int] | None:
        """``(first, last)`` timestamp in µs, None for an empty file."""
        if self._n == 0:
            return None
        with self._damage_is_format_error():
            t = self._ds["t"]
            return int(t[0]) + self.t_offset, int(t[self._n - 1]) + self.t_offset

    def _read(self, lo: int, hi: int, t: np.ndarray | None = None) -> np.ndarray:
        count = max(hi - lo, 0)
        self._charge(count * EVENT_DTYPE.itemsize, f"reading {count:,} events")
        if count * EVENT_DTYPE.itemsize > _memory_limit():
            raise EventFormatError(
                f"{self.name}: reading {count:,} events at once needs {count * EVENT_DTYPE.itemsize:,} bytes, more "
                "than half of this machine's memory; read it in pieces (iter_chunks, read_time_window)"
            )
        out = np.empty(count, dtype=EVENT_DTYPE)
        if out.size == 0:
            return out
        with self._damage_is_format_error():
            rel = self._ds["t"][lo:hi] if t is None else t
            out["t"] = rel.astype(np.int64) + self.t_offset
            for name in ("x", "y"):
                values = self._ds[name][lo:hi]
                if values.size and (values.min() < 0 or values.max() > np.iinfo(np.int16).max):
                    raise EventFormatError(f"{self.name}: events/{name} holds values outside [0, 32767]")
                out[name] = values
            p = self._ds["p"][lo:hi]
            if p.size and p.max() > 1:
                raise EventFormatError(f"{self.name}: events/p holds values other than 0 and 1")
            out["p"] = p
        return out

    def read_all(self) -> np.ndarray:
        """Every event, as :data:`~talon.io.events.EVENT_DTYPE`."""
        return self._read(0, self._n)

    def read_events(self, start: int, stop: int) -> np.ndarray:
        """Events ``start`` to ``stop - 1`` by index (clipped to the file)."""
        start, stop = max(int(start), 0), min(int(stop), self._n)
        return self._read(start, stop)

    def time_window_bounds(self, t0: int, t1: int) -> tuple[int, int]:
        """Index range ``[lo, hi)`` of the events with ``t0 <= t < t1``."""
        if t1 <= t0 or self._n == 0:
            return (0, 0)
        rel0, rel1 = int(t0) - self.t_offset, int(t1) - self.t_offset
        with self._damage_is_format_error():
            lo, hi = self._coarse_bounds(rel0, rel1)
            t = self._ds["t"][lo:hi]
        return lo + int(np.searchsorted(t, rel0, side="left")), lo + int(np.searchsorted(t, rel1, side="left"))

    def _coarse_bounds(self, rel0: int, rel1: int) -> tuple[int, int]:
        """An index range containing the window, from ``ms_to_idx`` (the whole file without an index)."""
        if self._index is None or self._index.shape[0] == 0:
            return 0, self._n
        m = self._index.shape[0]
        ms0 = min(max(rel0 // 1000, 0), m - 1)
        lo = int(self._index[ms0]) if rel0 >= 0 else 0
        ms1 = -(-rel1 // 1000)  # ceil
        hi = int(self._index[ms1]) if 0 <= ms1 < m else (self._n if ms1 >= m else 0)
        if not 0 <= lo <= hi <= self._n:
            raise EventFormatError(f"{self.name}: ms_to_idx points outside the events (damaged index)")
        return lo, hi

    def read_time_window(self, t0: int, t1: int) -> np.ndarray:
        """Events with ``t0 <= t < t1`` (µs), reading only the chunks that hold them."""
        if t1 <= t0 or self._n == 0:
            return self._read(0, 0)
        rel0, rel1 = int(t0) - self.t_offset, int(t1) - self.t_offset
        with self._damage_is_format_error():
            lo, hi = self._coarse_bounds(rel0, rel1)
            t = self._ds["t"][lo:hi]
        a, b = int(np.searchsorted(t, rel0, side="left")), int(np.searchsorted(t, rel1, side="left"))
        return self._read(lo + a, lo + b, t[a:b])

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_EVENTS) -> Iterator[np.ndarray]:
        """Consecutive blocks of at most ``chunk_size`` events."""
        for start in range(0, self._n, int(chunk_size)):
            yield self._read(start, min(start + int(chunk_size), self._n))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> H5EventReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _memory_limit() -> int:
    """The most bytes one read may allocate: half of the machine's physical memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 1 << 34


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def write_h5(path, events, sensor_size=None, *, sort: bool = False, **options) -> None:
    """Write ``events`` to a new ``.h5`` event file (``sort=True`` sorts them by time first)."""
    check_path(path, "write_h5: the event file to write")
    events = as_events(events)
    if sort:
        events = sort_events(events)
    with H5EventWriter(path, sensor_size, **options) as writer:
        writer.write(events)


def read_h5(path, t0: int | None = None, t1: int | None = None, *, max_bytes: int | None = None) -> np.ndarray:
    """Every event of an ``.h5`` event file, or those with ``t0 <= t < t1`` when a window is given
    (``max_bytes``: the decode budget, :mod:`talon.io.budget`)."""
    path = check_path(path, "read_h5: the event file to read")
    with H5EventReader(path, max_bytes=max_bytes) as reader:
        if t0 is None and t1 is None:
            return reader.read_all()
        lo = np.iinfo(np.int64).min if t0 is None else t0
        hi = np.iinfo(np.int64).max if t1 is None else t1
        return reader.read_time_window(lo, hi)
