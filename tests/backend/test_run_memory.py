"""Memory of a CPU backend run (run_memory.py): chunks of steps keep the layer outputs bounded, and
a run whose held results cannot fit is refused before it starts, naming what is held.

The executor holds each layer's output for one chunk of steps at a time; what grows with the steps
is only what the run hands back (the graph outputs; every value with ``step_by_step``; the fp32
reference's outputs and spike bits at a reduced precision).
"""

import numpy as np
import pytest

from talon import ir
from talon.backend import BackendError, get_backend
from talon.backend.cpu.lowering.program import lower
from talon.backend.cpu.run import run_memory
from talon.cli import main

from .graphs import mlp_graph

CPU = get_backend("cpu")


def test_the_estimate_replays_the_executors_schedule():
    # input[4] -> fc1[8] -> lif1[8] -> fc2[3] -> lif2[3] -> output[3]; 10 steps x batch 2 x 4 B = 80 B per element
    program = lower(mlp_graph(0, (4, 8, 3)))
    # the peak is lif1 running: its input fc1 (8) and its output (8); the Input is freed after fc1
    assert run_memory.sequence_bytes(program, 10, 2, 4) == 16 * 80
    # fc1 with float64 accumulation: input (4) + output (8) + an 8-byte accumulator of the output
    assert run_memory.sequence_bytes(program, 10, 2, 4, accumulator_itemsize=8) == 12 * 80 + 8 * 10 * 2 * 8
    # step by step every value is kept: 4 + 8 + 8 + 3 + 3 + 3
    everything = range(len(program.values))
    assert run_memory.sequence_bytes(program, 10, 2, 4, keep=everything) == 29 * 80
    # only lif1 probed: kept besides the outputs (3 + 3), the peak is still lif1 running (16), then 8 + 6
    assert run_memory.sequence_bytes(program, 10, 2, 4, keep=program.op("lif1").outputs) == 16 * 80


def test_held_results_and_the_chunk_plan():
    program = lower(mlp_graph(0, (4, 8, 3)))
    # 10 steps x batch 2: outputs 3 floats; step by step 29 values; reference: outputs + 11 spike bits
    assert run_memory.held_bytes(program, 10, 2, 4) == {"outputs": 3 * 20 * 4}
    everything = range(len(program.values))
    assert run_memory.held_bytes(program, 10, 2, 4, step_values=everything)["step_by_step"] == 29 * 20 * 4
    assert run_memory.held_bytes(program, 10, 2, 4, step_values=program.op("lif1").outputs)["step_by_step"] == 8 * 80
    held = run_memory.held_bytes(program, 10, 2, 4, reference=True, spiking_sizes=[8, 3])
    assert held["fp32 reference"] == 3 * 20 * 4 + 11 * 20 // 8
    # several chunks: the reference runs in lockstep, its trains are held for one chunk (and no
    # outputs when they stream)
    lockstep = dict(reference=True, spiking_sizes=[8, 3], chunk=4, lockstep=True)
    assert run_memory.held_bytes(program, 10, 2, 4, **lockstep)["fp32 reference"] == 3 * 20 * 4 + 11 * 4 * 2 // 8
    held = run_memory.held_bytes(program, 10, 2, 4, **lockstep, stream_outputs=True)
    assert held == {"outputs": 0, "fp32 reference": 11 * 4 * 2 // 8}
    per_step = run_memory.sequence_bytes(program, 1, 2, 4)  # 16 values x 2 x 4 B = 128 B
    assert run_memory.plan_chunk(program, 1000, 2, 4, budget=10 * per_step + 5) == 10
    assert run_memory.plan_chunk(program, 7, 2, 4, budget=10 * per_step) == 7  # all steps fit: one chunk
    assert run_memory.plan_chunk(program, 1000, 2, 4, budget=1) == 1
    assert run_memory.plan_chunk(program, 1000, 2, 4, chunk_steps=33) == 33
    with pytest.raises(BackendError, match="chunk_steps must be a positive integer"):
        run_memory.plan_chunk(program, 10, 2, 4, chunk_steps=0)


def _limit_at(monkeypatch, nbytes: int) -> None:
    monkeypatch.setattr(run_memory, "memory_limit", lambda: nbytes)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_run_the_old_guard_refused_now_runs_in_chunks_with_the_same_results(monkeypatch, precision):
    graph = mlp_graph(0, (16, 64, 10))
    program = lower(graph)
    x = (np.random.default_rng(1).random((301, 2, 16)) < 0.4).astype(np.float32)
    whole = CPU.simulate(graph, x, precision=precision)
    whole_profile = CPU.profile(graph, x, precision=precision)
    per_step = run_memory.sequence_bytes(program, 1, 2, 4, accumulator_itemsize=8)
    _limit_at(monkeypatch, 100 * per_step)  # all 301 steps of layer outputs would need 3x the limit
    chunked = CPU.simulate(graph, x, precision=precision)
    assert np.array_equal(chunked.outputs["output"], whole.outputs["output"])
    assert chunked.spike_counts == whole.spike_counts and sum(whole.spike_counts.values()) > 0
    profile = CPU.profile(graph, x, precision=precision)
    assert (profile.spike_count, profile.synaptic_ops) == (whole_profile.spike_count, whole_profile.synaptic_ops)
    assert profile.simulation.quantization == whole_profile.simulation.quantization


def test_recording_every_layer_beyond_memory_is_refused_naming_the_steps_that_fit(monkeypatch):
    graph = mlp_graph(0, (16, 64, 10))
    program = lower(graph)
    held = run_memory.held_bytes(program, 1, 1, 4, step_values=range(len(program.values)))
    _limit_at(monkeypatch, 200 * sum(held.values()))
    message = r"a run of 1,000 steps x batch 1 must hold [\d,]+ bytes of results for all steps \(outputs [\d,]+, "
    with pytest.raises(BackendError, match=message + r"step_by_step [\d,]+\) .* run at most 1\d\d steps"):
        CPU.simulate(graph, n_steps=1000, step_by_step=True)
    assert CPU.simulate(graph, n_steps=1000).timesteps_run == 1000  # only the outputs are held
    descriptor = CPU.compile(graph, {"precision": "int8"})
    with pytest.raises(BackendError, match="without step_by_step only the graph outputs are kept"):
        CPU.run_compiled(descriptor, np.zeros((1000, 1, 16), np.float32), step_by_step=True)


def test_the_cli_refuses_it_in_one_line(monkeypatch, tmp_path):
    from click.testing import CliRunner

    path = tmp_path / "mlp.t1c"
    graph = mlp_graph(0, (16, 64, 10))
    ir.write(path, graph)
    _limit_at(monkeypatch, 10 * sum(run_memory.held_bytes(lower(graph), 1, 1, 4).values()))
    result = CliRunner().invoke(main, ["simulate", str(path), "--steps", "50"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: a run of 50 steps") and result.stderr.count("\n") == 1
    assert "(outputs 2,000)" in result.stderr
