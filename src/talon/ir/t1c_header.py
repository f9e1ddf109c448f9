"""The integrity header of a ``.t1c`` file of format versions 2 and 3 (``docs/format.md``, "Integrity").

The first :data:`HEADER_SIZE` bytes of the file are an HDF5 *user block* (libhdf5 skips it and
finds the HDF5 superblock right after it). talon writes there::

    offset  size  field
    0       8     magic b"\\x89T1C\\r\\n\\x1a\\n"
    8       4     format_version, uint32 little-endian (2 or 3)
    12      4     reserved, zero
    16      8     file length in bytes, uint64 little-endian (header included)
    24      32    SHA-256 of bytes [0, 24) followed by bytes [56, file length)
    56      456   zero

A reader checks the length and the digest over the whole file *before* libhdf5 parses any of it:
a changed, missing or added byte anywhere — HDF5 metadata, the manifest, array data or the
header itself — is reported as damage and never reaches the HDF5 parser.
"""

from __future__ import annotations

import hashlib
import io
import struct
from typing import BinaryIO

MAGIC = b"\x89T1C\r\n\x1a\n"
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
HEADER_SIZE = 512
_FIELDS = struct.Struct("<8sII Q")  # magic, version, reserved, length  (24 bytes)
_DIGEST_AT = _FIELDS.size
_BODY_AT = _DIGEST_AT + 32
_CHUNK = 4 << 20
IN_MEMORY_BELOW = 64 << 20  # files up to this size are read once into memory and parsed from there


class DamagedFile(ValueError):
    """The header or the checksum does not match the file's bytes."""


def _digest(fields: bytes, fh: BinaryIO, length: int) -> bytes:
    sha = hashlib.sha256(fields)
    fh.seek(_BODY_AT)
    remaining = length - _BODY_AT
    buf = bytearray(min(_CHUNK, max(remaining, 0)))
    view = memoryview(buf)
    while remaining > 0:
        n = fh.readinto(view[: min(_CHUNK, remaining)])
        if not n:
            raise DamagedFile("the file is shorter than its header says (truncated)")
        sha.update(view[:n])
        remaining -= n
    return sha.digest()


def seal(fh: BinaryIO, version: int) -> None:
    """Write the header into the (zeroed) user block of the complete file open as ``fh`` (r+b)."""
    fh.seek(0, io.SEEK_END)
    length = fh.tell()
    fields = _FIELDS.pack(MAGIC, version, 0, length)
    digest = _digest(fields, fh, length)
    fh.seek(0)
    fh.write(fields + digest)


def is_sealed(head: bytes) -> bool:
    return head[: len(MAGIC)] == MAGIC


def verify(fh: BinaryIO, size: int) -> tuple[int, BinaryIO]:
    """Check the header and the digest of the file ``fh`` of ``size`` bytes.

    Returns ``(format_version, source)`` where ``source`` is what to hand to h5py: the file itself,
    or for files below :data:`IN_MEMORY_BELOW` an in-memory copy of the bytes that were checked
    (one read instead of two). Raises :class:`DamagedFile`.
    """
    if size < HEADER_SIZE:
        raise DamagedFile(f"only {size} bytes, shorter than the {HEADER_SIZE}-byte header (truncated)")
    fh.seek(0)
    if size < IN_MEMORY_BELOW:
        data = fh.read(size + 1)
        size = len(data)
        head, source = data[:HEADER_SIZE], io.BytesIO(data)
    else:
        head, source = fh.read(HEADER_SIZE), fh
    magic, version, reserved, length = _FIELDS.unpack_from(head)
    if magic != MAGIC:
        raise DamagedFile("the integrity header is missing")
    if reserved != 0 or any(head[_BODY_AT:]):
        raise DamagedFile("the integrity header is damaged (reserved bytes are not zero)")
    if length != size:
        what = "is truncated" if size < length else "has extra bytes"
        raise DamagedFile(f"the file is {size:,} bytes but its header says {length:,} (it {what})")
    if source is fh:
        digest = _digest(head[:_DIGEST_AT], fh, length)
    else:
        sha = hashlib.sha256(head[:_DIGEST_AT])
        sha.update(memoryview(data)[_BODY_AT:])
        digest = sha.digest()
    if digest != head[_DIGEST_AT:_BODY_AT]:
        raise DamagedFile("its SHA-256 checksum does not match its contents (the file was changed or damaged)")
    source.seek(0)
    return version, source
