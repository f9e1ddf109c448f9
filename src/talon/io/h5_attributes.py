"""Root attributes of an HDF5 event file, read only after their size is checked.

Why: libhdf5 trusts the sizes a file gives. A variable-length string attribute (what h5py writes
for a Python ``str``, e.g. ``talon_format``) is stored as a descriptor — a 32-bit length, then the
global-heap address of the bytes — and ``H5Aread`` allocates and converts *length* bytes before it
looks at the heap object, which holds the real (short) string. One damaged byte in that length
makes reading the attribute allocate and copy up to 4 GB twice: tens of seconds and gigabytes of
memory, which is what looked like libhdf5 hanging (libhdf5 2.0, h5py 3.16). The same holds for a
damaged dataspace (an attribute claiming 2^40 elements makes h5py allocate the array first).

So before an attribute is read:

* its dataspace (``shape``, read from the object header, no data) and its storage size must be
  small (:data:`MAX_ATTRIBUTE_BYTES`);
* for a variable-length type, the lengths in its descriptors are read from the raw bytes of the
  root group's object header (parsed here: object header versions 1 and 2 with continuation
  blocks, attribute message versions 1 to 3, superblock versions 0 to 3) and must be small too.

A variable-length attribute this parser cannot find (dense attribute storage, a shared datatype)
is refused rather than read: talon's writer (and h5py's defaults) never produce those for the three
root attributes talon reads. This guards the attributes; libhdf5 itself is not changed, and other
code that reads attributes of a damaged file with h5py directly can still stall in it.
"""

from __future__ import annotations

import math
import os
import struct

import h5py

from .events import EventFormatError

MAX_ATTRIBUTE_BYTES = 1 << 16
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ATTRIBUTE, _CONTINUATION = 0x000C, 0x0010
_VLEN_CLASS = 9
_MAX_MESSAGES = 4096


def root_attribute(file: h5py.File, source, name: str, where: str):
    """``file.attrs[name]``, or None when absent; :class:`EventFormatError` (naming ``where``) when
    its size or, for a variable-length type, a length in its descriptors is implausible. ``source``:
    what ``file`` was opened from (a path, or the binary file object h5py reads)."""
    if name not in file.attrs:
        return None
    attr = file.attrs.get_id(name)
    kind = attr.get_type()
    elements = math.prod(attr.shape or ())
    if elements * kind.get_size() > MAX_ATTRIBUTE_BYTES or attr.get_storage_size() > MAX_ATTRIBUTE_BYTES:
        raise EventFormatError(
            f"{where}: attribute {name!r} claims {elements:,} elements of {kind.get_size():,} bytes (damaged attribute)"
        )
    if kind.get_class() == h5py.h5t.VLEN or (kind.get_class() == h5py.h5t.STRING and kind.is_variable_str()):
        base = kind.get_super().get_size() if kind.get_class() == h5py.h5t.VLEN else 1
        claimed = sum(_vlen_lengths(file, source, name, elements, where)) * base
        if claimed > MAX_ATTRIBUTE_BYTES:
            raise EventFormatError(
                f"{where}: attribute {name!r} claims {claimed:,} bytes of variable-length data (damaged attribute)"
            )
    return file.attrs[name]


def _vlen_lengths(file: h5py.File, source, name: str, elements: int, where: str) -> list[int]:
    raw = _RawFile(source, int(file.userblock_size))
    offsets = raw.offset_size()
    header = h5py.h5o.get_info(file.id).addr
    for message in _messages(raw, header, offsets) if offsets in (2, 4, 8) else ():
        found = _attribute_data(message, name)
        if found is not None:
            data, datatype = found
            if not datatype or datatype[0] & 0x0F != _VLEN_CLASS:
                break
            if not _valid_vlen_bits(datatype):
                raise EventFormatError(
                    f"{where}: attribute {name!r} has an invalid variable-length datatype "
                    f"(class bits {datatype[1:4].hex()}; damaged attribute)"
                )
            step = 4 + offsets + 4  # length, global heap collection address, object index
            if len(data) < elements * step:
                break
            lengths = []
            for k in range(elements):
                length, heap, index = struct.unpack_from(f"<I{'Q' if offsets == 8 else 'I' if offsets == 4 else 'H'}I",
                                                         data, k * step)  # fmt: skip
                if length and length <= MAX_ATTRIBUTE_BYTES:
                    _check_heap_object(raw, heap, index, length, raw.length_size(), name, where)
                lengths.append(length)
            return lengths
    raise EventFormatError(
        f"{where}: cannot check the variable-length attribute {name!r} before reading it (it is not a plain "
        "attribute message of the root group); rewrite the file with talon.io.write_h5"
    )


class _RawFile:
    """Bytes of the HDF5 file behind an open h5py file (a path, or the file object h5py reads)."""

    def __init__(self, source, base: int) -> None:
        self._base = base
        self._fileobj = source if hasattr(source, "read") else None
        self._path = None if self._fileobj is not None else os.fspath(source)

    def read(self, address: int, size: int) -> bytes:
        size = max(0, min(int(size), 1 << 24))
        if self._fileobj is not None:
            where = self._fileobj.tell()
            try:
                self._fileobj.seek(self._base + address)
                return self._fileobj.read(size)
            finally:
                self._fileobj.seek(where)
        with open(self._path, "rb") as f:
            return os.pread(f.fileno(), size, self._base + address)

    def length_size(self) -> int:
        block = self.read(0, 16)
        return block[14] if block[8] in (0, 1) else block[10]

    def offset_size(self) -> int:
        block = self.read(0, 16)
        if block[:8] != _SIGNATURE or len(block) < 16:
            return 0  # h5py opened it, so a superblock exists; not where expected: nothing is checked
        return block[13] if block[8] in (0, 1) else block[9]


def _check_heap_object(raw: _RawFile, address: int, index: int, length: int, lengths: int, name: str, where: str):
    """The global heap collection at ``address`` is well formed (libhdf5 loops on some damaged ones)
    and holds object ``index`` of ``length`` bytes: objects of ``8 + lengths`` header bytes and data
    padded to 8 that tile the collection exactly, the last one the free space (index 0)."""

    def damaged(what: str) -> EventFormatError:
        return EventFormatError(f"{where}: attribute {name!r}: {what} (damaged global heap)")

    head = raw.read(address, 8 + lengths)
    if head[:5] != b"GCOL\x01" or len(head) < 8 + lengths:
        raise damaged(f"no global heap collection at {address}")
    size = int.from_bytes(head[8:], "little")
    block = raw.read(address, size)
    if size < 4096 or len(block) != size:
        raise damaged(f"a collection of {size:,} bytes")
    pos, found = 8 + lengths, None
    while pos + 8 + lengths <= size:
        number = int.from_bytes(block[pos : pos + 2], "little")
        object_size = int.from_bytes(block[pos + 8 : pos + 8 + lengths], "little")
        if number == 0:  # the free space: the rest of the collection
            if object_size != size - pos:
                raise damaged(f"free space of {object_size:,} bytes where {size - pos:,} remain")
            pos = size
            break
        end = pos + 8 + lengths + (object_size + 7) // 8 * 8
        if end > size:
            raise damaged(f"object {number} runs past the end of its collection")
        if number == index:
            found = object_size
        pos = end
    if size - pos >= 8 + lengths:
        raise damaged("objects that do not fill the collection")
    if found != length:
        raise damaged(f"object {index} holds {found} bytes where the attribute needs {length}")


def _messages(raw: _RawFile, address: int, offsets: int):
    """(type, data) of every message of the object header at ``address`` and its continuation blocks."""
    blocks, seen, count = [], set(), 0
    head = raw.read(address, 40)
    if len(head) < 40:
        return
    if head[:4] == b"OHDR":
        flags = head[5]
        pos = 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
        width = 1 << (flags & 3)
        size = int.from_bytes(head[pos : pos + width], "little")
        blocks.append((2, flags, raw.read(address + pos + width, size)))
    else:
        size = struct.unpack_from("<I", head, 8)[0]
        blocks.append((1, 0, raw.read(address + 16, size)))
    while blocks and count < _MAX_MESSAGES:
        version, flags, block = blocks.pop(0)
        pos = 0
        header = 4 + (2 if flags & 0x04 else 0) if version == 2 else 8
        while pos + header <= len(block) and count < _MAX_MESSAGES:
            count += 1
            if version == 1:
                kind, size = struct.unpack_from("<HH", block, pos)
            else:
                kind, size = block[pos], struct.unpack_from("<H", block, pos + 1)[0]
            data = block[pos + header : pos + header + size]
            pos += header + size
            if kind == _CONTINUATION and len(data) >= 2 * offsets:
                where = int.from_bytes(data[:offsets], "little")
                length = int.from_bytes(data[offsets : 2 * offsets], "little")
                if where not in seen:
                    seen.add(where)
                    chunk = raw.read(where, length)
                    if version == 2:  # "OCHK" ... checksum
                        chunk = chunk[4:-4] if chunk[:4] == b"OCHK" else b""
                    blocks.append((version, flags, chunk))
            elif kind == _ATTRIBUTE:
                yield data


def _valid_vlen_bits(datatype: bytes) -> bool:
    """The class bit field of a variable-length datatype holds defined values only (libhdf5 crashes
    reading an attribute whose vlen type is 15): type 0 (sequence) or 1 (string); a string's padding
    0-2 and character set 0-1; the other bits zero."""
    if len(datatype) < 4:
        return False
    bits = int.from_bytes(datatype[1:4], "little")
    kind, padding, charset = bits & 0x0F, (bits >> 4) & 0x0F, (bits >> 8) & 0x0F
    if bits >> 12 or kind not in (0, 1):
        return False
    return (padding, charset) == (0, 0) if kind == 0 else padding <= 2 and charset <= 1


def _attribute_data(message: bytes, name: str) -> tuple[bytes, bytes] | None:
    """(raw data, datatype message) of an attribute message named ``name``."""
    if len(message) < 8:
        return None
    version = message[0]
    name_size, type_size, space_size = struct.unpack_from("<HHH", message, 2)
    if version == 1:
        pad = [(s + 7) // 8 * 8 for s in (name_size, type_size, space_size)]
        start = 8
    elif version in (2, 3):
        if message[1] & 0x03:  # a shared datatype or dataspace: not checked here
            return None
        pad = [name_size, type_size, space_size]
        start = 8 if version == 2 else 9
    else:
        return None
    stored = message[start : start + name_size].split(b"\0", 1)[0]
    if stored != name.encode():
        return None
    datatype = message[start + pad[0] : start + pad[0] + type_size]
    data = message[start + pad[0] + pad[1] + pad[2] :]
    return data, datatype
