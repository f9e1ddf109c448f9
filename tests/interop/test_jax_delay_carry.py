"""A one-step Delay is carried unstacked through the step-wise scan (``delay_carry.unstack_delays``).

Inside the scan its history ``[1, B, ...]`` is carried as ``[B, ...]``; callers still see
``[1, B, ...]``. The results, final state and recorded trace must be the bits of a traced run
and of single steps, also from a non-zero state whose delayed spikes disagree with
the membranes (the Delay's value must come from its own history, not be recomputed).
"""

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph  # noqa: E402


def _recurrent_with_delay() -> ir.Graph:
    """affine -> LIF (post spikes) with a recurrent Linear, its spikes through Delay(1) -> affine -> LI."""
    rng = np.random.default_rng(2)
    n = 6
    nodes = {
        "input": ir.Input(np.array([4])),
        "fc": ir.Affine(rng.normal(0, 0.8, (n, 4)).astype(np.float32), rng.normal(0, 0.1, n).astype(np.float32)),
        "lif": ir.LIF(
            tau=rng.uniform(1.5, 5.0, n),
            r=rng.uniform(0.5, 3.0, n),
            v_threshold=rng.uniform(0.3, 0.8, n),
            spike_timing="post",
        ),
        "w_rec": ir.Linear(rng.normal(0, 0.5, (n, n)).astype(np.float32)),
        "delay": ir.Delay(np.ones(n, dtype=np.int64)),
        "readout": ir.Affine(rng.normal(0, 0.7, (3, n)).astype(np.float32), np.zeros(3, np.float32)),
        "li": ir.LI(tau=np.full(3, 3.0), r=np.full(3, 3.0)),
        "output": ir.Output(np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "delay")]
    edges += [("delay", "readout"), ("readout", "li"), ("li", "output")]
    return ir.Graph(nodes, edges)


def _assert_same(a, b, msg=""):
    assert jax.tree.structure(a) == jax.tree.structure(b), msg
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert u.shape == v.shape, msg
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v), err_msg=msg)


@pytest.mark.parametrize("start", ["initial", "arbitrary", "non-finite"])
def test_a_one_step_delay_gives_the_bits_of_a_traced_run_and_of_single_steps(start):
    model = JaxGraph(_recurrent_with_delay())
    x = jnp.asarray(np.random.default_rng(7).uniform(0, 1.5, (12, 5, 4)).astype(np.float32))
    state = model.init_state(5)
    if start == "arbitrary":  # spikes in the history that the membranes would not give
        rng = np.random.default_rng(8)
        state = jax.tree.map(lambda a: jnp.asarray(rng.uniform(-1, 2, a.shape).astype(np.float32)), state)
        state["nodes"]["delay"]["history"] = jnp.asarray((rng.uniform(size=(1, 5, 6)) < 0.5).astype(np.float32))
    if start == "non-finite":  # the readout the LIF's update waits for (wait_for) starts with NaN and inf
        history = np.zeros((1, 5, 6), np.float32)
        history[0, 0, 0], history[0, 1, 2] = np.nan, np.inf
        state["nodes"]["delay"]["history"] = jnp.asarray(history)
    assert state["nodes"]["delay"]["history"].shape == (1, 5, 6)
    want = model.run(model.params, x, state=state, record=True)
    assert want[1]["nodes"]["delay"]["history"].shape == (1, 5, 6)
    spikes = np.asarray(want[1]["nodes"]["delay"]["history"])
    if start == "non-finite":
        assert np.isnan(np.asarray(want[0])[0]).any()
    assert 0 < spikes.mean() < 1  # the layer fires
    traced = jax.jit(lambda p, s, xs: model.run(p, xs, state=s, record=True))(model.params, state, x)
    _assert_same(traced, want, "traced")
    s, ys = state, []
    for t in range(x.shape[0]):
        y, s = model.step(model.params, s, x[t])
        ys.append(np.asarray(y))
    np.testing.assert_array_equal(np.stack(ys), np.asarray(want[0]))
    _assert_same(s, want[1], "steps")


def test_the_scan_updates_the_carried_delay_in_place():
    """The readout reading the Delay's history runs before the LIF's update writing its next value
    (``delay_carry.delay_order``), so XLA copies no value computed in the loop body into the carry (before,
    it copied the new spikes out and the old ones in, every step)."""
    model = JaxGraph(_recurrent_with_delay())
    x = jnp.zeros((12, 5, 4), jnp.float32)
    lowered = model._lower_run(model.params, x)
    hlo = lowered.compile().as_text()
    copies = [line.strip() for line in hlo.splitlines() if " copy(%" in line and "fusion" in line.split(" copy(")[1]]
    assert copies == []


@pytest.mark.parametrize("mode", ["stepwise", "fused", "layerwise"])
def test_a_delay_mixing_lags_0_and_1_passes_its_0_lag_elements_at_once(mode):
    """``max(delay) == 1`` is not a one-step Delay: the elements of lag 0 output this step's input
    (the step-wise scan used to carry the whole Delay unstacked, shifting every element by one)."""
    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "delay": ir.Delay(np.array([1, 0, 0])), "output": ir.Output(np.array([3]))},
        [("input", "delay"), ("delay", "output")],
    )
    x = np.arange(1, 13, dtype=np.float32).reshape(4, 1, 3)
    expected = np.array([[0, 2, 3], [1, 5, 6], [4, 8, 9], [7, 11, 12]], np.float32)[:, None]
    model = JaxGraph(graph)
    out, final = model.run(model.params, x, mode=mode)
    np.testing.assert_array_equal(np.asarray(out), expected)
    state, steps = model.init_state(1), []
    for t in range(4):
        y, state = model.step(model.params, state, x[t])
        steps.append(np.asarray(y))
    np.testing.assert_array_equal(np.stack(steps), expected)
    _assert_same(final, state)
