"""CPU backend ``simulate`` vs the PyTorch executor (``GraphExecutor.run_sequence``) on the same graphs.

Both run the same time-major input ``[T, B, ...]`` in one process; each side runs several times
(interleaved) and the median wall time is reported with the ratio (ours / PyTorch: below 1 means the backend is
faster). ``simulate`` is timed as a user calls it (validation, lowering and kernel set-up
included). Both sides run on one thread (torch and numpy's BLAS, via threadpoolctl when
installed): on a shared machine multi-threaded BLAS timings swing by an order of magnitude.

int8 is timed two ways, as a user pays it: ``simulate(precision="int8")`` calibrates on its own
inputs, so every call runs fp32 first (the calibration and the reference of the quantization
report) and then the integer datapath; ``run_compiled`` runs a program compiled (and calibrated)
once by ``compile`` — what a deployed int8 model costs per call, and the row the executor's run
(also built once, by ``ir_to_torch``) compares with. The executor runs its fastest mode,
``run_sequence(products="time_batched")`` (its exact per-step products are slower,
docs/bridge.md). The numba kernels' compile time, paid once per machine (they are cached on
disk), is reported on its own row.
Run: ``python -m bench`` or ``python -m bench.bench_backend``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from bench.common import median_times
from talon import ir
from talon.backend import CompileConfig, default_stimulus, get_backend
from talon.examples import hybrid_graph, leaky, mlp_graph, uniform

REPEATS = 5
FAST = CompileConfig(exact_accumulation=False)


def recurrent(seed: int = 0) -> ir.Graph:
    """An RLeaky layer (a cycle, run step by step by both engines) with a readout."""
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([100])),
            "fc": ir.Affine(uniform(rng, (256, 100), 100), uniform(rng, 256, 100)),
            "lif": leaky(256),
            "rec": ir.Linear(uniform(rng, (256, 256), 256)),
            "out": ir.Affine(uniform(rng, (10, 256), 256), uniform(rng, 10, 256)),
            "output": ir.Output(np.array([10])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "out"), ("out", "output")],
    )


CASES = [  # name, builder, T, B
    ("mlp 784-128-10", mlp_graph, 100, 32),
    ("hybrid conv SNN", hybrid_graph, 20, 8),
    ("recurrent 256", recurrent, 100, 16),
]


def run() -> list[dict]:
    import torch

    from talon.bridge import ir_to_torch

    cpu = get_backend("cpu")
    rows = []
    for name, build, steps, batch in CASES:
        graph = build(0)
        x = default_stimulus(graph, steps, batch_size=batch)["input"]
        executor = ir_to_torch(graph).eval()
        xt = torch.from_numpy(x)

        def torch_run(executor=executor, xt=xt):
            with torch.no_grad():
                executor.run_sequence(xt, products="time_batched")

        ours = cpu.simulate(graph, {"input": x}).outputs["output"]
        with torch.no_grad():
            theirs = executor.run_sequence(xt)[0].numpy()
        agree = float(np.max(np.abs(ours - theirs)))
        compiled = cpu.compile(graph, precision="int8", calibration_inputs={"input": x})
        int8 = cpu.simulate(graph, {"input": x}, precision="int8").outputs["output"]
        assert np.array_equal(cpu.run_compiled(compiled, {"input": x}).outputs["output"], int8)
        t = median_times(
            {
                "torch": torch_run,
                "ours": lambda graph=graph, x=x: cpu.simulate(graph, {"input": x}),
                "fast": lambda graph=graph, x=x: cpu.simulate(graph, {"input": x}, config=FAST),
                "int8": lambda graph=graph, x=x: cpu.simulate(graph, {"input": x}, precision="int8"),
                "int8 compiled": lambda compiled=compiled, x=x: cpu.run_compiled(compiled, {"input": x}),
            },
            repeats=REPEATS,
        )
        t_torch, t_ours, t_fast, t_int8, t_run = (
            1e3 * t[k] for k in ("torch", "ours", "fast", "int8", "int8 compiled")
        )
        rows.append(
            dict(name=name, T=steps, B=batch, torch=t_torch, ours=t_ours, fast=t_fast, int8=t_int8, run=t_run,
                 diff=agree)
        )  # fmt: skip
    return rows


def numba_compile_seconds() -> float | None:
    """Compile time of the CPU backend's numba kernels (the float32 neuron loop, the fixed-point
    kernels in the specialisations the benchmark models use) without the disk cache — what the
    first use on a machine pays — or None without numba."""
    from talon._compiled import numba_available

    if not numba_available():
        return None
    import time

    import numba

    from talon.backend.cpu.formats import fixed_point
    from talon.backend.cpu.kernels import events, fixed_neuron_loop, float_neuron_loop

    kernels = {
        "float_neuron_loop": float_neuron_loop.float_neuron_loop,
        "neuron_loop": fixed_neuron_loop.neuron_loop,
        "gather_events": events.gather_events,
        "add_rows": events.add_rows,
        "_quantize_dyadic": fixed_point._quantize_dyadic,
        "gather_integers": events.gather_integers,
    }
    start = time.perf_counter()
    for name, signature in _SIGNATURES:
        fn = numba.njit(cache=False, nogil=True)(kernels[name])
        fn.compile(signature)
    return time.perf_counter() - start


_A1, _A2, _A3 = "int64[::1]", "int64[:, ::1]", "int64[:, :, ::1]"
_F2, _F3 = "float32[:, ::1]", "float32[:, :, ::1]"


def _neuron_loop(drive: str, out: str) -> str:
    return (
        f"void({drive}, {_A1}, {_A2}, {_A2}, {', '.join([_A1] * 6)}, boolean, boolean, int64, int64, boolean, "
        f"boolean, int64, int64, boolean, {out}, {_A3}, {_A3})"
    )


# the specialisations a run of the benchmark models compiles: int64 values, and float32 integers
# where the engine keeps them in float32 (build.float32_storage)
_F1 = "float32[::1]"
_SIGNATURES = [
    (
        "float_neuron_loop",
        f"void({_F3}, {_F2}, {_F2}, {', '.join([_F1] * 7)}, boolean, boolean, boolean, int64, int64, boolean, "
        f"boolean, boolean, {_F3}, {_F3}, {_F3})",
    ),
    ("neuron_loop", _neuron_loop(_A3, _A3)),
    ("neuron_loop", _neuron_loop(_F3, _A3)),
    ("gather_events", f"int64({_A2}, int64, {_A1}, {_A1}, {_A1})"),
    ("gather_events", f"int64({_F2}, int64, {_A1}, {_A1}, {_A1})"),
    ("add_rows", f"void({_A1}, {_A1}, {_A1}, int8[:, ::1], int32[:, ::1])"),
    # fp32's exact float64 event path (events.exact_event_product): the recurrent model's spikes
    ("gather_integers", f"({_F2}, int64, {_A1}, {_A1}, {_A1})"),  # returns (int64, float64)
    ("add_rows", f"void({_A1}, {_A1}, {_A1}, float64[:, ::1], float64[:, ::1])"),
    ("_quantize_dyadic", "UniTuple(int64, 2)(float32[::1], float32, float64, int64[::1])"),
    ("_quantize_dyadic", "UniTuple(int64, 2)(float32[::1], float32, float64, float32[::1])"),
]


@contextlib.contextmanager
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # numpy keeps its BLAS threads; the table says so
            limits = contextlib.nullcontext()
            print("(threadpoolctl is not installed: numpy's BLAS uses its default threads)")
        else:
            limits = threadpool_limits(1)
        with limits:
            yield
    finally:
        torch.set_num_threads(before)


def main() -> list:
    from bench.common import Row

    with _one_thread():
        rows = run()
        compile_s = numba_compile_seconds()
    print("\nbench_backend: talon.backend CPU simulate vs talon.bridge GraphExecutor.run_sequence")
    print("(median ms of 5 runs, one thread each)")
    header = (
        f"{'graph':<18}{'T x B':>9}{'torch':>9}{'cpu fp32':>10}{'ratio':>7}"
        f"{'fp32 fast':>11}{'ratio':>7}{'int8 sim':>10}{'ratio':>7}{'int8 run':>10}{'ratio':>7}{'max |diff|':>12}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['name']:<18}{r['T']:>5} x {r['B']:<2}{r['torch']:>8.1f}{r['ours']:>10.1f}"
            f"{r['ours'] / r['torch']:>7.2f}"
            f"{r['fast']:>11.1f}{r['fast'] / r['torch']:>7.2f}{r['int8']:>10.1f}{r['int8'] / r['torch']:>7.2f}"
            f"{r['run']:>10.1f}{r['run'] / r['torch']:>7.2f}{r['diff']:>12.2e}"
        )
    print(
        "(ratio = cpu / torch; 'fast' = exact_accumulation=False, float32 BLAS; 'int8 sim' = simulate, which runs "
        "fp32 first to calibrate and report; 'int8 run' = run_compiled of a program compiled once)"
    )
    out = []
    for r in rows:
        case = f"{r['name']} T={r['T']} B={r['B']} (one thread)"
        ref = "GraphExecutor.run_sequence (time_batched)"
        out += [
            Row("backend", f"{case}: simulate fp32", r["ours"] / 1e3, ref, r["torch"] / 1e3),
            Row("backend", f"{case}: simulate fp32, float32 accumulation", r["fast"] / 1e3, ref, r["torch"] / 1e3),
            Row(
                "backend",
                f"{case}: simulate int8 (per call: fp32 calibration run, int8 run, error report)",
                r["int8"] / 1e3,
                ref,
                r["torch"] / 1e3,
            ),
            Row(
                "backend",
                f"{case}: run_compiled int8 (program compiled and calibrated once)",
                r["run"] / 1e3,
                ref,
                r["torch"] / 1e3,
            ),
        ]
    if compile_s is not None:
        out.append(
            Row("backend", "numba compile of the CPU backend's kernels (first use on a machine, then cached on disk)",
                compile_s, "—", None)
        )  # fmt: skip
    return out


if __name__ == "__main__":
    main()
