"""A disk that fills during a write: one OSError naming the target, the old file byte for byte, no
temporary file left — never libhdf5's crash (before: SIGSEGV of the whole process for ir.write and
the .h5 event writer, a flood of "Exception ignored" errors for write_nir)."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from collections import namedtuple

import numpy as np
import pytest

from talon import examples, ir
from talon.io import h5 as event_h5
from talon.io import write_events
from talon.io.events import EVENT_DTYPE
from talon.ir import serialization
from tests.subprocesses import child_env

OLD = b"the previous file, which must survive"

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    import numpy as np
    from talon import ir
    from talon.interop.nir import write_nir

    kind, target = sys.argv[1], sys.argv[2]
    weight = np.arange(4096, dtype=np.float32).reshape(64, 64)  # not constant: stored whole, 16 kB
    graph = ir.Graph(
        {"input": ir.Input(np.array([64])), "fc": ir.Affine(weight, np.zeros(64, np.float32)),
         "output": ir.Output(np.array([64]))},
        [("input", "fc"), ("fc", "output")],
    )
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    try:
        (ir.write if kind == "t1c" else write_nir)(target, graph)
        print(json.dumps({"error": None}))
    except OSError as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
    """
)


@pytest.mark.parametrize("kind", ["t1c", "nir"])
def test_a_write_past_the_space_left_fails_cleanly(tmp_path, kind):
    target = tmp_path / f"model.{kind}"
    target.write_bytes(OLD)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(target)], env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]  # before: -11 (SIGSEGV inside libhdf5)
    error = json.loads(done.stdout)["error"]
    assert error.endswith(f"cannot write {target}: File too large"), error
    assert "Exception ignored" not in done.stderr
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def nearly_full(monkeypatch):
    """A file system with 100 kB free."""
    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage(1 << 30, (1 << 30) - 100_000, 100_000))


def test_a_large_t1c_file_is_refused_before_libhdf5_writes_it(tmp_path, nearly_full, monkeypatch):
    monkeypatch.setattr(serialization, "BUILD_IN_MEMORY_BELOW", 0)  # the path of files too large to build in memory
    target = tmp_path / "model.t1c"
    target.write_bytes(OLD)
    with pytest.raises(ir.T1CFormatError, match=rf"^cannot write {target}: No space left on device \(about"):
        ir.write(target, examples.mlp_graph(0))
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_an_event_file_is_refused_before_libhdf5_writes_past_the_space_left(tmp_path, nearly_full):
    events = np.zeros(50_000, EVENT_DTYPE)
    events["t"] = np.arange(events.size)
    target = tmp_path / "events.h5"
    target.write_bytes(OLD)
    with pytest.raises(OSError, match=rf"cannot write {target}: No space left on device") as caught:
        write_events(target, events, (64, 64))
    assert caught.value.errno == errno.ENOSPC
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    assert event_h5._METADATA_SLACK > 0


def test_talon_simulate_output_is_refused_in_one_error_line(tmp_path, nearly_full):
    from click.testing import CliRunner

    from talon.cli import main

    model, target = tmp_path / "model.t1c", tmp_path / "out.h5"
    ir.write(model, examples.mlp_graph(0, sizes=(64, 32, 10)))  # small: built in memory, one write
    target.write_bytes(OLD)
    result = CliRunner().invoke(main, ["simulate", str(model), "-o", str(target), "--steps", "50"])
    assert result.exit_code == 2, result.output
    needed = 4 * 50 * 10 + (4 << 20)  # one chunk of outputs (50 steps x 10 float32) and 4 MiB for libhdf5
    assert (
        result.stderr
        == f"error: cannot write {target}: No space left on device (about {needed:,} bytes needed, 100,000 free)\n"
    )
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.t1c", "out.h5"]
