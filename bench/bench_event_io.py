"""Event I/O against the tools users already have, on the same recording in one process.

* EVT 2.0 / 3.0 decoding: ``talon.io.read_raw`` (numba kernels, and their numpy twins) vs
  expelliarmus (C), files written by talon's encoders, file read included on both sides; and the
  first decode in a new process (numba compiling with an empty cache, then loading its disk cache);
  reading in chunks of 10k events, ``BufferedEventReader`` vs expelliarmus' ``read_chunk``;
* frames: ``talon.io.events_to_frames`` vs tonic ``ToFrame`` (time window, event count, bin
  count), voxel grids vs tonic ``ToVoxelGrid``;
* HDF5: a 10 ms ``read_time_window`` vs reading the whole file;
* joining event arrays: ``talon.io.concatenate_events`` (the helper behind ``merge_events``, the
  AEDAT4 reader, the UDP receiver and streaming) vs ``np.concatenate``, which copies the packed
  event dtype field by field.

The recording is synthetic but shaped like a camera's: 2 M events over one second on a 346x260
sensor, in bursts of 1–8 neighbouring pixels of one row at one timestamp (moving edges), which is
what EVT 3.0 vectors exist for.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import Row, median_time, median_times, print_rows

SENSOR = (346, 260)
N_EVENTS = 2_000_000
STREAM_CHUNK = 10_000


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

    from talon.io import BufferedEventReader, concatenate_events, encode_evt2, encode_evt3, read_raw

    rows = []
    for version, encode in (("2.0", encode_evt2), ("3.0", encode_evt3)):
        path = folder / f"rec_evt{version[0]}.raw"
        path.write_bytes(encode(ev, SENSOR))
        wizard = expelliarmus.Wizard(encoding=f"evt{version[0]}")
        first = _first_calls(path, version, folder)  # before this process compiles anything
        ours, theirs = read_raw(path), wizard.read(str(path))
        with _numpy_twins():
            assert read_raw(path).tobytes() == ours.tobytes() == ev.tobytes(), "talon must decode what it encoded"
        for name in "xytp" if version == "2.0" else "xyp":  # EVT 3.0 time: see docs/events.md
            assert np.array_equal(theirs[name].astype(np.int64), ours[name].astype(np.int64)), name
        streamed = list(BufferedEventReader(path, chunk_size=STREAM_CHUNK))
        their_chunks = list(_expelliarmus_chunks(path, version))
        assert concatenate_events(streamed).tobytes() == ours.tobytes()
        assert sum(map(len, their_chunks)) == len(ours)
        times = median_times(
            {
                "talon": lambda p=path: read_raw(p),
                "twin": lambda p=path: _twin_read(p),
                "expelliarmus": lambda p=path, w=wizard: w.read(str(p)),
                "talon chunks": lambda p=path: sum(map(len, BufferedEventReader(p, chunk_size=STREAM_CHUNK))),
                "expelliarmus chunks": lambda p=path, v=version: sum(map(len, _expelliarmus_chunks(p, v))),
            },
            repeats=15,
        )
        size = path.stat().st_size / 1e6
        rate = {name: f"{len(ev) / t / 1e6:.0f} M ev/s" for name, t in times.items()}
        label = f"decode EVT {version} ({len(ev) / 1e6:.1f} M events, {size:.1f} MB"
        rows += [
            Row(
                "events", f"{label}; numba: talon {rate['talon']}, expelliarmus {rate['expelliarmus']})",
                times["talon"], "expelliarmus", times["expelliarmus"],
            ),
            Row(
                "events", f"{label}; numpy twin (no fast extra): {rate['twin']})",
                times["twin"], "expelliarmus", times["expelliarmus"],
            ),
            Row(
                "events", f"EVT {version} streamed in chunks of {STREAM_CHUNK:,} events (BufferedEventReader)",
                times["talon chunks"], "expelliarmus read_chunk", times["expelliarmus chunks"],
            ),
            Row(
                "events", f"first EVT {version} decode in a new process, numba compiling (cold cache)",
                first["cold"], "expelliarmus first read", first["expelliarmus"],
            ),
            Row(
                "events", f"first EVT {version} decode in a new process, numba cache on disk (warm)",
                first["warm"], "expelliarmus first read", first["expelliarmus"],
            ),
        ]  # fmt: skip
    return rows


def _expelliarmus_chunks(path: Path, version: str):
    import expelliarmus

    wizard = expelliarmus.Wizard(encoding=f"evt{version[0]}", fpath=str(path), chunk_size=STREAM_CHUNK)
    return wizard.read_chunk()


@contextlib.contextmanager
def _numpy_twins():
    """Decode with the numpy twins, as without the fast extra (TALON_DISABLE_NUMBA=1)."""
    import talon.io.prophesee as prophesee

    saved = prophesee.compiled
    prophesee.compiled = lambda kernel: None
    try:
        yield
    finally:
        prophesee.compiled = saved


def _twin_read(path):
    from talon.io import read_raw

    with _numpy_twins():
        return read_raw(path)


_FIRST_CALL = """
import sys, time
path, tool = sys.argv[1], sys.argv[2]
if tool == "talon":
    from talon.io import read_raw
    start = time.perf_counter()
    read_raw(path)
else:
    import expelliarmus
    wizard = expelliarmus.Wizard(encoding=sys.argv[3])
    start = time.perf_counter()
    wizard.read(path)
print(time.perf_counter() - start)
"""


def _first_calls(path: Path, version: str, folder: Path) -> dict[str, float]:
    """Seconds of the first decode in a fresh process (imports excluded): talon with an empty numba
    cache (compiling), talon with that cache filled (loading), expelliarmus."""
    cache = folder / f"numba-cache-{version}"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("TALON_DISABLE_NUMBA", None)

    def run(tool: str) -> float:
        args = [sys.executable, "-c", _FIRST_CALL, str(path), tool, f"evt{version[0]}"]
        return float(subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout)

    shutil.rmtree(cache, ignore_errors=True)
    cold = run("talon")
    return {"cold": cold, "warm": statistics.median(run("talon") for _ in range(3)),
            "expelliarmus": statistics.median(run("expelliarmus") for _ in range(3))}  # fmt: skip


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
        times = median_times(
            {
                "talon": lambda k=kwargs: events_to_frames(ev, size, **k),
                "tonic": lambda k=kwargs: ToFrame(sensor_size=size, **k)(ev),
            },
            repeats=5,
        )
        t_ours, t_ref = times["talon"], times["tonic"]
        rows.append(
            Row("events", f"frames {label} ({len(ev) / t_ours / 1e6:.0f} M ev/s)", t_ours, "tonic ToFrame", t_ref)
        )
    as_int = np.empty(len(ev), [("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i8")])
    for name in "xytp":
        as_int[name] = ev[name]
    voxel = ToVoxelGrid(sensor_size=size, n_time_bins=10)
    assert np.array_equal(events_to_voxel(ev, size, 10), voxel(as_int))
    times = median_times({"talon": lambda: events_to_voxel(ev, size, 10), "tonic": lambda: voxel(as_int)}, repeats=5)
    rows.append(Row("events", "voxel grid, 10 bins", times["talon"], "tonic ToVoxelGrid", times["tonic"]))
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


def _join_rows(ev: np.ndarray) -> list[Row]:
    from talon.io import concatenate_events

    rows = []
    cases = (
        ("UDP packets: 4,000 blocks of 112 events", 112, 4000),
        ("streamed chunks: 200 blocks of 10,000 events", 10_000, 200),
        ("two streams of 1 M events (merge_events)", 1_000_000, 2),
    )
    for label, size, count in cases:
        parts = [ev[(k * size) % (len(ev) - size) :][:size] for k in range(count)]
        assert concatenate_events(parts).tobytes() == np.concatenate(parts).tobytes()
        times = median_times(
            {"talon": lambda p=parts: concatenate_events(p), "numpy": lambda p=parts: np.concatenate(p)}, repeats=15
        )
        rows.append(Row("events", f"join {label}", times["talon"], "np.concatenate", times["numpy"]))
    return rows


def main() -> list[Row]:
    ev = recording()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = _decode_rows(ev, folder) + _frame_rows(ev) + _h5_rows(ev, folder) + _join_rows(ev)
    load = f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    main.markdown = [f"Load average (1 min) while measuring: {load}, on {os.cpu_count()} cores."]
    print_rows(f"event I/O vs expelliarmus and tonic (load average {load})", rows)
    return rows


main.markdown = []


if __name__ == "__main__":
    main()
