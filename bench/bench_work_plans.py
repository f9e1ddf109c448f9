"""Runs that declare their compiled-kernel work up front, each a new process timed whole.

``GraphExecutor.run_sequence`` (``talon.bridge.sequence_plan``), ``evaluate``'s shards
(``talon.evaluate.work_plan``) and the FPGA lowering's calibration declare the work of their neuron
loops before the first call (``talon._compiled.planned_work``), so a long run starts numba at
once and a short one never pays its start-up. Each case runs, interleaved (a, b, c, a, b, c ...),
medians of ``REPEATS``:

* **dispatch** (ours, the default): the work-size dispatch with the plans;
* **forced numba** (``TALON_FORCE_NUMBA=1``) and **forced twin** (``TALON_DISABLE_NUMBA=1``).

Besides the named cases, a grid of shapes (``GRID``: steps x batch x width of a 64-L-10 network in
``run_sequence`` and in the FPGA calibration) spans the crossovers of the time loops' cost models
(``talon._compiled.LoopCost``, docs/backend.md §9.2): step-dominated runs where the kernels pay for
numba, wide or short ones where the twins should stay. The table gives each forced mode's CPU time
over the dispatch's (below 1: that mode was quicker than the dispatch). ``--no-grid`` leaves it
out, ``--only TEXT`` (repeatable) keeps the cases whose name contains ``TEXT``.

Run as a script with ``--before SRC`` (a ``src`` folder of an older talon, e.g. ``git archive``
of the commit before the plans) it adds that code's dispatch as a fourth column. Every process
prints a digest of its results; the modes must print the same. One BLAS / OpenMP thread per
process (torch's too), in every mode. numba's disk cache is filled
before timing (one untimed run of each case with numba forced). Besides the wall time, the CPU
time of each process and its children (the pool's workers) is reported: on the shared machine
it is steadier than the wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

from bench.common import Row, print_rows

REPEATS = 5
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # every mode alike
MODES = {
    "dispatch": {},
    "forced numba": {"TALON_FORCE_NUMBA": "1"},
    "forced twin": {"TALON_DISABLE_NUMBA": "1"},
}

_DIGEST = """
import hashlib, numpy as np
def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype.str, a.shape)).encode()); h.update(a.tobytes())
    print(h.hexdigest()[:16])
"""

_RUN_SEQUENCE = """
import numpy as np, torch
from talon import bridge
from talon.examples import mlp_graph
executor = bridge.ir_to_torch(mlp_graph(0, {sizes}))
x = torch.from_numpy((np.random.default_rng(0).random(({steps}, {batch}, {sizes}[0])) < 0.3).astype(np.float32))
with torch.no_grad():
    out, state = executor.run_sequence(x)
digest(out, *state.values())
"""

_EVALUATE = """
import numpy as np
from bench.bench_evaluate import digits_mlp
from talon import evaluate as ev
if __name__ == "__main__":
    graph = digits_mlp()
    digits = ev.digits("all")
    reps = -(-{samples} // len(digits))
    data = (np.tile(digits.x, (reps, 1))[:{samples}], np.tile(digits.y, reps)[:{samples}])
    result = ev.evaluate(graph, data, n_steps={steps}, encoder=ev.Rate(), precisions=("fp32", "int8"),
                         shard_size={shard}, {executor})
    digest(*[np.asarray(result[p].confusion_matrix) for p in ("fp32", "int8")],
           [result[p].total_spikes for p in ("fp32", "int8")])
"""

_FPGA = """
import numpy as np
from talon.backend import get_backend
from talon.examples import mlp_graph
graph = mlp_graph(0, {sizes})
x = None
if {steps} is not None:
    x = (np.random.default_rng(0).random(({steps}, {batch}, {sizes}[0])) < 0.3).astype(np.float32)
descriptor = get_backend("fpga").compile(graph, default_precision="int8", calibration_inputs=x, write_to_disk=False)
plan, _ = descriptor.program
digest(*[v for k in plan.kernels for v in vars(k).values() if isinstance(v, np.ndarray)])
"""

CASES = {
    "run_sequence 784-128-10, T=100, B=1 (short)": _RUN_SEQUENCE.format(sizes=(784, 128, 10), steps=100, batch=1),
    "run_sequence 784-128-128-128-10, T=10000, B=1 (long)": _RUN_SEQUENCE.format(
        sizes=(784, 128, 128, 128, 10), steps=10_000, batch=1
    ),
    "evaluate 360 samples, T=20, fp32+int8, serial (short)": _EVALUATE.format(
        samples=360, steps=20, shard=64, executor='executor="serial"'
    ),
    "evaluate 10,000 samples, T=50, fp32+int8, 2 workers (long)": _EVALUATE.format(
        samples=10_000, steps=50, shard=100, executor="workers=2"
    ),
    "FPGA compile int8 784-128-10, default stimulus (short)": _FPGA.format(sizes=(784, 128, 10), steps=None, batch=1),
    "FPGA compile int8 64-256-10, calibration T=10000, B=16 (long)": _FPGA.format(
        sizes=(64, 256, 10), steps=10_000, batch=16
    ),
}


# The grid across the crossovers of the cost models (talon._compiled.LoopCost): steps x batch x
# width of a 64-L-10 network, from step-dominated runs (few elements, many steps: the kernels save
# the per-step dispatch) to wide ones (many elements, few steps: they save only per element).
GRID = {
    f"grid run_sequence 64-{width}-10, T={steps}, B={batch}": _RUN_SEQUENCE.format(
        sizes=(64, width, 10), steps=steps, batch=batch
    )
    for steps, batch, width in [
        (2_000, 1, 128), (20_000, 1, 128), (10_000, 16, 256), (1_200, 64, 512), (300, 64, 2_048), (40_000, 1, 64),
    ]
}  # fmt: skip
GRID |= {
    f"grid FPGA calibration 64-{width}-10, T={steps}, B={batch}": _FPGA.format(
        sizes=(64, width, 10), steps=steps, batch=batch
    )
    for steps, batch, width in [(10_000, 16, 256), (20_000, 16, 256), (50_000, 1, 128), (2_000, 64, 1_024)]
}  # fmt: skip


def _run(code: str, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the process and its children, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _DIGEST + code], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"the case failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout.strip()


def measure(
    modes: dict[str, dict[str, str]], repeats: int = REPEATS, cases: dict[str, str] | None = None
) -> tuple[list[Row], list[str]]:
    """Each case in every mode, interleaved: the rows (dispatch against each other mode, wall
    time) and a markdown table (wall and CPU time, and each other mode's CPU time over the
    dispatch's: above 1 the dispatch is quicker)."""
    cases = CASES if cases is None else cases
    base = {k: v for k, v in os.environ.items() if k not in ("TALON_FORCE_NUMBA", "TALON_DISABLE_NUMBA")}
    base.update(THREADS)
    path = os.pathsep.join(p for p in sys.path if p)
    base["PYTHONPATH"] = path
    for code in cases.values():  # numba's disk cache: the timed runs load kernels, never compile them
        _run(code, {**base, "TALON_FORCE_NUMBA": "1"})
    rows: list[Row] = []
    others = [m for m in modes if m != "dispatch"]
    lines = [
        "| case | " + " | ".join(modes) + " | " + " | ".join(f"{m} / dispatch (CPU)" for m in others) + " | load |",
        "|---|" + "---|" * (len(modes) + len(others) + 1),
    ]
    load = [os.getloadavg()[0]]
    for case, code in cases.items():
        wall: dict[str, list[float]] = {m: [] for m in modes}
        cpu: dict[str, list[float]] = {m: [] for m in modes}
        printed: set[str] = set()
        before = os.getloadavg()[0]
        for _ in range(repeats):
            for mode, extra in modes.items():
                env = {**base, **{k: v for k, v in extra.items() if k != "PYTHONPATH"}}
                if "PYTHONPATH" in extra:
                    env["PYTHONPATH"] = extra["PYTHONPATH"] + os.pathsep + path
                seconds, cpu_s, out = _run(code, env)
                wall[mode].append(seconds)
                cpu[mode].append(cpu_s)
                printed.add(out)
        if len(printed) != 1:
            raise AssertionError(f"{case}: the modes printed different results: {printed}")
        ours = statistics.median(wall["dispatch"])
        for mode in others:
            rows.append(Row("work plans", case, ours, mode, statistics.median(wall[mode])))
        cells = [f"{statistics.median(wall[m]):.2f} s ({statistics.median(cpu[m]):.2f} s CPU)" for m in modes]
        ours_cpu = statistics.median(cpu["dispatch"])
        cells += [f"{statistics.median(cpu[m]) / ours_cpu:.2f}×" for m in others]
        after = os.getloadavg()[0]
        lines.append(f"| {case} | " + " | ".join(cells) + f" | {before:.1f}–{after:.1f} |")
        load.append(after)
        print(lines[-1], flush=True)
    lines += [
        "",
        f"Wall time (CPU time of the process and its children), median of {repeats} interleaved new processes; "
        f"load average (1 min) during the runs {min(load):.1f}–{max(load):.1f}. Every mode printed the same digest.",
    ]
    return rows, lines


def main(
    before: str | None = None, repeats: int = REPEATS, grid: bool = True, only: list[str] | None = None
) -> list[Row]:
    modes = dict(MODES)
    if before:
        modes["no plan (before)"] = {"PYTHONPATH": before}
    cases = {**CASES, **GRID} if grid else dict(CASES)
    if only:
        cases = {name: code for name, code in cases.items() if any(text in name for text in only)}
    rows, lines = measure(modes, repeats, cases)
    main.markdown = lines
    print_rows("runs that declare their work (new processes)", rows)
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.bench_work_plans")
    parser.add_argument("--before", help="a src folder of an older talon: its dispatch becomes a fourth column")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--no-grid", action="store_true", help="only the named cases, not the grid of shapes")
    parser.add_argument("--only", action="append", help="only the cases whose name contains this text (repeatable)")
    args = parser.parse_args()
    main(args.before, args.repeats, not args.no_grid, args.only)
