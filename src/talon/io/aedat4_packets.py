"""The AEDAT4 container read far enough to bound each packet before the ``aedat`` package decodes it.

``aedat`` reads a packet's size from the file, allocates it, and decompresses the packet whole
(LZ4 or zstd, to the end) before talon sees anything: a packet of a few kB of zstd can expand to
gigabytes, and a size field past the end of the file is an allocation of up to 4 GiB. So
:class:`PacketWalk` walks the same packets first: it refuses a size field that runs past the file,
reads the compressed bytes (as ``aedat`` does next) and decompresses them into 1 MiB pieces (the
streaming APIs of the ``lz4`` and ``zstandard`` packages, with a maximum output size) that are
counted and dropped, and refuses a packet whose decompressed size is over the bytes its caller
still allows — all before ``aedat`` reads the packet.

The layout (iniVation's AEDAT 4.0, as ``aedat`` reads it): ``#!AER-DAT4.0\\r\\n``; a little-endian
uint32 ``n`` and an ``n``-byte ``IOHeader`` flatbuffer (``compression``: 0 none, 1 LZ4, 2 LZ4
high, 3 zstd, 4 zstd high; ``file_data_position``: where the packets end, -1 for the end of the
file); then packets of a uint32 stream id, a uint32 size and that many (compressed) bytes, up to
``file_data_position`` or the end of the file. Every frame of a packet is counted (a decoder that
stops after the first frame decompresses less than counted, never more).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from talon.ir.budget import BudgetExceededError
from talon.ir.errors import MissingDependencyError, install_hint

from .events import EventFormatError

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSIONS = {0: "none", 1: "LZ4", 2: "LZ4 (high)", 3: "zstd", 4: "zstd (high)"}
PIECE = 1 << 20  # decompressed bytes held at a time


@dataclass(frozen=True)
class Header:
    """What the walk needs of the file header: the compression code and where the packets are."""

    compression: int
    data_start: int  # the first packet's offset
    data_end: int  # file_data_position, or the file's size when it is -1


@dataclass(frozen=True)
class Packet:
    index: int
    stream_id: int
    offset: int  # of the packet's 8-byte head
    size: int  # compressed bytes after the head


def read_header(fh: BinaryIO, path: Path, file_size: int) -> Header:
    """The header of the AEDAT4 file ``fh``; :class:`EventFormatError` if it is not one, or its
    header length runs past the end of the file (``aedat`` would allocate that length first)."""
    if fh.read(len(MAGIC)) != MAGIC:
        raise EventFormatError(f"{path}: not an AEDAT4 file (it does not start with {MAGIC!r})")
    (length,) = _unpack(fh, "<I", path, "the header length")
    start = len(MAGIC) + 4
    if length > file_size - start:
        raise EventFormatError(
            f"{path}: damaged AEDAT4 file: its header claims {length:,} bytes but the file has {file_size - start:,} "
            "after the header length"
        )
    compression, position = _io_header(fh.read(length), path)
    if compression not in COMPRESSIONS:
        raise EventFormatError(f"{path}: unknown AEDAT4 compression code {compression} (0-4: {COMPRESSIONS})")
    end = file_size if position < 0 else min(position, file_size)
    return Header(compression, start + length, end)


def _io_header(buf: bytes, path: Path) -> tuple[int, int]:
    """``(compression, file_data_position)`` of the ``IOHeader`` flatbuffer ``buf`` (fields 0 and 1
    of its root table, with the schema's defaults 0 and -1), every offset checked against ``buf``."""

    def at(fmt: str, pos: int):
        if not 0 <= pos <= len(buf) - struct.calcsize(fmt):
            raise EventFormatError(f"{path}: damaged AEDAT4 header (an offset points outside its {len(buf)} bytes)")
        return struct.unpack_from(fmt, buf, pos)[0]

    table = at("<I", 0)
    vtable = table - at("<i", table)
    vtable_size = at("<H", vtable)

    def field(index: int, fmt: str, default: int) -> int:
        slot = 4 + 2 * index
        offset = at("<H", vtable + slot) if slot + 2 <= vtable_size else 0
        return default if offset == 0 else at(fmt, table + offset)

    return field(0, "<i", 0), field(1, "<q", -1)


class PacketWalk:
    """The packets of an AEDAT4 file in order, each checked by :meth:`check` before ``aedat`` reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "rb")  # noqa: SIM115 - closed by close(), the walk outlives this call
        try:
            self.file_size = self._fh.seek(0, 2)
            self._fh.seek(0)
            self.header = read_header(self._fh, path, self.file_size)
        except BaseException:
            self._fh.close()
            raise
        self._next = self.header.data_start

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PacketWalk:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def compression(self) -> str:
        return COMPRESSIONS[self.header.compression]

    def packets(self) -> Iterator[Packet]:
        """Each packet's head, in file order, as ``aedat`` finds them (a size past the end of the
        file is refused here; a head cut short at the end of the file ends the packets, as in ``aedat``)."""
        index = 0
        while self._next != self.header.data_end:
            offset = self._next
            self._fh.seek(offset)
            head = self._fh.read(8)
            if len(head) < 4:
                return
            if len(head) < 8:
                raise EventFormatError(f"{self.path}: damaged AEDAT4 packet {index} at byte {offset:,} (cut short)")
            stream_id, size = struct.unpack("<II", head)
            if size > self.file_size - offset - 8:
                raise EventFormatError(
                    f"{self.path}: damaged AEDAT4 packet {index} (stream {stream_id}) at byte {offset:,}: it claims "
                    f"{size:,} bytes but the file has {max(self.file_size - offset - 8, 0):,} after its head"
                )
            self._next = offset + 8 + size
            yield Packet(index, stream_id, offset, size)
            index += 1

    def check(self, packet: Packet, allowed: int, budget_limit: int) -> int:
        """The bytes ``packet`` decompresses to; :class:`BudgetExceededError` as soon as they pass
        ``allowed`` (what is left of a budget of ``budget_limit``), having held at most
        :data:`PIECE` bytes of its output."""
        what = f"AEDAT4 packet {packet.index} (stream {packet.stream_id}, {self.compression}) at byte {packet.offset:,}"
        try:
            if self.header.compression == 0:
                return _count(0, packet.size, allowed)
            count = _lz4_size if self.header.compression in (1, 2) else _zstd_size
            return count(self._compressed(packet), allowed)
        except _OverBudget:
            raise BudgetExceededError(
                f"{what} decompresses to more than {allowed:,} bytes, which takes reading {self.path} past its budget "
                f"of {budget_limit:,} decoded bytes; if the file is trusted, pass a larger max_bytes"
            ) from None
        except (MissingDependencyError, EventFormatError):
            raise
        except Exception as exc:  # the decompressors' own errors: a damaged packet
            raise EventFormatError(f"{self.path}: damaged {what}: it does not decompress ({exc})") from None

    def _compressed(self, packet: Packet) -> bytes:
        """The packet's compressed bytes (no more than the file holds: :meth:`packets` checked its size)."""
        self._fh.seek(packet.offset + 8)
        data = self._fh.read(packet.size)
        if len(data) != packet.size:
            raise EventFormatError(f"{self.path}: AEDAT4 packet {packet.index} is cut short")
        return data


class _OverBudget(Exception):
    pass


def _count(total: int, produced: int, allowed: int) -> int:
    total += produced
    if total > allowed:
        raise _OverBudget
    return total


def _lz4_size(data: bytes, allowed: int) -> int:
    """Decompressed bytes of the LZ4 frames in ``data`` (``lz4.frame``, :data:`PIECE` at a time)."""
    try:
        import lz4.frame as frame
    except ImportError:
        raise _missing("lz4") from None
    total = 0
    while data:
        decompressor = frame.LZ4FrameDecompressor()
        total = _count(total, len(decompressor.decompress(data, max_length=PIECE)), allowed)
        while not decompressor.eof and not decompressor.needs_input:  # more output of the same input
            total = _count(total, len(decompressor.decompress(b"", max_length=PIECE)), allowed)
        data = decompressor.unused_data if decompressor.eof else b""  # the next frame, if any
    return total


def _zstd_size(data: bytes, allowed: int) -> int:
    """Decompressed bytes of the zstd frames in ``data`` (``zstandard``'s stream reader, across
    frames, into one :data:`PIECE`-byte buffer)."""
    try:
        import zstandard
    except ImportError:
        raise _missing("zstandard") from None
    reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
    total, piece = 0, bytearray(PIECE)
    while done := reader.readinto(piece):
        total = _count(total, done, allowed)
    return total


def _missing(package: str) -> MissingDependencyError:
    return MissingDependencyError(
        f"reading a compressed AEDAT4 file needs the '{package}' package; " + install_hint("events")
    )


def _unpack(fh: BinaryIO, fmt: str, path: Path, what: str) -> tuple:
    data = fh.read(struct.calcsize(fmt))
    if len(data) < struct.calcsize(fmt):
        raise EventFormatError(f"{path}: damaged AEDAT4 file ({what} is cut short)")
    return struct.unpack(fmt, data)
