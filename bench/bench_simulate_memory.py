"""What ``simulate`` holds and rebuilds on the 33.6 M-parameter conv SNN of :mod:`bench.bench_chunked`.

* **program cache** (``backend/cpu/run/program_cache.py``): repeated 20-step runs of the same graph,
  the validated program and float engine reused (the default) against built every call
  (``MAX_ENTRIES = 0``, how every call ran before), interleaved in one process; and the bytes an
  entry keeps alive between calls.
* **probes**: peak resident memory (``VmHWM``, fresh child process) of a step-by-step run recording
  every node against one recording only ``lif4`` (``probes=["lif4"]``).
* **lockstep reference**: peak resident memory of an int8 run streaming its outputs
  (``on_outputs``) at two run lengths: the fp32 reference no longer holds its spike trains and
  outputs for all steps, so the peak stays flat.
* **program cache hit** (:func:`lookup_rows`): the lookup alone (structure fingerprint and a byte
  comparison with the entry's frozen copy) against the SHA-256 of every weight it replaced.
* **the memory check's estimate** (:func:`estimate_lines`) against the measured growth of the peak
  RSS of step-by-step runs in fresh child processes.

``python -m bench.bench_simulate_memory [--src DIR]`` runs the child processes on another checkout's
``src`` (e.g. ``main``'s, to compare with the code before these changes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench.bench_chunked import conv_snn

_CHILD = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from bench.bench_chunked import conv_snn
from talon.backend import get_backend
graph = conv_snn()
cpu = get_backend("cpu")
cpu.simulate(graph, n_steps={warmup}, precision={precision!r})  # numba started, kernels loaded
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current RSS
    f.write("5")
start = time.perf_counter()
result = cpu.simulate(graph, n_steps={steps}, precision={precision!r}, **{kwargs})
seconds = time.perf_counter() - start
peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM"))
q = result.quantization
print(json.dumps({{"rss": peak, "seconds": seconds, "spikes": result.spike_counts,
                  "agreement": None if q is None else q.spike_agreement,
                  "recorded": sorted(result.node_states or {{}})}}))
"""


def child_run(steps: int, precision: str, kwargs: str, src: str | None = None, warmup: int = 3) -> dict:
    """Peak RSS (bytes, Linux ``VmHWM``) and wall time of one ``simulate(graph, n_steps=steps,
    precision=precision, **kwargs)`` (``kwargs``: Python source of a dict) on :func:`conv_snn` in a
    fresh interpreter, numba forced, after a ``warmup``-step run has loaded the kernels (the peak is
    reset after it); its spike counts too. ``src``: the talon sources to import."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _CHILD.format(root=root, steps=steps, precision=precision, kwargs=kwargs, warmup=warmup)
    path = [src or os.path.join(root, "src"), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, TALON_FORCE_NUMBA="1", PYTHONPATH=os.pathsep.join(path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


_ESTIMATE_CHILD = """
import json, sys
import numpy as np
sys.path.insert(0, {root!r})
from talon.backend import get_backend
from talon.backend.cpu import backend, run_memory
graph = {graph}
cpu = get_backend("cpu")
cpu.simulate(graph, n_steps=3, precision="fp32")
cpu.simulate(graph, n_steps=3, precision={precision!r})  # numba started, the fp32 engine cached
estimates = []
check = backend.check_run_memory
def spy(*args, precision="fp32", probed=False, **plan):
    estimates.append(run_memory.estimate_run(*args, **plan))
    return check(*args, precision=precision, probed=probed, **plan)
backend.check_run_memory = spy
x = (np.random.default_rng(0).random(({steps}, {batch}, *graph.nodes["input"].shape)) < 0.3).astype(np.float32)
status = lambda key: next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(key))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
result = cpu.simulate(graph, x, precision={precision!r}, **{kwargs})
chunk, held, working = estimates[-1]
print(json.dumps({{"growth": status("VmHWM") - before, "held": sum(held.values()), "working": working, "chunk": chunk,
                  "kinds": held}}))
"""


def estimate_lines(src: str | None = None) -> list[str]:
    """The memory check's estimate (held results + one chunk's working set, ``run_memory.estimate_run``)
    against the growth of the peak RSS (``VmHWM`` after the run minus ``VmRSS`` before it, fresh child
    process, the fp32 engine cached and numba started by a warm-up) of step-by-step runs."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    mlp, conv = (
        "__import__('talon.examples').examples.mlp_graph(0)",
        "__import__('bench.bench_chunked').bench_chunked.conv_snn()",
    )
    cases = [
        ("784-128-10 MLP, 4,000 steps x batch 16 fp32, every node", mlp, 4000, 16, "fp32", "dict(step_by_step=True)"),
        ("784-128-10 MLP, same, probes=['lif1']", mlp, 4000, 16, "fp32", "dict(step_by_step=True, probes=['lif1'])"),
        ("784-128-10 MLP, 4,000 steps x batch 16 fp16, every node", mlp, 4000, 16, "fp16", "dict(step_by_step=True)"),
        ("784-128-10 MLP, 1,500 steps x batch 16 int8, every node", mlp, 1500, 16, "int8", "dict(step_by_step=True)"),
        ("33.6M-param conv SNN, 300 steps fp32, every node", conv, 300, 1, "fp32", "dict(step_by_step=True)"),
    ]
    path = [src or os.path.join(root, "src"), root, os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, TALON_FORCE_NUMBA="1", PYTHONPATH=os.pathsep.join(path))
    lines = []
    for name, graph, steps, batch, precision, kwargs in cases:
        code = _ESTIMATE_CHILD.format(root=root, graph=graph, steps=steps, batch=batch, precision=precision,
                                      kwargs=kwargs)  # fmt: skip
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        estimate = r["held"] + r["working"]
        lines.append(f"{name}: estimate {estimate / 2**20:,.0f} MiB (held {r['held'] / 2**20:,.0f} + chunk of "
                     f"{r['chunk']:,} steps {r['working'] / 2**20:,.0f}), measured peak growth "
                     f"{r['growth'] / 2**20:,.0f} MiB ({r['growth'] / estimate:.2f}x)")  # fmt: skip
        print(lines[-1], flush=True)
    return lines


def cache_rows() -> list:
    from bench.common import Row, median_times
    from talon.backend import get_backend
    from talon.backend.cpu.run import program_cache

    cpu = get_backend("cpu")
    graph = conv_snn()
    rows = []
    for precision in ("fp32", "int8"):
        cpu.simulate(graph, n_steps=3, precision=precision)

        def cached(p=precision):
            cpu.simulate(graph, n_steps=20, precision=p)

        def rebuilt(p=precision):
            saved, program_cache.MAX_ENTRIES = program_cache.MAX_ENTRIES, 0
            try:
                cpu.simulate(graph, n_steps=20, precision=p)
            finally:
                program_cache.MAX_ENTRIES = saved

        times = median_times({"cached": cached, "rebuilt": rebuilt}, repeats=5, warmup=1)
        case = f"33.6M-param conv SNN, 20 steps {precision}: simulate again on an unchanged graph (program cache)"
        rows.append(Row("simulate_memory", case, times["cached"], "program and engine built every call",
                        times["rebuilt"]))  # fmt: skip
        print(f"{case}: {times['cached']:.2f} s vs rebuilt {times['rebuilt']:.2f} s")
    held = sum(entry.nbytes for entry in program_cache._entries.values())
    print(f"the cache keeps {held / 2**20:,.0f} MiB of kernels alive between calls")
    return rows


def lookup_rows(rounds: int = 15) -> list:
    """The cost of a program cache hit alone on the 33.6M-parameter graph (134 MB of float32
    weights): :func:`program_cache.lookup` (the fingerprint without weights, then every parameter
    compared byte for byte with the entry's frozen copy) against the SHA-256 fingerprint of
    weights and metadata the cache computed on every call before; rounds interleaved."""
    import statistics
    import time

    from bench.common import Row
    from talon.backend import get_backend
    from talon.backend.cpu import program_cache
    from talon.sdk.fingerprint import fingerprint_graph

    graph = conv_snn()
    get_backend("cpu").simulate(graph, n_steps=1)  # the entry
    contenders = {
        "lookup": lambda: program_cache.lookup(graph),
        "sha256": lambda: fingerprint_graph(graph, include_weights=True, include_metadata=True),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    hits = program_cache.stats["hits"]
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    assert program_cache.stats["hits"] == hits + rounds
    quartiles = {name: statistics.quantiles(ts, n=4) for name, ts in times.items()}
    for name, (q1, median, q3) in quartiles.items():
        print(f"  {name}: median {1e3 * median:.1f} ms (quartiles {1e3 * q1:.1f}-{1e3 * q3:.1f} ms, {rounds} rounds)")
    case = "33.6M-param conv SNN: a program cache hit (structure fingerprint + byte comparison with the frozen copy)"
    return [Row("simulate_memory", case, quartiles["lookup"][1], "SHA-256 fingerprint of every weight (before)",
                quartiles["sha256"][1])]  # fmt: skip


def lockstep_rows() -> list:
    """The price of the lockstep reference of a fixed-point run (a second fp32 run): int8 on the
    784-128-10 MLP, 2,000 steps x batch 8 in chunks of 100, lockstep forced against the held reference."""
    import numpy as np

    from bench.common import Row, median_times
    from talon.backend import get_backend
    from talon.backend.cpu import backend
    from talon.examples import mlp_graph

    cpu = get_backend("cpu")
    graph = mlp_graph(0)
    x = (np.random.default_rng(0).random((8, 784)) < 0.05).astype(np.float32)
    rule = backend.runs_in_lockstep

    def run(lockstep: bool):
        backend.runs_in_lockstep = (lambda fixed, steps, chunk, held, engine: chunk < steps) if lockstep else rule
        try:
            return cpu.simulate(graph, x, n_steps=2000, precision="int8", chunk_steps=100)
        finally:
            backend.runs_in_lockstep = rule

    assert run(True).quantization == run(False).quantization
    times = median_times({"lockstep": lambda: run(True), "held": lambda: run(False)}, repeats=5, warmup=0)
    case = "784-128-10 MLP, 2,000 steps x batch 8 int8 in chunks of 100: fp32 reference in lockstep (2nd fp32 run)"
    print(f"{case}: {times['lockstep']:.2f} s vs held {times['held']:.2f} s")
    return [Row("simulate_memory", case, times["lockstep"], "reference held for all steps", times["held"])]


def memory_lines(src: str | None = None) -> list[str]:
    lines = []
    full = child_run(300, "fp32", "dict(step_by_step=True)", src)
    probed = child_run(300, "fp32", "dict(step_by_step=True, probes=['lif4'])", src) if src is None else None
    line = f"300 steps fp32 step_by_step, every node: peak RSS {full['rss'] / 2**20:,.0f} MiB ({full['seconds']:.0f} s)"
    if probed is not None:
        assert probed["spikes"] == full["spikes"] and probed["recorded"] == ["lif4"]
        line += f"; probes=['lif4']: {probed['rss'] / 2**20:,.0f} MiB ({probed['seconds']:.0f} s)"
    lines.append(line)
    stream = "dict(on_outputs=lambda *a: None)"
    for steps in (200, 800):
        run = child_run(steps, "int8", stream, src)
        lines.append(f"{steps} steps int8, outputs streamed: peak RSS {run['rss'] / 2**20:,.0f} MiB "
                     f"({run['seconds']:.0f} s, spike agreement {run['agreement']:.6f})")  # fmt: skip
    for line in lines:
        print(line)
    return lines


def main() -> list:
    print("\nbench_simulate_memory: what simulate holds and rebuilds (33.6M-param conv SNN)")
    rows = cache_rows() + lookup_rows() + lockstep_rows()
    memory_lines()
    estimate_lines()
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--src":
        memory_lines(sys.argv[2])
    else:
        main()
