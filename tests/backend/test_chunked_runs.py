"""A run cut into chunks of steps gives the bits of the whole run (executor.py, run_memory.py).

Every comparison is exact (``np.array_equal``, dtypes equal): outputs, every node's output and
state after every step, spike counts, the quantization report and the profile's counts, in float
and fixed point, with the compiled kernels and with their numpy twins, on graphs whose neurons
fire, with chunk boundaries at odd steps, stateful neurons (LIF, CubaLIF), recurrent edges and
Delays longer than a chunk.
"""

import tracemalloc

import numpy as np
import pytest

from talon import ir
from talon.backend import default_stimulus, get_backend
from talon.backend.cpu.kernels import events
from talon.backend.stimulus import DefaultStimulus
from tests.conformance.cases import CASE_IDS, CASES

from .graphs import leaky, mlp_graph, uniform

CPU = get_backend("cpu")
ENGINE_PATHS = ["twin", "compiled"]


@pytest.fixture(params=ENGINE_PATHS)
def engine_path(request, monkeypatch):
    """Run every kernel as its numpy twin (``TALON_DISABLE_NUMBA``) or compiled (``TALON_FORCE_NUMBA``)."""
    monkeypatch.delenv("TALON_DISABLE_NUMBA", raising=False)
    monkeypatch.delenv("TALON_FORCE_NUMBA", raising=False)
    if request.param == "twin":
        monkeypatch.setenv("TALON_DISABLE_NUMBA", "1")
    else:
        pytest.importorskip("numba")
        monkeypatch.setenv("TALON_FORCE_NUMBA", "1")
    return request.param


def assert_same_run(a, b) -> None:
    assert a.timesteps_run == b.timesteps_run and a.outputs.keys() == b.outputs.keys()
    for name in a.outputs:
        assert a.outputs[name].dtype == b.outputs[name].dtype
        assert np.array_equal(a.outputs[name], b.outputs[name], equal_nan=True), name
    assert a.spike_counts == b.spike_counts and a.outputs_valid == b.outputs_valid
    assert a.quantization == b.quantization  # every agreement and error, exactly
    assert (a.node_states is None) == (b.node_states is None)
    for path, entry in (a.node_states or {}).items():
        assert entry.keys() == b.node_states[path].keys(), path
        for key, value in entry.items():
            other = b.node_states[path][key]
            assert value.dtype == other.dtype and np.array_equal(value, other, equal_nan=True), (path, key)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_conformance_graph_in_chunks_of_7_and_1(case, engine_path):
    """40 steps: chunks of 7 end mid-run at odd steps, chunks of 1 carry everything at every step."""
    graph, x = case.build(), case.inputs()
    for precision in ("fp32", "int8"):
        try:
            whole = CPU.simulate(graph, x, step_by_step=True, precision=precision)
        except Exception:  # a float-only primitive has no integer kernel: fp32 only
            assert precision != "fp32"
            continue
        assert_same_run(whole, CPU.simulate(graph, x, step_by_step=True, precision=precision, chunk_steps=7))
    assert_same_run(CPU.simulate(graph, x), CPU.simulate(graph, x, chunk_steps=1))


def recurrent_delay_graph(seed: int = 0) -> ir.Graph:
    """input[32] -> fc -> CubaLIF[24] <-> w_rec (delayed edge) ; CubaLIF -> Delay -> fc_out -> LIF[8] ->
    output, with delays up to 23 steps (longer than the chunks)."""
    rng = np.random.default_rng(seed)
    delays = rng.integers(0, 24, 24)
    delays[:3] = (0, 1, 23)
    nodes = {
        "input": ir.Input(np.array([32])),
        "fc": ir.Affine(3 * uniform(rng, (24, 32), 32), uniform(rng, 24, 32)),
        "cuba": ir.CubaLIF(tau_syn=np.full(24, 5.0), tau_mem=np.full(24, 10.0), r=np.full(24, 10.0)),
        "w_rec": ir.Linear(uniform(rng, (24, 24), 24)),
        "delay": ir.Delay(delays),
        "fc_out": ir.Affine(2 * uniform(rng, (8, 24), 24), uniform(rng, 8, 24)),
        "lif": leaky(8),
        "output": ir.Output(np.array([8])),
    }
    edges = [("input", "fc"), ("fc", "cuba"), ("cuba", "w_rec"), ("w_rec", "cuba"), ("cuba", "delay"),
             ("delay", "fc_out"), ("fc_out", "lif"), ("lif", "output")]  # fmt: skip
    return ir.Graph(nodes, edges)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int16", "int8", "int4"])
def test_recurrent_cuba_and_delays_across_chunk_boundaries(precision, engine_path):
    graph = recurrent_delay_graph()
    x = (np.random.default_rng(5).random((101, 3, 32)) < 0.3).astype(np.float32)
    whole = CPU.simulate(graph, x, step_by_step=True, precision=precision)
    assert whole.spike_counts["cuba"] > 0 and whole.spike_counts["lif"] > 0
    for chunk in (1, 22):
        assert_same_run(whole, CPU.simulate(graph, x, step_by_step=True, precision=precision, chunk_steps=chunk))
    assert_same_run(CPU.simulate(graph, x, precision=precision), CPU.simulate(graph, x, precision=precision,
                                                                              chunk_steps=13))  # fmt: skip


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_tutorial_network_on_sparse_spikes_takes_the_event_path_in_chunks(precision, monkeypatch):
    """784-128-10 on 3 % input spikes: the first layer's products are event-driven (compiled), in
    every chunk; the bits are the whole run's."""
    pytest.importorskip("numba")
    monkeypatch.setenv("TALON_FORCE_NUMBA", "1")
    monkeypatch.delenv("TALON_DISABLE_NUMBA", raising=False)
    taken = []
    original = events.exact_event_product
    monkeypatch.setattr(
        "talon.backend.cpu.kernels.float_ops.exact_event_product",
        lambda *a: taken.append(r := original(*a)) or r,
    )
    graph = mlp_graph(0)
    x = 4 * (np.random.default_rng(2).random((120, 4, 784)) < 0.03).astype(np.float32)
    whole = CPU.simulate(graph, x, precision=precision)
    assert sum(whole.spike_counts.values()) > 0
    for chunk in (9, 31):
        assert_same_run(whole, CPU.simulate(graph, x, precision=precision, chunk_steps=chunk))
    assert any(r is not None for r in taken)  # fp32's reference run (and fp32 itself) went event-driven


def test_held_inputs_and_the_default_stimulus_are_chunked_too(engine_path):
    graph = mlp_graph(1, (64, 48, 10))
    assert_same_run(CPU.simulate(graph, n_steps=90), CPU.simulate(graph, n_steps=90, chunk_steps=11))
    batch = (np.random.default_rng(0).random((2, 64)) < 0.5).astype(np.float32)  # held for every step
    assert_same_run(CPU.simulate(graph, batch, n_steps=90), CPU.simulate(graph, batch, n_steps=90, chunk_steps=11))


def test_the_default_stimulus_drawn_chunk_by_chunk_is_the_same_numbers():
    graph = ir.Graph(
        {"a": ir.Input(np.array([3, 2])), "b": ir.Input(np.array([5])), "fa": ir.Flatten(),
         "cat": ir.Concat(dim=1), "out": ir.Output(np.array([11]))},
        [("a", "fa"), ("fa", "cat"), ("b", "cat"), ("cat", "out")],
    )  # fmt: skip
    whole = default_stimulus(graph, 37)
    source = DefaultStimulus(graph, 37)
    for _ in range(2):  # a second pass (the fixed-point run after its calibration) starts over
        pieces = [source.chunk(t, min(t + 5, 37)) for t in range(0, 37, 5)]
        for name in whole:
            assert np.array_equal(np.concatenate([p[name] for p in pieces]), whole[name])


def test_profile_and_compiled_programs_in_chunks():
    graph = mlp_graph(0, (64, 96, 10))
    x = (np.random.default_rng(3).random((75, 2, 64)) < 0.2).astype(np.float32)
    a, b = CPU.profile(graph, x, precision="int8"), CPU.profile(graph, x, precision="int8", chunk_steps=8)
    for field in ("mac_ops", "synaptic_ops", "spike_count", "dense_equivalent_macs", "energy_estimate_uj",
                  "neuron_utilization"):  # fmt: skip
        assert getattr(a, field) == getattr(b, field), field
    assert_same_run(a.simulation, b.simulation)
    descriptor = CPU.compile(graph, {"precision": "int8"}, calibration_inputs=x)
    assert_same_run(CPU.run_compiled(descriptor, x), CPU.run_compiled(descriptor, x, chunk_steps=8))


def test_progress_counts_every_layer_of_every_chunk():
    graph = mlp_graph(0, (16, 32, 4))
    ticks = []
    CPU.simulate(graph, n_steps=50, precision="int8", chunk_steps=20, progress=lambda d, t: ticks.append((d, t)))
    total = 2 * len(graph.nodes) * 3  # fp32 reference + int8, 3 chunks (20, 20, 10)
    assert ticks[-1] == (total, total) and len(ticks) == total


def test_a_chunked_run_holds_one_chunk_of_layer_outputs():
    """2,000 steps of 784-128-10, batch 8: the whole run allocates every layer's output for every
    step at once (the 128-wide layers: 8 MB each), chunks of 50 steps one chunk of them."""
    graph = mlp_graph(0)
    x = np.zeros((2000, 8, 784), np.float32)
    x[::3, :, ::5] = 1.0
    peaks = {}
    for chunk in (None, 50):
        tracemalloc.start()
        CPU.simulate(graph, x, chunk_steps=chunk or 2000)
        peaks[chunk] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    outputs = 2000 * 8 * 10 * 4  # what the run returns
    assert peaks[50] < outputs + 0.1 * (peaks[None] - outputs)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_outputs_streamed_to_the_caller_are_the_whole_runs(precision):
    graph = mlp_graph(0, (64, 96, 10))
    x = (np.random.default_rng(4).random((75, 2, 64)) < 0.3).astype(np.float32)
    whole = CPU.simulate(graph, x, precision=precision)
    pieces = []

    def keep(start, stop, out):
        pieces.append((start, stop, out["output"]))

    streamed = CPU.simulate(graph, x, precision=precision, chunk_steps=8, on_outputs=keep)
    assert [(a, b) for a, b, _ in pieces] == [(t, min(t + 8, 75)) for t in range(0, 75, 8)]
    assert np.array_equal(np.concatenate([y for *_, y in pieces]), whole.outputs["output"])
    assert streamed.outputs == {} and streamed.outputs_valid and streamed.spike_counts == whole.spike_counts
    if precision != "fp32":
        q, r = streamed.quantization, whole.quantization
        assert (q.spike_agreement, q.per_node_spike_agreement, q.output_max_abs_error) == (
            r.spike_agreement, r.per_node_spike_agreement, r.output_max_abs_error)  # fmt: skip
        for name in r.output_rmse:  # float64 sums of squares added per chunk
            assert q.output_rmse[name] == pytest.approx(r.output_rmse[name], rel=1e-12)
            assert q.output_relative_error[name] == pytest.approx(r.output_relative_error[name], rel=1e-12)
    with pytest.raises(Exception, match="cannot be combined with step_by_step"):
        CPU.simulate(graph, x, step_by_step=True, on_outputs=print)


def test_the_cli_writes_outputs_to_hdf5_as_it_runs(tmp_path):
    import h5py
    from click.testing import CliRunner

    from talon.cli import main

    graph = mlp_graph(0, (64, 96, 10))
    ir.write(tmp_path / "mlp.t1c", graph)
    out = tmp_path / "run.h5"
    done = CliRunner().invoke(main, ["simulate", str(tmp_path / "mlp.t1c"), "--steps", "120", "-o", str(out),
                                     "--precision", "int8", "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    whole = CPU.simulate(graph, n_steps=120, precision="int8")
    with h5py.File(out) as f:
        assert np.array_equal(f["outputs/output"][()], whole.outputs["output"])
        assert f.attrs["timesteps_run"] == 120 and f.attrs["precision"] == "int8"
    done = CliRunner().invoke(main, ["simulate", str(tmp_path / "mlp.t1c"), "-o", str(tmp_path / "mlp.t1c")])
    assert done.exit_code == 2 and "would destroy it" in done.stderr
