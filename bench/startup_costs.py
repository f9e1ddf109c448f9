"""What starting numba costs a new process, per kernel family: ``python -m bench.startup_costs``.

Each case is a new process that first runs a tiny input through the family's twin (so every Python
import is done), then times, CPU (``time.process_time``) and wall:

* **start-up**: the first run with ``TALON_FORCE_NUMBA=1`` (import numba and llvmlite, initialise
  LLVM, load the kernel from numba's disk cache) minus a second forced run (the kernel loaded);
* **one more family**: then the first forced run of another family's kernel in the same process
  (numba already started: only that kernel is loaded);

each with numba's disk cache filled (**warm cache**, the usual case) and with an empty cache
directory (**cold cache**: the kernels are compiled, once per machine and talon version).
Interleaved, medians of ``--repeats``; one thread. These are the ``NUMBA_STARTUP`` and
``KERNEL_LOAD`` of ``talon._compiled``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_CHILD = """
import os, time, json
import numpy as np
os.environ["TALON_DISABLE_NUMBA"] = "1"
from bench.loop_costs import FAMILIES
first, second = FAMILIES[{first!r}](4, 1, 8), FAMILIES[{second!r}](4, 1, 8)
first(); second()
del os.environ["TALON_DISABLE_NUMBA"]
os.environ["TALON_FORCE_NUMBA"] = "1"
def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.process_time() - c, time.perf_counter() - w
start = timed(first)
again = timed(first)
more = timed(second)
print(json.dumps({{"start_cpu": start[0] - again[0], "start_wall": start[1] - again[1],
                  "more_cpu": more[0], "more_wall": more[1]}}))
"""

PAIRS = [("float", "fixed"), ("sequence", "float"), ("fixed", "float")]


def _child(first: str, second: str, cache: str | None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.pop("TALON_FORCE_NUMBA", None)
    env.pop("TALON_DISABLE_NUMBA", None)
    if cache is not None:
        env["NUMBA_CACHE_DIR"] = cache
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    code = _CHILD.format(first=first, second=second)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(repeats: int) -> None:
    _child("float", "fixed", None)  # fill the default disk cache
    _child("sequence", "fixed", None)
    results: dict[tuple, list[dict]] = {}
    for _ in range(repeats):
        for first, second in PAIRS:
            results.setdefault((first, second, "warm"), []).append(_child(first, second, None))
            with tempfile.TemporaryDirectory() as cold:
                results.setdefault((first, second, "cold"), []).append(_child(first, second, cold))
    for (first, second, cache), runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"{cache} cache: start-up with {first:8} {med['start_cpu']:.3f} s CPU ({med['start_wall']:.3f} s wall); "
            f"then {second:8} {med['more_cpu'] * 1e3:7.1f} ms CPU ({med['more_wall'] * 1e3:7.1f} ms wall)"
            f"  load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.startup_costs")
    parser.add_argument("--repeats", type=int, default=5)
    main(parser.parse_args().repeats)
