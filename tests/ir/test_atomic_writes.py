"""Writes (issue 18 §8): keep the mode, write through symlinks, short temporary names, the target in
errors, nothing left behind on SIGTERM — for ``ir.write`` and ``write_nir`` alike."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from talon import ir
from talon.interop.nir import NIRFormatError, read_nir, write_nir
from talon.ir import T1CFormatError
from tests.subprocesses import child_env

from .examples import chain_graph

WRITERS = {"t1c": (ir.write, ir.read), "nir": (write_nir, read_nir)}


def small():
    return ir.Graph(
        {"input": ir.Input(np.array([2])), "fc": ir.Linear(np.eye(2, dtype=np.float32)), "output": ir.Output(2)},
        [("input", "fc"), ("fc", "output")],
    )


@pytest.fixture(params=sorted(WRITERS))
def writer(request):
    return request.param, *WRITERS[request.param]


@pytest.mark.parametrize("mode", [0o600, 0o444, 0o640])
def test_overwriting_keeps_the_file_mode(tmp_path, writer, mode):
    kind, write, read = writer
    path = tmp_path / f"m.{kind}"
    write(path, small())
    os.chmod(path, mode)
    write(path, small())
    assert stat.S_IMODE(path.stat().st_mode) == mode
    read(path)


def test_a_symlink_is_written_through_to_its_target(tmp_path, writer):
    kind, write, read = writer
    target = tmp_path / "real" / f"model.{kind}"
    target.parent.mkdir()
    write(target, small())
    link = tmp_path / f"link.{kind}"
    link.symlink_to(target)
    before = target.stat().st_mtime_ns
    time.sleep(0.01)
    write(link, small())
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.stat().st_mtime_ns != before
    read(link)


def test_the_longest_legal_name_can_be_written(tmp_path, writer):
    kind, write, read = writer
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    path = tmp_path / ("n" * (name_max - len(kind) - 1) + f".{kind}")
    write(path, small())
    read(path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("target", ["", ".", "dir"])
def test_errors_name_the_target_not_the_temporary_file(tmp_path, writer, target, monkeypatch):
    _, write, _ = writer
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError) as info:
        write(target, small())
    message = str(info.value)
    assert f"cannot write {target}" in message and ".tmp" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]


def test_write_nir_refuses_names_hdf5_cannot_store(tmp_path):
    for bad in (".", "a\x00b"):
        graph = ir.Graph(
            {"input": ir.Input(np.array([2])), bad: ir.Scale(np.ones(2, np.float32)), "output": ir.Output(2)},
            [("input", bad), (bad, "output")],
        )
        with pytest.raises(NIRFormatError, match="cannot be written to a NIR file"):
            write_nir(tmp_path / "x.nir", graph)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_a_write_removes_the_temporary_file(tmp_path):
    """A child writes a 64 MB model; SIGTERM arrives mid-write: it dies of SIGTERM, leaving only the old file."""
    path = tmp_path / "model.t1c"
    ir.write(path, chain_graph("Affine"))
    before = path.read_bytes()
    script = textwrap.dedent(
        f"""
        import sys, numpy as np
        from talon import ir
        from talon.ir import serialization
        real = serialization._write_arrays
        def slow(*args):
            print("writing", flush=True)
            real(*args)
            import time; time.sleep(30)
        serialization._write_arrays = slow
        big = ir.Graph({{"s": ir.Scale(np.random.default_rng(0).random(8_000_000))}}, [])
        ir.write({str(path)!r}, big)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=child_env())
    assert child.stdout.readline().strip() == "writing"
    time.sleep(0.5)
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the temporary exists mid-write
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM
    assert [p.name for p in tmp_path.iterdir()] == ["model.t1c"]
    assert path.read_bytes() == before


def test_t1c_write_errors_are_t1c_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(T1CFormatError, match="cannot write : "):
        ir.write("", small())
