"""simulate(): graph semantics (DAGs, cycles, subgraphs, Delay, routing, batches), inputs, results."""

import numpy as np
import pytest

from talon import ir
from talon.backend import BackendError, UnsupportedNodeError, default_stimulus, get_backend

from ..conformance import reference
from ..ir.examples import EXAMPLES, chain_graph
from .graphs import chain, hybrid_graph, leaky, mlp_graph

CPU = get_backend("cpu")


def eighths(rng, shape, low=-4, high=12):
    return (rng.integers(low, high, shape) / 8).astype(np.float32)


def test_every_primitive_is_supported_and_runs():
    assert CPU.get_capabilities().supported_primitives == ir.list_primitives()
    assert sorted(EXAMPLES) == ir.list_primitives()
    for name in EXAMPLES:
        graph = chain_graph(name)
        result = CPU.simulate(graph, n_steps=3)
        assert result.outputs_valid, name
        for out_name, out in result.outputs.items():
            assert out.shape == (3, 1, *graph.nodes[out_name].shape), name


def _cyclic_with_subgraph_and_delay() -> ir.Graph:
    """A cycle that passes through a subgraph (itself recurrent) and a Delay, plus a DAG branch."""
    rng = np.random.default_rng(5)
    inner = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "lif": ir.LIF(tau=np.full(3, 2.0), r=2.0, reset_mode="subtract", reset_timing="delayed", comparison=">"),
            "w": ir.Linear(np.round(rng.uniform(-1, 1, (3, 3)) * 8) / 8),
            "output": ir.Output(np.array([3])),
        },
        [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
    )
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": ir.Affine(np.round(rng.uniform(-0.5, 1.5, (3, 4)) * 8) / 8, np.full(3, 0.125)),
            "rnn": inner,
            "delay": ir.Delay(delay=np.array([1, 2, 0])),
            "fb": ir.Linear(np.round(rng.uniform(-1, 1, (4, 3)) * 8) / 8),
            "side": ir.IF(v_threshold=np.full(4, 1.5)),
            "output": ir.Output(np.array([3])),
            "spikes": ir.Output(np.array([4])),
        },
        [
            ("input", "fc"),
            ("fc", "rnn"),
            ("rnn", "delay"),
            ("delay", "fb"),
            ("fb", "fc"),  # closes the outer cycle: delivered one step late
            ("rnn", "output"),
            ("input", "side"),
            ("side", "spikes"),
        ],
    )


def test_cyclic_graph_with_subgraph_and_delay_matches_the_reference():
    graph = _cyclic_with_subgraph_and_delay()
    x = eighths(np.random.default_rng(0), (30, 2, 4))
    result = CPU.simulate(graph, {"input": x}, step_by_step=True)
    expected = reference.run(graph, x)
    for name in ("output", "spikes"):
        np.testing.assert_array_equal(result.outputs[name], expected["outputs"][name])
    np.testing.assert_array_equal(result.node_states["rnn.lif"]["v"], expected["states"]["rnn.lif"]["v"])
    assert result.spike_counts["rnn.lif"] > 0 and result.spike_counts["side"] > 0
    # the schedule: the cycle runs step by step, the side branch over the whole sequence
    modes = {op["node"]: c["mode"] for c in CPU.compile(graph).schedule for op in c["ops"]}
    assert modes["fc"] == modes["rnn.lif"] == modes["delay"] == "step"
    assert modes["side"] == modes["input"] == "sequence"


def test_delay_in_sequence_mode_matches_step_mode():
    x = eighths(np.random.default_rng(1), (12, 2, 3))
    delay = ir.Delay(delay=np.array([0, 3, 11]))
    alone = CPU.simulate(chain([3], ("delay", delay)), {"input": x}).outputs["output"]
    assert np.array_equal(alone[3:, :, 1], x[:-3, :, 1]) and not alone[:3, :, 1].any()
    assert np.array_equal(alone[11:, :, 2], x[:1, :, 2]) and np.array_equal(alone[:, :, 0], x[:, :, 0])
    # the same Delay inside a self-loop (scale 0) runs step by step and must agree
    looped = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "delay": ir.Delay(delay=np.array([0, 3, 11])),
            "zero": ir.Scale(np.zeros(3, np.float32)),
            "output": ir.Output(np.array([3])),
        },
        [("input", "delay"), ("delay", "zero"), ("zero", "delay"), ("delay", "output")],
    )
    np.testing.assert_array_equal(CPU.simulate(looped, {"input": x}).outputs["output"], alone)


def test_batch_entries_are_independent():
    graph = mlp_graph(3, sizes=(20, 16, 5))
    x = default_stimulus(graph, 25, batch_size=4, seed=3)["input"]
    together = CPU.simulate(graph, {"input": x}).outputs["output"]
    for b in range(4):
        alone = CPU.simulate(graph, {"input": x[:, b : b + 1]}).outputs["output"]
        np.testing.assert_array_equal(together[:, b : b + 1], alone)


def test_step_by_step_records_without_changing_results():
    graph = hybrid_graph(1)
    plain = CPU.simulate(graph, n_steps=8)
    stepped = CPU.simulate(graph, n_steps=8, step_by_step=True)
    np.testing.assert_array_equal(plain.outputs["output"], stepped.outputs["output"])
    assert plain.node_states is None
    states = stepped.node_states
    assert states["lif"]["v"].shape == (8, 1, 64) and states["conv1"]["output"].shape == (8, 1, 16, 28, 28)
    np.testing.assert_array_equal(states["output"]["output"], plain.outputs["output"])
    assert stepped.spike_counts["lif"] == int(states["lif"]["output"].sum())


def test_constant_inputs_are_held_for_every_step():
    graph = mlp_graph(4, sizes=(6, 5, 3))
    sample = np.linspace(0, 1.5, 6, dtype=np.float32)
    held = CPU.simulate(graph, {"input": sample}, n_steps=7)
    batch = CPU.simulate(graph, {"input": sample[None].repeat(2, 0)}, n_steps=7)
    sequence = CPU.simulate(graph, {"input": np.broadcast_to(sample, (7, 1, 6))})
    assert held.timesteps_run == batch.timesteps_run == sequence.timesteps_run == 7
    np.testing.assert_array_equal(held.outputs["output"], sequence.outputs["output"])
    np.testing.assert_array_equal(batch.outputs["output"][:, 1:], sequence.outputs["output"])
    bare = CPU.simulate(graph, sample, n_steps=7)  # one Input: a bare array is accepted
    np.testing.assert_array_equal(bare.outputs["output"], held.outputs["output"])


def test_default_stimulus_is_seeded_documented_and_makes_healthy_networks_fire():
    graph = mlp_graph(0)
    a = default_stimulus(graph, 50)["input"]
    assert a.dtype == np.float32 and a.shape == (50, 1, 784) and set(np.unique(a)) == {0.0, 1.0}
    np.testing.assert_array_equal(a, default_stimulus(graph, 50)["input"])
    assert abs(a.mean() - 0.5) < 0.01
    result = CPU.simulate(graph, n_steps=50)
    assert result.used_default_stimulus
    np.testing.assert_array_equal(result.outputs["output"], CPU.simulate(graph, {"input": a}).outputs["output"])
    assert result.spike_counts["lif1"] > 0 and result.spike_counts["lif2"] > 0
    for seed in range(3):  # the seed 002 hybrid network fires within its 10 steps, whatever the weights
        assert CPU.simulate(hybrid_graph(seed), n_steps=10).spike_counts["lif"] > 0


def test_multiple_inputs_and_outputs():
    graph = ir.Graph(
        {
            "a": ir.Input(np.array([2])),
            "b": ir.Input(np.array([2])),
            "sum": ir.Skip("residual"),
            "lif": leaky(2),
            "out_sum": ir.Output(np.array([2])),
            "out_spk": ir.Output(np.array([2])),
        },
        [("a", "sum"), ("b", "sum"), ("sum", "lif"), ("sum", "out_sum"), ("lif", "out_spk")],
    )
    xa = np.full((5, 1, 2), 0.25, np.float32)
    xb = np.full((5, 1, 2), 0.5, np.float32)
    result = CPU.simulate(graph, {"a": xa, "b": xb})
    np.testing.assert_array_equal(result.outputs["out_sum"], xa + xb)
    assert result.outputs["out_spk"].sum() > 0
    stim = CPU.simulate(graph, n_steps=4)
    assert set(stim.outputs) == {"out_sum", "out_spk"}


def test_a_node_without_input_gets_zeros_and_a_warning():
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "bias": ir.LIF(tau=np.full(2, 4.0), v_leak=2.0, input_type=[2]),
            "output": ir.Output(np.array([2])),
            "spikes": ir.Output(np.array([2])),
        },
        [("input", "output"), ("bias", "spikes")],
    )
    validation = CPU.validate(graph)
    assert validation.is_valid and any("'bias' has no incoming edge" in w for w in validation.warnings)
    result = CPU.simulate(graph, n_steps=6)
    assert result.spike_counts["bias"] > 0  # v_leak = 2 > threshold: a self-driven neuron


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(inputs={"input": np.zeros((3, 1, 5), np.float32)}), "expects [4]"),
        (dict(inputs={"other": np.zeros(4)}), "unknown Input"),
        (dict(inputs={}), "no input given"),
        (dict(inputs={"input": np.zeros((3, 1, 4))}, n_steps=5), "n_steps=5 but the input sequences have 3"),
        (dict(inputs={"input": np.full(4, np.nan)}), "NaN"),
        (dict(inputs={"input": np.zeros((0, 4))}), "empty batch"),
        (dict(inputs={"input": np.zeros((3, 0, 4))}), "empty batch"),
        (dict(inputs={"input": np.array(["a"] * 4)}), "real numeric"),
        (dict(n_steps=0), "positive integer"),
        (dict(n_steps=2.5), "positive integer"),
        (dict(step_by_step="yes"), "step_by_step"),
        (dict(precision="int3"), "precision"),
    ],
)
def test_bad_simulation_arguments_are_refused_with_a_clear_error(kwargs, message):
    graph = mlp_graph(0, sizes=(4, 3))
    with pytest.raises(BackendError, match=message.replace("[", r"\[").replace("]", r"\]")):
        CPU.simulate(graph, **kwargs)


def test_not_a_graph_and_unsupported_nodes():
    with pytest.raises(BackendError, match=r"expected a talon\.ir\.Graph"):
        CPU.simulate("model.t1c")

    class Mystery(ir.Node):  # not registered: the IR registry stays as it was
        pass

    graph = chain([3], ("odd", Mystery(input_type=[3])))
    result = CPU.validate(graph)
    assert not result.is_valid and result.unsupported_nodes == ["odd (Mystery): no CPU kernel"]
    with pytest.raises(UnsupportedNodeError, match="odd"):
        CPU.simulate(graph, n_steps=2)


def test_outputs_valid_flags_non_finite_outputs():
    graph = chain([2], ("scale", ir.Scale(np.array([3e38, 1.0], np.float32))))  # finite, but overflows
    assert CPU.simulate(graph, {"input": np.zeros((3, 1, 2), np.float32)}).outputs_valid
    assert CPU.simulate(graph, {"input": np.full((3, 1, 2), 10.0, np.float32)}).outputs_valid is False  # inf
    infinite = chain([2], ("scale", ir.Scale(np.array([np.inf, 1.0], np.float32))))
    with pytest.raises(ir.NonFiniteParameterError, match="node 'scale': scale has NaN or infinite values"):
        CPU.simulate(infinite, {"input": np.zeros((3, 1, 2), np.float32)})  # refused before running (inf * 0 = nan)


def test_fp16_runs_in_half_precision_and_reports_its_error():
    graph = hybrid_graph(2)
    result = CPU.simulate(graph, n_steps=10, precision="fp16", step_by_step=True)
    assert result.node_states["lif"]["v"].dtype == np.float16
    assert result.outputs["output"].dtype == np.float32
    report = result.quantization
    assert report.precision == "fp16" and 0.95 <= report.spike_agreement <= 1.0
    assert 0 < report.output_max_abs_error["output"] < 0.05
