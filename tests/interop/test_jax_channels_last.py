"""Convolution chains run channels-last inside the JAX engine, with the same bits.

``JaxGraph(graph)`` keeps a conv -> neuron -> pool chain channels-last (``[B, H, W, C]``) and
``JaxGraph(graph, channels_last=False)`` everything in talon's layout; outputs, final states,
recorded traces, per-step results and traced (jitted) runs must agree bit for bit on arbitrary
floats, non-uniform per-neuron coefficients, and a state that is not the initial one.
"""

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph  # noqa: E402
from talon.interop.jax.executor import MODES  # noqa: E402


def _f32(rng, *shape, scale=1.0, loc=0.0):
    return rng.normal(loc, scale, shape).astype(np.float32)


def _conv_chain() -> ir.Graph:
    """Strided/dilated/grouped conv -> CubaLIF (per-neuron coefficients, v_min) -> max-pool ->
    conv -> LIF -> avg-pool -> Output (the output itself channels-last), and a side branch
    flatten -> affine -> LIF (a chain read back in talon's order)."""
    rng = np.random.default_rng(11)
    c1 = (4, 7, 7)
    nodes = {
        "input": ir.Input(np.array([2, 9, 9])),
        "conv1": ir.Conv2d(
            _f32(rng, 4, 1, 3, 3, scale=0.8), _f32(rng, 4, scale=0.1), padding=(1, 1), dilation=(2, 2), groups=2
        ),
        "cuba": ir.CubaLIF(
            tau_syn=rng.uniform(1.5, 4, c1),
            tau_mem=rng.uniform(2, 6, c1),
            r=rng.uniform(1, 3, c1),
            v_threshold=rng.uniform(0.3, 0.8, c1),
            v_min=np.float64(-0.5),
        ),
        "maxpool": ir.MaxPool2d(kernel_size=(2, 2), stride=(1, 1), padding=(1, 1)),
        "conv2": ir.Conv2d(_f32(rng, 3, 4, 2, 2, scale=0.7), _f32(rng, 3, scale=0.1), stride=(2, 2)),
        "lif": ir.LIF(
            tau=rng.uniform(2, 5, 3),
            r=rng.uniform(1, 4, 3),
            v_threshold=np.array([0.2, 0.4, 0.6]),
            reset_mode="subtract",
            reset_timing="delayed",
            spike_timing="pre",
            comparison=">",
        ),
        "avgpool": ir.AvgPool2d(kernel_size=(2, 2), stride=(1, 1), count_include_pad=False, padding=(1, 1)),
        "output": ir.Output(np.array([3, 5, 5])),
        "flat": ir.Flatten(),
        "fc": ir.Affine(_f32(rng, 5, 196, scale=0.3), _f32(rng, 5, scale=0.1)),
        "lif_fc": ir.LIF(tau=np.full(5, 3.0), r=np.full(5, 3.0), v_threshold=np.full(5, 0.3)),
        "output_fc": ir.Output(np.array([5])),
    }
    edges = [("input", "conv1"), ("conv1", "cuba"), ("cuba", "maxpool"), ("maxpool", "conv2"), ("conv2", "lif")]
    edges += [("lif", "avgpool"), ("avgpool", "output"), ("cuba", "flat"), ("flat", "fc"), ("fc", "lif_fc")]
    edges += [("lif_fc", "output_fc")]
    return ir.Graph(nodes, edges)


@pytest.fixture(scope="module")
def engines():
    graph = _conv_chain()
    x = np.random.default_rng(12).uniform(0, 1.5, (8, 3, 2, 9, 9)).astype(np.float32)
    return JaxGraph(graph), JaxGraph(graph, channels_last=False), jnp.asarray(x)


def _bits(tree):
    return [np.asarray(a).view(np.uint32) for a in jax.tree.leaves(tree)]


def _assert_same_bits(got, want, what):
    assert jax.tree.structure(got) == jax.tree.structure(want), what
    for i, (a, b) in enumerate(zip(_bits(got), _bits(want), strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"{what}: leaf {i}")


def test_the_chain(engines):
    last, first, _ = engines
    assert last.channels_last == {"conv1", "cuba", "maxpool", "conv2", "lif", "avgpool", "output"}
    assert first.channels_last == frozenset()


def test_the_network_fires(engines):
    last, _, x = engines
    (y, _, trace) = last.run(last.params, x, record=True)
    for name in ("cuba", "lif", "lif_fc"):
        fired = np.asarray(trace[name]["v"]) != np.asarray(trace[name]["v"])[0]
        assert fired.any(), name
    spikes = np.asarray(y["output_fc"])
    assert 0.02 < spikes.mean() < 0.98


@pytest.mark.parametrize("mode", MODES)
def test_every_schedule_gives_the_bits_of_the_channels_first_engine(engines, mode):
    last, first, x = engines
    want = first.run(first.params, x, record=True, mode=mode)
    _assert_same_bits(last.run(last.params, x, record=True, mode=mode), want, mode)
    # from a state that is not the initial one (given by the caller, in talon's layout)
    _, state = first.run(first.params, x[:3])
    want = first.run(first.params, x[3:], state, mode=mode)
    _assert_same_bits(last.run(last.params, x[3:], state, mode=mode), want, f"{mode} from a state")


def test_traced_parameters_and_single_steps_give_the_same_bits(engines):
    last, first, x = engines
    want, _ = first.run(first.params, x)
    traced = jax.jit(lambda p, xs: last.run(p, xs)[0])(last.params, x)  # coefficients transposed in the graph
    _assert_same_bits(traced, want, "traced")
    state, steps = last.init_state(x.shape[1]), []
    for t in range(x.shape[0]):
        y, state = last.step(last.params, state, x[t])
        steps.append(y)
    _assert_same_bits(jax.tree.map(lambda *ys: jnp.stack(ys), *steps), want, "step by step")
    _assert_same_bits(state, first.run(first.params, x)[1], "final state of step")


def test_a_convolution_without_a_chain_stays_channels_first():
    rng = np.random.default_rng(0)
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([1, 4, 4])),
            "conv": ir.Conv2d(_f32(rng, 2, 1, 3, 3), padding=(1, 1)),
            "flat": ir.Flatten(),
            "lif": ir.LIF(tau=np.full(32, 2.0), r=np.full(32, 2.0)),
            "output": ir.Output(np.array([32])),
        },
        [("input", "conv"), ("conv", "flat"), ("flat", "lif"), ("lif", "output")],
    )
    assert JaxGraph(graph).channels_last == frozenset()
