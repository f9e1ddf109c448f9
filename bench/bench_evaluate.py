"""Data-set evaluation: samples/s with 1 and 2 workers (process pool and Dask) against the serial run,
and the cost of one more shard. The reference of each row is ``talon.evaluate`` in this process
(``executor="serial"``), so the ratio is the speed-up that the executor brings."""

from __future__ import annotations

import itertools
import time

import numpy as np

from bench.common import Row, print_rows

SAMPLES, STEPS, SHARDS = 10_000, 50, 100  # the workload measured in the issue


def digits_mlp():
    """The 64-128-10 LIF network both evaluate benches run on the digits."""
    from talon import ir

    rng = np.random.default_rng(0)
    hidden = 128
    lif = {"tau": np.full(hidden, 10.0, np.float32), "v_threshold": np.ones(hidden, np.float32)}
    nodes = {
        "input": ir.Input(np.array([64])),
        "fc1": ir.Affine(weight=(rng.standard_normal((hidden, 64)) * 1.5).astype(np.float32), bias=np.zeros(hidden)),
        "lif1": ir.LIF(**lif),
        "fc2": ir.Affine(weight=(rng.standard_normal((10, hidden)) * 1.5).astype(np.float32), bias=np.zeros(10)),
        "lif2": ir.LIF(tau=np.full(10, 10.0, np.float32), v_threshold=np.ones(10, np.float32)),
        "output": ir.Output(np.array([10])),
    }
    names = list(nodes)
    return ir.Graph(nodes, list(itertools.pairwise(names)))


def _timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> list[Row]:
    from talon import evaluate as ev

    graph = digits_mlp()
    digits = ev.digits("all")
    reps = -(-SAMPLES // len(digits))
    data = (np.tile(digits.x, (reps, 1))[:SAMPLES], np.tile(digits.y, reps)[:SAMPLES])
    kwargs = dict(n_steps=STEPS, encoder=ev.Rate(), precisions=("fp32", "int8"), shard_size=SAMPLES // SHARDS)

    serial_s, serial = _timed(lambda: ev.evaluate(graph, data, executor="serial", **kwargs))
    rows = []
    for workers in (1, 2):
        pool_s, pooled = _timed(lambda w=workers: ev.evaluate(graph, data, workers=w, **kwargs))
        assert pooled["int8"].to_dict()["accuracy"] == serial["int8"].to_dict()["accuracy"]
        rows.append(Row("evaluate", f"process pool, {workers} worker(s) ({SAMPLES / pool_s:,.0f} samples/s)",
                        pool_s, f"serial ({SAMPLES / serial_s:,.0f} samples/s)", serial_s))  # fmt: skip
    try:
        with ev.local_cluster(n_workers=2) as client:
            dask_s, _ = _timed(lambda: ev.evaluate(graph, data, executor=client, **kwargs))
        rows.append(Row("evaluate", f"Dask LocalCluster, 2 workers ({SAMPLES / dask_s:,.0f} samples/s)", dask_s,
                        "serial", serial_s))  # fmt: skip
    except ImportError:
        pass
    # one more shard: many small shards against few large ones, same samples, in this process
    many, few = 400, 4
    small_s, _ = _timed(
        lambda: ev.evaluate(graph, data, executor="serial", **{**kwargs, "shard_size": SAMPLES // many})
    )
    large_s, _ = _timed(lambda: ev.evaluate(graph, data, executor="serial", **{**kwargs, "shard_size": SAMPLES // few}))
    overhead = max(small_s - large_s, 0.0) / (many - few)  # 0: below the run-to-run noise
    label = f"cost of one more shard (serial, {many} vs {few} shards; 0 = below the noise)"
    rows.append(Row("evaluate", label, overhead, "—", None))
    print_rows(f"talon.evaluate: {SAMPLES:,} samples x {STEPS} steps, fp32 + int8, {SHARDS} shards", rows)
    return rows


if __name__ == "__main__":
    main()
