"""Spyx models against their talon graphs on every engine: spikes identical, membranes within 1e-5.

Each model is run by Spyx itself (``spyx.nn.run`` and a per-step trace of its layer states), and
its ``to_ir`` graph by the conformance reference and every engine of the conformance registry
(tests/conformance/engine_*.py: the JAX engine, and the PyTorch executor and CPU backend once
they exist), on the same random input, strong enough that every spiking layer fires on some
steps and not on others.
"""

import numpy as np
import pytest

from talon import ir
from tests.conformance import reference
from tests.conformance.engines import engine_names, load

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
snn = pytest.importorskip("spyx.nn")
import jax.numpy as jnp  # noqa: E402

from talon.interop import spyx as tspyx  # noqa: E402

T, B = 40, 3


NP = np.random.default_rng(0)
RNGS = None


def _init(scale):
    """A flax initializer drawing from numpy: no XLA compilation per parameter shape."""
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(NP.normal(0.0, scale, shape), dtype)


def rngs():
    global RNGS
    RNGS = RNGS or nnx.Rngs(0)
    return RNGS


def linear(n_in, n_out, bias=True, gain=1.0):
    return nnx.Linear(n_in, n_out, use_bias=bias, kernel_init=_init(gain / np.sqrt(n_in)), bias_init=_init(0.1),
                      rngs=rngs())  # fmt: skip


def conv(c_in, c_out, kernel, **kwargs):
    fan_in = c_in // kwargs.get("feature_group_count", 1) * int(np.prod(kernel))
    return nnx.Conv(c_in, c_out, kernel, kernel_init=_init(1.5 / np.sqrt(fan_in)), bias_init=_init(0.1),
                    rngs=rngs(), **kwargs)  # fmt: skip


def neuron(cls, shape, decays=("beta",), recurrent_gain=None, **kwargs):
    """A Spyx neuron with per-unit decays in [0.5, 0.95] (and a scaled recurrent weight)."""
    layer = cls(shape, **dict.fromkeys(decays, 0.9), **kwargs, rngs=rngs())
    for name in decays:
        setattr(layer, name, nnx.Param(jnp.asarray(NP.uniform(0.5, 0.95, shape), jnp.float32)))
    if recurrent_gain is not None:
        w = NP.normal(0.0, recurrent_gain / np.sqrt(shape[0]), shape + shape)
        layer.recurrent_w = nnx.Param(jnp.asarray(w, jnp.float32))
    return layer


def dense():
    """Every feed-forward Spyx neuron, one after the other."""
    return snn.Sequential(
        linear(6, 20),
        neuron(snn.LIF, (20,)),
        linear(20, 10, gain=1.5),
        neuron(snn.CuBaLIF, (10,), decays=("alpha", "beta"), threshold=1.5),
        linear(10, 5, bias=False, gain=2.0),
        snn.IF((5,), threshold=np.linspace(0.5, 1.5, 5).astype(np.float32)),
        linear(5, 8, gain=2.0),
        snn.PSU_LIF((8,), beta=0.9, threshold=1.5, rngs=rngs()),
        linear(8, 4),
        snn.LI((4,), beta=0.8, rngs=rngs()),
    ), (6,)


def recurrent():
    return snn.Sequential(
        linear(6, 10),
        neuron(snn.RLIF, (10,), recurrent_gain=1.0),
        linear(10, 10),
        neuron(snn.RCuBaLIF, (10,), decays=("alpha", "beta"), recurrent_gain=0.5, threshold=2.0),
        linear(10, 10),
        neuron(snn.RIF, (10,), decays=(), recurrent_gain=1.0, threshold=1.5),
        linear(10, 3),
        snn.LI((3,), beta=0.7, rngs=rngs()),
    ), (6,)


def scnn():
    threshold = NP.uniform(0.5, 1.5, (8, 8, 4)).astype(np.float32)
    return snn.Sequential(
        conv(2, 4, (3, 3)),
        neuron(snn.LIF, (8, 8, 4), threshold=threshold),
        snn.SumPool((2, 2), (2, 2), "VALID"),
        snn.Flatten(),
        linear(64, 10, gain=0.5),
        neuron(snn.LIF, (10,)),
    ), (8, 8, 2)


def conv_options():
    """Strides, dilation, groups, explicit and 'SAME' padding, a Linear on channels, Flatten into neurons."""
    return snn.Sequential(
        conv(3, 6, (3, 2), strides=(2, 1), padding=((1, 1), (1, 1)), kernel_dilation=(1, 2), feature_group_count=3),
        snn.IF((4, 7, 6), threshold=0.5),
        linear(6, 4),  # acts on the channel axis: a 1x1 convolution in talon
        neuron(snn.LIF, (4, 7, 4)),
        snn.SumPool((3, 3), (1, 1), "SAME"),
        snn.Flatten(),
        neuron(snn.LIF, (112,), threshold=2.0),  # per-neuron decays in Spyx's (h, w, c) order
        neuron(snn.RLIF, (112,), recurrent_gain=1.0),  # a recurrent weight over flattened features
        linear(112, 5),
        snn.LI((5,), rngs=rngs()),
    ), (7, 7, 3)


def conv1d():
    mask = (NP.uniform(size=(3, 2, 4)) > 0.3).astype(np.float32)
    return snn.Sequential(
        conv(2, 4, (3,), padding="SAME", mask=mask),
        neuron(snn.LIF, (9, 4)),
        snn.Flatten(),
        linear(36, 6),
        neuron(snn.LIF, (6,)),
    ), (9, 2)


MODELS = [dense, recurrent, scnn, conv_options, conv1d]


def spyx_trace(model, x):
    """Spyx outputs and every layer's state after each step (the loop of spyx.nn.run)."""

    def step(state, x_t):
        out, new = model(x_t, state)
        return new, (out, new)

    _, (out, states) = jax.lax.scan(step, model.initial_state(x.shape[1]), x)
    return np.asarray(out), [None if s is None else np.asarray(s) for s in states]


def spyx_membranes(model, states, graph) -> dict[str, dict[str, np.ndarray]]:
    """Spyx's layer states under the talon state paths, in talon's layout.

    Spatial states move their channel axis first; after a Flatten of an (H, W, C) tensor talon's
    feature j = (c, h, w) is Spyx's feature (h, w, c), until a Linear mixes the features.
    """
    out, order = {}, None
    for i, (layer, state) in enumerate(zip(model.layers, states, strict=True)):
        name = f"layer_{i}"
        if isinstance(layer, snn.Flatten) and len(graph.nodes[name].input_shape) > 1:
            c, *spatial = graph.nodes[name].input_shape
            order = np.arange(c * int(np.prod(spatial))).reshape(*spatial, c)
            order = np.moveaxis(order, -1, 0).reshape(-1)
        elif isinstance(layer, nnx.Linear) and len(graph.nodes[name].input_shape) == 1:
            order = None
        if state is None:
            continue
        path = f"{name}.neuron" if isinstance(graph.nodes[name], ir.Graph) else name
        parts = np.split(state, 2, axis=-1) if isinstance(layer, (snn.CuBaLIF, snn.RCuBaLIF)) else [state]
        parts = [tspyx.channels_first(p) if order is None else p[..., order] for p in parts]
        out[path] = dict(zip(("v", "i"), parts, strict=False))
    return out


@pytest.fixture(scope="module", params=MODELS, ids=lambda f: f.__name__)
def case(request):
    model, shape = request.param()
    x = (np.random.default_rng(7).normal(0.5, 1.5, (T, B, *shape))).astype(np.float32)
    outputs, states = spyx_trace(model, jnp.asarray(x))
    graph = tspyx.to_ir(model, shape)
    return model, graph, x, outputs, spyx_membranes(model, states, graph)


def _compare(graph, outputs, membranes, result, who):
    y = tspyx.channels_last(np.asarray(result["outputs"]["output"]))
    if isinstance(graph.nodes[graph.predecessors("output")[0]], ir.LI):
        np.testing.assert_allclose(y, outputs, atol=1e-5, rtol=1e-6, err_msg=f"{who}: output")
    else:
        np.testing.assert_array_equal(y, outputs, err_msg=f"{who}: spikes")
    for path, state in membranes.items():
        for key, want in state.items():
            have = np.asarray(result["states"][path][key])
            np.testing.assert_allclose(have, want, atol=1e-5, rtol=1e-6, err_msg=f"{who}: {path}.{key}")


def test_inputs_make_every_spiking_layer_fire(case):
    _, graph, _, _, membranes = case
    for path, state in membranes.items():
        node = graph.nodes[path.split(".")[0]]
        node = node.nodes["neuron"] if isinstance(node, ir.Graph) else node
        if hasattr(node, "v_threshold"):
            crossed = state["v"] > node.v_threshold.reshape(node.v_threshold.shape)
            assert 0.01 < crossed.mean() < 0.99, f"{path} fires on {crossed.mean():.1%} of the steps"


# the conformance reference implements the nodes of the golden cases (no pooling, 1-d or grouped convolutions)
@pytest.mark.parametrize("case", [dense, recurrent], indirect=True, ids=lambda f: f.__name__)
def test_reference_reproduces_spyx(case):
    _, graph, x, outputs, membranes = case
    _compare(graph, outputs, membranes, reference.run(graph, tspyx.channels_first(x)), "reference")


@pytest.mark.parametrize("engine", engine_names())
def test_engine_reproduces_spyx(case, engine):
    module = load(engine)
    for requirement in module.REQUIRES:
        pytest.importorskip(requirement)
    _, graph, x, outputs, membranes = case
    _compare(graph, outputs, membranes, module.run(graph, tspyx.channels_first(x)), engine)


def test_round_trip_through_a_t1c_file_is_bit_exact(case, tmp_path):
    _, graph, x, outputs, _ = case
    ir.write(tmp_path / "model.t1c", graph)
    loaded = ir.read(tmp_path / "model.t1c")
    assert ir.graph_differences(loaded, graph) == []
    again = tspyx.from_ir(loaded)
    np.testing.assert_array_equal(np.asarray(snn.run(again, jnp.asarray(x))[0]), outputs)
    shape = graph.metadata["spyx_input_shape"]
    assert ir.graph_differences(tspyx.to_ir(again, shape), graph, metadata=False) == []
