"""Long runs of the CPU backend: chunks of steps (the default) against one chunk holding every step.

``simulate`` cuts a run into chunks of steps (docs/backend.md §3, ``run_memory.CHUNK_BYTES``), so
each layer's output exists for one chunk at a time. This module runs the same model both ways in
one process, interleaved (the whole run is ``chunk_steps=T``, which is how every run was executed
before chunking), and reports the time ratio; each way's peak resident memory (``ru_maxrss``) is
measured in a fresh child process. The model is a 33.6 M-parameter convolutional SNN on a
``[2, 32, 32]`` spike input (the size of the one whose 2,000-step run was killed for memory).
"""

from __future__ import annotations

import numpy as np

from talon import ir

SPEED_STEPS = {"fp32": 400, "int8": 200}  # cut into chunks of 167 steps (64 MiB of layer outputs)
RSS_STEPS = (500, 2000)


def conv_snn(seed: int = 0) -> ir.Graph:
    """[2, 32, 32] -> Conv(2->32, 3x3) -> LIF -> Conv(32->64, 3x3, stride 2) -> LIF -> Flatten ->
    Affine(16384->2048) -> LIF -> Affine(2048->10) -> LIF: 33.6 M parameters, 51,210 neurons."""
    from talon.examples import SNNTORCH_TAU, chain, leaky, uniform

    def lif(*shape):
        return leaky(1, tau=np.full(shape, SNNTORCH_TAU), r=np.full(shape, SNNTORCH_TAU))

    rng = np.random.default_rng(seed)
    return chain(
        [2, 32, 32],
        ("conv1", ir.Conv2d(3 * uniform(rng, (32, 2, 3, 3), 18), uniform(rng, 32, 18), padding=1)),
        ("lif1", lif(32, 32, 32)),
        ("conv2", ir.Conv2d(3 * uniform(rng, (64, 32, 3, 3), 288), uniform(rng, 64, 288), stride=2, padding=1)),
        ("lif2", lif(64, 16, 16)),
        ("flatten", ir.Flatten()),
        ("fc1", ir.Affine(3 * uniform(rng, (2048, 16384), 16384), uniform(rng, 2048, 16384))),
        ("lif3", lif(2048)),
        ("fc2", ir.Affine(3 * uniform(rng, (10, 2048), 2048), uniform(rng, 10, 2048))),
        ("lif4", lif(10)),
    )


def child_run(steps: int, chunk: int | None, precision: str = "fp32") -> dict:
    """Peak RSS (bytes, Linux ``VmHWM``) during one ``simulate`` in a fresh interpreter (numba forced),
    after a 20-step run has loaded the kernels (the peak is reset after it), its wall time and spike counts.
    The peak includes building the kernels (each ``simulate`` call builds them: the float32 and
    float64 copies of the weights, about 0.4 GB here), the same for both ways of running."""
    from bench.bench_simulate_memory import child_run as simulate_in_child  # (it imports conv_snn from here)

    # numba forced: a run's size decides whether numba starts (its import adds ~150 MB), not the chunks
    return simulate_in_child(steps, precision, f"dict(chunk_steps={chunk!r})", warmup=20)


def main() -> list:
    from bench.common import Row, median_times
    from talon.backend import get_backend

    cpu = get_backend("cpu")
    graph = conv_snn()
    rows = []
    print("\nbench_chunked: CPU backend simulate in chunks of steps vs the whole run at once")
    cpu.simulate(graph, n_steps=5, precision="int8")  # first-use costs (imports, weight caches) paid before timing
    for precision, steps in SPEED_STEPS.items():
        times = median_times(
            {
                "chunked": lambda s=steps, p=precision: cpu.simulate(graph, n_steps=s, precision=p),
                "whole": lambda s=steps, p=precision: cpu.simulate(graph, n_steps=s, precision=p, chunk_steps=s),
            },
            repeats=3,
            warmup=0,
        )
        case = f"33.6M-param conv SNN, {steps:,} steps, {precision}: simulate in chunks (default)"
        rows.append(Row("chunked", case, times["chunked"], "the whole run in one chunk", times["whole"]))
        print(f"{case}: {times['chunked']:.2f} s vs whole {times['whole']:.2f} s")
    for steps in (20, *RSS_STEPS[:1]):
        print(f"peak RSS, {steps:,} steps fp32 in chunks: {child_run(steps, None)['rss'] / 2**20:,.0f} MiB")
    for steps in RSS_STEPS[1:]:
        chunked, whole = child_run(steps, None), child_run(steps, steps)
        assert chunked["spikes"] == whole["spikes"]
        print(
            f"peak RSS, {steps:,} steps fp32: chunks {chunked['rss'] / 2**20:,.0f} MiB, whole run "
            f"{whole['rss'] / 2**20:,.0f} MiB (spikes {sum(whole['spikes'].values()):,}; single runs "
            f"{chunked['seconds']:.1f} s vs {whole['seconds']:.1f} s)"
        )
    return rows


if __name__ == "__main__":
    main()
