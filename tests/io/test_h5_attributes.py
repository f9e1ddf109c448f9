"""A damaged attribute of an ``.h5`` event file is refused before libhdf5 reads it (talon/io/h5_attributes.py).

libhdf5 2.0 allocates and copies the length a variable-length string's descriptor gives (one flipped
byte: 4 GB, tens of seconds — it looked like a hang) and crashes on a vlen datatype with undefined
class bits. The damaged files are read in a child process, so a regression fails the test (a
timeout, a crash, the memory cap of the child) instead of taking the test run down.
"""

import struct
import subprocess
import sys

import h5py
import numpy as np
import pytest

from talon.io import EventFormatError, read_events, write_h5
from talon.io.demo import moving_bar
from tests.subprocesses import child_env

EVENTS = moving_bar((16, 16))

_READ = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a regression must not take the machine down
from talon.io import EventFormatError, read_events
try:
    read_events(sys.argv[1])
    print("read")
except EventFormatError as exc:
    print(exc)
"""


def _read_in_child(path) -> str:
    done = subprocess.run([sys.executable, "-c", _READ, str(path)], capture_output=True, text=True, timeout=120,
                          env=child_env())  # fmt: skip
    assert done.returncode == 0, f"the reader died ({done.returncode}): {done.stderr[-2000:]}"
    return done.stdout.strip()


def _descriptor_at(blob: bytes, text: bytes) -> int:
    """Where the vlen descriptor of the heap string ``text`` is: its length, then the address of the
    global heap collection (``GCOL``) holding it, then the object index 1 — found, not assumed."""
    heap = blob.index(b"GCOL")
    descriptor = struct.pack("<IQI", len(text), heap, 1)
    assert blob.count(descriptor) == 1, "the descriptor of the attribute is not where the test expects"
    return blob.index(descriptor)


def _talon_file(path, libver="earliest", fillers=0) -> bytes:
    """A talon event file; ``fillers`` attributes are written before talon_format (moving it into a
    continuation block of the object header, or into dense storage with ``libver='latest'``)."""
    write_h5(path, EVENTS, (16, 16), chunk_events=64)
    if libver != "earliest" or fillers:
        with h5py.File(path, "r") as f:
            groups = {k: f[f"events/{k}"][()] for k in "xytp"}
            extra = {k: f[k][()] for k in ("ms_to_idx", "t_offset")}
        with h5py.File(path, "w", libver=libver) as f:
            for k in range(fillers):
                f.attrs[f"filler{k}"] = np.arange(40, dtype=np.int64)
            f.attrs["talon_format"] = "talon-events"
            f.attrs["format_version"] = 1
            f.attrs["sensor_size"] = np.array([16, 16], np.int64)
            for k, v in groups.items():
                f.create_dataset(f"events/{k}", data=v, chunks=True, maxshape=(None,))
            for k, v in extra.items():
                f[k] = v
    return path.read_bytes()


@pytest.mark.parametrize("layout", ["talon", "continuation", "libver_latest"])
def test_a_damaged_string_length_is_refused_before_libhdf5_allocates_it(tmp_path, layout):
    """Object header version 1 (talon's writer, h5py's default; the attribute in the first block or in
    a continuation block) and version 2 (``libver='latest'``, whose checksum libhdf5 verifies itself)."""
    path = tmp_path / f"{layout}.h5"
    options = {"talon": {}, "continuation": {"fillers": 30}, "libver_latest": {"libver": "latest"}}[layout]
    blob = bytearray(_talon_file(path, **options))
    assert np.array_equal(read_events(path), EVENTS)  # the parser finds the attribute and lets it through
    at = _descriptor_at(blob, b"talon-events")
    blob[at + 3] = 0xFF  # length 12 -> 4,278,190,092
    bad = tmp_path / f"bad_{layout}.h5"
    bad.write_bytes(bytes(blob))
    if layout == "libver_latest":
        assert _read_in_child(bad).startswith(f"{bad.name}: damaged event file (") and "checksum" in _read_in_child(bad)
        return
    assert _read_in_child(bad) == (
        f"{bad.name}: attribute 'talon_format' claims 4,278,190,092 bytes of variable-length data (damaged attribute)"
    )


def test_an_undefined_vlen_datatype_is_refused_before_libhdf5_crashes_on_it(tmp_path):
    path = tmp_path / "events.h5"
    blob = bytearray(_talon_file(path))
    name = blob.index(b"talon_format\0")
    datatype = name + 16  # attribute message version 1: the name padded to 8 bytes, then the datatype
    assert blob[datatype : datatype + 4] == bytes([0x19, 0x01, 0x01, 0x00])  # vlen, version 1; string, UTF-8
    blob[datatype + 1] = 0xFF
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(blob))
    assert _read_in_child(bad) == (
        f"{bad.name}: attribute 'talon_format' has an invalid variable-length datatype (class bits ff0100; damaged "
        "attribute)"
    )


def test_a_vlen_attribute_the_parser_cannot_reach_is_refused(tmp_path):
    """More than 8 attributes with libver='latest' go to dense storage (a fractal heap): the length
    cannot be checked there, so the file is refused with what to do (talon's writer never does this)."""
    path = tmp_path / "dense.h5"
    _talon_file(path, libver="latest", fillers=9)
    with pytest.raises(EventFormatError, match=r"dense\.h5: cannot check the variable-length attribute 'talon_format'"):
        read_events(path)
    with h5py.File(path, "r+") as f:  # a fixed-length string is checked by its size alone
        del f.attrs["talon_format"]
        f.attrs["talon_format"] = np.bytes_(b"talon-events")
    assert np.array_equal(read_events(path), EVENTS)


def test_a_damaged_dataspace_is_refused_before_h5py_allocates_it(tmp_path):
    path = tmp_path / "events.h5"
    blob = bytearray(_talon_file(path))
    name = blob.index(b"sensor_size\0")
    dims = name + 16 + 16 + 8  # version 1: name and datatype padded to 16, dataspace header 8 bytes
    assert blob[dims : dims + 16] == struct.pack("<QQ", 2, 2)  # dims [2], max dims [2]
    blob[dims : dims + 16] = struct.pack("<QQ", 1 << 40, 1 << 40)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(blob))
    assert _read_in_child(bad).startswith("bad.h5: damaged event file (")  # libhdf5 refuses it already


@pytest.mark.parametrize(("field", "value"), [("object size", 0xFF), ("free space size", 0x00)])
def test_a_damaged_global_heap_is_refused_before_libhdf5_loops_on_it(tmp_path, field, value):
    """The string's bytes live in a global heap collection; libhdf5 stalls on one whose object sizes
    no longer tile it. Object 1 (``talon-events``, 12 bytes padded to 16) is followed by the free space."""
    path = tmp_path / "events.h5"
    blob = bytearray(_talon_file(path))
    heap = blob.index(b"GCOL")
    assert blob[heap + 16 : heap + 18] == b"\x01\x00" and blob[heap + 24 : heap + 32] == struct.pack("<Q", 12)
    at = heap + 24 if field == "object size" else heap + 48 + 8  # the size fields (8 bytes each)
    blob[at] = value
    bad = tmp_path / "bad.h5"
    bad.write_bytes(bytes(blob))
    message = _read_in_child(bad)
    assert message.startswith("bad.h5: attribute 'talon_format': ") and message.endswith("(damaged global heap)")
