"""Atomic file replacement: write a temporary file next to the target, then rename it over.

Contract (``docs/format.md``, "Writing rules"):

* a failure at any point — an exception, ``KeyboardInterrupt`` or ``SIGTERM`` — removes the
  temporary file and leaves the previous target untouched;
* the temporary name is short and fixed-length (``.t1c-<12 hex>.tmp``), so any file name the
  file system accepts can be written;
* an existing target keeps its permission bits (a 0600 file stays 0600);
* a symbolic link is written *through*: its final target is replaced and the link stays;
* errors name the target, never the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import stat
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import TalonError
from .paths import check_path


class _Terminated(BaseException):
    """SIGTERM arrived during a write (raised so that the cleanup runs)."""


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """Turn SIGTERM into an exception while the body runs, if no one else handles SIGTERM."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def handler(signum, frame):
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def resolve_target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` replaces: symbolic links are followed to their final target."""
    path = check_path(path, "the file to write")
    if not os.fspath(path) or os.fspath(path) in (".", ".."):
        raise IsADirectoryError(f"{os.fspath(path)!r} is not a file name")
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    return path


def write_atomically(path: str | os.PathLike, fill: Callable[[Path], None], error: type[Exception]) -> None:
    """Call ``fill(temporary_path)`` and rename the result over ``path`` (see the module contract).

    ``error`` is the exception type raised (naming ``path``) when the file system refuses.
    """
    check_path(path, "the file to write")
    shown = os.fspath(path)
    try:
        target, tmp, old_mode = _reserve(path)
    except OSError as exc:
        raise error(f"cannot write {shown}: {exc.strerror or exc}") from None
    try:
        with _sigterm_cleans_up():
            fill(tmp)
            _commit(tmp, target, old_mode)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, _Terminated):
            os.kill(os.getpid(), signal.SIGTERM)  # die as SIGTERM would have made us, after the cleanup
        if isinstance(exc, OSError) and not isinstance(exc, TalonError):
            raise error(str(write_error(exc, shown))) from None
        raise


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """:func:`write_atomically` as a context manager, for writers that fill a file over several calls
    (``talon.io``'s event writers): yields the temporary path; a clean exit renames it over ``path``
    (same target resolution and permission bits), any exception removes it."""
    check_path(path, "the file to write")
    shown = os.fspath(path)
    try:
        target, tmp, old_mode = _reserve(path)
    except OSError as exc:  # the error names the target, never the temporary file (module contract)
        raise _naming(exc, shown) from None
    try:
        yield tmp
        try:
            _commit(tmp, target, old_mode)
        except OSError as exc:
            raise _naming(exc, shown) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _reserve(path: str | os.PathLike) -> tuple[Path, Path, int | None]:
    """``(target, temporary file, the target's permission bits or None)``: the target resolved, its
    folder made, an empty temporary file created beside it (its mode honours the umask)."""
    target = resolve_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    old_mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else None
    tmp = target.parent / f".t1c-{uuid.uuid4().hex[:12]}.tmp"
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    return target, tmp, old_mode


def _commit(tmp: Path, target: Path, old_mode: int | None) -> None:
    """Give ``tmp`` the target's permission bits, flush it to disk and rename it over ``target``."""
    if old_mode is not None:
        os.chmod(tmp, old_mode)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def write_error(exc: OSError, target: str | os.PathLike) -> OSError:
    """``exc`` (an error of a write into the temporary file) as an error naming ``target``; a full
    disk, quota or file-size limit also says how many bytes are free (:func:`no_room`)."""
    if getattr(exc, "says_room", False) and exc.strerror is None:
        return exc  # no_room named the target already
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and not getattr(exc, "says_room", False):
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(target))).free
        return no_room(exc.errno, None, free, target)
    return _naming(exc, os.fspath(target))


def _naming(exc: OSError, shown: str) -> OSError:
    """``exc``'s kind (PermissionError, FileNotFoundError, …) with a message naming the target."""
    if isinstance(exc, TalonError):
        return exc
    try:
        return type(exc)(f"cannot write {shown}: {exc.strerror or exc}")
    except TypeError:  # an OSError subclass with another constructor
        return OSError(f"cannot write {shown}: {exc.strerror or exc}")


def require_free_space(folder: str | os.PathLike, needed: int, target: str | os.PathLike | None = None) -> None:
    """Raise ``OSError(ENOSPC)`` when the file system of ``folder`` has fewer than ``needed`` bytes
    free (:func:`no_room`'s message, naming ``target`` when given): a writer that cannot reserve its
    blocks ahead (:mod:`.hdf5_output`) refuses before it starts rather than half-way."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise no_room(errno.ENOSPC, needed, free, target)


def no_room(code: int, needed: int | None, free: int, target: str | os.PathLike | None = None) -> OSError:
    """``OSError(code)`` saying ``<reason> (about N bytes needed, M free)`` (``(M bytes free)`` when
    ``needed`` is None), after ``cannot write TARGET: `` when ``target`` is given (then without
    ``[Errno …]``)."""
    room = f"{free:,} bytes free" if needed is None else f"about {max(needed, 0):,} bytes needed, {free:,} free"
    text = f"{os.strerror(code)} ({room})"
    if target is None:
        error = OSError(code, text)
    else:
        error = OSError(f"cannot write {os.fspath(target)}: {text}")
        error.errno = code
    error.says_room = True
    return error
