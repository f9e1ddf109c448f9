"""Event-driven vs dense synaptic products of the fixed-point CPU backend (one thread).

One large weight layer (2048 -> 2048, int8 weights) fed by binary spikes of ``T*B = 3200`` samples
at several activities: ``events.event_product`` (one weight row added per spike) against the dense
product the backend uses otherwise (``events.dense_product``, float32 BLAS, exact for this layer's
bound). Both return the same integers (checked against numpy's int64 product). The row where the
event path stops winning is the crossover stated in docs/backend.md; ``events.EVENT_DENSITY`` is set
below it. A whole ``simulate(precision="int8")`` of a 1024-1024-1024 network at low activity is also
timed with the event path on and forced off.
"""

from __future__ import annotations

import numpy as np

from bench.bench_backend import _one_thread
from bench.common import Row, median_times, print_rows

ACTIVITIES = (0.01, 0.03, 0.05, 0.1)


def products() -> list[Row]:
    from talon.backend.cpu.events import dense_product, event_product, exact_dtype

    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, size=(2048, 2048))
    weight_t = weight.astype(exact_dtype(float(np.abs(weight).sum(axis=0).max())))  # float32: exact here
    rows = []
    for activity in ACTIVITIES:
        x = (rng.random((3200, 2048)) < activity).astype(np.int64)
        assert np.array_equal(event_product(x, weight_t), x @ weight)
        t = median_times(
            {"events": lambda x=x: event_product(x, weight_t), "dense": lambda x=x: dense_product(x, weight_t)},
            repeats=3,
        )
        case = f"layer 2048x2048 int8, 3200 samples, {activity:.0%} spikes (one thread): event-driven product"
        rows.append(Row("events", case, t["events"], "dense product (float32 BLAS, exact)", t["dense"]))
    return rows


def network() -> list[Row]:
    from talon import ir
    from talon.backend import get_backend
    from talon.backend.cpu import events

    rng = np.random.default_rng(1)
    n = 1024

    def lif():
        return ir.LIF(tau=np.full(n, 10.0), r=np.full(n, 10.0), v_threshold=np.ones(n), reset_mode="subtract")

    def dense(n_in):
        # strong enough for the hidden layers to fire (their measured rate is in the row)
        return ir.Affine(rng.normal(0, 1.6 / np.sqrt(n_in), (n, n_in)), np.zeros(n))

    graph = ir.Graph(
        {
            "input": ir.Input(np.array([n])),
            "fc1": dense(n),
            "lif1": lif(),
            "fc2": dense(n),
            "lif2": lif(),
            "output": ir.Output(np.array([n])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    )
    x = (rng.random((50, 16, n)) < 0.02).astype(np.float32)
    cpu = get_backend("cpu")
    saved = events.EVENT_DENSITY

    def run(density):
        def call():
            events.EVENT_DENSITY = density
            try:
                return cpu.simulate(graph, {"input": x}, precision="int8")
            finally:
                events.EVENT_DENSITY = saved

        return call

    on, off = run(saved)(), run(-1.0)()
    assert np.array_equal(on.outputs["output"], off.outputs["output"])
    activity = sum(on.spike_counts.values()) / (2 * x.shape[0] * x.shape[1] * n)
    t = median_times({"events": run(saved), "dense": run(-1.0)}, repeats=3, warmup=0)
    case = f"simulate int8 1024-1024-1024, T=50 B=16, 2% input, {activity:.1%} hidden spikes (one thread)"
    return [Row("events", case, t["events"], "the same, event path off (dense)", t["dense"])]


def main() -> list[Row]:
    with _one_thread():
        rows = products() + network()
    print_rows("Event-driven synaptic products (fixed point)", rows)
    return rows


if __name__ == "__main__":
    main()
