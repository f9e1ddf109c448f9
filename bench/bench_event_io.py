"""Event I/O against the tools users already have, on the same recording in one process.

* EVT 2.0 / 3.0 decoding: ``talon.io.decode_evt2/3`` (numpy) vs expelliarmus (C), files written
  by talon's encoders, file read included on both sides;
* frames: ``talon.io.events_to_frames`` vs tonic ``ToFrame`` (time window, event count, bin
  count), voxel grids vs tonic ``ToVoxelGrid``;
* HDF5: a 10 ms ``read_time_window`` vs reading the whole file.

The recording is synthetic but shaped like a camera's: 2 M events over one second on a 346x260
sensor, in bursts of 1–8 neighbouring pixels of one row at one timestamp (moving edges), which is
what EVT 3.0 vectors exist for.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.common import Row, median_time, print_rows

SENSOR = (346, 260)
N_EVENTS = 2_000_000


def recording(n: int = N_EVENTS, seed: int = 0) -> np.ndarray:
    from talon.io import EVENT_DTYPE

    rng = np.random.default_rng(seed)
    n_bursts = n // 4
    lengths = rng.integers(1, 8, n_bursts)
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), n)]
    total = int(lengths.sum())
    burst = np.repeat(np.arange(lengths.size), lengths)
    first = np.cumsum(lengths) - lengths
    ev = np.empty(total, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 1_000_000, lengths.size))[burst]
    ev["y"] = rng.integers(0, SENSOR[1], lengths.size)[burst]
    start = rng.integers(0, SENSOR[0] - 8, lengths.size)
    ev["x"] = start[burst] + (np.arange(total) - first[burst])
    ev["p"] = (rng.random(lengths.size) < 0.5)[burst]
    return ev


def _decode_rows(ev: np.ndarray, folder: Path) -> list[Row]:
    import expelliarmus

    from talon.io import decode_evt2, decode_evt3, encode_evt2, encode_evt3

    rows = []
    for version, encode, decode in (("2.0", encode_evt2, decode_evt2), ("3.0", encode_evt3, decode_evt3)):
        path = folder / f"rec_evt{version[0]}.raw"
        path.write_bytes(encode(ev, SENSOR))
        wizard = expelliarmus.Wizard(encoding=f"evt{version[0]}")
        ours = decode(np.fromfile(path, dtype=np.uint8))
        theirs = wizard.read(str(path))
        assert ours.tobytes() == ev.tobytes(), "talon must decode what it encoded"
        assert len(theirs) == len(ours) and np.array_equal(theirs["x"], ours["x"])
        t_ours = median_time(lambda p=path, d=decode: d(np.fromfile(p, dtype=np.uint8)), repeats=5)
        t_ref = median_time(lambda p=path, w=wizard: w.read(str(p)), repeats=5)
        size = path.stat().st_size / 1e6
        rows.append(
            Row(
                "events", f"decode EVT {version} ({len(ev) / 1e6:.1f} M events, {size:.1f} MB; "
                f"talon {len(ev) / t_ours / 1e6:.0f} M ev/s, expelliarmus {len(ev) / t_ref / 1e6:.0f} M ev/s)",
                t_ours, "expelliarmus", t_ref,
            )
        )  # fmt: skip
    return rows


def _frame_rows(ev: np.ndarray) -> list[Row]:
    from tonic.transforms import ToFrame, ToVoxelGrid

    from talon.io import events_to_frames, events_to_voxel

    size = (*SENSOR, 2)
    rows = []
    for label, kwargs in (
        ("time_window=50 ms", {"time_window": 50_000}),
        ("event_count=100k", {"event_count": 100_000}),
        ("n_time_bins=20", {"n_time_bins": 20}),
    ):
        assert np.array_equal(events_to_frames(ev, size, **kwargs), ToFrame(sensor_size=size, **kwargs)(ev))
        t_ours = median_time(lambda k=kwargs: events_to_frames(ev, size, **k), repeats=5)
        t_ref = median_time(lambda k=kwargs: ToFrame(sensor_size=size, **k)(ev), repeats=3)
        rows.append(
            Row("events", f"frames {label} ({len(ev) / t_ours / 1e6:.0f} M ev/s)", t_ours, "tonic ToFrame", t_ref)
        )
    as_int = np.empty(len(ev), [("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i8")])
    for name in "xytp":
        as_int[name] = ev[name]
    voxel = ToVoxelGrid(sensor_size=size, n_time_bins=10)
    assert np.array_equal(events_to_voxel(ev, size, 10), voxel(as_int))
    t_ours = median_time(lambda: events_to_voxel(ev, size, 10), repeats=5)
    t_ref = median_time(lambda: voxel(as_int), repeats=3)
    rows.append(Row("events", "voxel grid, 10 bins", t_ours, "tonic ToVoxelGrid", t_ref))
    return rows


def _h5_rows(ev: np.ndarray, folder: Path) -> list[Row]:
    from talon.io import H5EventReader, write_h5

    path = folder / "rec.h5"
    write_h5(path, ev, SENSOR)
    t0, t1 = 500_000, 510_000
    with H5EventReader(path) as reader:
        n_window = len(reader.read_time_window(t0, t1))
    t_window = median_time(lambda: _window(path, t0, t1), repeats=7)
    t_full = median_time(lambda: _full(path), repeats=5)
    return [
        Row(
            "events",
            f"h5 read_time_window 10 ms ({n_window:,} events) vs whole file",
            t_window,
            "talon read_all",
            t_full,
        )
    ]


def _window(path, t0, t1):
    from talon.io import H5EventReader

    with H5EventReader(path) as reader:
        return reader.read_time_window(t0, t1)


def _full(path):
    from talon.io import H5EventReader

    with H5EventReader(path) as reader:
        return reader.read_all()


def main() -> list[Row]:
    ev = recording()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = _decode_rows(ev, folder) + _frame_rows(ev) + _h5_rows(ev, folder)
    print_rows("event I/O vs expelliarmus and tonic", rows)
    return rows


if __name__ == "__main__":
    main()
