"""JAX engine: a Spyx model's talon graph run by ``JaxGraph.run`` against ``spyx.nn.run`` on the model.

Both sides are ``jax.jit``-compiled functions of (parameters, input) — Spyx's model split with
``nnx.split`` and merged inside the jitted function, talon's ``JaxGraph.run`` with its parameter
dict (weights relaid out on the host and cached, as every call of ``run`` does) — timed on the
same time-major input in one process. Both return what their ``run`` returns — the outputs
and the final state (``(outputs, final_state)``) — and are waited for with
``jax.block_until_ready`` on all of it. (Returning an array costs a fixed ~10-30 us of CPU per
array in this jax, so a reference that dropped its final state inside ``jit`` would time less
work than talon's ``run``, which always returns it: 0.1 ms of a 2 ms run.)

Method (the same for talon and Spyx; it decides a 1x goal on a shared 2-core host):

* **One XLA thread for both.** The measurement runs in a child process started with
  ``XLA_FLAGS`` = :data:`XLA_FLAGS` (no Eigen thread pool, one intra-op thread), whatever the
  parent imported before. With XLA's default pool of two threads, a call's wall time depended on
  whether the second core was free: an idle-machine run of the same code moved by +-15 %, the
  MLP's calls took from 6 ms to over 12 ms (median 12.7 ms under a load of ~1), and the pool's
  spinning threads burn CPU that shows up in whichever call runs next.
* **CPU time, not wall time.** A sample is the process CPU time (``time.process_time``, all
  threads) of a block of calls, divided by the number of calls: a call preempted by another
  process is not charged for the wait. The block lasts at least :data:`BLOCK_CPU_S` of CPU time,
  because Linux adds a thread running on the other core to the process clock only at its
  scheduler ticks (single 2 ms calls read as little as 0.2 ms).
* **Interleaved rounds, median.** Each of :data:`ROUNDS` rounds takes one block of every
  contender, in an order rotated from round to round (so none always runs first, after a
  contender that warmed or cooled the caches); the row is the median of the rounds, and the
  per-round ratios' quartiles are printed below the table (a goal is met when the lower
  quartile is at least 1). The garbage collector is off while timing.
* **First call** (tracing, lowering, XLA compilation and the run): freshly built functions each
  time for both sides (for talon a fresh ``JaxGraph(graph)``, whose construction is included),
  CPU time, interleaved in rotated order, median of :data:`FIRST_CALL_REPEATS`.

The goal rows measure ``run``'s default schedule (``stepwise``: one ``lax.scan`` over the whole
step, like ``spyx.nn.run``); the ``fused`` and ``layerwise`` schedules a user can choose are
reported as "option" rows.
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.common import Row, print_rows

MODES = ("stepwise", "fused", "layerwise")  # the default first
XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
ROUNDS = 21  # interleaved rounds of run blocks
BLOCK_CPU_S = 0.1  # CPU seconds of one block of run calls (>> a 4 ms scheduler tick)
FIRST_CALL_REPEATS = 7
_CHILD = "TALON_BENCH_JAX_CHILD"


def _models():
    import jax.numpy as jnp
    import spyx.nn as snn
    from flax import nnx

    rngs = nnx.Rngs(0)
    rng = np.random.default_rng(0)

    def init(scale):
        return lambda key, shape, dtype=jnp.float32: jnp.asarray(rng.normal(0, scale, shape), dtype)

    def linear(n_in, n_out):
        return nnx.Linear(n_in, n_out, kernel_init=init(1.5 / np.sqrt(n_in)), bias_init=init(0.1), rngs=rngs)

    mlp = snn.Sequential(
        linear(128, 256), snn.LIF((256,), beta=0.9, rngs=rngs),
        linear(256, 256), snn.LIF((256,), beta=0.9, rngs=rngs),
        linear(256, 20), snn.LI((20,), beta=0.9, rngs=rngs),
    )  # fmt: skip
    conv = nnx.Conv(2, 8, (3, 3), kernel_init=init(0.4), bias_init=init(0.1), rngs=rngs)
    scnn = snn.Sequential(
        conv, snn.LIF((16, 16, 8), beta=0.9, rngs=rngs), snn.SumPool((2, 2), (2, 2), "VALID"),
        snn.Flatten(), linear(512, 10), snn.LIF((10,), beta=0.9, rngs=rngs),
    )  # fmt: skip
    rsnn = snn.Sequential(
        linear(64, 128), snn.RLIF((128,), beta=0.9, rngs=rngs), linear(128, 10), snn.LI((10,), beta=0.9, rngs=rngs)
    )
    return [
        ("MLP 128-256-256-20 (LIF, LIF, LI), T=100, B=32", mlp, (128,), (100, 32)),
        ("SCNN conv 2->8 16x16, sum-pool, dense (LIF), T=50, B=16", scnn, (16, 16, 2), (50, 16)),
        ("recurrent 64-128 RLIF-10 LI, T=100, B=32", rsnn, (64,), (100, 32)),
    ]


def _rotated(names: list[str], k: int) -> list[str]:
    k %= len(names)
    return names[k:] + names[:k]


def cpu_blocks(fns: dict[str, Callable[[], object]], rounds: int = ROUNDS, block_s: float = BLOCK_CPU_S):
    """Per-call CPU time of each function: ``{name: [one sample per round]}`` (see the module
    docstring). Every sample is a block of ``n`` calls, ``n`` the same for all functions, chosen
    so that the fastest one's block takes ``block_s`` of CPU time."""
    names = list(fns)
    for fn in fns.values():  # warm-up (caches, lazily built kernels)
        fn()
        fn()
    fastest = min(_cpu_of(fn, 3) / 3 for fn in fns.values())
    n = max(1, math.ceil(block_s / max(fastest, 1e-6)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in _rotated(names, r):
            samples[name].append(_cpu_of(fns[name], n) / n)
    return samples


def _cpu_of(fn: Callable[[], object], calls: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.process_time()
        for _ in range(calls):
            fn()
        return time.process_time() - start
    finally:
        gc.enable()


def _first_calls(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    names = list(fns)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in _rotated(names, r):
            samples[name].append(_cpu_of(fns[name], 1))
    return {name: statistics.median(s) for name, s in samples.items()}


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    q = np.quantile(np.asarray(values), [0.25, 0.5, 0.75])
    return float(q[0]), float(q[1]), float(q[2])


def measure() -> tuple[list[Row], list[str]]:
    """The rows and the notes below the table, measured in this process."""
    import jax
    import jax.numpy as jnp
    import spyx.nn as snn
    from flax import nnx

    from talon.interop import spyx as tspyx
    from talon.interop.jax import JaxGraph

    rows: list[Row] = []
    notes = [
        f"CPU time per call with one XLA thread (`XLA_FLAGS={XLA_FLAGS}`), median of {ROUNDS} interleaved "
        f"rounds of ≥ {BLOCK_CPU_S * 1e3:.0f} ms blocks; first call: median of {FIRST_CALL_REPEATS}. "
        "Per-round ratio quartiles (Spyx / talon), stepwise run:",
        "",
    ]
    for label, model, shape, (t, b) in _models():
        x = (np.random.default_rng(1).uniform(size=(t, b, *shape)) < 0.3).astype(np.float32)
        graphdef, state = nnx.split(model)
        x_spyx = jnp.asarray(x)
        graph = tspyx.to_ir(model, shape)
        x_talon = jnp.asarray(tspyx.channels_first(x))

        def spyx_fn(graphdef=graphdef):  # a fresh jitted function: its first call compiles
            return jax.jit(lambda st, xs: snn.run(nnx.merge(graphdef, st), xs))

        def spyx_call(f, st=state, xs=x_spyx):
            return lambda: jax.block_until_ready(f(st, xs))

        def talon_call(e, mode, xs=x_talon):
            return lambda: jax.block_until_ready(e.run(e.params, xs, mode=mode))

        compile_times = _first_calls(
            {
                "spyx": lambda: spyx_call(spyx_fn())(),
                **{m: (lambda g=graph, m=m: talon_call(JaxGraph(g), m)()) for m in MODES},
            },
            FIRST_CALL_REPEATS,
        )
        engine = JaxGraph(graph)
        samples = cpu_blocks({"spyx": spyx_call(spyx_fn()), **{m: talon_call(engine, m) for m in MODES}})
        run_times = {name: statistics.median(s) for name, s in samples.items()}
        low, mid, high = _quartiles([s / t for s, t in zip(samples["spyx"], samples["stepwise"], strict=True)])
        notes.append(f"- {label}: {low:.3f} / {mid:.3f} / {high:.3f}")
        for mode in MODES:
            kind = "" if mode == "stepwise" else "option, "
            rows.append(Row("jax", f"{label}: run ({kind}{mode})", run_times[mode], "spyx.nn.run (jit)",
                            run_times["spyx"]))  # fmt: skip
            rows.append(Row("jax", f"{label}: first call (compile, {kind}{mode})", compile_times[mode], "spyx.nn.run",
                            compile_times["spyx"]))  # fmt: skip
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    notes += ["", f"Load average (1, 5, 15 min) after measuring: {load}, on {os.cpu_count()} cores."]
    return rows, notes


def main() -> list[Row]:
    """Measure in a child process with :data:`XLA_FLAGS` set (the parent may have started XLA)."""
    if os.environ.get(_CHILD):
        rows, notes = measure()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "rows.json"
            flags = f"{os.environ.get('XLA_FLAGS', '')} {XLA_FLAGS}".strip()
            env = {**os.environ, "XLA_FLAGS": flags, _CHILD: str(out)}
            subprocess.run([sys.executable, "-m", "bench.bench_jax"], env=env, check=True)
            data = json.loads(out.read_text())
        rows, notes = [Row(**r) for r in data["rows"]], data["notes"]
    print_rows("JAX engine vs spyx.nn.run (CPU time per call, one XLA thread)", rows)
    for line in notes:
        print(line)
    main.markdown = notes
    return rows


main.markdown = []


def _child() -> None:
    rows, notes = measure()
    fields = ("benchmark", "case", "ours_s", "reference", "reference_s")
    payload = {"rows": [{f: getattr(r, f) for f in fields} for r in rows], "notes": notes}
    Path(os.environ[_CHILD]).write_text(json.dumps(payload))


if __name__ == "__main__":
    if os.environ.get(_CHILD):
        _child()
    else:
        main()
