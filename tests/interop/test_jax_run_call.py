"""``run``'s repeated call (``run_call.RunCalls.repeat``): the last call made again on a new input.

A loop of ``run(params, x)`` skips the checks and the preparation its last call made: it must
give the bits of a fresh engine's full call, see every new or changed parameter array, and refuse
every bad argument with the error of the full path. Parameters and inputs are arbitrary floats,
so a stale relaid weight or prepared coefficient would show in the last bit.
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from talon.interop.jax import JaxGraph  # noqa: E402
from tests.interop.test_jax_delay_carry import _recurrent_with_delay  # noqa: E402
from tests.interop.test_jax_prepared import _conv_dense_graph  # noqa: E402

GRAPHS = {"recurrent": (_recurrent_with_delay, (4,)), "conv": (_conv_dense_graph, (2, 6, 6))}


def _inputs(shape, seed, t=9, b=3):
    return jnp.asarray(np.random.default_rng(seed).uniform(0, 1.5, (t, b, *shape)).astype(np.float32))


def _assert_same(a, b, msg=""):
    assert jax.tree.structure(a) == jax.tree.structure(b), msg
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert u.shape == v.shape and u.dtype == v.dtype, msg
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v), err_msg=msg)


def _full_path_only(model, monkeypatch):
    """Make every call of ``model.run`` that is not a repeat fail, to show which ones repeat."""

    def refuse(*args, **kwargs):
        raise AssertionError("the full path was taken")

    monkeypatch.setattr(model, "_run_arguments", refuse)


@pytest.fixture(scope="module", params=list(GRAPHS))
def engine(request):
    build, shape = GRAPHS[request.param]
    return build, shape, JaxGraph(build())


@pytest.mark.parametrize("mode", ["stepwise", "fused", "layerwise"])
@pytest.mark.parametrize("record", [False, True])
def test_a_repeated_call_gives_the_bits_of_a_fresh_engine(engine, mode, record, monkeypatch):
    build, shape, model = engine
    model.run(model.params, _inputs(shape, 1), record=record, mode=mode)  # remembered
    x = _inputs(shape, 2)
    with monkeypatch.context() as m:
        _full_path_only(model, m)
        got = model.run(model.params, x, record=record, mode=mode)
        again = model.run(dict(model.params), x, record=record, mode=mode)  # another dict, the same arrays
    fresh = JaxGraph(build())
    _assert_same(got, fresh.run(fresh.params, x, record=record, mode=mode), mode)
    _assert_same(again, got, mode)
    assert np.asarray(got[1]["nodes"][next(iter(model._neuron_shapes))]["v"]).any()  # it ran


def test_only_the_same_call_repeats(engine, monkeypatch):
    """Another mode or record, a state, another batch or length, a numpy or float64 input take the
    full path (and then give the bits of a fresh engine)."""
    build, shape, model = engine
    x = _inputs(shape, 3)
    model.run(model.params, x)
    fresh = JaxGraph(build())
    others = {
        "mode": ({"mode": "fused"}, x),
        "record": ({"record": True}, x),
        "state": ({"state": model.init_state(3)}, x),
        "batch": ({}, x[:, :2]),
        "length": ({}, x[:4]),
        "numpy": ({}, np.asarray(x)),
        "float64": ({}, np.asarray(x, np.float64)),
    }
    for name, (kwargs, xs) in others.items():
        with monkeypatch.context() as m:
            _full_path_only(model, m)
            with pytest.raises(AssertionError, match="full path"):
                model.run(model.params, xs, **kwargs)
        _assert_same(model.run(model.params, xs, **kwargs), fresh.run(fresh.params, xs, **kwargs), name)


def test_a_new_or_changed_parameter_array_is_prepared_again(engine):
    build, shape, model = engine
    x = _inputs(shape, 4)
    before = model.run(model.params, x)
    path, name = "w_rec" if "w_rec" in model.params else "fc", "weight"
    params = {p: dict(arrays) for p, arrays in model.params.items()}
    params[path][name] = model.params[path][name] * 1.25
    changed = model.run(params, x)
    params[path][name] = model.params[path][name]  # changed in place, back to the original array
    restored = model.run(params, x)
    params[path][name] = np.array(model.params[path][name]) * 0.5  # numpy: never remembered
    numpy_params = model.run(params, x)
    params[path][name] *= 2  # in place: the next call must see it
    numpy_changed = model.run(params, x)
    fresh = JaxGraph(build())
    scaled = {**fresh.params, path: {**fresh.params[path], name: fresh.params[path][name] * 1.25}}
    _assert_same(changed, fresh.run(scaled, x))
    assert not np.array_equal(np.asarray(changed[0]), np.asarray(before[0]))
    _assert_same(restored, before)
    halved = {
        **fresh.params,
        path: {**fresh.params[path], name: jnp.asarray(np.asarray(fresh.params[path][name]) * 0.5)},
    }
    _assert_same(numpy_params, fresh.run(halved, x))
    _assert_same(numpy_changed, before)


def test_bad_arguments_after_a_remembered_call_are_refused_as_before(engine):
    _, shape, model = engine
    x = _inputs(shape, 5)
    model.run(model.params, x)
    wrong = jnp.zeros((9, 3, *shape[:-1], shape[-1] + 1), jnp.float32)
    with pytest.raises(ValueError, match=r"input 'input': expected shape \[T, B, "):
        model.run(model.params, wrong)
    with pytest.raises(ValueError, match=r"expected shape"):
        model.run(model.params, x[0])  # no time axis
    missing = {p: a for p, a in model.params.items() if p != next(iter(model.params))}
    with pytest.raises(ValueError, match=r"structure of JaxGraph\.params"):
        model.run(missing, x)
    first = next(iter(model.params))
    extra = {**model.params, first: {**model.params[first], "gain": next(iter(model.params[first].values()))}}
    with pytest.raises(ValueError, match="must have the keys"):
        model.run(extra, x)
    with pytest.raises(ValueError, match="mode must be one of"):
        model.run(model.params, x, mode="loop")
    with pytest.raises(ValueError, match="state does not match"):
        model.run(model.params, x, state=model.init_state(2))
    with pytest.raises(ValueError, match="Input nodes"):
        model.run(model.params, {"other": x})
    model.run(model.params, x)  # and a good call still works after them


def _loss(model):
    def loss(params, xs):
        y, final = model.run(params, xs)
        return jnp.sum(jnp.sin(y)) + sum(jnp.sum(a) for a in jax.tree.leaves(final))

    return loss


def test_a_traced_run_and_its_gradient_do_not_repeat_the_concrete_call(engine):
    build, shape, model = engine
    x = _inputs(shape, 6)
    want = model.run(model.params, x)
    _assert_same(jax.jit(lambda p, xs: model.run(p, xs))(model.params, x), want, "traced")
    grads = jax.grad(_loss(model), argnums=(0, 1))(model.params, x)
    fresh = JaxGraph(build())
    _assert_same(grads, jax.grad(_loss(fresh), argnums=(0, 1))(fresh.params, x), "grad")
    assert any(np.asarray(g).any() for g in jax.tree.leaves(grads[0]))
    _assert_same(model.run(model.params, x), want, "after")
