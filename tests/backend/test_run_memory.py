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
from talon.backend.cpu import backend
from talon.backend.cpu.lowering.program import lower
from talon.backend.cpu.run import run_memory
from talon.cli import main

from .graphs import chain, mlp_graph, uniform

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
    # step by step: the 26 values besides the graph output (3, held as outputs) and the membranes 8 + 3
    held = run_memory.held_bytes(program, 10, 2, 4, record=program.ops)
    assert held == {"outputs": 3 * 80, "step_by_step": 26 * 80, "neuron states": 11 * 80}
    held = run_memory.held_bytes(program, 10, 2, 4, record=[program.op("lif1")])
    assert held == {"outputs": 3 * 80, "step_by_step": 8 * 80, "neuron states": 8 * 80}
    # fp16: 2 bytes a value, and the float16 outputs beside their float32 copy; fixed point: the raw
    # int64 and the float32 real value of everything but the float32 graph output
    held = run_memory.held_bytes(program, 10, 2, 2, record=program.ops)
    assert held == {"outputs": 3 * 20 * 6, "step_by_step": 26 * 20 * 2, "neuron states": 11 * 20 * 2}
    held = run_memory.held_bytes(program, 10, 2, 4, record=program.ops, fixed_point=True)
    assert held == {"outputs": 3 * 80, "step_by_step": 26 * 20 * 12, "neuron states": 11 * 20 * 12}
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
    held = run_memory.held_bytes(program, 1, 1, 4, record=program.ops)
    _limit_at(monkeypatch, 200 * sum(held.values()))
    message = (
        r"a run of 1,000 steps x batch 1 at fp32 must hold [\d,]+ bytes of results for all steps \(outputs [\d,]+, "
        r"step_by_step [\d,]+, neuron states [\d,]+\) .* run at most 1\d\d steps per call .*"
        r"record only the nodes you need with probes=\[\.\.\.\]; or drop step_by_step"
    )
    with pytest.raises(BackendError, match=message):
        CPU.simulate(graph, n_steps=1000, step_by_step=True)
    assert CPU.simulate(graph, n_steps=1000).timesteps_run == 1000  # only the outputs are held
    descriptor = CPU.compile(graph, {"precision": "int8"})
    with pytest.raises(BackendError, match=r"at int8 .*or drop step_by_step \(only the graph outputs are kept\)"):
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


# ---- what a step-by-step run holds: values and neuron states, per precision ----------------------


def _cuba_chain() -> ir.Graph:
    """input[64] -> fc Affine(64->64) -> lif CubaLIF(64) (two states a neuron: v and i) -> output."""
    rng = np.random.default_rng(4)
    cuba = ir.CubaLIF(tau_mem=np.full(64, 4.0), tau_syn=np.full(64, 2.0), r=np.full(64, 4.0), v_threshold=np.ones(64))
    return chain([64], ("fc", ir.Affine(uniform(rng, (64, 64), 8), uniform(rng, 64, 8))), ("lif", cuba))


@pytest.mark.parametrize(
    ("precision", "steps", "limit", "held"),
    [
        ("fp32", 3400, 3_000_000, "outputs 870,400, step_by_step 870,400, neuron states 1,740,800"),
        ("int8", 2400, 6_000_000, "outputs 614,400, step_by_step 1,843,200, neuron states 3,686,400"),
    ],
)
def test_a_run_whose_recorded_states_cannot_fit_is_refused_before_it_starts(monkeypatch, precision, steps, limit, held):
    """``probes=["lif"]`` on a CubaLIF: per step the graph output (64 float32, 256 B) and lif's
    output, membrane v and synaptic current i (64 values each). fp32 holds them at 4 B: 256 + 3 x 256
    = 1,024 B a step, 3,481,600 B for 3,400 steps, beyond the limit of 3,000,000 (counting the
    values alone, 512 B a step, the run looked like it fitted). int8 reports each value and state as
    int64 and float32 (12 B): 256 + 64 x 12 + 128 x 12 = 2,560 B a step, 6,144,000 B for 2,400 steps
    (with the fp32 reference's outputs and trains on top), beyond 6,000,000 (at 4 B a value, no
    states: 512 B a step). A quarter of the steps fits."""
    graph = _cuba_chain()
    x = (np.random.default_rng(1).random((steps, 1, 64)) < 0.5).astype(np.float32)
    _limit_at(monkeypatch, limit)
    message = rf"a run of {steps:,} steps x batch 1 at {precision} must hold [\d,]+ bytes of results for all steps "
    with pytest.raises(BackendError, match=message + rf"\({held}[,)].*; probe fewer nodes; or drop step_by_step"):
        CPU.simulate(graph, x, step_by_step=True, probes=["lif"], precision=precision)
    result = CPU.simulate(graph, x[: steps // 4], step_by_step=True, probes=["lif"], precision=precision)
    assert set(result.node_states["lif"]) >= {"v", "i"} and result.spike_counts["lif"] > 0


def _array_bytes(arrays, distinct) -> int:
    """Bytes of ``arrays``, each object once; with ``distinct`` each block of memory once (views share it)."""
    sizes = {}
    for a in arrays:
        base = a
        while distinct and isinstance(base.base, np.ndarray):
            base = base.base
        sizes[id(base)] = base.nbytes
    return sum(sizes.values())


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("probes", [None, ["fc", "rnn.lif"], ["output", "side"]])
def test_the_estimate_of_a_step_by_step_run_is_what_it_holds_at_the_end(monkeypatch, precision, probes):
    """held_bytes against the arrays alive when the run hands back its result: the result's (outputs,
    node_states) and what the trace still holds (an fp16 run's float16 outputs). In a run of several
    chunks every value is a copy and the estimate is exact; in a run of one chunk a pass-through node
    (Input, Output, an inlined subgraph's Input / Output) returns its input's array, which the
    estimate counts once more: exact per reported array, an upper bound of the memory."""
    from talon.backend.cpu.run.probes import resolve_probes

    from .test_simulate import _cyclic_with_subgraph_and_delay

    graph = _cyclic_with_subgraph_and_delay()
    program = lower(graph)
    x = np.random.default_rng(3).uniform(0, 2, (23, 2, 4)).astype(np.float32)
    record = resolve_probes(program, probes) or program.ops
    itemsize = {"fp32": 4, "fp16": 2, "int8": 4}[precision]
    estimate = run_memory.held_bytes(program, 23, 2, itemsize, record=record, fixed_point=precision == "int8")
    assert estimate["neuron states"] > 0  # lif (rnn.lif) and side record their membranes
    end = {}
    node_states = backend.node_states

    def keep_the_trace(engine, trace, probed=None):
        end["states"] = node_states(engine, trace, probed)
        end["trace"] = trace
        return end["states"]

    monkeypatch.setattr(backend, "node_states", keep_the_trace)
    for chunk in (5, None):
        result = CPU.simulate(graph, x, step_by_step=True, probes=probes, precision=precision, chunk_steps=chunk)
        assert result.spike_counts["rnn.lif"] > 0
        trace = end["trace"]
        arrays = [*trace.values.values(), *(a for st in trace.states.values() for a in st.values())]
        arrays += [*result.outputs.values(), *(a for entry in result.node_states.values() for a in entry.values())]
        assert _array_bytes(arrays, distinct=False) == sum(estimate.values())
        if chunk is not None:
            assert _array_bytes(arrays, distinct=True) == sum(estimate.values())
        else:
            assert _array_bytes(arrays, distinct=True) <= sum(estimate.values())
