"""Event-driven vs dense synaptic products of the fixed-point CPU backend (one thread).

One large weight layer (2048 -> 2048, int8 weights) fed by binary spikes of ``T*B = 3200`` samples
at several activities: the event-driven product (one weight row added per spike) against the dense
product the backend uses otherwise (``events.dense_product``, float32 BLAS, exact for this layer's
bound). The event path is timed as the backend runs it: the compiled kernel (numba, the ``fast``
extra) on the layer's weights laid out once (``events.EventWeights``), and, at low activity, its
SciPy twin (used without numba). All return the same integers (checked against the dense product).
The rows where the event paths stop winning are the crossovers stated in docs/backend.md
(``events.EVENT_DENSITY`` and ``SCIPY_EVENT_DENSITY`` are set below them). A whole int8
1024-1024-1024 network at low activity (compiled once, ``run_compiled``) is also timed with the
event path on and forced off.
"""

from __future__ import annotations

import numpy as np

from bench.bench_backend import _one_thread
from bench.common import Row, median_times, print_rows

ACTIVITIES = (0.01, 0.03, 0.05, 0.1, 0.2, 0.3)
SCIPY_ACTIVITIES = (0.01, 0.03, 0.05)


def products() -> list[Row]:
    from talon._compiled import numba_available
    from talon.backend.cpu.kernels.events import EventWeights, dense_product, exact_dtype, scipy_event_product

    rng = np.random.default_rng(0)
    weight = rng.integers(-127, 128, size=(2048, 2048))
    worst = float(np.abs(weight).sum(axis=0).max())
    weight_t = weight.astype(exact_dtype(worst))  # float32: exact here
    layout = EventWeights(weight, worst) if numba_available() else None
    rows = []
    for activity in ACTIVITIES:
        x = (rng.random((3200, 2048)) < activity).astype(np.int64)
        expected = dense_product(x, weight_t)
        fns = {"dense": lambda x=x: dense_product(x, weight_t)}
        if layout is not None:
            assert np.array_equal(layout.product(x, None), expected)
            fns["events"] = lambda x=x: layout.product(x, None)
        if activity in SCIPY_ACTIVITIES:
            assert np.array_equal(scipy_event_product(x, weight_t), expected)
            fns["scipy"] = lambda x=x: scipy_event_product(x, weight_t)
        t = median_times(fns, repeats=3)
        case = f"layer 2048x2048 int8, 3200 samples, {activity:.0%} spikes (one thread): event-driven product"
        ref = "dense product (float32 BLAS, exact)"
        if "events" in t:
            rows.append(Row("events", case + " (numba kernel)", t["events"], ref, t["dense"]))
        if "scipy" in t:
            rows.append(Row("events", case + " (SciPy twin, no numba)", t["scipy"], ref, t["dense"]))
    return rows


def network() -> list[Row]:
    from talon import ir
    from talon.backend import get_backend
    from talon.backend.cpu.kernels import events

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
    program = cpu.compile(graph, precision="int8", calibration_inputs={"input": x})
    saved = events.EVENT_DENSITY, events.SCIPY_EVENT_DENSITY

    def run(on: bool):
        def call():
            if not on:
                events.EVENT_DENSITY = events.SCIPY_EVENT_DENSITY = -1.0
            try:
                return cpu.run_compiled(program, {"input": x})
            finally:
                events.EVENT_DENSITY, events.SCIPY_EVENT_DENSITY = saved

        return call

    on, off = run(True)(), run(False)()
    assert np.array_equal(on.outputs["output"], off.outputs["output"])
    activity = sum(on.spike_counts.values()) / (2 * x.shape[0] * x.shape[1] * n)
    t = median_times({"events": run(True), "dense": run(False)}, repeats=3, warmup=0)
    case = f"run_compiled int8 1024-1024-1024, T=50 B=16, 2% input, {activity:.1%} hidden spikes (one thread)"
    return [Row("events", case, t["events"], "the same, event path off (dense)", t["dense"])]


def main() -> list[Row]:
    with _one_thread():
        rows = products() + network()
    print_rows("Event-driven synaptic products (fixed point)", rows)
    return rows


if __name__ == "__main__":
    main()
