"""Sum and average pools of spikes as sums of strided slices (talon.interop.jax.spike_pools).

Which pools qualify (one ordinary edge from a single-spike neuron, disjoint windows, exact
integer sums), and that the engine gives the bits of the ``reduce_window`` pools it replaces:
outputs, final states, traces, single steps, runs from a state, traced runs and gradients, every
schedule.
"""

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from talon.interop.jax import JaxGraph, executor  # noqa: E402
from talon.interop.jax.executor import MODES  # noqa: E402
from talon.interop.jax.plan import flatten  # noqa: E402
from talon.interop.jax.spike_pools import sliced_window_sum, spike_fed_pools  # noqa: E402


def _lif(n_channels: int, rng, **kw) -> ir.LIF:
    return ir.LIF(
        tau=rng.uniform(2, 6, n_channels), r=rng.uniform(1, 3, n_channels), v_threshold=np.full(n_channels, 0.4), **kw
    )


def _graph(seed: int = 3, sum_stride: int = 2, **lif_kw) -> ir.Graph:
    """conv -> LIF -> sum-pool (2x2, stride 2) -> flatten -> dense -> LIF, plus a second
    branch LIF -> avg-pool (padded, ceil mode, stride 3 > window 2) -> Output, and a sum-pool of
    the convolution itself (not spikes)."""
    rng = np.random.default_rng(seed)
    flat = 3 * ((8 - 2) // sum_stride + 1) * ((7 - 2) // sum_stride + 1)
    nodes = {
        "input": ir.Input(np.array([2, 8, 7])),
        "conv": ir.Conv2d(rng.normal(0, 0.6, (3, 2, 3, 3)).astype(np.float32), np.full(3, 0.1, np.float32), padding=1),
        "lif": _lif(3, rng, **lif_kw),
        "sum": ir.SumPool2d(kernel_size=2, stride=sum_stride),
        "flat": ir.Flatten(),
        "fc": ir.Affine(rng.normal(0, 0.4, (5, flat)).astype(np.float32), rng.normal(0, 0.1, 5).astype(np.float32)),
        "lif_fc": _lif(5, rng),
        "out_fc": ir.Output(np.array([5])),
        "avg": ir.AvgPool2d(kernel_size=2, stride=3, padding=1, ceil_mode=True, count_include_pad=False),
        "out_avg": ir.Output(np.array([3, 3, 3])),
        "conv_sum": ir.SumPool2d(kernel_size=2, stride=2),
        "out_conv_sum": ir.Output(np.array([3, 4, 3])),
    }
    edges = [("input", "conv"), ("conv", "lif"), ("lif", "sum"), ("sum", "flat"), ("flat", "fc")]
    edges += [("fc", "lif_fc"), ("lif_fc", "out_fc"), ("lif", "avg"), ("avg", "out_avg")]
    edges += [("conv", "conv_sum"), ("conv_sum", "out_conv_sum")]
    return ir.Graph(nodes, edges)


def test_only_pools_of_single_spikes_with_disjoint_windows_are_sliced():
    plan = flatten(_graph())
    assert spike_fed_pools(plan, np.float32) == {"sum", "avg"}  # not the pool of the convolution
    multi = _graph(spike_mode="multi", reset_mode="subtract", reset_timing="immediate")
    assert spike_fed_pools(flatten(multi), np.float32) == set()  # spike counts, not 0/1
    assert spike_fed_pools(flatten(_graph(sum_stride=1)), np.float32) == {"avg"}  # overlapping windows
    # a window of more cells than bfloat16 counts exactly (2**8)
    rng = np.random.default_rng(0)
    big = ir.Graph(
        {
            "input": ir.Input(np.array([1, 17, 17])),
            "lif": _lif(1, rng),
            "sum": ir.SumPool2d(kernel_size=17, stride=17),
            "output": ir.Output(np.array([1, 1, 1])),
        },
        [("input", "lif"), ("lif", "sum"), ("sum", "output")],
    )
    assert spike_fed_pools(flatten(big), np.float32) == {"sum"}
    assert spike_fed_pools(flatten(big), jnp.bfloat16) == set()


@pytest.mark.parametrize(
    ("window", "strides", "pads"),
    [
        ((1, 2, 2, 1), (1, 2, 2, 1), [(0, 0)] * 4),
        ((1, 1, 3, 2), (1, 1, 3, 2), [(0, 0), (0, 0), (1, 2), (0, 1)]),
        ((1, 2, 1, 1), (1, 3, 1, 1), [(0, 0), (1, 1), (0, 0), (0, 0)]),
    ],
)
def test_the_sliced_sum_is_the_window_sum_on_spikes(window, strides, pads):
    spikes = (np.random.default_rng(1).uniform(size=(3, 7, 8, 4)) < 0.5).astype(np.float32)
    want = lax.reduce_window(spikes, np.float32(0), lax.add, window, strides, pads)
    got = jax.jit(lambda x: sliced_window_sum(x, window, strides, pads))(spikes)
    np.testing.assert_array_equal(np.asarray(got).view(np.uint32), np.asarray(want).view(np.uint32))


def _bits(tree):
    return [np.asarray(a).view(np.uint32) for a in jax.tree.leaves(tree)]


def _assert_same_bits(got, want, what):
    assert jax.tree.structure(got) == jax.tree.structure(want), what
    for i, (a, b) in enumerate(zip(_bits(got), _bits(want), strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{what}: leaf {i}")


@pytest.fixture(scope="module")
def engines():
    graph = _graph()
    sliced = JaxGraph(graph)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(executor, "spike_fed_pools", lambda plan, dtype: frozenset())
        windowed = JaxGraph(graph)
    assert sliced._sliced_pools == {"sum", "avg"} and windowed._sliced_pools == frozenset()
    # channels-first, the pools keep their window sums (see the module docstring of spike_pools)
    assert JaxGraph(graph, channels_last=False)._sliced_pools == frozenset()
    x = np.random.default_rng(4).uniform(0, 1.2, (9, 3, 2, 8, 7)).astype(np.float32)
    return sliced, windowed, jnp.asarray(x)


def test_the_network_fires(engines):
    sliced, _, x = engines
    y, _ = sliced.run(sliced.params, x)
    assert 0.05 < float(np.mean(np.asarray(y["out_avg"]) > 0)) < 0.95  # windows with and without spikes
    assert 0.05 < float(np.mean(np.asarray(y["out_fc"]))) < 0.95


@pytest.mark.parametrize("mode", MODES)
def test_every_schedule_gives_the_bits_of_the_window_sums(engines, mode):
    sliced, windowed, x = engines
    want = windowed.run(windowed.params, x, record=True, mode=mode)
    _assert_same_bits(sliced.run(sliced.params, x, record=True, mode=mode), want, mode)
    _, state = windowed.run(windowed.params, x[:4])
    want = windowed.run(windowed.params, x[4:], state, mode=mode)
    _assert_same_bits(sliced.run(sliced.params, x[4:], state, mode=mode), want, f"{mode} from a state")


def test_steps_traced_runs_and_gradients_give_the_same_bits(engines):
    sliced, windowed, x = engines
    state = windowed.init_state(x.shape[1])
    for t in range(3):
        want = windowed.step(windowed.params, state, x[t])
        _assert_same_bits(sliced.step(sliced.params, state, x[t]), want, f"step {t}")
        state = want[1]
    want = jax.jit(lambda p, xs: windowed.run(p, xs))(windowed.params, x)
    _assert_same_bits(jax.jit(lambda p, xs: sliced.run(p, xs))(sliced.params, x), want, "traced")

    def loss(engine):
        def f(params, xs):
            y, final = engine.run(params, xs)
            leaves = jax.tree.leaves((y, final))
            return sum(jnp.sum(a * jnp.linspace(0.5, 1.5, a.size).reshape(a.shape)) for a in leaves)

        return jax.grad(f, argnums=(0, 1))

    grads = loss(sliced)(sliced.params, x)
    assert float(jnp.abs(grads[0]["conv"]["weight"]).sum()) > 0
    _assert_same_bits(grads, loss(windowed)(windowed.params, x), "gradients")


def test_a_pool_fed_by_two_neurons_keeps_its_window_sum():
    rng = np.random.default_rng(2)
    nodes = {
        "input": ir.Input(np.array([1, 4, 4])),
        "a": _lif(1, rng),
        "b": _lif(1, rng),
        "sum": ir.SumPool2d(kernel_size=2, stride=2),
        "output": ir.Output(np.array([1, 2, 2])),
    }
    fan_in = ir.Graph(nodes, [("input", "a"), ("input", "b"), ("a", "sum"), ("b", "sum"), ("sum", "output")])
    assert spike_fed_pools(flatten(fan_in), np.float32) == frozenset()  # sums of two spikes: not counted
