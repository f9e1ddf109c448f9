"""What each path of a neuron loop costs, measured in one warm process: the numpy/PyTorch twin and the
compiled kernel (numba already started), per call over a grid of ``steps x batch x width``, CPU time
(``time.process_time``) and wall, interleaved, medians; and a least-squares fit of each path to
``steps * (per_step + per_element * batch * width)``.

``python -m bench.loop_costs [float|fixed|sequence|synaptic ...]``; ``synaptic`` is a CubaLI layer,
whose only compiled loop is its synaptic current (the difference of its paths is that loop's). The
fits are where the constants of the cost models (``FLOAT_LOOP_COST``, ``FIXED_LOOP_COST``,
``SEQUENCE_LOOP_COST``) come from; numba's start-up in a new process is measured by
``bench.startup_costs``. One thread (BLAS, OpenMP, torch).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

GRID = [  # (steps, batch, width): a few elements per step up to ~1e5, few steps up to 20,000
    (20_000, 1, 16), (20_000, 1, 128), (5_000, 1, 1024), (2_000, 16, 256), (1_000, 64, 128), (1_000, 16, 2048),
    (500, 64, 1024), (300, 64, 2048), (10_000, 16, 256), (1_200, 64, 512),
]  # fmt: skip
MAX_ELEMENTS = 60_000_000  # steps x batch x width per call
RESET = "subtract"  # --reset value: the variant with the most operations a step


def _graph(width: int, synaptic: bool = False):
    """Input -> LIF -> Output; ``synaptic``: a CubaLI instead, whose synaptic current is its only
    compiled loop in ``run_sequence`` (its membrane steps in PyTorch on both paths)."""
    from talon import ir
    from talon.examples import leaky

    n = width
    if synaptic:
        cuba = dict(tau_syn=np.full(n, 4.0), tau_mem=np.full(n, 8.0), r=np.ones(n), v_leak=np.zeros(n))
        neuron = ir.CubaLI(**cuba)
    else:  # snnTorch's Leaky (subtract reset one step late), the examples' and benchmarks' neuron
        neuron = leaky(n, reset_mode=RESET)
    return ir.Graph(
        {"input": ir.Input(np.array([n])), "neuron": neuron, "output": ir.Output(np.array([n]))},
        [("input", "neuron"), ("neuron", "output")],
    )


def _input(steps: int, batch: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).normal(0.4, 0.6, (steps, batch, width)).astype(np.float32)


def _backend_call(precision: str, steps: int, batch: int, width: int):
    """One run of the CPU backend's engine over one LIF layer (the neuron loop dominates)."""
    from talon.backend.config import CompileConfig
    from talon.backend.cpu.lowering.program import lower
    from talon.backend.cpu.run.engine import Engine, calibrate

    program = lower(_graph(width))
    x = _input(steps, batch, width)
    calibration = None if precision == "fp32" else calibrate(program, {"input": x[:50]})[0]
    engine = Engine(program, CompileConfig(precision=precision), calibration)
    return lambda: engine.run({"input": x})


def _sequence_call(steps: int, batch: int, width: int, synaptic: bool = False):
    import torch

    from talon import bridge

    torch.set_num_threads(1)
    executor = bridge.ir_to_torch(_graph(width, synaptic))
    x = torch.from_numpy(_input(steps, batch, width))

    def call():
        with torch.no_grad():
            executor.run_sequence(x)

    return call


FAMILIES = {
    "float": lambda s, b, w: _backend_call("fp32", s, b, w),
    "fixed": lambda s, b, w: _backend_call("int8", s, b, w),
    "sequence": _sequence_call,
    "synaptic": lambda s, b, w: _sequence_call(s, b, w, synaptic=True),
}
PATHS = {"twin": "TALON_DISABLE_NUMBA", "kernel": "TALON_FORCE_NUMBA"}


def _timed(fn, env: str) -> tuple[float, float]:
    os.environ[env] = "1"
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        del os.environ[env]


def measure(family: str, repeats: int = 5) -> list[dict]:
    rows = []
    for steps, batch, width in GRID:
        if steps * batch * width > MAX_ELEMENTS:
            continue
        call = FAMILIES[family](steps, batch, width)
        for env in PATHS.values():  # warm-up: kernels loaded, buffers allocated
            _timed(call, env)
        cpu: dict[str, list[float]] = {p: [] for p in PATHS}
        wall: dict[str, list[float]] = {p: [] for p in PATHS}
        for _ in range(repeats):
            for path, env in PATHS.items():
                c, w = _timed(call, env)
                cpu[path].append(c)
                wall[path].append(w)
        row = {"steps": steps, "batch": batch, "width": width, "load": os.getloadavg()[0]}
        for path in PATHS:
            row[f"{path}_cpu"] = statistics.median(cpu[path])
            row[f"{path}_wall"] = statistics.median(wall[path])
        rows.append(row)
        print(
            f"{family:8} T={steps:>6} B={batch:>3} L={width:>5}  twin {row['twin_cpu'] * 1e3:9.1f} ms CPU "
            f"({row['twin_wall'] * 1e3:9.1f} wall)  kernel {row['kernel_cpu'] * 1e3:9.1f} ms CPU "
            f"({row['kernel_wall'] * 1e3:9.1f} wall)  load {row['load']:.2f}",
            flush=True,
        )
    return rows


def fit(rows: list[dict], path: str) -> tuple[float, float]:
    """(per step, per element) seconds of ``path``: least squares of CPU time / steps on ``[1, B*L]``,
    weighted so every row counts alike (relative error)."""
    a = np.array([[1.0, r["batch"] * r["width"]] for r in rows])
    y = np.array([r[f"{path}_cpu"] / r["steps"] for r in rows])
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    return float(coef[0]), float(coef[1])


def main(families: list[str], repeats: int) -> None:
    for family in families:
        rows = measure(family, repeats)
        for path in PATHS:
            step, element = fit(rows, path)
            print(f"{family:8} {path:6}: {step * 1e6:8.2f} us per step + {element * 1e9:7.3f} ns per element")
    sys.stdout.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.loop_costs")
    parser.add_argument("families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reset", default=RESET, choices=["subtract", "value"], help="the LIF layer's reset mode")
    args = parser.parse_args()
    RESET = args.reset
    main(args.families, args.repeats)
