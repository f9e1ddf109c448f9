"""The quantized-weight cache (weight_cache.py) never returns a stale result: a weight array
modified in place, replaced, or freed and its id reused is quantized afresh; results are read-only;
the cache stays within its bounds; and simulations give the same bits cached or not."""

import gc

import numpy as np
import pytest

from talon.backend import default_stimulus, get_backend
from talon.backend.cpu.formats import weight_cache
from talon.examples import hybrid_graph, mlp_graph

CPU = get_backend("cpu")


@pytest.fixture(autouse=True)
def _empty_cache():
    weight_cache.clear()
    yield
    weight_cache.clear()


def _counting(fn):
    calls = []

    def compute():
        calls.append(1)
        return fn()

    return compute, calls


def test_unchanged_weights_are_reused_and_changed_ones_recomputed():
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    compute, calls = _counting(lambda: (w * 2).astype(np.int64))
    first = weight_cache.reuse(w, ("x",), compute)
    assert weight_cache.reuse(w, ("x",), compute) is first and len(calls) == 1
    assert weight_cache.reuse(w, ("other params",), compute) is not first and len(calls) == 2
    w[1, 2] = 100.0  # in place: the same array object, other bytes
    changed = weight_cache.reuse(w, ("x",), compute)
    assert len(calls) == 3 and changed[1, 2] == 200 and first[1, 2] == 12
    w[1, 2] = -0.0
    weight_cache.reuse(w, ("x",), compute)
    w[1, 2] = 0.0  # equal as numbers, different bytes: recomputed too
    weight_cache.reuse(w, ("x",), compute)
    assert len(calls) == 5


def test_a_freed_array_is_not_mistaken_for_a_successor_at_the_same_address():
    a = np.ones(4, np.float32)
    weight_cache.reuse(a, (), lambda: np.float32(4.0))
    freed = id(a)
    del a
    gc.collect()
    for k in range(200):  # a new array may get the freed address; it must get its own result
        b = np.full(4, k + 2, np.float32)
        assert weight_cache.reuse(b, (), lambda b=b: b.sum()) == 4 * (k + 2)
        if id(b) == freed:
            break


def test_results_are_read_only():
    w = np.ones((2, 2), np.float32)
    q, s = weight_cache.reuse(w, (), lambda: (np.ones((2, 2), np.int64), np.ones(2)))
    with pytest.raises(ValueError):
        q[0, 0] = 5
    with pytest.raises(ValueError):
        s[0] = 5


def test_the_cache_stays_within_its_bounds(monkeypatch):
    monkeypatch.setattr(weight_cache, "MAX_ENTRIES", 3)
    keep = [np.full(8, k, np.float32) for k in range(6)]  # 32 bytes each
    for a in keep:
        weight_cache.reuse(a, (), lambda: 0)
    assert len(weight_cache._entries) == 3
    weight_cache.clear()
    monkeypatch.setattr(weight_cache, "MAX_ENTRIES", 100)
    monkeypatch.setattr(weight_cache, "MAX_BYTES", 200)
    for a in [*keep, np.full(8, 9, np.float32)]:
        keep.append(a)
        weight_cache.reuse(a, (), lambda: 0)
    assert sum(e.source.nbytes for e in weight_cache._entries.values()) <= 200
    assert len(weight_cache._entries) == 6  # the oldest of seven went
    big = np.zeros(16, np.float32)  # 64 bytes > 200 // 4: never copied
    compute, calls = _counting(lambda: 0)
    weight_cache.reuse(big, (), compute)
    weight_cache.reuse(big, (), compute)
    assert len(calls) == 2 and all(e.ref() is not big for e in weight_cache._entries.values())


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_a_weight_changed_in_place_between_simulations_is_simulated_with_its_new_values(precision):
    graph = mlp_graph(0, (30, 20, 5))
    x = default_stimulus(graph, 20, batch_size=3)["input"]
    before = CPU.simulate(graph, x, precision=precision)
    graph.nodes["fc1"].weight[:, :10] *= -3.0  # the same array object, new values
    after = CPU.simulate(graph, x, precision=precision)
    weight_cache.clear()
    fresh = CPU.simulate(graph, x, precision=precision)
    assert np.array_equal(after.outputs["output"], fresh.outputs["output"])
    assert after.spike_counts == fresh.spike_counts
    assert not np.array_equal(before.outputs["output"], after.outputs["output"])


def test_a_compiled_program_keeps_its_own_weights_when_the_graph_changes():
    graph = hybrid_graph(0)
    x = default_stimulus(graph, 4, batch_size=2)["input"]
    program = CPU.compile(graph, precision="int8", calibration_inputs=x)
    expected = CPU.run_compiled(program, x).outputs["output"]
    graph.nodes["fc1"].weight[...] = 0.0
    graph.nodes["conv1"].weight[...] = 0.0
    CPU.simulate(graph, x, precision="int8")  # rebuilds from the changed weights
    assert np.array_equal(CPU.run_compiled(program, x).outputs["output"], expected)


def test_simulations_are_identical_with_and_without_the_cache(monkeypatch):
    graph = hybrid_graph(0)
    x = default_stimulus(graph, 5, batch_size=2)["input"]
    runs = [CPU.simulate(graph, x, precision="int8", step_by_step=True) for _ in range(2)]  # the 2nd hits
    monkeypatch.setattr(weight_cache, "reuse", lambda array, params, compute: compute())
    from talon.backend.cpu.kernels import fixed_ops

    monkeypatch.setattr(fixed_ops, "reuse", weight_cache.reuse)
    plain = CPU.simulate(graph, x, precision="int8", step_by_step=True)
    for run in runs:
        assert run.quantization == plain.quantization
        for path, states in plain.node_states.items():
            for key, value in states.items():
                assert np.array_equal(run.node_states[path][key], value), (path, key)
