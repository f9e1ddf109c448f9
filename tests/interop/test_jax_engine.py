"""The JAX engine against the conformance reference beyond the golden cases.

The golden cases (tests/conformance) use multiples of 1/8, where most products are exact; here
inputs and parameters are arbitrary floats, so a fused multiply-add (which XLA emits on CPU unless
prevented) or any reordering of the documented operations would show up as a bit difference.
"""

import numpy as np
import pytest

from talon import ir
from tests.conformance import reference
from tests.conformance.cases import CASES
from tests.subprocesses import child_env

jax = pytest.importorskip("jax")
from talon.interop.jax import JaxGraph  # noqa: E402
from talon.interop.jax.executor import MODES  # noqa: E402


def _assert_same_run(expected, outputs, trace, exact=True):
    check = (
        np.testing.assert_array_equal if exact else lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    )
    (want,) = expected["outputs"].values()
    check(np.asarray(outputs), want)
    for path, state in expected["states"].items():
        for key, value in state.items():
            check(np.asarray(trace[path][key]), value)


def _float_neurons() -> ir.Graph:
    """Every neuron family in one graph, arbitrary float parameters, fan-in sums of products."""
    rng = np.random.default_rng(7)
    n = 6

    def u(lo, hi):
        return rng.uniform(lo, hi, n).astype(np.float32)

    nodes = {
        "input": ir.Input(np.array([n])),
        "scale": ir.Scale(u(0.3, 1.7)),
        "lif": ir.LIF(
            tau=u(1.5, 9.0),
            r=u(0.5, 3.0),
            v_leak=u(-0.1, 0.1),
            v_threshold=u(0.5, 1.5),
            reset_mode="subtract",
            reset_timing="delayed",
            comparison=">",
        ),
        "cuba": ir.CubaLIF(
            tau_syn=u(1.5, 6.0),
            tau_mem=u(2.0, 7.0),
            r=u(0.5, 2.0),
            w_in=u(0.5, 2.0),
            v_threshold=u(0.3, 1.0),
            v_reset=u(-0.2, 0.0),
            reset_timing="delayed_pre_decay",
            spike_timing="pre",
        ),
        "li": ir.LI(tau=u(1.5, 5.0), r=u(0.5, 1.5), v_leak=u(-0.1, 0.1)),
        "cubali": ir.CubaLI(tau_syn=u(1.5, 4.0), tau_mem=u(2.0, 5.0), r=u(0.5, 1.5), w_in=u(0.5, 1.5)),
        "if": ir.IF(v_threshold=u(0.5, 2.0), r=u(0.5, 1.5), reset_mode="subtract"),
        "int": ir.Integrator(r=u(0.1, 0.9)),
        "sum": ir.Skip("residual"),
        "output": ir.Output(np.array([n])),
    }
    edges = [
        ("input", "scale"), ("scale", "lif"), ("input", "lif"),  # a product summed with another input
        ("scale", "cuba"), ("lif", "cuba"),
        ("input", "li"), ("cuba", "li"),
        ("li", "cubali"),
        ("cubali", "if"), ("scale", "if"),
        ("li", "int"),
        ("lif", "sum"), ("cuba", "sum"), ("if", "sum"), ("int", "sum"), ("cubali", "sum"),
        ("sum", "output"),
    ]  # fmt: skip
    return ir.Graph(nodes, edges)


@pytest.fixture(scope="module")
def float_graph():
    graph = _float_neurons()
    x = np.random.default_rng(8).normal(0.4, 1.0, (60, 4, 6)).astype(np.float32)
    return graph, x, reference.run(graph, x), JaxGraph(graph)


def test_arbitrary_floats_match_the_reference_bit_for_bit(float_graph):
    graph, x, expected, model = float_graph
    outputs, _, trace = model.run(model.params, x, record=True)
    for name in ("lif", "cuba", "if"):  # the neurons fire (the membrane crosses the threshold), but not always
        crossed = expected["states"][name]["v"] > graph.nodes[name].v_threshold
        assert 0.05 < crossed.mean() < 0.95, name
    _assert_same_run(expected, outputs, trace)


def test_stepwise_and_step_by_step_match_layerwise(float_graph):
    _, x, expected, model = float_graph
    outputs, _, trace = model.run(model.params, x, record=True, mode="stepwise")
    _assert_same_run(expected, outputs, trace)
    state = model.init_state(x.shape[1])
    per_step = []
    for t in range(x.shape[0]):
        y, state = model.step(model.params, state, x[t])
        per_step.append(np.asarray(y))
    np.testing.assert_array_equal(np.stack(per_step), expected["outputs"]["output"])
    for mode in ("fused", "layerwise"):
        _, final = model.run(model.params, x, mode=mode)
        for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(final), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_run_continues_from_a_given_state(float_graph):
    _, x, expected, model = float_graph
    for mode in MODES:
        first, state = model.run(model.params, x[:25], mode=mode)
        second, _ = model.run(model.params, x[25:], state, mode=mode)
        np.testing.assert_array_equal(np.concatenate([first, second]), expected["outputs"]["output"])


def test_batch_elements_are_independent(float_graph):
    _, x, expected, model = float_graph
    alone, _ = model.run(model.params, x[:, 2:3])
    np.testing.assert_array_equal(np.asarray(alone)[:, 0], expected["outputs"]["output"][:, 2])


def _euler_graph(integration: str) -> ir.Graph:
    """LIF (tau=3, r=2, v_leak=0.25) -> LI with arbitrary per-channel floats on a [2, 3] layer."""
    rng = np.random.default_rng(11)
    nodes = {
        "input": ir.Input(np.array([2, 3])),
        "lif": ir.LIF(tau=3.0, r=2.0, v_leak=0.25, v_threshold=0.6, v_reset=-0.5, integration=integration),
        "scale": ir.Scale(rng.uniform(0.3, 1.7, (2, 3)).astype(np.float32)),
        "li": ir.LI(
            tau=rng.uniform(1.5, 9.0, 2).astype(np.float32),  # per channel
            r=rng.uniform(0.5, 3.0, 2).astype(np.float32),
            v_leak=rng.uniform(-0.3, 0.3, 2).astype(np.float32),
            integration=integration,
        ),
        "output": ir.Output(np.array([2, 3])),
    }
    edges = [("input", "lif"), ("lif", "li"), ("input", "scale"), ("scale", "li"), ("li", "output")]
    return ir.Graph(nodes, edges)


def test_euler_integration_matches_the_reference_bit_for_bit():
    """integration='euler' is v + k*((v_leak - v) + r*x), not the decay order: they round differently."""
    graph = _euler_graph("euler")
    x = np.random.default_rng(12).normal(0.3, 1.0, (60, 3, 2, 3)).astype(np.float32)
    expected, decay = reference.run(graph, x), reference.run(_euler_graph("decay"), x)
    for name in ("lif", "li"):  # the two orders differ on most steps: ignoring 'euler' cannot pass
        assert (expected["states"][name]["v"] != decay["states"][name]["v"]).mean() > 0.3, name
    assert 0.05 < (expected["states"]["lif"]["v"] == -0.5).mean() < 0.95  # the LIF fires and resets
    model = JaxGraph(graph)
    assert sorted(model.params["lif"]) == ["k", "r", "theta", "v_leak", "v_reset"]
    for mode in MODES:
        outputs, _, trace = model.run(model.params, x, record=True, mode=mode)
        _assert_same_run(expected, outputs, trace)
    state, per_step = model.init_state(x.shape[1]), []
    for t in range(x.shape[0]):
        y, state = model.step(model.params, state, x[t])
        per_step.append(np.asarray(y))
    np.testing.assert_array_equal(np.stack(per_step), expected["outputs"]["output"])


def _cycle_with_delay_and_subgraph() -> ir.Graph:
    """A cycle through a subgraph, a Delay inside the cycle and a ChannelSplit feeding both."""
    inner = ir.Graph(
        {
            "in": ir.Input(np.array([2])),
            "lif": ir.LIF(
                tau=[3.0, 5.0],
                r=[3.0, 5.0],
                v_threshold=0.8,
                reset_mode="subtract",
                reset_timing="delayed",
                comparison=">",
            ),
            "w": ir.Linear(np.array([[0.0, -0.625], [0.375, 0.0]], np.float32)),
            "out": ir.Output(np.array([2])),
        },
        [("in", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "out")],
    )
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "split": ir.ChannelSplit(split_sections=(2, 2)),
            "rnn": inner,
            "delay": ir.Delay(delay=np.array([1, 3])),
            "fb": ir.Scale(np.array([0.5, -0.25], np.float32)),
            "cat": ir.Concat(dim=1),
            "output": ir.Output(np.array([4])),
        },
        [
            ("input", "split"),
            ("split", "rnn"),
            ("split", "cat"),
            ("rnn", "delay"),
            ("delay", "fb"),
            ("fb", "rnn"),  # closes a cycle through the subgraph (delayed by one step)
            ("rnn", "cat"),
            ("cat", "output"),
        ],
    )


def test_cycles_through_subgraphs_and_delays():
    graph = _cycle_with_delay_and_subgraph()
    assert graph.recurrent_edges == [("fb", "rnn")]
    x = np.random.default_rng(2).normal(0.3, 1.0, (30, 3, 4)).astype(np.float32)
    expected = reference.run(graph, x)
    model = JaxGraph(graph)
    for mode in MODES:
        outputs, _, trace = model.run(model.params, x, record=True, mode=mode)
        _assert_same_run(expected, outputs, trace)
        assert set(trace) == {"rnn.lif"}
    assert expected["states"]["rnn.lif"]["v"].max() > 0


def test_several_inputs_and_outputs_are_dicts():
    graph = ir.Graph(
        {
            "a": ir.Input(np.array([2])),
            "b": ir.Input(np.array([2])),
            "lif": ir.LIF(tau=[2.0, 2.0], r=[2.0, 2.0]),
            "out_lif": ir.Output(np.array([2])),
            "out_sum": ir.Output(np.array([2])),
        },
        [("a", "lif"), ("b", "lif"), ("lif", "out_lif"), ("a", "out_sum"), ("b", "out_sum")],
    )
    model = JaxGraph(graph)
    x = {"a": np.full((5, 1, 2), 0.75, np.float32), "b": np.full((5, 1, 2), 0.5, np.float32)}
    y, _ = model.run(model.params, x)
    assert set(y) == {"out_lif", "out_sum"}
    np.testing.assert_array_equal(y["out_sum"], np.full((5, 1, 2), 1.25))
    np.testing.assert_array_equal(y["out_lif"][:, 0, 0], [1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="several Input nodes"):
        model.run(model.params, x["a"])
    with pytest.raises(ValueError, match=r"exactly the Input nodes \['a', 'b'\]"):
        model.run(model.params, {"a": x["a"]})


def test_bad_input_shapes_are_named():
    model = JaxGraph(reference_chain())
    with pytest.raises(ValueError, match=r"input 'input': expected shape \[T, B, 3\], got \(4, 2, 5\)"):
        model.run(model.params, np.zeros((4, 2, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected shape \[B, 3\]"):
        model.step(model.params, model.init_state(2), np.zeros((4, 2, 3), np.float32))
    with pytest.raises(ValueError, match="mode must be one of"):
        model.run(model.params, np.zeros((4, 2, 3), np.float32), mode="fast")
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.init_state(0)


def reference_chain() -> ir.Graph:
    return ir.Graph(
        {"input": ir.Input(np.array([3])), "lif": ir.LIF(tau=np.full(3, 2.0)), "output": ir.Output(np.array([3]))},
        [("input", "lif"), ("lif", "output")],
    )


def test_unknown_node_types_are_refused_by_name(monkeypatch):
    from talon.ir import node as node_module

    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))  # keep the registry clean

    @ir.register_node
    class Mystery(ir.Node):
        pass

    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "m": Mystery(), "output": ir.Output(np.array([3]))},
        [("input", "m"), ("m", "output")],
    )
    with pytest.raises(ir.UnsupportedModuleError, match="node 'm': the JAX engine has no implementation of Mystery"):
        JaxGraph(graph)


def test_float64_needs_x64_and_dtype_must_be_floating():
    with pytest.raises(ValueError, match="jax_enable_x64"):
        JaxGraph(reference_chain(), dtype="float64")
    with pytest.raises(ValueError, match="floating"):
        JaxGraph(reference_chain(), dtype="int32")


def test_params_are_checked():
    model = JaxGraph(reference_chain())
    x = np.zeros((2, 1, 3), np.float32)
    with pytest.raises(ValueError, match=r"structure of JaxGraph\.params \(nodes \['lif'\]\), got \[\]"):
        model.run({}, x)
    with pytest.raises(ValueError, match=r"params\['lif'\] must have the keys"):
        model.run({"lif": {"beta": model.params["lif"]["beta"]}}, x)


def test_a_missing_jax_names_the_extra():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['jax'] = None\n"
        "try:\n    import talon.interop.jax\nexcept Exception as e:\n    print(type(e).__name__, e)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=child_env()
    ).stdout
    assert out.startswith("MissingDependencyError") and "pip install -e '.[jax]'" in out


def test_importing_the_engine_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, talon.interop.jax; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env())


# the conformance suite runs the default (step-wise) schedule on every golden case; the fused and
# layer-wise schedules' logic (components, cycles, subgraphs, delays, fan-in) on the graph cases
LAYERWISE_CASES = [c for c in CASES if c.name.startswith(("graph[", "delay", "mlp", "cubalif[subtract-delayed-pre"))]


@pytest.mark.parametrize("case", LAYERWISE_CASES, ids=lambda c: c.name)
def test_whole_sequence_schedules_reproduce_golden_cases(case):
    graph, x = case.build(), case.inputs()
    expected = reference.run(graph, x)
    model = JaxGraph(graph)
    for mode in ("fused", "layerwise"):
        outputs, _, trace = model.run(model.params, x, record=True, mode=mode)
        _assert_same_run(expected, outputs, trace, exact=case.exact)


def test_a_recurrent_edge_that_closes_no_cycle_once_inlined():
    """The parent's edge ('fb', 'sub') closes a cycle through the subgraph node, but inside the
    subgraph the Output does not depend on the Input: after inlining, the delayed edge joins two
    acyclic parts (the layer-wise schedule shifts its whole sequence by one step)."""
    sub = ir.Graph(
        {
            "in": ir.Input(np.array([2])),
            "lif": ir.LIF(tau=[2.0, 4.0], r=[2.0, 4.0], reset_mode="subtract"),  # reads the input, leads nowhere
            "drive": ir.Affine(np.array([[0.0, -0.5], [0.5, 0.0]], np.float32), np.array([0.3, 0.2], np.float32)),
            "pace": ir.IF(v_threshold=0.5, reset_mode="subtract"),  # a self-driven oscillator
            "out": ir.Output(np.array([2])),
        },
        [("in", "lif"), ("drive", "pace"), ("pace", "drive"), ("pace", "out")],
    )
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "sub": sub,
            "fb": ir.Scale(np.array([0.75, -0.5], np.float32)),
            "output": ir.Output(np.array([2])),
        },
        [("input", "sub"), ("sub", "fb"), ("fb", "sub"), ("sub", "output")],
    )
    assert graph.recurrent_edges == [("fb", "sub")]
    x = np.random.default_rng(4).normal(0.6, 1.0, (30, 2, 2)).astype(np.float32)
    expected = reference.run(graph, x)
    assert 0 < expected["outputs"]["output"].mean() < 1  # the oscillator fires, so 'fb' feeds the LIF
    model = JaxGraph(graph)
    for mode in MODES:
        outputs, _, trace = model.run(model.params, x, record=True, mode=mode)
        _assert_same_run(expected, outputs, trace)
    assert 0 < expected["outputs"]["output"].mean() < 1


def test_a_state_of_another_batch_or_structure_is_refused():
    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "lif": ir.LIF(tau=np.full(3, 2.0)), "output": ir.Output(np.array([3]))},
        [("input", "lif"), ("lif", "output")],
    )
    model = JaxGraph(graph)
    x = np.ones((3, 3), np.float32)
    for bad in (model.init_state(1), {}, {"nodes": {}, "edges": {}}):
        with pytest.raises(ValueError, match=r"state does not match init_state\(3\)"):
            model.step(model.params, bad, x)
    with pytest.raises(ValueError, match=r"state does not match init_state\(3\)"):
        model.run(model.params, np.ones((2, 3, 3), np.float32), state=model.init_state(2))
    y, _ = model.step(model.params, model.init_state(3), x)
    assert np.asarray(y).shape == (3, 3)
