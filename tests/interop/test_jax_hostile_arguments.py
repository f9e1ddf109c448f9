"""What JaxGraph refuses from its caller (talon.interop.jax.arguments): params, states and inputs of the
wrong shape or dtype are named before any tracing, not reported from inside XLA or run silently."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from talon import examples
from talon.interop.jax import JaxGraph


@pytest.fixture(scope="module")
def engine():
    return JaxGraph(examples.mlp_graph(0, sizes=(6, 5, 3)))


@pytest.fixture(scope="module")
def x():
    return (np.random.default_rng(0).random((4, 2, 6)) * 3).astype(np.float32)


def _with(engine, value, node="fc1", name="weight"):
    params = {path: dict(arrays) for path, arrays in engine.params.items()}
    params[node][name] = value
    return params


@pytest.mark.parametrize(
    "value, error, message",
    [
        (np.ones((6, 5), np.float32), ValueError, r"params\['fc1'\]\['weight'\] has shape \[6, 5\], expected \[5, 6\]"),
        (np.ones((3, 3), np.float32), ValueError, r"params\['fc1'\]\['weight'\] has shape \[3, 3\]"),
        ("weights", ValueError, r"params\['fc1'\]\['weight'\] has shape \[\], expected \[5, 6\]"),
        (None, ValueError, r"params\['fc1'\]\['weight'\] has shape \[\]"),
        (np.ones((5, 6), np.complex64), TypeError, r"params\['fc1'\]\['weight'\] has dtype complex64"),
        (np.full((5, 6), "w"), TypeError, r"params\['fc1'\]\['weight'\] has dtype <U1"),
    ],
    ids=["transposed", "shape", "str", "None", "complex", "strings"],
)
def test_a_parameter_of_the_wrong_shape_or_dtype_is_named(engine, x, value, error, message):
    params = _with(engine, value)
    with pytest.raises(error, match=message):
        engine.run(params, x)
    with pytest.raises(error, match=message):
        engine.step(params, engine.init_state(2), x[0])


def test_parameters_the_engine_can_cast_still_run(engine, x):
    y, _ = engine.run(engine.params, x)
    weight = np.asarray(engine.params["fc1"]["weight"])
    for value in (weight.astype(np.float64), weight.tolist(), jnp.asarray(weight)):
        assert np.array_equal(engine.run(_with(engine, value), x)[0], y)
    grads = jax.grad(lambda p: engine.run(p, x)[0].sum())(engine.params)  # tracers pass the checks
    assert set(grads) == set(engine.params)


def test_a_state_of_another_dtype_is_named(engine, x):
    state = jax.tree.map(lambda a: np.asarray(a).astype(np.int32), engine.init_state(2))
    with pytest.raises(TypeError, match=r"state\['nodes'\]\['lif1'\]\['v'\] is int32, but this engine runs float32"):
        engine.run(engine.params, x, state)
    with pytest.raises(TypeError, match=r"is float64, but this engine runs float32"):
        engine.step(engine.params, jax.tree.map(lambda a: np.asarray(a, np.float64), engine.init_state(2)), x[0])


@pytest.mark.parametrize(
    "value, error, message",
    [
        ("spikes", TypeError, r"input 'input' has dtype <U6"),
        (np.full((4, 2, 6), object()), TypeError, r"input 'input' has dtype object"),
        (np.ones((4, 2, 6), np.complex64), TypeError, r"input 'input' has dtype complex64"),
        ([[[1.0] * 6, [1.0] * 5]], ValueError, r"input 'input' cannot be converted to an array"),
    ],
    ids=["str", "object", "complex", "ragged"],
)
def test_an_input_that_is_not_a_real_array_is_named(engine, value, error, message):
    with pytest.raises(error, match=message):
        engine.run(engine.params, value)


def test_arguments_in_the_torch_executors_order_or_a_missing_state_are_named(engine, x):
    """``step(params, x, state)`` / ``run(params, state, x)`` (the PyTorch executor's ``(x, state)``
    order) and ``step(params, None, x)`` (the PyTorch executor's start) say what the calls are."""
    state = engine.init_state(2)
    order = r"got a state \(a dict of 'nodes' and 'edges'\) where the input x goes: the calls are step\(params, state"
    with pytest.raises(TypeError, match=r"JaxGraph.step " + order):
        engine.step(engine.params, x[0], state)
    with pytest.raises(TypeError, match=r"JaxGraph.run " + order):
        engine.run(engine.params, state, x)
    engine.run(engine.params, x)  # a remembered call is not repeated on a state
    with pytest.raises(TypeError, match=r"JaxGraph.run " + order):
        engine.run(engine.params, state)
    with pytest.raises(TypeError, match=r"JaxGraph.step got None as the state: pass model.init_state"):
        engine.step(engine.params, None, x[0])
    with pytest.raises(ValueError, match=r"state does not match init_state\(2\)"):
        engine.step(engine.params, {}, x[0])
    y, _ = engine.step(engine.params, state, x[0])
    assert np.array_equal(y, engine.run(engine.params, x[:1])[0][0])


def test_a_path_is_not_a_graph():
    with pytest.raises(TypeError, match=r"JaxGraph expects a talon.ir.Graph, got str; read a .t1c file"):
        JaxGraph("model.t1c")
