"""Dense layers with few outputs are computed out-major (``talon.interop.jax.layers._dense``).

A layer of at most ``FEW_OUTPUTS`` outputs on at most ``FEW_ROWS`` samples computes
``(W · xᵀ)ᵀ`` (an ``[out, B]`` product) instead of ``x · Wᵀ``: XLA's CPU product fills its tiles
with the batch. It is still a float32 sum of the same products, so it must agree with a float64
reference to float32 rounding; and since every path of the engine (run, single steps, traced
parameters, gradients) computes it the same way, those must agree bit for bit with each other.
Larger layers, larger batches and whole sequences folded into ``T·B`` samples keep ``x · Wᵀ``.
"""

import re

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph  # noqa: E402


def _readout_graph(n_out: int, n_hidden: int = 40) -> ir.Graph:
    """affine -> LIF -> affine (``n_out`` outputs) -> LI, arbitrary float weights."""
    rng = np.random.default_rng(3)

    def floats(*shape, scale):
        return rng.normal(0, scale, shape).astype(np.float32)

    nodes = {
        "input": ir.Input(np.array([12])),
        "fc": ir.Affine(floats(n_hidden, 12, scale=0.6), floats(n_hidden, scale=0.1)),
        "lif": ir.LIF(tau=np.full(n_hidden, 4.0), r=np.full(n_hidden, 4.0), v_threshold=np.full(n_hidden, 0.5)),
        "readout": ir.Affine(floats(n_out, n_hidden, scale=0.5), floats(n_out, scale=0.1)),
        "li": ir.LI(tau=np.full(n_out, 3.0), r=np.full(n_out, 3.0)),
        "output": ir.Output(np.array([n_out])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "readout"), ("readout", "li"), ("li", "output")]
    return ir.Graph(nodes, edges)


def _x(t: int, b: int) -> jax.Array:
    return jnp.asarray(np.random.default_rng(5).uniform(0, 1.5, (t, b, 12)).astype(np.float32))


def _readout_products(model: JaxGraph, x) -> list[str]:
    """The shapes of the dot products in ``run``'s compiled module, e.g. ``['10,8', '8,40']``."""
    text = model._lower_run(model.params, x).compile().as_text()
    return re.findall(r"f32\[(\d+,\d+)\]\{1,0\} dot\(", text)


@pytest.mark.parametrize(
    ("n_out", "batch", "out_major"), [(10, 8, True), (24, 48, True), (25, 8, False), (10, 49, False)]
)
def test_few_outputs_on_a_small_batch_are_computed_out_major(n_out, batch, out_major):
    model = JaxGraph(_readout_graph(n_out))
    products = _readout_products(model, _x(3, batch))
    assert (f"{n_out},{batch}" in products) is out_major, products
    assert (f"{batch},{n_out}" in products) is not out_major, products


def test_the_out_major_product_sums_the_same_terms():
    """Input -> Affine (10 outputs) -> Output on arbitrary floats: equal to a float64 numpy
    evaluation to float32 rounding (the product is out-major here, see the test above)."""
    rng = np.random.default_rng(4)
    weight, bias = rng.normal(0, 1, (10, 40)).astype(np.float32), rng.normal(0, 1, 10).astype(np.float32)
    graph = ir.Graph(
        {"input": ir.Input(np.array([40])), "fc": ir.Affine(weight, bias), "output": ir.Output(np.array([10]))},
        [("input", "fc"), ("fc", "output")],
    )
    model = JaxGraph(graph)
    x = rng.normal(0, 1, (6, 8, 40)).astype(np.float32)
    y, _ = model.run(model.params, jnp.asarray(x))
    reference = x.astype(np.float64) @ weight.T.astype(np.float64) + bias
    np.testing.assert_allclose(np.asarray(y), reference, rtol=2e-6, atol=2e-6)
    assert "10,8" in _readout_products(model, jnp.asarray(x))


def test_run_steps_traced_parameters_and_gradients_agree_bit_for_bit():
    model = JaxGraph(_readout_graph(10))
    x = _x(15, 8)
    y, _ = model.run(model.params, x)
    state, steps = model.init_state(8), []
    for t in range(15):
        out, state = model.step(model.params, state, x[t])
        steps.append(out)
    np.testing.assert_array_equal(np.asarray(jnp.stack(steps)), np.asarray(y))
    traced = jax.jit(lambda p: model.run(p, x)[0])(model.params)
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(y))
    grads = jax.grad(lambda p: model.run(p, x)[0].sum())(model.params)
    assert np.abs(np.asarray(grads["readout"]["weight"])).sum() > 0
    assert np.isfinite(np.asarray(grads["fc"]["weight"])).all()


def test_a_nested_list_weight_is_cast_like_an_array():
    model = JaxGraph(_readout_graph(10))
    x = _x(4, 8)
    params = {k: dict(v) for k, v in model.params.items()}
    params["readout"]["weight"] = np.asarray(model.params["readout"]["weight"]).tolist()
    np.testing.assert_array_equal(np.asarray(model.run(params, x)[0]), np.asarray(model.run(model.params, x)[0]))
