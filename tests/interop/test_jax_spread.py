"""Small neuron layers get their coefficients, small dense layers their bias, spread over the
batch on the host (``.spread``).

The spread arrays must give the same bits as the coefficients broadcast in the graph (a traced
run, where nothing is spread), in every schedule and in single steps; per-neuron, per-channel
and channels-last coefficients must land on the right neurons; a new coefficient array or
batch size must never see a stale spread. Coefficients are arbitrary per-neuron floats, so a
coefficient on the wrong neuron or a product computed in another form shows in the results.
"""

import itertools

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph  # noqa: E402
from talon.interop.jax.executor import MODES  # noqa: E402
from talon.interop.jax.spread import MAX_NEURONS, is_identity, spreads, uniform_on_host  # noqa: E402


def _graph() -> ir.Graph:
    """conv (3 channels on 4x4) -> LIF with layer-shaped coefficients -> sum-pool -> conv ->
    LIF with per-channel ones -> flatten -> affine -> CubaLIF (10) -> affine -> LI (3)."""
    rng = np.random.default_rng(11)

    def f32(*shape, scale=1.0, loc=0.0):
        return rng.normal(loc, scale, shape).astype(np.float32)

    def u(*shape, low, high):
        return rng.uniform(low, high, shape)

    nodes = {
        "input": ir.Input(np.array([2, 4, 4])),
        "conv1": ir.Conv2d(f32(3, 2, 3, 3, scale=0.7), f32(3, scale=0.1), padding=(1, 1)),
        "lif1": ir.LIF(
            tau=u(3, 4, 4, low=1.5, high=6.0),
            r=u(3, 4, 4, low=0.5, high=3.0),
            v_leak=u(3, 4, 4, low=-0.2, high=0.2),
            v_threshold=u(3, 4, 4, low=0.3, high=0.9),
            v_reset=u(3, 4, 4, low=-0.3, high=0.1),
            reset_mode="value",
        ),
        "pool": ir.SumPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "conv2": ir.Conv2d(f32(4, 3, 1, 1, scale=0.8), f32(4, scale=0.1)),
        "lif2": ir.LIF(tau=u(4, low=1.5, high=5.0), r=u(4, low=0.5, high=2.5), v_threshold=u(4, low=0.3, high=0.8)),
        "flat": ir.Flatten(),
        "fc": ir.Affine(f32(10, 16, scale=0.6), f32(10, scale=0.1)),
        "cuba": ir.CubaLIF(
            tau_syn=u(10, low=1.5, high=4.0),
            tau_mem=u(10, low=2.0, high=6.0),
            r=u(10, low=0.5, high=3.0),
            w_in=u(10, low=0.5, high=2.0),
            v_threshold=u(10, low=0.2, high=0.7),
        ),
        "readout": ir.Affine(f32(3, 10, scale=0.7), f32(3, scale=0.1)),
        "li": ir.LI(tau=u(3, low=2.0, high=5.0), r=u(3, low=0.5, high=2.0), v_leak=u(3, low=-0.1, high=0.1)),
        "output": ir.Output(np.array([3])),
    }
    order = ["input", "conv1", "lif1", "pool", "conv2", "lif2", "flat", "fc", "cuba", "readout", "li", "output"]
    return ir.Graph(nodes, list(itertools.pairwise(order)))


@pytest.fixture(scope="module")
def model_and_input():
    x = np.random.default_rng(5).uniform(0, 1.5, (10, 3, 2, 4, 4)).astype(np.float32)
    return JaxGraph(_graph()), jnp.asarray(x)


def test_every_neuron_layer_here_is_spread_and_fires(model_and_input):
    model, x = model_and_input
    assert {"lif1", "lif2"} <= model.channels_last  # layer-shaped and per-channel coefficients, channels-last
    spread = model._spreads(model.params, model._relayouts(model.params), x.shape[1])
    assert set(spread) == {"lif1", "lif2", "cuba", "li", "fc", "readout"}
    for path in ("fc", "readout"):  # the biases of the small dense layers, [B, out]
        bias = np.asarray(model.params[path]["bias"])
        np.testing.assert_array_equal(np.asarray(spread.pop(path)["bias"]), np.tile(bias, (x.shape[1], 1)))
    for path, arrays in spread.items():
        assert set(arrays) == set(model.params[path]), path
        shape = model.plan.nodes[path].shape
        want = (x.shape[1], *shape[1:], shape[0]) if path in model.channels_last else (x.shape[1], *shape)
        for name, a in arrays.items():  # a coefficient shared by the whole layer (v_reset = 0) is a scalar
            value = np.asarray(model.params[path][name])
            if is_identity(name, value):  # c = v_leak/tau = 0 on every neuron: left out of the update
                assert a is None and name == "c", (path, name)
                continue
            uniform = np.unique(value).size == 1
            assert a.shape == (() if uniform else want), (path, name)
    _, _, trace = model.run(model.params, x, record=True)
    for path in ("lif1", "lif2", "cuba"):  # a membrane sits exactly at v_reset only after a spike
        v_reset = np.asarray(model.graph.nodes[path].v_reset, np.float32)
        v_reset = v_reset.reshape(v_reset.shape + (1,) * (len(model.plan.nodes[path].shape) - v_reset.ndim))
        reset = np.asarray(trace[path]["v"]) == v_reset
        assert 0.02 < reset.mean() < 0.98, path


def test_spread_coefficients_give_the_bits_of_broadcast_ones(model_and_input):
    model, x = model_and_input
    for mode in MODES:
        got = model.run(model.params, x, record=True, mode=mode)
        # under the caller's jit the coefficients are tracers: they broadcast in the graph
        traced = jax.jit(lambda p, xs, mode=mode: model.run(p, xs, record=True, mode=mode))(model.params, x)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(traced), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=mode)
    want, final, _ = model.run(model.params, x, record=True)
    state, steps = model.init_state(x.shape[1]), []
    step_jit = jax.jit(model.step)
    traced_state = state
    for t in range(x.shape[0]):
        y, state = model.step(model.params, state, x[t])
        y_traced, traced_state = step_jit(model.params, traced_state, x[t])
        np.testing.assert_array_equal(np.asarray(y), np.asarray(y_traced))
        steps.append(np.asarray(y))
    np.testing.assert_array_equal(np.stack(steps), np.asarray(want))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_new_coefficient_or_batch_size_is_spread_again(model_and_input):
    model, x = model_and_input
    before, _ = model.run(model.params, x)
    changed = {
        **model.params,
        "cuba": {**model.params["cuba"], "theta": model.params["cuba"]["theta"] * 0.5},
        "lif1": {**model.params["lif1"], "beta": model.params["lif1"]["beta"][::-1]},
        "readout": {**model.params["readout"], "bias": model.params["readout"]["bias"] + 0.25},
    }
    after, _ = model.run(changed, x)
    traced = jax.jit(lambda p, xs: model.run(p, xs)[0])(changed, x)
    np.testing.assert_array_equal(np.asarray(after), np.asarray(traced))
    assert not np.array_equal(np.asarray(after), np.asarray(before))
    np.testing.assert_array_equal(np.asarray(model.run(model.params, x)[0]), np.asarray(before))
    # another batch size: the first two samples of the batch give their rows of the full run
    two, _ = model.run(model.params, x[:, :2])
    np.testing.assert_array_equal(np.asarray(two), np.asarray(before)[:, :2])


def test_large_layers_keep_their_coefficients():
    assert spreads((MAX_NEURONS,)) and spreads((4, 4, 4))
    assert not spreads((MAX_NEURONS + 1,)) and not spreads((8, 16, 16))


def _uniform_graph() -> ir.Graph:
    """conv -> LIF (8x6x6, larger than MAX_NEURONS) -> flatten -> affine -> LIF (80) -> affine -> LI (5):
    every neuron coefficient shared by its layer, as a Spyx or snnTorch layer with scalar beta has."""
    rng = np.random.default_rng(3)

    def f32(*shape, scale=1.0):
        return rng.normal(0, scale, shape).astype(np.float32)

    nodes = {
        "input": ir.Input(np.array([2, 6, 6])),
        "conv": ir.Conv2d(f32(8, 2, 3, 3, scale=0.7), f32(8, scale=0.1), padding=(1, 1)),
        "lif1": ir.LIF(tau=np.full((8, 6, 6), 3.0), r=np.full((8, 6, 6), 1.7), v_leak=np.full((8, 6, 6), 0.05),
                       v_threshold=np.full((8, 6, 6), 0.6), v_reset=np.full((8, 6, 6), -0.1), reset_mode="value"),
        "flat": ir.Flatten(),
        "fc": ir.Affine(f32(80, 288, scale=0.2), f32(80, scale=0.1)),
        "lif2": ir.LIF(tau=np.full(80, 10.0), r=np.full(80, 10.0), v_threshold=np.full(80, 1.0),
                       reset_mode="subtract", reset_timing="delayed", spike_timing="pre"),
        "readout": ir.Affine(f32(5, 80, scale=0.5), f32(5, scale=0.1)),
        "li": ir.LI(tau=np.full(5, 4.0), r=np.full(5, 2.0), v_leak=np.full(5, 0.0)),
        "output": ir.Output(np.array([5])),
    }  # fmt: skip
    order = ["input", "conv", "lif1", "flat", "fc", "lif2", "readout", "li", "output"]
    return ir.Graph(nodes, list(itertools.pairwise(order)))


def test_uniform_coefficients_are_scalars_and_give_the_bits_of_broadcast_ones():
    model = JaxGraph(_uniform_graph())
    x = jnp.asarray(np.random.default_rng(8).uniform(0, 1.2, (12, 3, 2, 6, 6)).astype(np.float32))
    prepared = model._spreads(model.params, model._relayouts(model.params), x.shape[1])
    assert set(prepared) == {"lif1", "lif2", "li", "readout"}  # fc: 80 outputs, its bias is not spread
    assert set(prepared.pop("readout")) == {"bias"}
    for path, arrays in prepared.items():
        assert set(arrays) == set(model.params[path]), path
        for name, a in arrays.items():
            value = np.asarray(model.params[path][name]).reshape(-1)[0]
            if (path, name) in {("lif2", "g"), ("lif2", "c"), ("li", "c")}:  # g = 1, c = +0: left out
                assert a is None, (path, name)
            else:
                assert a.shape == () and a == value, (path, name)
    for mode in MODES:
        got = model.run(model.params, x, record=True, mode=mode)
        traced = jax.jit(lambda p, xs, mode=mode: model.run(p, xs, record=True, mode=mode))(model.params, x)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(traced), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=mode)
    spikes = np.asarray(got[2]["lif1"]["v"]) == np.float32(-0.1)  # reset to v_reset after a spike
    assert 0.02 < spikes.mean() < 0.9
    state = model.init_state(x.shape[1])
    for t in range(x.shape[0]):
        y, state = model.step(model.params, state, x[t])
        np.testing.assert_array_equal(np.asarray(y), np.asarray(got[0][t]))


def test_a_coefficient_no_longer_uniform_is_read_per_neuron():
    model = JaxGraph(_uniform_graph())
    x = jnp.asarray(np.random.default_rng(9).uniform(0, 1.2, (8, 2, 2, 6, 6)).astype(np.float32))
    before, _ = model.run(model.params, x)
    theta = np.asarray(model.params["lif2"]["theta"]).copy()
    theta[::2] = 0.25  # half the neurons fire more easily: the layer must see each neuron's threshold
    changed = {**model.params, "lif2": {**model.params["lif2"], "theta": jnp.asarray(theta)}}
    assert "theta" not in model._spreads(changed, model._relayouts(changed), 2).get("lif2", {})
    after, _ = model.run(changed, x)
    traced = jax.jit(lambda p, xs: model.run(p, xs)[0])(changed, x)
    np.testing.assert_array_equal(np.asarray(after), np.asarray(traced))
    assert not np.array_equal(np.asarray(after), np.asarray(before))
    np.testing.assert_array_equal(np.asarray(model.run(model.params, x)[0]), np.asarray(before))


def test_uniform_means_the_same_bits():
    assert uniform_on_host(np.full((3, 4), 0.5, np.float32)).shape == ()
    assert uniform_on_host(np.array([0.0, -0.0], np.float32)) is None  # equal values, not the same bits
    assert uniform_on_host(np.array([1.0, np.nextafter(np.float32(1), np.float32(2))], np.float32)) is None
    assert uniform_on_host(np.float32(2.0)) is None  # already a scalar


def test_identity_coefficients_leave_the_product_and_sum_out_with_the_same_bits():
    """g = 1 and c = +0 on every neuron (as a Spyx LIF has) are passed as None and the update leaves
    ``g*x`` and ``+ c`` out; on inputs full of signed zeros and exact cancellations (``beta*v + x``
    summing to zero) every membrane keeps its bits, the sign of its zeros included."""
    n = 6
    nodes = {
        "input": ir.Input(np.array([n])),
        "lif": ir.LIF(tau=np.full(n, 2.0), r=np.full(n, 2.0), v_threshold=np.full(n, 0.6), reset_mode="subtract"),
        "li": ir.LI(tau=np.full(n, 2.0), r=np.full(n, 2.0)),
        "if": ir.IF(r=np.full(n, 1.0), v_threshold=np.full(n, 0.7)),
        **{f"out_{k}": ir.Output(np.array([n])) for k in ("lif", "li", "if")},
    }
    edges = [e for k in ("lif", "li", "if") for e in (("input", k), (k, f"out_{k}"))]
    model = JaxGraph(ir.Graph(nodes, edges))
    values = np.array([-0.0, 0.0, 0.25, -0.25, 0.5, -0.5, 0.125, -0.125, 1.0], np.float32)
    x = jnp.asarray(np.random.default_rng(4).choice(values, (40, 5, n)))
    prepared = model._spreads(model.params, model._relayouts(model.params), 5)
    assert prepared["lif"]["g"] is None and prepared["lif"]["c"] is None and prepared["li"]["c"] is None
    assert prepared["if"]["g"] is None
    got = model.run(model.params, x, record=True)
    traced = jax.jit(lambda p, xs: model.run(p, xs, record=True))(model.params, x)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(traced), strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    v = np.asarray(got[2]["li"]["v"])
    assert (v == 0).any() and (np.signbit(v) & (v == 0)).sum() == 0  # zero sums, all +0.0 (as c = +0 makes them)
    assert 0.05 < np.asarray(got[0]["out_lif"]).mean() < 0.95
    assert uniform_on_host(np.zeros(3, np.float32)) is not None and not is_identity("c", -np.zeros(3, np.float32))
