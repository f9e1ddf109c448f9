"""Byte-flip fuzz of ``ir.read``: change one byte of a good ``.t1c`` file and read it in a child process.

Usage: ``python tests/fuzz_t1c.py --count 2000`` (``make fuzz``); the test suite runs a small count.
Needs nothing but talon and the standard library.

Each mutated file is read in a worker *process* with a per-file timeout, so a crash inside libhdf5
(a signal) or an endless loop is caught and counted rather than taking the fuzzer down; after a
crash or a hang a fresh worker continues with the next file. Every file gets one verdict:

* ``detected`` — ``ir.read`` raised ``T1CFormatError`` (what every changed byte must give);
* ``undetected`` — the read succeeded (a changed byte went unnoticed);
* ``raw`` — another exception type escaped; ``crash`` — the worker died; ``hang`` — it timed out.

Files are written in formats 3 and 2 (sealed), whose SHA-256 header covers every byte, so ``detected`` is the only
acceptable verdict. ``--reseal`` plays the adversary instead: after the flip the header is
recomputed, so the checksum passes and libhdf5 (with its own metadata checksums, formats 2 and 3 use
``libver="v110"``) and talon's checks must stand alone; then a changed array value is a legitimate
file and only ``raw``, ``crash`` and ``hang`` count as failures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import selectors
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

try:
    from .subprocesses import child_env
except ImportError:  # run as a script (make fuzz): tests/ is sys.path[0]
    from subprocesses import child_env

VERDICTS = ("detected", "undetected", "raw", "crash", "hang")


def seed_models():
    """Good graphs covering the layout: packed arrays, own datasets, gzip, fills, a subgraph, metadata."""
    import numpy as np

    from talon import ir

    rng = np.random.default_rng(0)
    f32 = np.float32

    def chain(width, *layers, metadata=None):
        nodes = {"input": ir.Input(np.array([width]))}
        nodes.update(layers)
        nodes["output"] = ir.Output(np.array([width]))
        names = list(nodes)
        return ir.Graph(nodes, list(itertools.pairwise(names)), metadata or {})

    small = chain(4, ("fc", ir.Affine(rng.standard_normal((4, 4)).astype(f32))), ("lif", ir.LIF(tau=10.0, r=1.0)))
    inner = chain(8, ("s", ir.Scale(np.full(8, 0.5, f32))))
    large = chain(
        64,
        ("fc", ir.Affine(rng.standard_normal((64, 64)).astype(f32), rng.standard_normal(64).astype(f32))),
        ("lif", ir.LIF(tau=rng.uniform(2, 20, 64), r=1.0, v_threshold=np.full(64, 0.5))),
        metadata={"note": "fuzz", "ints": (1, 2, 3)},
    )
    nested = chain(8, ("sub", inner), ("d", ir.Delay(np.arange(8))))
    layers = []  # format 3 stores these 24 nodes as two node tables (one per type)
    for i in range(12):
        layers += [
            (f"fc{i}", ir.Affine(rng.standard_normal((4, 4)).astype(f32))),
            (f"lif{i}", ir.LIF(tau=rng.uniform(2, 20, 4))),
        ]
    tables = chain(4, *layers)
    return [
        ("small", small, {}),
        ("large", large, {}),
        ("gzip", large, {"compression": "gzip"}),
        ("nested", nested, {}),
        ("tables", tables, {}),
        ("format2", small, {"format_version": 2}),
    ]


def array_ranges(path: Path) -> list[tuple[int, int]]:
    """File byte ranges holding array data (contiguous datasets under arrays/ and packed/)."""
    import h5py

    ranges = []
    with h5py.File(path, "r") as f:
        for group in ("arrays", "packed"):
            for ds in f.get(group, {}).values():
                offset = ds.id.get_offset()
                if offset is not None:
                    start = offset  # absolute: includes the user block
                    ranges.append((start, start + ds.id.get_storage_size()))
    return ranges


def region(position: int, ranges: list[tuple[int, int]]) -> str:
    from talon.ir import t1c_header

    if position < t1c_header.HEADER_SIZE:
        return "header"
    return "array data" if any(a <= position < b for a, b in ranges) else "other"


def make_cases(folder: Path, count: int, seed: int, reseal: bool = False) -> list[dict]:
    from talon import ir
    from talon.ir import t1c_header

    rng = random.Random(seed)
    seeds = []
    for name, graph, options in seed_models():
        path = folder / f"seed-{name}.t1c"
        ir.write(path, graph, **options)
        seeds.append((name, path.read_bytes(), array_ranges(path)))
    cases = []
    for i in range(count):
        name, data, ranges = seeds[i % len(seeds)]
        raw = bytearray(data)
        if i % 3 == 0 and ranges:  # a third of the flips aim at array data
            start, stop = rng.choice(ranges)
            position = rng.randrange(start, stop)
        else:
            position = rng.randrange(len(raw))
        raw[position] ^= rng.randrange(1, 256)
        path = folder / f"case-{i:05d}.t1c"
        path.write_bytes(bytes(raw))
        if reseal:
            with open(path, "rb+") as fh:
                t1c_header.seal(fh, int.from_bytes(data[8:12], "little"))  # the version the writer sealed
        cases.append({"file": str(path), "seed": name, "position": position, "region": region(position, ranges)})
    return cases


def worker(paths: list[str]) -> None:
    """Read each file; print one JSON line per file (flushed before the next read starts)."""
    from talon import ir

    for path in paths:
        try:
            ir.read(path)
            verdict, detail = "undetected", ""
        except ir.T1CFormatError as exc:
            verdict, detail = "detected", str(exc)[-160:]
        except BaseException as exc:
            verdict, detail = "raw", f"{type(exc).__name__}: {exc}"[:300]
        print(json.dumps({"file": path, "verdict": verdict, "detail": detail}), flush=True)


def run(count: int, *, timeout: float = 20.0, seed: int = 0, keep: Path | None = None, reseal: bool = False) -> dict:
    """Fuzz ``count`` files; return the summary (counts per verdict and per region, failures)."""
    with tempfile.TemporaryDirectory(prefix="t1c-fuzz-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        cases = make_cases(folder, count, seed, reseal)
        verdicts: dict[str, dict] = {}
        todo = [c["file"] for c in cases]
        while todo:
            done = _run_worker(todo, timeout, verdicts)
            todo = todo[done:]
    by_region: dict[str, Counter] = {}
    failures = []
    for case in cases:
        result = verdicts[case["file"]]
        by_region.setdefault(case["region"], Counter())[result["verdict"]] += 1
        if result["verdict"] not in (("detected", "undetected") if reseal else ("detected",)):
            failures.append({**case, **result})
    totals = Counter(verdicts[c["file"]]["verdict"] for c in cases)
    return {
        "files": count,
        "resealed": reseal,
        "verdicts": {v: totals.get(v, 0) for v in VERDICTS},
        "by_region": {r: dict(c) for r, c in sorted(by_region.items())},
        "failures": failures[:20],
    }


def _run_worker(paths: list[str], timeout: float, verdicts: dict) -> int:
    """Run one worker over ``paths``; return how many files got a verdict (a crash or hang ends the worker)."""
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--worker"],
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    proc.stdin.write("\n".join(paths) + "\n")
    proc.stdin.close()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    done, started = 0, time.monotonic()
    timeout_first = timeout + 30  # the first file also pays for importing talon
    try:
        while done < len(paths):
            limit = timeout_first if done == 0 else timeout
            if not sel.select(max(0.0, limit - (time.monotonic() - started))):
                proc.kill()
                verdicts[paths[done]] = {"verdict": "hang", "detail": f"no answer within {limit:.0f} s"}
                return done + 1
            line = proc.stdout.readline()
            if not line:
                code = proc.wait()
                verdicts[paths[done]] = {"verdict": "crash", "detail": f"worker exit status {code}"}
                return done + 1
            result = json.loads(line)
            verdicts[result["file"]] = {"verdict": result["verdict"], "detail": result["detail"]}
            done += 1
            started = time.monotonic()
        return done
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        sel.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=2000, help="files to fuzz (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per file before it counts as a hang")
    parser.add_argument("--reseal", action="store_true", help="recompute the checksum after each flip")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker([line.strip() for line in sys.stdin if line.strip()])
        return 0
    start = time.monotonic()
    summary = run(args.count, timeout=args.timeout, seed=args.seed, reseal=args.reseal)
    summary["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(summary, indent=2))
    allowed = ("detected", "undetected") if args.reseal else ("detected",)
    bad = sum(summary["verdicts"][v] for v in VERDICTS if v not in allowed)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
