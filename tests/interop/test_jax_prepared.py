"""What the JAX engine prepares outside its compiled functions, and the fused schedule's split.

Weights are relaid out by numpy (``[in, out]`` for a matrix product, spatial-first for a
convolution) and cached by array identity; a traced weight is relaid out in the graph instead.
Both must give the same bits, a new weight array must never see a stale cached layout, and the
cached initial state must equal ``init_state``. Parameters and inputs are arbitrary floats, so
a product computed in another form would show up in the last bit.
"""

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph  # noqa: E402
from talon.interop.jax.executor import MODES  # noqa: E402
from talon.interop.jax.plan import flatten, fuse  # noqa: E402


def _conv_dense_graph() -> ir.Graph:
    """conv -> LIF -> flatten -> affine -> LIF -> linear readout into an LI, arbitrary floats."""
    rng = np.random.default_rng(3)

    def f32(*shape, scale=1.0):
        return (rng.normal(0, scale, shape)).astype(np.float32)

    nodes = {
        "input": ir.Input(np.array([2, 6, 6])),
        "conv": ir.Conv2d(f32(4, 2, 3, 3, scale=0.6), f32(4, scale=0.1), padding=(1, 1)),
        "lif1": ir.LIF(tau=np.full((4, 6, 6), 3.0), r=np.full((4, 6, 6), 3.0), v_threshold=np.full((4, 6, 6), 0.5)),
        "flat": ir.Flatten(),
        "fc": ir.Affine(f32(12, 144, scale=0.2), f32(12, scale=0.1)),
        "lif2": ir.LIF(tau=np.full(12, 2.5), r=np.full(12, 2.5), v_threshold=np.full(12, 0.4)),
        "readout": ir.Linear(f32(3, 12, scale=0.7)),
        "li": ir.LI(tau=np.full(3, 4.0), r=np.full(3, 4.0)),
        "output": ir.Output(np.array([3])),
    }
    edges = [("input", "conv"), ("conv", "lif1"), ("lif1", "flat"), ("flat", "fc"), ("fc", "lif2")]
    edges += [("lif2", "readout"), ("readout", "li"), ("li", "output")]
    return ir.Graph(nodes, edges)


@pytest.fixture(scope="module")
def conv_dense():
    graph = _conv_dense_graph()
    x = np.random.default_rng(5).uniform(0, 1.5, (12, 3, 2, 6, 6)).astype(np.float32)
    return JaxGraph(graph), jnp.asarray(x)


def test_the_network_fires(conv_dense):
    model, x = conv_dense
    _, _, trace = model.run(model.params, x, record=True)
    for name in ("lif1", "lif2"):  # a membrane is exactly 0 only after a spike reset it
        reset = np.asarray(trace[name]["v"]) == 0
        assert 0.02 < reset.mean() < 0.98, name


def test_every_schedule_and_a_traced_run_give_the_same_bits(conv_dense):
    model, x = conv_dense
    want, _ = model.run(model.params, x)
    for mode in MODES:
        got, _ = model.run(model.params, x, mode=mode)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=mode)
        # under the caller's jit the weights are tracers: they are relaid out in the graph
        traced = jax.jit(lambda p, xs, mode=mode: model.run(p, xs, mode=mode)[0])(model.params, x)
        np.testing.assert_array_equal(np.asarray(traced), np.asarray(want), err_msg=f"traced {mode}")
    state, steps = model.init_state(x.shape[1]), []
    for t in range(x.shape[0]):
        y, state = model.step(model.params, state, x[t])
        steps.append(np.asarray(y))
    np.testing.assert_array_equal(np.stack(steps), np.asarray(want))


def test_a_new_weight_array_is_relaid_out_again(conv_dense):
    model, x = conv_dense
    before, _ = model.run(model.params, x)
    changed = {
        **model.params,
        "fc": {**model.params["fc"], "weight": model.params["fc"]["weight"] * 1.5},
        "conv": {**model.params["conv"], "weight": -model.params["conv"]["weight"]},
    }
    after, _ = model.run(changed, x)
    fresh = JaxGraph(model.to_graph(changed))  # no cache in common with `model`
    np.testing.assert_array_equal(np.asarray(after), np.asarray(fresh.run(fresh.params, x)[0]))
    assert not np.array_equal(np.asarray(after), np.asarray(before))
    again, _ = model.run(model.params, x)  # the original arrays again
    np.testing.assert_array_equal(np.asarray(again), np.asarray(before))


def test_numpy_weights_are_not_cached(conv_dense):
    """A numpy weight can change in place between calls: it is relaid out on every call."""
    model, x = conv_dense
    weight = np.array(model.params["fc"]["weight"])
    params = {**model.params, "fc": {**model.params["fc"], "weight": weight}}
    first, _ = model.run(params, x)
    weight *= 1.5
    second, _ = model.run(params, x)
    scaled = {**model.params, "fc": {**model.params["fc"], "weight": jnp.asarray(weight)}}
    np.testing.assert_array_equal(np.asarray(second), np.asarray(model.run(scaled, x)[0]))
    assert not np.array_equal(np.asarray(first), np.asarray(second))


def test_the_same_parameter_arrays_are_prepared_once(conv_dense):
    """run and step keep the host-side preparation of the last concrete parameters: the same
    arrays find it again, another batch size or a malformed dict does not."""
    model, x = conv_dense
    want, _ = model.run(model.params, x)
    prepared = model._calls._last[3]
    again, _ = model.run(dict(model.params), x)  # another dict, the same arrays
    assert model._calls._last[3] is prepared
    np.testing.assert_array_equal(np.asarray(again), np.asarray(want))
    half, _ = model.run(model.params, x[:, :2])  # another batch: prepared for it
    assert model._calls._last[0] == 2 and half.shape[1] == 2
    missing = {k: v for k, v in model.params.items() if k != "fc"}
    with pytest.raises(ValueError, match=r"structure of JaxGraph\.params"):
        model.run(missing, x)
    extra = {**model.params, "fc": {**model.params["fc"], "gain": model.params["fc"]["bias"]}}
    with pytest.raises(ValueError, match="must have the keys"):
        model.step(extra, model.init_state(x.shape[1]), x[0])


def test_the_cached_initial_state_is_init_state():
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "lif": ir.LIF(tau=np.full(3, 2.0), v_init=np.array([0.25, -0.5, 0.75], np.float32)),
            "delay": ir.Delay(np.array([2, 2, 2])),
            "output": ir.Output(np.array([3])),
        },
        [("input", "lif"), ("lif", "delay"), ("delay", "output")],
    )
    model = JaxGraph(graph)
    cached = model._initial_state(4)
    fresh = model.init_state(4)
    assert jax.tree.structure(cached) == jax.tree.structure(fresh)
    for a, b in zip(jax.tree.leaves(cached), jax.tree.leaves(fresh), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = np.random.default_rng(0).normal(0.5, 1.0, (6, 4, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        np.asarray(model.run(model.params, x)[0]), np.asarray(model.run(model.params, x, fresh)[0])
    )


def test_the_fused_split():
    """Input-only nodes before the scan, nodes feeding no neuron after it, the rest inside."""
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": ir.Affine(np.eye(4, dtype=np.float32), np.zeros(4, np.float32)),
            "lif": ir.LIF(tau=np.full(4, 2.0)),
            "mid": ir.Scale(np.full(4, 0.5, np.float32)),
            "li": ir.LI(tau=np.full(4, 2.0)),
            "head": ir.Scale(np.full(4, 2.0, np.float32)),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "mid"), ("mid", "li"), ("li", "head"), ("head", "output")],
    )
    before, loop, after = fuse(flatten(graph))
    assert (before, loop, after) == (["input", "fc"], ["lif", "mid", "li"], ["head", "output"])
