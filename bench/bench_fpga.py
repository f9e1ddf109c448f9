"""FPGA backend C simulation (g++) vs the CPU backend's fixed-point simulation, same graph and inputs.

Both run the same integers (the C simulation is bit-exact against the CPU backend; this module
checks it again). Timed, interleaved with a pause before each run (the reference's BLAS threads
spin for ~0.1 s after a call): the C-simulation executable on the inputs (``csim.run``:
writing the inputs and parameters, the process, reading the results back) against
``get_backend("cpu").simulate(..., precision=...)`` as a user calls it. The g++ build is paid once
per network structure (then cached by content, docs/fpga.md §4) and is reported as its own row,
like a JIT compile. Printed as steps per second (T x B sample-steps / s) and the ratio.

End to end, ``get_backend("fpga").simulate(graph, x, precision=...)`` as a user calls it — from
the graph to the ``SimulationResult``: the fp32 calibration run and the integer kernels (the CPU
backend's), code generation, hashing the project's sources to find the g++ build in the cache
(warm: built by the warm-up call, not timed), writing parameters and inputs, the process, reading
and converting the results — against ``get_backend("cpu").simulate(..., precision=...)`` (its
calibration and run), once with the Latency strategy and once with Resource at ``RESOURCE_REUSE``
(another dense kernel, docs/fpga.md §3), both checked equal to the CPU backend first.
Run: ``python -m bench`` or ``python -m bench.bench_fpga``.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from bench.common import Row, median_times
from talon.backend import CompileConfig, get_backend
from talon.backend.fpga import csim, examples
from talon.backend.fpga.codegen import generate
from talon.backend.fpga.lowering import plan_fixed
from talon.backend.fpga.project import project_files
from talon.backend.stimulus import prepare_inputs

REPEATS = 9
SETTLE_S = 0.25
RESOURCE_REUSE = 4
CASES = [  # name, graph, inputs [T, B, ...], precision
    ("mlp 784-128-10", examples.mlp_snn, lambda: examples.mlp_inputs(100, 8), "int8"),
    ("conv + pooling", examples.conv_snn, lambda: examples.conv_inputs(100, 8), "int8"),
    ("recurrent CubaLIF", examples.recurrent_snn, lambda: examples.recurrent_inputs(100, 8), "int16"),
]


def _fresh_build(files: dict[str, str], project: str) -> float:
    """Seconds of one g++ build from scratch (an empty cache), as a first simulate pays it."""
    previous = os.environ.get(csim.CACHE_ENV)
    with tempfile.TemporaryDirectory(prefix="talon-bench-csim-") as cache:
        os.environ[csim.CACHE_ENV] = cache
        try:
            start = time.perf_counter()
            csim.build(files, project)
            return time.perf_counter() - start
        finally:
            if previous is None:
                os.environ.pop(csim.CACHE_ENV, None)
            else:
                os.environ[csim.CACHE_ENV] = previous


def _same(a, b) -> bool:
    return a.spike_counts == b.spike_counts and all(np.array_equal(a.outputs[k], b.outputs[k]) for k in b.outputs)


def main() -> list[Row]:
    cpu = get_backend("cpu")
    fpga = get_backend("fpga")
    rows: list[Row] = []
    flags = " ".join(csim.CXXFLAGS)
    print(f"\nbench_fpga: C simulation (g++ {flags}) vs CPU backend simulate, same integers")
    print(f"{'graph':<20}{'prec':>6}{'T x B':>9}{'build s':>9}{'csim steps/s':>14}{'cpu steps/s':>13}{'ratio':>7}"
          f"{'e2e ratio':>10}{'e2e res':>9}")  # fmt: skip
    for name, build, make_inputs, precision in CASES:
        graph, x = build(0), make_inputs()
        steps, batch = x.shape[:2]
        arrays, *_ = prepare_inputs(graph, x, None)
        plan = plan_fixed(graph, CompileConfig(precision=precision), arrays)
        gen = generate(plan, "bench_csim")
        files = project_files(gen, "xczu9eg-ffvb1156-2-i", 5)
        build_s = _fresh_build(files, gen.project_name)
        exe = csim.build(files, gen.project_name)
        probes = csim.run(exe, gen, arrays)
        ref = cpu.simulate(graph, x, precision=precision, step_by_step=True)
        for path in plan.spiking_paths():
            vid = plan.program.op(path).outputs[0]
            assert np.array_equal(probes[vid], ref.node_states[path]["output_int"]), f"{name}: {path} differs"
        program = cpu.compile(graph, precision=precision, calibration_inputs=arrays)
        assert np.array_equal(cpu.run_compiled(program, x).outputs["output"], ref.outputs["output"])
        resource = {"strategy": "Resource", "reuse_factor": RESOURCE_REUSE}
        for kwargs in ({}, resource):  # builds into the cache if new (untimed), and checks the integers
            assert _same(fpga.simulate(graph, x, precision=precision, **kwargs), ref), f"{name}: {kwargs} differs"
        times = median_times(
            {
                "csim": lambda exe=exe, gen=gen, arrays=arrays: csim.run(exe, gen, arrays),
                "cpu": lambda g=graph, x=x, p=precision: cpu.simulate(g, x, precision=p),
                "cpu compiled": lambda program=program, x=x: cpu.run_compiled(program, x),
                "fpga simulate": lambda g=graph, x=x, p=precision: fpga.simulate(g, x, precision=p),
                "fpga simulate resource": lambda g=graph, x=x, p=precision, kw=resource: fpga.simulate(
                    g, x, precision=p, **kw
                ),
            },
            repeats=REPEATS,
            settle=SETTLE_S,
        )
        t_csim, t_cpu = times["csim"], times["cpu"]
        n = steps * batch
        print(f"{name:<20}{precision:>6}{steps:>5} x {batch:<2}{build_s:>9.1f}{n / t_csim:>14.0f}{n / t_cpu:>13.0f}"
              f"{t_cpu / t_csim:>7.2f}{t_cpu / times['fpga simulate']:>10.2f}"
              f"{t_cpu / times['fpga simulate resource']:>9.2f}")  # fmt: skip
        case = f"{name} {precision} T={steps} B={batch}"
        rows.append(Row("fpga", f"{case}: C simulation (built once)", t_csim, "CPU backend simulate", t_cpu))
        rows.append(Row("fpga", f"{case}: C simulation (built once)", t_csim,
                        "CPU backend run_compiled (calibrated once)", times["cpu compiled"]))  # fmt: skip
        e2e = "graph to result: calibration, codegen, cached-build lookup, run, results; warm build cache"
        reference = "CPU backend simulate (calibration + run)"
        rows.append(Row("fpga", f"{case}: fpga.simulate Latency ({e2e})", times["fpga simulate"], reference, t_cpu))
        rows.append(Row("fpga", f"{case}: fpga.simulate Resource R={RESOURCE_REUSE} ({e2e})",
                        times["fpga simulate resource"], reference, t_cpu))  # fmt: skip
        rows.append(Row("fpga", f"{case}: g++ {flags} build (once per network structure, then cached)",
                        build_s, "—", None))  # fmt: skip
    print(
        "(steps/s = sample-steps per second; ratio = cpu time / csim time; e2e = cpu simulate / fpga.simulate, "
        "Latency and Resource; both simulates include their fp32 calibration)"
    )
    return rows


if __name__ == "__main__":
    main()
