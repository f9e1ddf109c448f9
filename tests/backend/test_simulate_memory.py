"""What ``simulate`` holds and rebuilds: probes (probes.py), the fp32 reference run in lockstep with a
chunked reduced-precision run (reference_run.py) and the program cache (program_cache.py).

Every comparison of values is exact (``np.array_equal``, dtypes equal) unless a float64 sum is
accumulated in another order, where the tolerance says so.
"""

import copy
import tracemalloc

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.backend.config import CompileConfig
from talon.backend.cpu import backend
from talon.backend.cpu.lowering.program import lower
from talon.backend.cpu.run import program_cache, run_memory
from talon.backend.cpu.run.engine import Engine
from talon.backend.cpu.run.reference_run import runs_in_lockstep
from talon.backend.errors import BackendError
from talon.examples import chain

from .graphs import mlp_graph, uniform
from .test_chunked_runs import assert_same_run, engine_path  # noqa: F401 (the fixture)
from .test_simulate import _cyclic_with_subgraph_and_delay

CPU = get_backend("cpu")


def _entries_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert value.dtype == b[key].dtype and np.array_equal(value, b[key], equal_nan=True), key


# ---- probes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_probes_record_the_named_nodes_as_the_full_record_does_in_any_chunks(precision, engine_path):  # noqa: F811
    graph = _cyclic_with_subgraph_and_delay()
    x = np.random.default_rng(3).uniform(0, 2, (23, 2, 4)).astype(np.float32)
    full = CPU.simulate(graph, x, step_by_step=True, precision=precision)
    assert full.spike_counts["rnn.lif"] > 0 and full.spike_counts["side"] > 0
    for chunk in (None, 5):
        probed = CPU.simulate(graph, x, step_by_step=True, precision=precision, chunk_steps=chunk,
                              probes=["fc", "rnn.lif"])  # fmt: skip
        assert list(probed.node_states) == ["fc", "rnn.lif"]
        for path in probed.node_states:
            _entries_equal(probed.node_states[path], full.node_states[path])
        assert "v" in probed.node_states["rnn.lif"]  # the membrane, recorded only for the probed neuron
        for name in full.outputs:  # the graph outputs are the full run's
            assert np.array_equal(probed.outputs[name], full.outputs[name])
        assert probed.spike_counts == full.spike_counts and probed.quantization == full.quantization
    subgraph = CPU.simulate(graph, x, step_by_step=True, precision=precision, chunk_steps=4, probes=["rnn"])
    assert set(subgraph.node_states) == {path for path in full.node_states if path.startswith("rnn.")}
    for path in subgraph.node_states:
        _entries_equal(subgraph.node_states[path], full.node_states[path])


def test_compiled_programs_take_probes_too():
    graph = mlp_graph(0, (16, 32, 4))
    x = (np.random.default_rng(2).random((30, 2, 16)) < 0.4).astype(np.float32)
    descriptor = CPU.compile(graph, {"precision": "int8"}, calibration_inputs=x)
    full = CPU.run_compiled(descriptor, x, step_by_step=True)
    probed = CPU.run_compiled(descriptor, x, step_by_step=True, probes="lif1", chunk_steps=7)
    assert list(probed.node_states) == ["lif1"]
    _entries_equal(probed.node_states["lif1"], full.node_states["lif1"])
    assert "v_int" in probed.node_states["lif1"]


def test_a_bad_probe_is_a_clear_error_naming_the_valid_ones():
    graph = _cyclic_with_subgraph_and_delay()
    with pytest.raises(BackendError, match=r"probe 'rnn\.lf' names no node or subgraph .*did you mean 'rnn\.lif'") as e:
        CPU.simulate(graph, n_steps=3, step_by_step=True, probes=["fc", "rnn.lf"])
    assert "rnn.lif" in str(e.value) and "rnn (subgraph)" in str(e.value) and "side" in str(e.value)
    with pytest.raises(BackendError, match="pass step_by_step=True with them"):
        CPU.simulate(graph, n_steps=3, probes=["fc"])
    with pytest.raises(BackendError, match="probes must be a list of node paths"):
        CPU.simulate(graph, n_steps=3, step_by_step=True, probes=[3])
    assert CPU.simulate(graph, n_steps=3, step_by_step=True, probes=[]).node_states == {}


def test_the_memory_check_counts_only_the_probed_nodes(monkeypatch):
    graph = mlp_graph(0, (16, 64, 10))
    held = run_memory.held_bytes(lower(graph), 1, 1, 4, record=lower(graph).ops)
    monkeypatch.setattr(run_memory, "memory_limit", lambda: 200 * sum(held.values()))
    with pytest.raises(BackendError, match=r"neuron states [\d,]+\) .*record only the nodes you need with probes"):
        CPU.simulate(graph, n_steps=1000, step_by_step=True)
    result = CPU.simulate(graph, n_steps=1000, step_by_step=True, probes=["lif2"])
    assert result.node_states["lif2"]["output"].shape == (1000, 1, 10)


# ---- the fp32 reference in lockstep ---------------------------------------------------------------


@pytest.fixture
def always_lockstep(monkeypatch):
    """A fixed-point run of several chunks runs its reference in lockstep whatever it would hold."""
    monkeypatch.setattr(backend, "runs_in_lockstep", lambda fixed, steps, chunk, held, engine: chunk < steps)


def test_a_fixed_point_run_takes_lockstep_when_the_held_reference_outweighs_the_fp32_kernels():
    engine = Engine(lower(mlp_graph(0, (48, 64, 10))), CompileConfig())
    kernels = program_cache.owned_bytes([engine.kernels])
    assert kernels > 48 * 64 * 8  # the float64 weights at least
    assert runs_in_lockstep(False, 100, 10, 0, engine)  # fp16: whenever there are several chunks
    assert not runs_in_lockstep(True, 100, 10, kernels, engine)
    assert runs_in_lockstep(True, 100, 10, kernels + 1, engine)
    assert not runs_in_lockstep(True, 100, 100, kernels + 1, engine)  # one chunk: held


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_the_lockstep_reference_reports_the_held_references_numbers(precision, engine_path, always_lockstep):  # noqa: F811
    graph = mlp_graph(0, (48, 64, 10))
    x = (np.random.default_rng(6).random((90, 3, 48)) < 0.3).astype(np.float32)
    held = CPU.simulate(graph, x, precision=precision)  # one chunk: the reference runs first, held
    lockstep = CPU.simulate(graph, x, precision=precision, chunk_steps=11)
    assert held.quantization.spike_agreement < 1.0 or precision == "fp16"
    assert_same_run(lockstep, held)  # the report too, bit for bit: both compare the whole output arrays
    streamed = CPU.simulate(graph, x, precision=precision, chunk_steps=11, on_outputs=lambda *a: None)
    q, r = streamed.quantization, held.quantization
    assert (q.spike_agreement, q.per_node_spike_agreement, q.spike_counts_fp32, q.output_max_abs_error) == (
        r.spike_agreement, r.per_node_spike_agreement, r.spike_counts_fp32, r.output_max_abs_error)  # fmt: skip
    for name in r.output_rmse:  # float64 sums of squares added chunk by chunk
        assert q.output_rmse[name] == pytest.approx(r.output_rmse[name], rel=1e-12)
        assert q.output_relative_error[name] == pytest.approx(r.output_relative_error[name], rel=1e-12)


def test_a_streamed_reduced_precision_run_holds_no_more_for_more_steps(always_lockstep):
    """int8 with on_outputs, chunks of 20 steps: the reference's spike trains and outputs are no
    longer held for the whole run, so 4x the steps allocate about the same peak."""
    graph = mlp_graph(0, (64, 256, 10))
    peaks = {}
    for steps in (100, 400):
        x = np.zeros((steps, 4, 64), np.float32)
        x[::2, :, ::3] = 1.0
        CPU.simulate(graph, x[:20], precision="int8", chunk_steps=20, on_outputs=lambda *a: None)
        tracemalloc.start()
        CPU.simulate(graph, x, precision="int8", chunk_steps=20, on_outputs=lambda *a: None)
        peaks[steps] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    trains = (256 + 10) * 4 * 300 // 8  # what the held trains of the 300 more steps would take
    assert peaks[400] - peaks[100] < trains / 4, peaks


# ---- the program cache ---------------------------------------------------------------------------


@pytest.fixture
def fresh_cache():
    program_cache.clear()
    yield
    program_cache.clear()


def test_an_unchanged_graph_reuses_its_program_and_a_changed_one_does_not(fresh_cache):
    graph = mlp_graph(3, (16, 32, 4))
    x = (np.random.default_rng(1).random((25, 2, 16)) < 0.5).astype(np.float32)
    first = CPU.simulate(graph, x)
    hits = program_cache.stats["hits"]
    assert_same_run(CPU.simulate(graph, x), first)  # served
    assert program_cache.stats["hits"] == hits + 1
    original = graph.nodes["fc1"].weight.copy()
    graph.nodes["fc1"].weight[:] *= -1.5  # modified in place: other bytes, built afresh
    changed = CPU.simulate(graph, x)
    assert program_cache.stats["hits"] == hits + 1
    assert changed.spike_counts != first.spike_counts
    assert_same_run(changed, CPU.simulate(copy.deepcopy(graph), x))  # a copy has the same content: served
    assert program_cache.stats["hits"] == hits + 2
    graph.nodes["fc1"].weight[:] = original  # the first content again: served
    assert_same_run(CPU.simulate(graph, x), first)
    assert program_cache.stats["hits"] == hits + 3
    graph.nodes["fc1"].weight = original.copy()  # an equal array in place of the original: the same content
    assert_same_run(CPU.simulate(graph, x), first)
    assert program_cache.stats["hits"] == hits + 4
    assert_same_run(CPU.simulate(graph, x, precision="int8"), CPU.simulate(copy.deepcopy(graph), x, precision="int8"))


def _rebuilt_on(graph, x, change) -> None:
    """``change(graph)`` in place after a served run: the next run is built afresh and equals a run
    of a fresh copy of the changed graph with the cache emptied."""
    CPU.simulate(graph, x)
    before = program_cache.stats["misses"]
    change(graph)
    result = CPU.simulate(graph, x)
    assert program_cache.stats["misses"] == before + 1
    program_cache.clear()
    assert_same_run(result, CPU.simulate(copy.deepcopy(graph), x))


def test_every_change_made_in_place_is_built_afresh(fresh_cache):
    """The smallest changes: one float32 step of one weight, two weights swapped (the same sum and
    values), a threshold of one neuron, a hyperparameter, metadata and a weight inside a subgraph."""
    graph = mlp_graph(3, (16, 32, 4))
    x = (np.random.default_rng(1).random((25, 2, 16)) < 0.5).astype(np.float32)
    w = graph.nodes["fc1"].weight

    def nudge(g):
        w[3, 5] = np.nextafter(w[3, 5], np.float32(np.inf))

    def swap(g):
        w[[0, 1], 2] = w[[1, 0], 2]

    def threshold(g):
        g.nodes["lif1"].v_threshold = np.ones(32)  # a new array: compared by value
        g.nodes["lif1"].v_threshold[7] = 0.5

    def reset(g):
        g.nodes["lif1"].reset_mode = ir.ResetMode.VALUE

    def metadata(g):
        g.nodes["fc2"].metadata["note"] = "changed"

    for change in (nudge, swap, threshold, reset, metadata):
        _rebuilt_on(graph, x, change)
    nested = _cyclic_with_subgraph_and_delay()
    y = np.random.default_rng(3).uniform(0, 2, (23, 2, 4)).astype(np.float32)
    _rebuilt_on(nested, y, lambda g: g.nodes["rnn"].nodes["w"].weight.__setitem__((0, 0), 0.375))


def test_what_is_built_is_frozen_and_the_callers_graph_is_not_kept(fresh_cache):
    import gc
    import weakref

    graph = mlp_graph(3, (16, 32, 4))
    CPU.simulate(graph, n_steps=5)
    (built,) = program_cache._entries.values()
    assert built.graph is not graph and all(not a.flags.writeable for a in built.arrays)
    assert built.nbytes >= built.copy_bytes == sum(a.nbytes for a in program_cache.parameter_arrays(graph))
    assert graph.nodes["fc1"].weight.flags.writeable  # the caller's arrays are left as they were
    ref = weakref.ref(graph)
    del graph
    gc.collect()
    assert ref() is None


def test_a_fixed_point_call_keeps_nothing_but_uses_what_a_float_call_left(fresh_cache):
    """A fixed-point call builds its engines afresh anyway: an entry would only keep a copy of the
    parameters (and the fp32 kernels) alive through its integer run."""
    graph = mlp_graph(3, (16, 32, 4))
    x = (np.random.default_rng(1).random((25, 2, 16)) < 0.5).astype(np.float32)
    alone = CPU.simulate(graph, x, precision="int8")
    assert not program_cache._entries
    CPU.simulate(graph, x)  # fp32: an entry with its fp32 engine
    hits = program_cache.stats["hits"]
    assert_same_run(CPU.simulate(graph, x, precision="int8"), alone)
    assert program_cache.stats["hits"] == hits + 1 and len(program_cache._entries) == 1


def test_the_cache_is_bounded_and_can_be_turned_off(fresh_cache, monkeypatch):
    graphs = [mlp_graph(seed, (8, 16, 4)) for seed in range(6)]
    for graph in graphs:
        CPU.simulate(graph, n_steps=3)
    assert len(program_cache._entries) == program_cache.MAX_ENTRIES
    monkeypatch.setattr(program_cache, "MAX_BYTES", 1)  # no graph fits: built every time
    program_cache.clear()
    CPU.simulate(graphs[0], n_steps=3)
    assert not program_cache._entries
    monkeypatch.setattr(program_cache, "MAX_BYTES", 2 << 30)
    monkeypatch.setattr(program_cache, "MAX_ENTRIES", 0)
    CPU.simulate(graphs[0], n_steps=3)
    assert not program_cache._entries


def test_an_invalid_graph_is_not_kept(fresh_cache):
    graph = mlp_graph(0, (8, 16, 4))
    graph.nodes["fc1"].weight[0, 0] = np.nan
    with pytest.raises(ir.NonFiniteParameterError, match="node 'fc1'"):
        CPU.simulate(graph, n_steps=3)
    assert not program_cache._entries


def test_a_reused_fp32_engine_calibrates_each_call_afresh(fresh_cache):
    """The SepConv2d depthwise maximum the int8 calibration reads is measured on this call's input."""
    rng = np.random.default_rng(0)
    graph = chain(
        [3, 6, 6],
        ("sep", ir.SepConv2d(uniform(rng, (3, 1, 3, 3), 9), uniform(rng, (5, 3, 1, 1), 3), padding=(1, 1))),
    )
    big = rng.uniform(0, 4, (10, 1, 3, 6, 6)).astype(np.float32)
    small = big / 8
    CPU.simulate(graph, big, precision="int8")
    reused = CPU.simulate(graph, small, precision="int8")
    program_cache.clear()
    assert_same_run(reused, CPU.simulate(graph, small, precision="int8"))
