"""A neuron outputting its previous spike updates its membrane last in the step (``.deferred``).

In the step-wise scan the update of a ``spike_timing='pre'`` neuron is made after the nodes
reading its spikes, so that XLA updates the membrane in the loop carry in place instead of
copying it every step. Only the order changes: the outputs, final states, traces, runs from an
arbitrary (also non-finite) state and gradients must be the bits of the same engine evaluating
every node in plan order (``_defer_updates = False``), and of single steps.
"""

import itertools

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph  # noqa: E402


def _rng():
    return np.random.default_rng(5)


def _f32(rng, *shape, scale=1.0):
    return rng.normal(0, scale, shape).astype(np.float32)


def _lif(rng, shape, **dynamics):
    return ir.LIF(
        tau=rng.uniform(1.5, 6.0, shape),
        r=rng.uniform(0.5, 3.0, shape),
        v_leak=rng.uniform(-0.1, 0.1, shape),
        v_threshold=rng.uniform(0.3, 0.8, shape),
        v_reset=rng.uniform(-0.2, 0.1, shape),
        spike_timing="pre",
        **dynamics,
    )


def _dense_chain() -> ir.Graph:
    """affine -> LIF (pre, subtract) -> affine -> LIF (pre, value, delayed_pre_decay) -> LIF (pre,
    fed by the spikes directly) -> affine -> CubaLIF (pre) -> affine -> LI."""
    rng = _rng()
    nodes = {
        "input": ir.Input(np.array([5])),
        "fc1": ir.Affine(_f32(rng, 12, 5, scale=0.9), _f32(rng, 12, scale=0.2)),
        "lif1": _lif(rng, 12, reset_mode="subtract", reset_timing="delayed"),
        "fc2": ir.Affine(_f32(rng, 12, 12, scale=0.6), _f32(rng, 12, scale=0.2)),
        "lif2": _lif(rng, 12, reset_mode="value", reset_timing="delayed_pre_decay"),
        "lif3": _lif(rng, 12, reset_mode="subtract", reset_timing="delayed", comparison=">="),
        "fc3": ir.Affine(_f32(rng, 8, 12, scale=0.8), _f32(rng, 8, scale=0.2)),
        "cuba": ir.CubaLIF(
            tau_syn=rng.uniform(1.5, 4.0, 8),
            tau_mem=rng.uniform(2.0, 6.0, 8),
            r=rng.uniform(0.5, 3.0, 8),
            w_in=rng.uniform(0.5, 2.0, 8),
            v_threshold=rng.uniform(0.2, 0.6, 8),
            reset_timing="delayed",
            spike_timing="pre",
        ),
        "readout": ir.Affine(_f32(rng, 3, 8, scale=0.7), _f32(rng, 3, scale=0.1)),
        "li": ir.LI(tau=rng.uniform(2.0, 5.0, 3), r=rng.uniform(0.5, 2.0, 3)),
        "output": ir.Output(np.array([3])),
    }
    order = ["input", "fc1", "lif1", "fc2", "lif2", "lif3", "fc3", "cuba", "readout", "li", "output"]
    return ir.Graph(nodes, list(itertools.pairwise(order)))


def _conv_chain() -> ir.Graph:
    """conv -> LIF (pre, kept channels-last inside) -> sum-pool -> flatten -> affine -> IF (pre)."""
    rng = _rng()
    nodes = {
        "input": ir.Input(np.array([2, 6, 6])),
        "conv": ir.Conv2d(_f32(rng, 4, 2, 3, 3, scale=0.6), _f32(rng, 4, scale=0.1), padding=(1, 1)),
        "lif": _lif(rng, (4, 6, 6), reset_mode="subtract", reset_timing="delayed"),
        "pool": ir.SumPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "flat": ir.Flatten(),
        "fc": ir.Affine(_f32(rng, 6, 36, scale=0.4), _f32(rng, 6, scale=0.1)),
        "if": ir.IF(
            r=rng.uniform(0.5, 1.5, 6), v_threshold=rng.uniform(0.5, 1.0, 6), reset_timing="delayed", spike_timing="pre"
        ),
        "output": ir.Output(np.array([6])),
    }
    order = ["input", "conv", "lif", "pool", "flat", "fc", "if", "output"]
    return ir.Graph(nodes, list(itertools.pairwise(order)))


def _recurrent() -> ir.Graph:
    """affine -> LIF (pre) with a recurrent Linear, its spikes through Delay(1) -> affine -> LI."""
    rng = _rng()
    nodes = {
        "input": ir.Input(np.array([4])),
        "fc": ir.Affine(_f32(rng, 6, 4, scale=0.8), _f32(rng, 6, scale=0.2)),
        "lif": _lif(rng, 6, reset_mode="subtract", reset_timing="delayed"),
        "w_rec": ir.Linear(_f32(rng, 6, 6, scale=0.5)),
        "delay": ir.Delay(np.ones(6, dtype=np.int64)),
        "readout": ir.Affine(_f32(rng, 3, 6, scale=0.7), np.zeros(3, np.float32)),
        "li": ir.LI(tau=np.full(3, 3.0), r=np.full(3, 3.0)),
        "output": ir.Output(np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "delay")]
    edges += [("delay", "readout"), ("readout", "li"), ("li", "output")]
    return ir.Graph(nodes, edges)


GRAPHS = {"dense": (_dense_chain, (5,)), "conv": (_conv_chain, (2, 6, 6)), "recurrent": (_recurrent, (4,))}
DEFERRED = {"dense": {"lif1", "lif2", "lif3", "cuba"}, "conv": {"lif"}, "recurrent": {"lif"}}


def _assert_same(a, b, msg=""):
    assert jax.tree.structure(a) == jax.tree.structure(b), msg
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert u.shape == v.shape and u.dtype == v.dtype, msg
        np.testing.assert_array_equal(np.asarray(u).view(np.uint32), np.asarray(v).view(np.uint32), err_msg=msg)


def _models(name):
    build, shape = GRAPHS[name]
    deferred, in_order = JaxGraph(build()), JaxGraph(build())
    in_order._defer_updates = False
    x = jnp.asarray(np.random.default_rng(7).uniform(0, 1.6, (14, 3, *shape)).astype(np.float32))
    return deferred, in_order, x


def _arbitrary_state(model, batch, non_finite: bool):
    rng = np.random.default_rng(9)
    state = jax.tree.map(lambda a: jnp.asarray(rng.uniform(-1, 2, a.shape).astype(np.float32)), model.init_state(batch))
    if non_finite:  # a NaN and an infinity in the first membrane the deferred updates wait behind
        first = next(p for p, s in state["nodes"].items() if "v" in s)
        v = np.array(state["nodes"][first]["v"])
        v.reshape(-1)[:2] = np.nan, np.inf
        state["nodes"][first]["v"] = jnp.asarray(v)
    return state


@pytest.mark.parametrize("name", list(GRAPHS))
def test_which_updates_are_deferred(name):
    model, _, _ = _models(name)
    # (dense: lif2 is read only by lif3 and waits for lif3's update; conv: the IF only by the output)
    assert set(model._step_order()[2]) == DEFERRED[name]


@pytest.mark.parametrize("name", list(GRAPHS))
@pytest.mark.parametrize("start", ["initial", "arbitrary", "non-finite"])
def test_deferred_updates_give_the_bits_of_plan_order_and_of_single_steps(name, start):
    model, in_order, x = _models(name)
    state = None if start == "initial" else _arbitrary_state(model, x.shape[1], start == "non-finite")
    want = in_order.run(in_order.params, x, state=state, record=True)
    got = model.run(model.params, x, state=state, record=True)
    _assert_same(got, want, "run")
    for path in DEFERRED[name]:  # every deferred layer fires, and not always (its next spikes: v > theta)
        theta = np.asarray(model.plan.nodes[path].node.v_threshold, np.float32)
        assert 0 < np.mean(np.asarray(want[2][path]["v"]) > theta) < 1, path
    traced = jax.jit(lambda p, s, xs: model.run(p, xs, state=s, record=True))(model.params, state, x)
    _assert_same(traced, want, "traced")
    s, ys = (model.init_state(x.shape[1]) if state is None else state), []
    for t in range(x.shape[0]):
        y, s = model.step(model.params, s, x[t])
        ys.append(y)
    _assert_same((jnp.stack(ys), s), want[:2], "steps")


@pytest.mark.parametrize("name", list(GRAPHS))
def test_deferred_updates_give_the_gradients_of_plan_order(name):
    model, in_order, x = _models(name)

    def loss(engine):
        def f(params, xs):
            y, final = engine.run(params, xs)
            return jnp.sum(jnp.sin(y)) + sum(jnp.sum(a) for a in jax.tree.leaves(final))

        return f

    got = jax.grad(loss(model), argnums=(0, 1))(model.params, x)
    want = jax.grad(loss(in_order), argnums=(0, 1))(in_order.params, x)
    _assert_same(got, want, "grad")
    assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(got[0]))


def _loop_copies(model, x) -> list[str]:
    """The copies of float arrays in the compiled step-wise scan's loop body."""
    lowered = model._lower_run(model.params, x)
    hlo = lowered.compile().as_text()
    return [line.strip() for line in hlo.splitlines() if " = f32[" in line and " copy(%get-tuple-element" in line]


def test_the_scan_updates_the_membranes_in_place():
    """Evaluated in plan order, XLA copies the membrane of every ``pre`` neuron of the dense chain
    (lif1, lif2, lif3, cuba) out of the loop carry every step; deferred, none."""
    model, in_order, x = _models("dense")
    assert sorted(c.split()[2].split("{")[0] for c in _loop_copies(in_order, x)) == ["f32[3,12]"] * 3 + ["f32[3,8]"]
    assert _loop_copies(model, x) == []


def test_the_conv_membrane_is_updated_in_place_behind_a_sliced_pool():
    """The conv LIF's spikes reach the product through a pool of sliced sums and a Flatten, which
    XLA fuses into the update's kernel when the update waits for them: so it waits for the
    product instead, and the ``[3, 6, 6, 4]`` membrane is not copied (the IF's, whose spikes only
    leave the step as the output, is)."""
    model, in_order, x = _models("conv")
    assert model._sliced_pools == {"pool"}
    copied = sorted(c.split()[2].split("{")[0] for c in _loop_copies(in_order, x))
    assert copied == ["f32[3,6,6,4]", "f32[3,6]"]
    assert [c.split()[2].split("{")[0] for c in _loop_copies(model, x)] == ["f32[3,6]"]
