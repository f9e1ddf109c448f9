"""The decode budget of AEDAT4 files: every packet is decompressed in bounded pieces and counted
before the ``aedat`` package (which decompresses a packet whole) reads it, so a small file whose
packet expands to gigabytes is refused naming the file, the packet and its offset, and a size field
past the end of the file is refused before ``aedat`` allocates it."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from talon.io import EventFormatError, read_aedat4
from talon.io.budget import default_event_budget
from talon.ir.budget import BudgetExceededError
from talon.ir.errors import MissingDependencyError
from tests.subprocesses import child_env

dv = pytest.importorskip("dv_processing")

GIB = 1 << 30
COMPRESSIONS = {"NONE": "none", "LZ4": "LZ4", "ZSTD": "zstd"}


def recording(path, compression: str, packets: int = 3, per_packet: int = 1000):
    """An AEDAT4 file written by iniVation's dv-processing: one 64×48 event stream, ``packets`` packets."""
    config = dv.io.MonoCameraWriter.Config("DVXplorer_test")
    config.addEventStream((64, 48))
    config.compression = getattr(dv.CompressionType, compression)
    writer = dv.io.MonoCameraWriter(str(path), config)
    for packet in range(packets):
        store = dv.EventStore()
        for k in range(per_packet):
            store.push_back(10**12 + packet * per_packet + k, k % 64, k % 48, k % 3 == 0)
        writer.writeEvents(store)
    del writer  # closes the file
    return path


def header(path) -> bytes:
    """The magic, header length and IOHeader of an AEDAT4 file (its compression code included)."""
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 14)
    return data[: 18 + length]


def packet(payload: bytes, stream_id: int = 0, size: int | None = None) -> bytes:
    return struct.pack("<II", stream_id, len(payload) if size is None else size) + payload


def zeros_compressed(compression: str, n_bytes: int) -> bytes:
    """One LZ4 or zstd frame of ``n_bytes`` zero bytes, compressed 64 MiB at a time."""
    piece, count = bytes(64 << 20), n_bytes // (64 << 20)
    if compression == "LZ4":
        frame = pytest.importorskip("lz4.frame")
        compressor = frame.LZ4FrameCompressor()
        return compressor.begin() + b"".join(compressor.compress(piece) for _ in range(count)) + compressor.flush()
    zstandard = pytest.importorskip("zstandard")
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    return b"".join(compressor.compress(piece) for _ in range(count)) + compressor.flush()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_packets_are_read_and_counted_with_every_compression(tmp_path, compression):
    if compression != "NONE":
        pytest.importorskip({"LZ4": "lz4", "ZSTD": "zstandard"}[compression])
    path = recording(tmp_path / "rec.aedat4", compression)
    events = read_aedat4(path).events
    assert events.size == 3000 and events["t"][-1] == 10**12 + 2999 and events["p"].sum() == 3 * 334
    offset = len(header(path))
    shown = COMPRESSIONS[compression]
    with pytest.raises(
        BudgetExceededError,
        match=rf"^AEDAT4 packet 0 \(stream 0, {shown}\) at byte {offset:,} decompresses to more than 2,000 bytes, "
        rf"which takes reading {path} past its budget of 2,000 decoded bytes; if the file is trusted, pass a larger",
    ):
        read_aedat4(path, max_bytes=2000)


CHILD = textwrap.dedent(
    """
    import json, resource, sys
    from talon.io import read_events
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a 4 GiB allocation cannot happen
    try:
        read_events(sys.argv[1])
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10) - before
    print(json.dumps({"error": error, "grown": grown}))
    """
)


def read_in_child(path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=child_env(), capture_output=True, text=True, timeout=600
    )
    # before, aedat allocated first: the bombs' 4 GiB failed only under the limit ("damaged AEDAT4 packet (out of
    # memory)"), and a 4 GiB size field killed the child (SIGABRT: "memory allocation of 4294967295 bytes failed")
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])
    return json.loads(done.stdout)


@pytest.mark.parametrize("compression", ["LZ4", "ZSTD"])
def test_a_small_file_whose_packet_decompresses_to_4_gib_is_refused_before_it_is_allocated(tmp_path, compression):
    head = header(recording(tmp_path / "real.aedat4", compression, packets=1))
    bomb = tmp_path / "bomb.aedat4"
    bomb.write_bytes(head + packet(zeros_compressed(compression, 4 * GIB)))
    size = bomb.stat().st_size
    assert size < 20 << 20 and default_event_budget(size) == GIB  # LZ4 ~17 MB, zstd ~130 kB on disk
    result = read_in_child(bomb)
    assert result["error"] == (
        f"BudgetExceededError: AEDAT4 packet 0 (stream 0, {COMPRESSIONS[compression]}) at byte {len(head):,} "
        f"decompresses to more than {GIB:,} bytes, which takes reading {bomb} past its budget of {GIB:,} decoded "
        "bytes; if the file is trusted, pass a larger max_bytes"
    )
    # the 1 GiB counted before the refusal went through 1 MiB pieces: the reader's memory hardly grew
    assert result["grown"] < GIB // 8, result


def test_size_fields_past_the_end_of_the_file_are_refused_before_aedat_allocates_them(tmp_path):
    real = recording(tmp_path / "real.aedat4", "NONE", packets=1)
    head = header(real)
    claims_4_gib = tmp_path / "packet.aedat4"
    claims_4_gib.write_bytes(head + packet(b"\0" * 100, size=0xFFFFFFFF))
    assert read_in_child(claims_4_gib)["error"] == (
        f"EventFormatError: {claims_4_gib}: damaged AEDAT4 packet 0 (stream 0) at byte {len(head):,}: it claims "
        "4,294,967,295 bytes but the file has 100 after its head"
    )
    long_header = tmp_path / "header.aedat4"
    long_header.write_bytes(b"#!AER-DAT4.0\r\n" + struct.pack("<I", 0xFFFFFFF0) + head[18:])
    assert read_in_child(long_header)["error"] == (
        f"EventFormatError: {long_header}: damaged AEDAT4 file: its header claims 4,294,967,280 bytes but the file "
        f"has {len(head) - 18:,} after the header length"
    )


def test_a_packet_that_does_not_decompress_is_named(tmp_path):
    pytest.importorskip("zstandard")
    head = header(recording(tmp_path / "real.aedat4", "ZSTD", packets=1))
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(head + packet(b"not a zstd frame at all"))
    with pytest.raises(EventFormatError, match=rf"^{bad}: damaged AEDAT4 packet 0 \(stream 0, zstd\) at byte "):
        read_aedat4(bad)


def test_a_missing_decompressor_names_the_extra(tmp_path, monkeypatch):
    path = recording(tmp_path / "rec.aedat4", "ZSTD", packets=1)
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if it were not installed
    with pytest.raises(MissingDependencyError, match=r"needs the 'zstandard' package; install talon's 'events' extra"):
        read_aedat4(path)
    monkeypatch.undo()
    assert np.array_equal(read_aedat4(path).events["x"], np.arange(1000) % 64)
