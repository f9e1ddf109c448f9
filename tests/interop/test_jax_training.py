"""Gradients through the surrogate spike, a training loop, and trained parameters back into a graph."""

import itertools

import numpy as np
import pytest

from talon import ir
from tests.conformance import reference

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph, make_spike  # noqa: E402

# the short names of earlier releases (every kind, both engines: test_surrogate_kinds.py)
SHORT_NAMES = ("superspike", "fast_sigmoid", "arctan", "atan", "triangular", "boxcar", "straight_through", "sigmoid",
               "triangle", "tanh", "erfc", "heaviside", "linear", "none")  # fmt: skip


@pytest.mark.parametrize("name", SHORT_NAMES)
def test_surrogate_gradients(name):
    u = jnp.linspace(-2.0, 2.0, 41)
    theta = jnp.float32(0.25)
    spike = make_spike(">", name)
    np.testing.assert_array_equal(spike(u, theta), (u > theta).astype(np.float32))
    du, dtheta = jax.grad(lambda a, b: jnp.sum(spike(a, b) * jnp.arange(41.0)), argnums=(0, 1))(u, theta)
    x = np.asarray(u - theta, np.float64)
    expected = {
        "superspike": 1 / (1 + 25 * np.abs(x)) ** 2,
        "fast_sigmoid": 1 / (1 + 25 * np.abs(x)) ** 2,
        "arctan": 1 / ((1 + (2 * np.pi * x) ** 2) * np.pi),
        "atan": 1 / (1 + (np.pi * x) ** 2),
        "triangular": np.maximum(0, 1 - np.abs(2 * x)),
        "boxcar": np.where(np.abs(x) < 1, 0.5, 0.0),
        "straight_through": np.ones_like(x),
        "sigmoid": 25 * np.exp(-25 * x) / (np.exp(-25 * x) + 1) ** 2,
        "triangle": np.maximum(0, 1 - np.abs(x)),
        "tanh": 1 - np.tanh(x) ** 2,
        "erfc": 2 * np.exp(-(x**2)) / np.sqrt(np.pi),
        "heaviside": (x > 0).astype(np.float64),
        "linear": x,
        "none": np.zeros_like(x),
    }[name] * np.arange(41.0)
    np.testing.assert_allclose(du, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(dtheta, -expected.sum(), rtol=1e-5)


def test_unknown_surrogate_and_custom_callable():
    with pytest.raises(ValueError, match="unknown surrogate 'sigmoidish'"):
        make_spike(">", "sigmoidish")
    spike = make_spike(">=", lambda x: 3.0 * jnp.ones_like(x))
    assert spike(jnp.float32(1.0), jnp.float32(1.0)) == 1.0  # '>=' at equality
    assert jax.grad(lambda u: spike(u, jnp.float32(1.0)))(jnp.float32(0.0)) == 3.0


def _trainable() -> ir.Graph:
    rng = np.random.default_rng(0)
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": ir.Affine(rng.uniform(0, 0.5, (3, 4)).astype(np.float32), np.zeros(3, np.float32)),
            "lif": ir.LIF(
                tau=np.full(3, 5.0),
                r=np.full(3, 5.0),
                reset_mode="subtract",
                reset_timing="delayed",
                surrogate="superspike",
            ),  # JaxGraph trains each neuron with its own surrogate
            "output": ir.Output(np.array([3])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )


def test_a_graph_trains_with_jax_grad():
    model = JaxGraph(_trainable())
    x = jnp.asarray((np.random.default_rng(1).uniform(0, 1, (25, 8, 4)) < 0.4).astype(np.float32))
    target = jnp.array([2.0, 6.0, 12.0])  # spikes per sample and output neuron

    def loss(params):
        y, _ = model.run(params, x)
        return jnp.mean((y.sum(0) - target) ** 2)

    step = jax.jit(jax.value_and_grad(loss))
    params = model.params
    first, grads = step(params)
    assert float(jnp.abs(grads["fc"]["weight"]).sum()) > 0
    assert float(jnp.abs(grads["lif"]["beta"]).sum()) > 0
    for _ in range(60):
        value, grads = step(params)
        params = jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)
    assert float(value) < 0.2 * float(first)

    trained = model.to_graph(params)
    np.testing.assert_array_equal(trained.nodes["fc"].weight, np.asarray(params["fc"]["weight"]))
    rerun, _ = JaxGraph(trained).run(JaxGraph(trained).params, x)
    np.testing.assert_array_equal(rerun, model.run(params, x)[0])


def test_unchanged_parameters_give_back_the_same_graph():
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "w": ir.Linear(np.array([[0.5, 1.0], [1.0, -0.5]])),  # float64 weights stay float64
            "rnn": ir.Graph(
                {
                    "in": ir.Input(np.array([2])),
                    "lif": ir.CubaLIF(tau_syn=[2.0, np.inf], tau_mem=[3.0, 4.0], r=[3.0, 4.0], w_in=[2.0, 0.0]),
                    "out": ir.Output(np.array([2])),
                },
                [("in", "lif"), ("lif", "out")],
                metadata={"origin": "test"},
            ),
            "if": ir.IF(v_threshold=[1.0, 2.0]),
            "output": ir.Output(np.array([2])),
        },
        [("input", "w"), ("w", "rnn"), ("rnn", "if"), ("if", "output")],
        metadata={"note": ("kept", 1)},
    )
    model = JaxGraph(graph)
    assert sorted(model.params) == ["if", "rnn.lif", "w"]
    assert ir.graph_differences(model.to_graph(model.params), graph) == []


def test_trained_neuron_coefficients_become_exact_time_constants():
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "scale": ir.Scale(np.array([1.0, 0.5, 2.0], np.float32)),
            "lif": ir.LIF(
                tau=[2.0, 3.0, np.inf],
                r=[2.0, 3.0, 1.0],
                reset_mode="subtract",
                reset_timing="delayed",
                spike_timing="pre",
                comparison=">",
            ),
            "cuba": ir.CubaLIF(
                tau_syn=[2.0, 4.0, 8.0], tau_mem=[2.0, 4.0, 8.0], r=[2.0, 4.0, 8.0], w_in=[2.0, 4.0, 8.0]
            ),
            "output": ir.Output(np.array([3])),
        },
        [("input", "scale"), ("scale", "lif"), ("lif", "cuba"), ("cuba", "output")],
    )
    model = JaxGraph(graph)
    params = jax.tree.map(np.array, model.params)
    params["scale"]["scale"] = np.array([0.8123, 1.337, 2.5], np.float32)
    params["lif"]["beta"] = np.array([0.8312345, 1.0, 0.0], np.float32)  # 1.0: no leak, 0.0: no memory
    params["lif"]["g"] = np.array([0.7, 1.3, 1.0], np.float32)
    params["lif"]["theta"] = np.array([0.9, 1.1, 0.7], np.float32)
    params["cuba"]["alpha"] = np.array([0.3, 0.61, 0.999], np.float32)
    params["cuba"]["gs"] = np.array([1.25, 0.5, 2.0], np.float32)
    trained = model.to_graph(params)
    lif = trained.nodes["lif"]
    assert lif.tau[1] == 2.0**30 and lif.r[1] == np.float32(1.3) * 2.0**30 and lif.reset_mode == "subtract"
    x = np.random.default_rng(3).normal(0.5, 1.0, (40, 2, 3)).astype(np.float32)
    expected = reference.run(trained, x)
    y, _, trace = model.run(params, x, record=True)
    np.testing.assert_array_equal(np.asarray(y), expected["outputs"]["output"])
    np.testing.assert_array_equal(np.asarray(trace["cuba"]["v"]), expected["states"]["cuba"]["v"])
    assert 0 < expected["outputs"]["output"].mean() < 1


def _euler_chain() -> ir.Graph:
    return ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "lif": ir.LIF(tau=[3.0, 5.0, np.inf], r=2.0, v_leak=0.25, v_threshold=0.8, integration="euler"),
            "li": ir.LI(tau=np.array([2.0, 4.0, 8.0], np.float32), r=1.5, integration="euler"),
            "output": ir.Output(np.array([3])),
        },
        [("input", "lif"), ("lif", "li"), ("li", "output")],
    )


def test_euler_nodes_keep_their_integration_through_to_graph():
    graph = _euler_chain()
    model = JaxGraph(graph)
    assert sorted(model.params["li"]) == ["k", "r", "v_leak"]
    assert ir.graph_differences(model.to_graph(model.params), graph) == []
    params = jax.tree.map(np.array, model.params)
    params["lif"]["k"] = np.array([0.3123457, 0.0, 1.25], np.float32)  # 0: no leak (tau = inf)
    params["lif"]["r"] = np.array([1.7, 2.2, 0.9], np.float32)
    params["lif"]["v_leak"] = np.array([0.1, -0.3, 0.0], np.float32)
    params["li"]["k"] = np.array([0.61, 0.2, 0.05], np.float32)
    trained = model.to_graph(params)
    lif, li = trained.nodes["lif"], trained.nodes["li"]
    assert lif.integration == "euler" and li.integration == "euler"
    assert lif.tau[1] == np.inf and np.array_equal(lif.r, params["lif"]["r"])
    assert np.all(li.r == 1.5) and np.all(li.v_leak == 0.0)  # untouched parameters are kept
    x = np.random.default_rng(5).normal(0.4, 1.0, (40, 2, 3)).astype(np.float32)
    expected = reference.run(trained, x)
    y, _, trace = model.run(params, x, record=True)
    np.testing.assert_array_equal(np.asarray(y), expected["outputs"]["output"])
    np.testing.assert_array_equal(np.asarray(trace["lif"]["v"]), expected["states"]["lif"]["v"])
    params["lif"]["k"] = np.array([0.5, -0.25, 0.5], np.float32)
    with pytest.raises(ir.ConversionError, match=r"node .lif.: .* no exact tau: a rate k = 1/tau of -0\.25"):
        model.to_graph(params)
    params["lif"]["k"] = np.array([0.5, np.nan, 0.5], np.float32)
    with pytest.raises(ir.ConversionError, match=r"node .lif.: .* no exact tau"):
        model.to_graph(params)
    params["lif"]["k"] = np.array([0.5, 0.5, 0.5], np.float32)
    params["lif"]["r"] = np.array([1.0, np.inf, 1.0], np.float32)
    with pytest.raises(ir.ConversionError, match=r"node 'lif': the trained parameters do not make a valid LIF"):
        model.to_graph(params)


def test_inexpressible_parameters_are_refused():
    model = JaxGraph(_trainable())
    params = jax.tree.map(np.array, model.params)
    params["lif"]["beta"] = np.array([0.5, 1.25, 0.5], np.float32)
    with pytest.raises(ir.ConversionError, match=r"node .lif.: .* no exact tau: a decay of 1\.25 has no positive"):
        model.to_graph(params)
    params["lif"]["beta"] = np.array([0.5, 1e-12, 0.5], np.float32)
    with pytest.raises(ir.ConversionError, match=r"decays between 0 and 2\*\*-29 cannot"):
        model.to_graph(params)
    with pytest.raises(ValueError, match=r"params\['fc'\]\['weight'\] has shape \(4, 3\), expected \(3, 4\)"):
        model.to_graph({**model.params, "fc": {**model.params["fc"], "weight": model.params["fc"]["weight"].T}})
    with pytest.raises(ValueError, match=r"structure of JaxGraph\.params"):
        model.to_graph({"fc": model.params["fc"]})


def test_gradients_flow_through_sum_and_average_pools():
    # before: "Linearization failed to produce known values" (a traced zero made the window sum a
    # generic reduce_window, which jax.grad cannot differentiate)
    rng = np.random.default_rng(0)
    nodes = {
        "input": ir.Input(np.array([2, 6, 6])),
        "conv": ir.Conv2d(weight=rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32), padding=(1, 1)),
        "sum": ir.SumPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "avg": ir.AvgPool2d(kernel_size=(2, 2), stride=(1, 1), padding=(1, 1)),
        "lif": ir.LIF(tau=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
        "output": ir.Output(np.array([3, 4, 4])),
    }
    chain = ["input", "conv", "sum", "avg", "lif", "output"]
    model = JaxGraph(ir.Graph(nodes, list(itertools.pairwise(chain))))
    x = jnp.asarray(rng.uniform(size=(5, 2, 2, 6, 6)).astype(np.float32))
    grads = jax.grad(lambda p: jnp.sum(model.run(p, x)[0]))(model.params)
    assert float(jnp.abs(grads["conv"]["weight"]).sum()) > 0
