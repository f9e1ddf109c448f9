"""HDF5 event files: bit-exact round trips, time windows reading only their chunks, damaged files."""

import io

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon.io import EVENT_DTYPE, EventFormatError, H5EventReader, H5EventWriter, read_h5, write_h5


def stream(n, seed, t0=0, span=200_000, ties=False):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["x"], ev["y"] = rng.integers(0, 640, n), rng.integers(0, 480, n)
    ev["t"] = t0 + np.sort(rng.integers(0, max(span // (100 if ties else 1), 1), n)) * (100 if ties else 1)
    ev["p"] = rng.random(n) < 0.5
    return ev


@given(
    n=st.integers(0, 3000),
    seed=st.integers(0, 2**20),
    t0=st.integers(-(10**12), 10**12),
    chunk=st.sampled_from([1, 7, 256, 65536]),
    batches=st.integers(1, 4),
    ties=st.booleans(),
)
def test_round_trip_is_bit_exact(tmp_path_factory, n, seed, t0, chunk, batches, ties):
    ev = stream(n, seed, t0, ties=ties)
    path = tmp_path_factory.mktemp("h5") / "e.h5"
    with H5EventWriter(path, (640, 480), chunk_events=chunk) as w:
        for part in np.array_split(ev, batches):
            w.write(part)
    with H5EventReader(path) as r:
        back = r.read_all()
        assert back.dtype == EVENT_DTYPE and back.tobytes() == ev.tobytes()
        assert r.sensor_size == (640, 480) and len(r) == n
        if n:
            assert r.t_range == (int(ev["t"][0]), int(ev["t"][-1]))
            rng = np.random.default_rng(seed)
            for a, b in rng.integers(int(ev["t"][0]) - 2000, int(ev["t"][-1]) + 2000, (5, 2)):
                lo, hi = min(a, b), max(a, b)
                expected = ev[(ev["t"] >= lo) & (ev["t"] < hi)]
                assert r.read_time_window(lo, hi).tobytes() == expected.tobytes()
            t = int(ev["t"][n // 2])
            single = ev[ev["t"] == t]
            assert r.read_time_window(t, t + 1).tobytes() == single.tobytes()  # one timestamp
            assert r.read_time_window(t, t).size == 0  # empty window


def test_empty_file_and_empty_windows(tmp_path):
    write_h5(tmp_path / "e.h5", np.zeros(0, EVENT_DTYPE))
    with H5EventReader(tmp_path / "e.h5") as r:
        assert len(r) == 0 and r.t_range is None and r.sensor_size is None
        assert r.read_all().size == 0 and r.read_time_window(0, 10**9).size == 0
    one = np.array([(3, 4, 1_000_000_123, True)], EVENT_DTYPE)
    write_h5(tmp_path / "one.h5", one)
    assert read_h5(tmp_path / "one.h5", 1_000_000_123, 1_000_000_124).tobytes() == one.tobytes()
    assert read_h5(tmp_path / "one.h5", 0, 1_000_000_123).size == 0
    assert read_h5(tmp_path / "one.h5", t0=1_000_000_124).size == 0


def test_unsorted_input_is_refused_or_sorted_on_request(tmp_path):
    ev = stream(100, 0)
    shuffled = ev[np.random.default_rng(0).permutation(100)]
    with pytest.raises(EventFormatError, match="time-sorted"):
        write_h5(tmp_path / "u.h5", shuffled)
    assert not (tmp_path / "u.h5").exists()  # nothing half-written
    write_h5(tmp_path / "s.h5", shuffled, sort=True)
    np.testing.assert_array_equal(read_h5(tmp_path / "s.h5")["t"], ev["t"])
    with H5EventWriter(tmp_path / "b.h5") as w:
        w.write(ev[50:])
        with pytest.raises(EventFormatError, match="across writes"):
            w.write(ev[:50])


def test_a_failed_write_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "keep.h5"
    old = stream(50, 1)
    write_h5(path, old)
    with pytest.raises(RuntimeError), H5EventWriter(path) as w:
        w.write(stream(10, 2))
        raise RuntimeError("interrupted")
    assert read_h5(path).tobytes() == old.tobytes()
    assert [p.name for p in tmp_path.iterdir()] == ["keep.h5"]


class CountingFile(io.RawIOBase):
    """A file object that records the byte ranges HDF5 reads."""

    def __init__(self, path):
        self._f = open(path, "rb")  # noqa: SIM115
        self.reads = []

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return self._f.seek(offset, whence)

    def tell(self):
        return self._f.tell()

    def readinto(self, buffer):
        start = self._f.tell()
        n = self._f.readinto(buffer)
        self.reads.append((start, start + n))
        return n

    def close(self):
        self._f.close()
        super().close()


def chunks_read(path, reads, chunk_events):
    """{field: sorted chunk numbers whose bytes were read}."""
    out = {}
    with h5py.File(path, "r") as f:
        for name in "xytp":
            dsid = f["events"][name].id
            hit = set()
            for i in range(dsid.get_num_chunks()):
                info = dsid.get_chunk_info(i)
                a, b = info.byte_offset, info.byte_offset + info.size
                if any(s < b and a < e for s, e in reads):
                    hit.add(info.chunk_offset[0] // chunk_events)
            out[name] = sorted(hit)
    return out


def test_time_window_reads_only_its_chunks(tmp_path):
    chunk = 1000
    ev = stream(100_000, 3, t0=5_000_000, span=10_000_000)  # 100 chunks per field, ~10 events per ms
    path = tmp_path / "big.h5"
    write_h5(path, ev, chunk_events=chunk, compression="gzip")
    t0, t1 = 7_000_000, 7_250_000
    lo, hi = np.searchsorted(ev["t"], [t0, t1])
    expected = sorted(set(range(lo // chunk, (hi - 1) // chunk + 1)))
    fh = CountingFile(path)
    with H5EventReader(fh) as r:
        fh.reads.clear()
        window = r.read_time_window(t0, t1)
        window_reads = list(fh.reads)
        fh.reads.clear()
        r.read_all()
        full_reads = list(fh.reads)
    assert window.tobytes() == ev[lo:hi].tobytes()
    hit = chunks_read(path, window_reads, chunk)
    for name in "xyp":
        assert hit[name] == expected, name
    # t is read over the window's millisecond bounds: at most one extra chunk at each end
    assert set(expected) <= set(hit["t"]) and len(hit["t"]) <= len(expected) + 2
    assert len(expected) <= 4
    # a full read fetches every other chunk (the window's are still in HDF5's chunk cache)
    assert sorted(set(chunks_read(path, full_reads, chunk)["x"]) | set(hit["x"])) == list(range(100))
    assert sum(e - s for s, e in window_reads) * 10 < sum(e - s for s, e in full_reads)


def test_dsec_layout_is_read(tmp_path):
    """DSEC: events/{x,y} uint16, t uint32 (µs after t_offset), p uint8, ms_to_idx, t_offset; no talon attributes."""
    ev = stream(5000, 4, span=3_000_000)
    t_offset = 1_600_000_000_000
    path = tmp_path / "dsec.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("events")
        g["x"], g["y"] = ev["x"].astype(np.uint16), ev["y"].astype(np.uint16)
        g["t"], g["p"] = ev["t"].astype(np.uint32), ev["p"].astype(np.uint8)
        f["ms_to_idx"] = np.searchsorted(ev["t"], np.arange(0, ev["t"][-1] // 1000 + 1) * 1000).astype(np.uint64)
        f["t_offset"] = np.int64(t_offset)
    expected = ev.copy()
    expected["t"] += t_offset
    assert read_h5(path).tobytes() == expected.tobytes()
    lo, hi = t_offset + 1_000_000, t_offset + 1_500_000
    assert read_h5(path, lo, hi).tobytes() == expected[(expected["t"] >= lo) & (expected["t"] < hi)].tobytes()


def damage(path, kind):
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8)
    else:
        with h5py.File(path, "r+") as f:
            if kind == "lengths":
                del f["events/x"]
                f["events/x"] = np.zeros(3, np.int16)
            elif kind == "polarity":
                f["events/p"][0] = 7
            elif kind == "format":
                f.attrs["talon_format"] = "t1c"
            elif kind == "version":
                f.attrs["format_version"] = 99
            elif kind == "missing":
                del f["events/t"]
            elif kind == "index":
                f["ms_to_idx"][:] = 10**9


DAMAGE = ["truncated", "garbage", "lengths", "polarity", "format", "version", "missing", "index"]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_files_give_one_clear_error(tmp_path, kind):
    path = tmp_path / "d.h5"
    write_h5(path, stream(20_000, 5), chunk_events=512)
    damage(path, kind)
    with pytest.raises(EventFormatError, match=r"d\.h5") as info, H5EventReader(path) as r:
        r.read_all()
        r.read_time_window(50_000, 60_000)
    assert "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such event file"):
        H5EventReader("/nonexistent/e.h5")


def test_bad_writer_arguments_leave_nothing_behind(tmp_path):
    with pytest.raises(EventFormatError, match="sensor_size"):
        H5EventWriter(tmp_path / "a.h5", sensor_size=(0, 5))
    with pytest.raises(ValueError):
        H5EventWriter(tmp_path / "b.h5", compression="no-such-filter")
    assert list(tmp_path.iterdir()) == []


def test_the_writer_refuses_pixels_its_reader_or_sensor_would_not_hold(tmp_path):
    """A negative address was written and then refused by read_h5; an event off the recorded
    sensor_size was stored beside a header that says it cannot exist."""
    path = tmp_path / "ev.h5"
    write_h5(path, np.array([(1, 2, 0, True)], EVENT_DTYPE), sensor_size=(4, 3))
    cases = [
        ((-3, 1, 10, True), None, r"event 0 has x=-3, outside \[0, 32767\]"),
        ((1, -1, 10, True), None, r"event 0 has y=-1, outside \[0, 32767\]"),
        ((4, 0, 10, True), (4, 3), "event 0 has x=4, outside the 4x3 sensor"),
        ((0, 3, 10, True), (4, 3), "event 0 has y=3, outside the 4x3 sensor"),
    ]
    for event, size, message in cases:
        with pytest.raises(EventFormatError, match=message):
            write_h5(path, np.array([event], EVENT_DTYPE), sensor_size=size)
        assert read_h5(path).tolist() == [(1, 2, 0, True)]  # the old file is intact
    with H5EventWriter(tmp_path / "two.h5", sensor_size=(4, 3)) as writer:  # across writes, counted from the start
        writer.write(np.array([(3, 2, 0, True)], EVENT_DTYPE))
        with pytest.raises(EventFormatError, match="event 1 has x=5"):
            writer.write(np.array([(5, 0, 1, False)], EVENT_DTYPE))
