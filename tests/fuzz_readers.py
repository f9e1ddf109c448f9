"""Long fuzz campaigns of the file readers (``make fuzz``); the test suite runs the same mutations briefly
(``tests/ir/test_fuzz_manifests.py``, ``tests/io/test_damaged_files.py``).

Usage: ``python tests/fuzz_readers.py --target t1c --count 2000`` (``--target nir`` for NIR files).

* ``t1c``: structure-aware edits of real ``.t1c`` files — a manifest value replaced by an odd one
  (huge, negative, NaN, wrong type, dangling ``$array`` reference …) or deleted, a dataset or
  attribute deleted, renamed, retyped or resized, array values set to NaN/inf — then **re-sealed**
  (a valid checksum: an attack, not damage), read with ``ir.read`` and, when that succeeds, checked
  by the CPU backend's ``validate``.
* ``nir``: the NIR paper's files (copied, never edited) truncated or with bits flipped (NIR files
  carry no checksum: libhdf5 parses the damage), read with ``read_nir``.

Each file is read in a worker *process* with a per-file timeout, so a crash inside libhdf5 or a hang
is counted, not fatal. Verdicts: ``ok`` (read), ``refused`` (talon's own error naming the file),
``unnamed`` (talon's error without the file), ``raw`` (another exception), ``crash``, ``hang``; the
last four are failures (exit status 1).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

try:
    from .ir.t1c_craft import edited, load_manifest, store_manifest
    from .subprocesses import child_env
except ImportError:  # run as a script (make fuzz): tests/ is sys.path[0]
    from ir.t1c_craft import edited, load_manifest, store_manifest
    from subprocesses import child_env

NIR_PAPER = Path("/work/shared/data/nir-paper")
FAILURES = ("unnamed", "raw", "crash", "hang")
ODD = [None, True, 0, -1, 2**31, 2**63, 10**30, 1e308, math.nan, math.inf, "", "\x00", "LIF", "Graph", "input", [],
       [0], [-1], [2**40, 2**40], {}, {"$array": 0}, {"$array": -1}, {"$array": 10**6}, {"$scalar": 0},
       {"$tuple": 3}, {"$dict": [[1]]}, {"$foo": 1}]  # fmt: skip


# ---- making cases ---------------------------------------------------------------------------------


def _t1c_seeds(folder: Path) -> list[Path]:
    import numpy as np

    from talon import examples, ir
    from talon.graph import examples as graph_examples

    inner = examples.chain((4,), ("s", ir.Scale(np.full(4, 0.5, np.float32))), ("lif", ir.CubaLIF(5.0, 3.0, 1.0)))
    graphs = {
        "mlp": examples.mlp_graph(0, sizes=(16, 8, 4)),
        "hybrid": examples.hybrid_graph(0),
        "recurrent": graph_examples.recurrent_snn(6, 5, 3),
        "nested": examples.chain((4,), ("sub", inner), ("d", ir.Delay(np.arange(4))), ("li", ir.LI(tau=4.0, r=1.0))),
    }
    paths = []
    for name, graph in graphs.items():
        for version in (2, 3):
            paths.append(folder / f"seed-{name}-v{version}.t1c")
            ir.write(paths[-1], graph, format_version=version)
    return paths


def _positions(value, prefix=()):
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value[:40]) if isinstance(value, list) else ()
    for key, item in items:
        yield from _positions(item, (*prefix, key))


def _edit_manifest(f, rng: random.Random) -> None:
    manifest = load_manifest(f)
    for _ in range(rng.choice([1, 1, 2, 3])):
        where = rng.choice(list(_positions(manifest))[1:])
        parent = manifest
        for key in where[:-1]:
            parent = parent[key]
        if rng.random() < 0.15:
            del parent[where[-1]]
        else:
            current = parent[where[-1]]
            numeric = isinstance(current, (int, float)) and not isinstance(current, bool)
            choices = [current + 1, current - 1, -current, current * 2**20] if numeric else []
            parent[where[-1]] = copy.deepcopy(rng.choice(choices + ODD))
    store_manifest(f, json.dumps(manifest))


def _edit_layout(f, rng: random.Random) -> None:
    import numpy as np

    names: list[str] = []
    f.visit(names.append)
    arrays = [n for n in names if n.startswith(("arrays/", "packed/"))]
    kind = rng.choice(["delete", "rename", "attribute", "retype", "resize", "values"])
    if kind == "attribute":
        f.attrs[rng.choice(sorted(f.attrs))] = rng.choice([np.int64(99), np.int64(-5), np.float64(3.0), np.bytes_("x")])
    elif kind in ("delete", "rename") or not arrays:
        name = rng.choice(names)
        if kind == "rename":
            f.move(name, name + "_renamed")
        else:
            del f[name]
    else:
        name = rng.choice(arrays)
        values = f[name][()]
        del f[name]
        if kind == "retype":
            f[name] = values.astype(rng.choice([np.float16, np.int8, np.float64, np.uint64]))
        elif kind == "resize":
            f[name] = values.reshape(-1)[: max(0, values.size - 1)] if rng.random() < 0.5 else np.stack([values] * 2)
        elif values.dtype.kind == "f" and values.size:
            values.reshape(-1)[rng.randrange(values.size)] = rng.choice([np.nan, np.inf, -np.inf, 1e38, 0.0])
            f[name] = values
        else:
            f[name] = values


def make_t1c_cases(folder: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    seeds = _t1c_seeds(folder)
    cases = []
    for i in range(count):
        path = folder / f"case-{i:05d}.t1c"
        shutil.copyfile(seeds[i % len(seeds)], path)
        with edited(path) as f:
            (_edit_manifest if rng.random() < 0.6 else _edit_layout)(f, rng)
        cases.append(path)
    return cases


def make_nir_cases(folder: Path, count: int, seed: int) -> list[Path]:
    rng = random.Random(seed)
    sources = sorted(NIR_PAPER.glob("*.nir"))
    if not sources:
        raise SystemExit(f"no NIR files in {NIR_PAPER}")
    cases = []
    for i in range(count):
        data = bytearray(sources[i % len(sources)].read_bytes())
        if rng.random() < 0.25:
            data = data[: rng.randrange(len(data))]
        else:
            for _ in range(rng.choice([1, 1, 3])):
                position = rng.randrange(min(len(data), 8192) if rng.random() < 0.6 else len(data))
                data[position] ^= 1 << rng.randrange(8)
        cases.append(folder / f"case-{i:05d}.nir")
        cases[-1].write_bytes(bytes(data))
    return cases


# ---- reading them ---------------------------------------------------------------------------------


def worker(target: str) -> None:
    """Read each path from stdin; print one JSON line per file (flushed before the next read)."""
    import warnings

    warnings.simplefilter("ignore")
    from talon.backend import get_backend
    from talon.interop.nir import read_nir
    from talon.ir import TalonError, read

    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        try:
            if target == "t1c":
                graph = read(path)
                get_backend("cpu").validate(graph)
            else:
                read_nir(path, type_check=False)
            verdict, detail = "ok", ""
        except (TalonError, OSError) as exc:
            verdict, detail = ("refused" if path in str(exc) else "unnamed"), f"{type(exc).__name__}: {exc}"[:300]
        except BaseException as exc:
            verdict, detail = "raw", f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps({"file": path, "verdict": verdict, "detail": detail}), flush=True)


def _run_worker(target: str, paths: list[str], timeout: float, verdicts: dict) -> int:
    """One worker over ``paths``; returns how many got a verdict (a crash or a hang ends the worker)."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--worker", target], env=child_env(), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    proc.stdin.write("\n".join(paths) + "\n")
    proc.stdin.close()
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    done, started = 0, time.monotonic()
    try:
        while done < len(paths):
            limit = timeout + (60 if done == 0 else 0)  # the first file also pays for importing talon
            if not selector.select(max(0.0, limit - (time.monotonic() - started))):
                verdicts[paths[done]] = {"verdict": "hang", "detail": f"no answer within {limit:.0f} s"}
                return done + 1
            line = proc.stdout.readline()
            if not line:
                verdicts[paths[done]] = {"verdict": "crash", "detail": f"worker exit status {proc.wait()}"}
                return done + 1
            result = json.loads(line)
            verdicts[result["file"]] = result
            done, started = done + 1, time.monotonic()
        return done
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        selector.close()


def run(target: str, count: int, *, seed: int = 0, timeout: float = 20.0) -> dict:
    """Fuzz ``count`` files of ``target`` (``"t1c"`` or ``"nir"``); return the summary."""
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        make = make_t1c_cases if target == "t1c" else make_nir_cases
        paths = [str(p) for p in make(Path(tmp), count, seed)]
        verdicts: dict[str, dict] = {}
        todo = paths
        while todo:
            todo = todo[_run_worker(target, todo, timeout, verdicts) :]
    totals = Counter(v["verdict"] for v in verdicts.values())
    failures = [{"file": Path(p).name, **verdicts[p]} for p in paths if verdicts[p]["verdict"] in FAILURES]
    return {"target": target, "files": count, "verdicts": dict(totals), "failures": failures[:20]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=["t1c", "nir"], default="t1c")
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per file before it counts as a hang")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    start = time.monotonic()
    summary = run(args.target, args.count, seed=args.seed, timeout=args.timeout)
    summary["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(summary, indent=2))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
