"""A disk that fills during a write: one OSError naming the target and the bytes needed and free,
the old file byte for byte, no temporary file left — never libhdf5's crash (before: SIGSEGV of the
whole process in H5Fclose for ir.write and the .h5 event writer, a flood of "Exception ignored"
errors for write_nir), and nothing held in memory but the arrays being written.

Every write runs in a child process. The full disk is real: ``RLIMIT_FSIZE`` (a write past the
limit fails with EFBIG, as on a full disk; no privileges needed) and a small tmpfs mounted in the
child's own mount namespace (``unshare``; needs root, as CI runs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.subprocesses import child_env

KINDS = ["t1c", "nir", "events", "simulate"]

CHILD = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    import numpy as np
    from talon import ir
    from talon.ir import hdf5_output

    kind, folder, scenario, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    OLD = b"the previous file, which must survive"
    target = os.path.join(folder, {"t1c": "m.t1c", "nir": "m.nir", "events": "e.h5", "simulate": "out.h5"}[kind])
    rng = np.random.default_rng(0)
    n = size
    graph = ir.Graph(
        {"input": ir.Input(np.array([n])), "fc": ir.Affine(rng.standard_normal((n, n), dtype=np.float32)),
         "output": ir.Output(np.array([n]))},
        [("input", "fc"), ("fc", "output")],
    )
    events = np.zeros(n * n // 4, np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "u1")]))
    events["t"] = np.arange(events.size)
    model = os.path.join(os.path.dirname(folder), "model.t1c")  # outside the small disk
    if kind == "simulate":
        ir.write(model, graph)

    def write():
        if kind == "t1c":
            ir.write(target, graph)
        elif kind == "nir":
            from talon.interop.nir import write_nir
            write_nir(target, graph)
        elif kind == "events":
            from talon.io import write_events
            write_events(target, events, (64, 64))
        else:
            from click.testing import CliRunner
            from talon.cli import main
            result = CliRunner().invoke(main, ["simulate", model, "-o", target, "--steps", str(n)])
            if result.exit_code:
                raise OSError(result.stderr.strip())

    def attempt():
        with open(target, "wb") as fh:
            fh.write(OLD)
        try:
            write()
            error = None
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with open(target, "rb") as fh:
            kept = fh.read() == OLD
        left = sorted(set(os.listdir(folder)) - {os.path.basename(target), "filler"})
        readable = None
        if error is None:  # what was written reads back
            if kind == "t1c":
                readable = ir.read(target).nodes["fc"].weight.shape == (n, n)
            elif kind == "nir":
                from talon.interop.nir import read_nir
                readable = read_nir(target, dt=1e-4).nodes["fc"].weight.shape == (n, n)
            else:
                import h5py
                with h5py.File(target, "r") as f:
                    readable = f["outputs/output" if kind == "simulate" else "events/t"].shape[0] > 0
        return {"error": error, "kept": kept, "left": left, "readable": readable}

    if scenario.startswith("unreserved"):  # libhdf5 itself meets the full disk
        import talon.io.h5
        hdf5_output.reserve = lambda *args, **kwargs: None
        talon.io.h5.require_free_space = lambda *args, **kwargs: None
    if scenario.endswith("limits"):  # a write past RLIMIT_FSIZE fails with EFBIG, at every size up to the file's
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        write()
        full = os.path.getsize(target)
        results = []
        for limit in sorted({*range(64, full, max(full // 40, 1)), full - 1}):  # the old file is 37 bytes
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
            results.append(dict(attempt(), limit=limit))
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print(json.dumps(results))
    elif scenario == "filled after the reservation":  # another process takes every free block meanwhile
        real = hdf5_output.reserve

        def reserve_then_fill(fh, end, target=None):
            real(fh, end, target)
            filler = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                while os.write(filler, b"x" * 4096):
                    pass
            except OSError:
                assert os.statvfs(folder).f_bavail == 0
            os.close(filler)

        hdf5_output.reserve = reserve_then_fill
        print(json.dumps([attempt()]))
    else:
        print(json.dumps([attempt()]))
    """
)


def run_child(kind: str, folder, scenario: str, size: int, tmpfs: str | None = None) -> list[dict]:
    command = [sys.executable, "-c", CHILD, kind, str(folder), scenario, str(size)]
    if tmpfs is not None:  # its own mount namespace: the tmpfs exists for this child only
        mount = f'mount -t tmpfs -o size={tmpfs} tmpfs {folder} && exec "$@"'
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh", *command]
    done = subprocess.run(command, env=child_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]  # before: -11 (SIGSEGV inside libhdf5)
    assert "Exception ignored" not in done.stderr, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def can_mount_tmpfs() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


needs_mount = pytest.mark.skipif(not can_mount_tmpfs(), reason="mounting a small tmpfs needs root and unshare")


@pytest.mark.parametrize("scenario", ["limits", "unreserved limits"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_write_past_the_space_left_fails_cleanly_at_every_size(tmp_path, kind, scenario):
    """Every size the file can reach before the disk refuses: with the blocks reserved first, and
    with the reservation skipped so that libhdf5's own writes and its close meet the failure."""
    (tmp_path / "disk").mkdir()
    results = run_child(kind, tmp_path / "disk", scenario, 48)
    assert len(results) > 20
    for result in results:
        where = f"limit {result['limit']}: {result}"
        assert result["error"] is not None, where
        assert result["kept"] and result["left"] == [], where
        shown = tmp_path / "disk" / {"t1c": "m.t1c", "nir": "m.nir", "events": "e.h5", "simulate": "out.h5"}[kind]
        assert f"cannot write {shown}: File too large (" in result["error"], where
        assert " free)" in result["error"], where


@needs_mount
@pytest.mark.parametrize("kind", KINDS)
def test_a_full_disk_is_refused_before_libhdf5_writes(tmp_path, kind):
    (tmp_path / "disk").mkdir()
    (result,) = run_child(kind, tmp_path / "disk", "full", 512, tmpfs="256k")
    assert result["kept"] and result["left"] == [], result
    error = result["error"]
    assert error is not None and "No space left on device (about " in error and " bytes needed, " in error, error
    needed, free = (int(part.split()[0].replace(",", "")) for part in error.split("(about ")[1].split(", ")[:2])
    # the bytes of the weights (.nir: their gzip chunks, ~95% of them for random floats; events: 13 of 16 bytes)
    assert needed > 512 * 512 * 4 * {"events": 13 / 16, "nir": 0.9}.get(kind, 1) > 256 << 10 >= free, error


@needs_mount
@pytest.mark.parametrize("kind", KINDS)
def test_a_disk_that_fills_inside_libhdf5_is_one_clean_error(tmp_path, kind):
    (tmp_path / "disk").mkdir()
    (result,) = run_child(kind, tmp_path / "disk", "unreserved", 512, tmpfs="256k")
    assert result["kept"] and result["left"] == [], result
    assert result["error"] is not None and "No space left on device" in result["error"], result


@needs_mount
@pytest.mark.parametrize("kind", ["t1c", "nir", "simulate"])
def test_blocks_reserved_before_the_write_cannot_be_taken_by_another_process(tmp_path, kind):
    """Before, the free-space check and the write were two steps: a disk filled in between crashed
    libhdf5. The reserved blocks are the writer's: the write completes on a disk full to the brim."""
    (tmp_path / "disk").mkdir()
    (result,) = run_child(kind, tmp_path / "disk", "filled after the reservation", 256, tmpfs="2m")
    assert result["error"] is None and result["readable"] and result["left"] == [], result
