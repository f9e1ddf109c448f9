"""Fixed-point values held as float32 integers (build.float32_storage): the same integers as
the int64 datapath on every node, the float32 path taken exactly where the static bound proves it
exact (below 2**24) and int64 beyond, in the compiled loops and in their numpy twins."""

import numpy as np
import pytest

from talon import ir
from talon.backend import CompileConfig, get_backend
from talon.backend.cpu.formats import fixed_point
from talon.backend.cpu.kernels import build as kernel_build
from talon.backend.cpu.kernels import fixed_neuron_loop
from talon.backend.cpu.lowering.program import lower
from talon.backend.cpu.run.engine import Engine, calibrate

from ..markers import needs_numba
from .graphs import hybrid_graph, leaky, mlp_graph, uniform

CPU = get_backend("cpu")
FAN_IN = 1040  # 1040 * 127 * 127 = 16,774,160: an int8 accumulator just below 2**24 = 16,777,216


def _edge_graph(bias_q: int) -> ir.Graph:
    """One int8 Affine whose accumulator is ``1040 * 127 * 127 + bias_q`` on an input of 127s."""
    weight = np.ones((2, FAN_IN), np.float32)  # per channel: scale 1/127, every weight 127
    weight[1] = -1.0
    bias = np.array([bias_q / 127, 0.0])
    return ir.Graph(
        {"input": ir.Input(np.array([FAN_IN])), "fc": ir.Affine(weight, bias), "output": ir.Output(np.array([2]))},
        [("input", "fc"), ("fc", "output")],
    )


def _stored(graph: ir.Graph, x: np.ndarray, node: str) -> np.ndarray:
    """The value of ``node`` as the int8 engine holds it (its dtype is the storage)."""
    program = lower(graph)
    calibration, _ = calibrate(program, {"input": x})
    engine = Engine(program, CompileConfig("int8"), calibration)
    return engine.run({"input": x}, keep_all=True).values[program.op(node).outputs[0]]


@pytest.mark.parametrize(
    ("bias_q", "dtype"),
    [(3055, np.float32), (3056, np.int64), (3061, np.int64)],  # 2**24 - 1 | 2**24 | 2**24 + 5 (not a float32)
)
def test_the_accumulator_is_float32_only_below_two_to_the_24(bias_q, dtype):
    x = np.full((2, 3, FAN_IN), 127.0, np.float32)  # integers: scale 1, bound 127
    stored = _stored(_edge_graph(bias_q), x, "fc")
    assert stored.dtype == dtype
    expected = [FAN_IN * 127 * 127 + bias_q, -FAN_IN * 127 * 127]
    assert np.array_equal(stored.reshape(-1, 2), np.tile(expected, (6, 1)))  # the exact integers
    result = CPU.simulate(_edge_graph(bias_q), {"input": x}, precision="int8", step_by_step=True)
    ints = result.node_states["fc"]["output_int"]
    assert ints.dtype == np.int64 and np.array_equal(ints.reshape(-1, 2), np.tile(expected, (6, 1)))


def _single_edge(neuron: ir.Node) -> ir.Graph:
    rng = np.random.default_rng(4)
    n = neuron.output_shape[0] if neuron.output_shape is not None else 12
    return ir.Graph(
        {
            "input": ir.Input(np.array([20])),
            "fc": ir.Affine(uniform(rng, (n, 20), 20) * 3, uniform(rng, n, 20)),
            "neuron": neuron,
            "out": ir.Linear(uniform(rng, (4, n), n)),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc"), ("fc", "neuron"), ("neuron", "out"), ("out", "output")],
    )


def _int64_only(monkeypatch) -> None:
    monkeypatch.setattr(kernel_build, "float32_storage", lambda program, kernels: None)


def _cases():
    x = np.random.default_rng(1).normal(0.0, 1.0, (12, 3, 20)).astype(np.float32)
    spikes = (np.random.default_rng(2).random((20, 4, 784)) < 0.2).astype(np.float32)
    grid = (np.random.default_rng(3).integers(0, 9, (6, 2, 1, 28, 28)) / 8).astype(np.float32)
    neurons = {
        "lif-delayed": leaky(12),
        "lif-immediate-value": ir.LIF(tau=np.full(12, 5.0), r=np.full(12, 2.0), v_threshold=np.full(12, 0.6),
                                      reset_mode="value", reset_timing="immediate", v_reset=np.full(12, -0.1)),
        "cubalif-pre-decay": ir.CubaLIF(tau_syn=np.full(12, 4.0), tau_mem=np.full(12, 6.0), r=np.full(12, 3.0),
                                        v_threshold=np.full(12, 0.5), reset_timing="delayed_pre_decay"),
        "li": ir.LI(tau=np.full(12, 5.0), r=np.full(12, 2.0)),
    }  # fmt: skip
    for name, neuron in neurons.items():
        yield pytest.param(lambda neuron=neuron: _single_edge(neuron), x, True, id=name)
    yield pytest.param(lambda: mlp_graph(0), spikes, True, id="mlp-spike-input")
    yield pytest.param(lambda: hybrid_graph(0), grid, False, id="hybrid-dyadic-input")  # fc1 reaches 2**24


@needs_numba
@pytest.mark.parametrize(("build", "x", "float_drive"), list(_cases()))
def test_float32_storage_gives_the_int64_datapaths_integers(build, x, float_drive, monkeypatch, force_numba):
    drives = []
    original = fixed_neuron_loop.drive_operands
    monkeypatch.setattr(fixed_neuron_loop, "drive_operands", lambda *a: drives.append(a[1][0].dtype) or original(*a))
    fast = CPU.simulate(build(), {"input": x}, precision="int8", step_by_step=True)
    assert (np.dtype(np.float32) in drives) == float_drive  # a neuron read a float32 accumulator
    monkeypatch.setattr(fixed_neuron_loop, "compiled", lambda kernel: None)  # the numpy twins
    monkeypatch.setattr(fixed_point, "compiled", lambda kernel: None)
    twin = CPU.simulate(build(), {"input": x}, precision="int8", step_by_step=True)
    monkeypatch.undo()
    _int64_only(monkeypatch)
    reference = CPU.simulate(build(), {"input": x}, precision="int8", step_by_step=True)
    for result in (fast, twin):
        assert result.spike_counts == reference.spike_counts
        assert np.array_equal(result.outputs["output"], reference.outputs["output"])
        for path, entry in reference.node_states.items():
            for key, value in entry.items():
                if key.endswith("_int"):
                    assert result.node_states[path][key].dtype == np.int64
                    assert np.array_equal(result.node_states[path][key], value), (path, key)


def test_the_hybrid_models_conv_relu_pool_run_in_float32():
    """conv -> ReLU -> MaxPool -> Flatten keep their integers in float32 (every bound < 2**24);
    the Affine after them rescales its input in int64."""
    graph = hybrid_graph(0)
    x = np.random.default_rng(0).random((3, 2, 1, 28, 28)).astype(np.float32)
    for node in ("input", "conv1", "relu", "pool", "flatten"):
        assert _stored(graph, x, node).dtype == np.float32, node
    assert _stored(graph, x, "fc1").dtype == np.int64  # read by the LIF: it is float32 only below 2**24
    assert _stored(graph, x, "lif").dtype == np.int64  # spikes stay int64


def test_quantize_dyadic_writes_float32_integers_like_int64(monkeypatch, force_numba):
    x = np.random.default_rng(5).normal(0, 2, 3_000).astype(np.float32)
    x[:300] = np.round(x[:300] * 8) / 8
    x[[3, 4]] = [1e38, -np.inf]
    for twin in (False, True):
        if twin:
            monkeypatch.setattr(fixed_point, "compiled", lambda kernel: None)
        q64 = fixed_point.quantize_dyadic(x, 3, 100)
        q32 = fixed_point.quantize_dyadic(x, 3, 100, np.float32)
        assert q32[0].dtype == np.float32 and np.array_equal(q32[0].astype(np.int64), q64[0])
        assert q32[1:] == q64[1:]
    with pytest.raises(ValueError, match="cannot hold every integer"):
        fixed_point.quantize_dyadic(x, 3, 2**24, np.float32)


@pytest.mark.parametrize("middle", [None, ir.Flatten(0, -1)])
def test_a_zero_output_is_positive_zero_as_in_the_int64_datapath(middle):
    # rint of a small negative input is float32 -0.0; the int64 datapath's zero read back as +0.0
    nodes = {"input": ir.Input(np.array([4])), "output": ir.Output(np.array([4]))}
    edges = [("input", "output")]
    if middle is not None:
        nodes["mid"], edges = middle, [("input", "mid"), ("mid", "output")]
    x = np.array([[[-0.001, 0.5, -0.7, 1.0]]], np.float32)
    out = CPU.simulate(ir.Graph(nodes, edges), {"input": x}, precision="int8").outputs["output"]
    assert out[0, 0, 0] == 0 and not np.signbit(out[0, 0, 0]) and out[0, 0, 2] < 0
