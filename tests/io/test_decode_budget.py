"""The decode budget of event files (talon.io.budget): a small file whose compressed data would
expand past it is refused before anything is allocated, naming the file and ``max_bytes``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zlib

import h5py
import numpy as np
import pytest

from talon.io import read_events, read_h5, read_raw, write_events, write_h5, write_raw
from talon.io.budget import MIN_EVENT_BUDGET, default_event_budget
from talon.io.events import EVENT_DTYPE
from talon.ir.budget import BudgetExceededError
from tests.subprocesses import child_env

GIB = 1 << 30


def zero_bomb(path, n_events: int, chunk: int = 1 << 25) -> None:
    """An .h5 event file of ``n_events`` zero events (uint8 fields), every chunk the same deflated
    block of zeros written directly: a few MB on disk, ``13 * n_events`` bytes once decoded."""
    block = zlib.compress(bytes(chunk), 9)
    with h5py.File(path, "w") as f:
        f.attrs["talon_format"], f.attrs["format_version"] = "talon-events", 1
        for name in "xytp":
            ds = f.create_dataset(f"events/{name}", (n_events,), np.uint8, chunks=(chunk,), compression="gzip")
            for start in range(0, n_events, chunk):
                ds.id.write_direct_chunk((start,), block)


CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from talon.io import read_events
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a 10 GB allocation cannot happen
    start = time.perf_counter()
    try:
        read_events(sys.argv[1])
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"error": error, "seconds": time.perf_counter() - start}))
    """
)


def read_in_child(path) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], env=child_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_small_h5_file_that_would_decode_past_10_gb_is_refused_before_allocating(tmp_path):
    path = tmp_path / "bomb.h5"
    n = 800_000_000  # 10.4 GB of events (13 bytes each), less than half of a 24 GB machine's memory
    zero_bomb(path, n)
    size = path.stat().st_size
    assert size < 16 << 20 and n * EVENT_DTYPE.itemsize > 10 * 10**9 and EVENT_DTYPE.itemsize == 13
    result = read_in_child(path)  # before: MemoryError (or the machine's memory, without the rlimit)
    assert result["error"] == (
        f"BudgetExceededError: reading {n:,} events needs {13 * n:,} bytes, which takes reading {path} past its "
        f"budget of {default_event_budget(size):,} decoded bytes; if the file is trusted, pass a larger max_bytes"
    )


def test_an_evt3_file_of_vector_words_is_counted_and_refused_before_decoding(tmp_path):
    """EVT 3.0 holds up to 12 events in a 2-byte word: 40 MB of vector words are 3.3 GB of events."""
    path = tmp_path / "bomb.raw"
    write_raw(path, np.zeros(0, EVENT_DTYPE), version="3.0", sensor_size=(2048, 2048))
    words = np.full(20 << 20, 0x4FFF, dtype="<u2")  # VECT_12, all 12 bits set
    with open(path, "ab") as fh:
        fh.write(words.tobytes())
    n = 12 * words.size
    assert n * 13 > default_event_budget(path.stat().st_size)
    result = read_in_child(path)  # before: MemoryError under the rlimit
    assert result["error"].startswith(f"BudgetExceededError: decoding {n:,} events needs {13 * n:,} bytes")
    assert f"reading {path} past its budget" in result["error"] and "pass a larger max_bytes" in result["error"]


@pytest.fixture
def events():
    e = np.zeros(5000, EVENT_DTYPE)
    e["x"], e["y"], e["t"], e["p"] = np.arange(5000) % 64, np.arange(5000) % 48, np.arange(5000) * 10, 1
    return e


@pytest.mark.parametrize("suffix", [".h5", ".raw"])
def test_max_bytes_is_the_limit_of_one_read(tmp_path, events, suffix):
    path = tmp_path / f"rec{suffix}"
    if suffix == ".h5":
        write_h5(path, events, (64, 48), chunk_events=1024)  # a chunk (8 kB of t) within the budget
    else:
        write_events(path, events, (64, 48))
    needed = events.size * EVENT_DTYPE.itemsize
    with pytest.raises(BudgetExceededError, match=rf"needs {needed:,} bytes, which takes reading {path} past"):
        read_events(path, max_bytes=needed - 1)
    np.testing.assert_array_equal(read_events(path, max_bytes=needed), events)
    reader = read_h5 if suffix == ".h5" else read_raw
    with pytest.raises(BudgetExceededError, match="budget of 100 decoded bytes"):
        reader(path, max_bytes=100)


def test_the_default_budget_grows_with_the_file():
    assert default_event_budget(0) == MIN_EVENT_BUDGET == GIB
    assert default_event_budget(100 << 20) == 3200 << 20


def test_an_h5_chunk_larger_than_the_budget_is_refused_when_the_file_opens(tmp_path):
    """libhdf5 decodes a whole chunk to read one event of it."""
    from talon.io import H5EventReader

    path = tmp_path / "big_chunk.h5"
    zero_bomb(path, 1 << 20, chunk=1 << 20)
    with pytest.raises(BudgetExceededError, match=r"one chunk of events/x \(\(1048576,\)\) needs 1,048,576 bytes"):
        H5EventReader(path, max_bytes=1 << 19)
