"""What to_ir writes for each Spyx layer, what from_ir accepts, and every refusal (named, with a reason)."""

import numpy as np
import pytest

from talon import ir
from tests.subprocesses import child_env

jax = pytest.importorskip("jax")
nnx = pytest.importorskip("flax.nnx")
snn = pytest.importorskip("spyx.nn")
axn = pytest.importorskip("spyx.axn")
import jax.numpy as jnp  # noqa: E402

from talon.interop import spyx as tspyx  # noqa: E402
from talon.interop.jax import JaxGraph  # noqa: E402
from talon.interop.jax.neurons import coefficients  # noqa: E402

R = nnx.Rngs(0)


def linear(n_in, n_out, **kw):
    rng = np.random.default_rng(n_in * 100 + n_out)
    init = lambda key, shape, dtype=jnp.float32: jnp.asarray(rng.normal(0, 1 / np.sqrt(n_in), shape), dtype)  # noqa: E731
    return nnx.Linear(n_in, n_out, kernel_init=init, bias_init=init, rngs=R, **kw)


def conv(c_in, c_out, kernel, **kw):
    rng = np.random.default_rng(c_in * 10 + c_out)
    init = lambda key, shape, dtype=jnp.float32: jnp.asarray(rng.normal(0, 0.5, shape), dtype)  # noqa: E731
    return nnx.Conv(c_in, c_out, kernel, kernel_init=init, bias_init=init, rngs=R, **kw)


# ---- to_ir ------------------------------------------------------------------------------------


def test_lif_fields_and_exact_coefficients():
    beta = np.array([0.0, 0.3, 0.95, 1.0, 1.3, -0.2], np.float32)  # Spyx clips to [0, 1] on every call
    lif = snn.LIF((6,), beta=0.5, threshold=0.75, rngs=R)
    lif.beta = nnx.Param(jnp.asarray(beta))
    graph = tspyx.to_ir(snn.Sequential(linear(3, 6), lif), {"input": (3,)})
    assert list(graph.nodes) == ["input", "layer_0", "layer_1", "output"]
    node = graph.nodes["layer_1"]
    assert isinstance(node, ir.LIF) and node.metadata["spyx_layer"] == "LIF"
    assert (node.comparison, node.reset_mode, node.reset_timing, node.spike_timing) == (
        ">",
        "subtract",
        "delayed",
        "pre",
    )
    assert node.tau.dtype == np.float64 and np.array_equal(node.tau, node.r)
    k = coefficients(node, np.float32)
    np.testing.assert_array_equal(k["beta"], np.clip(beta, 0, 1))
    np.testing.assert_array_equal(k["g"], np.ones(6, np.float32))
    np.testing.assert_array_equal(k["c"], np.zeros(6, np.float32))
    assert node.tau[3] == 2.0**30  # beta = 1: no leak, and still a unit input gain


def test_cubalif_li_if_psu_fields():
    cuba = snn.CuBaLIF((4,), alpha=0.6, beta=0.85, rngs=R)
    model = snn.Sequential(
        linear(3, 4), cuba, snn.IF((4,)), snn.PSU_LIF((4,), beta=0.7, rngs=R), snn.LI((4,), beta=0.9, rngs=R)
    )
    g = tspyx.to_ir(model, (3,))
    c = g.nodes["layer_1"]
    assert isinstance(c, ir.CubaLIF) and c.reset_timing == "delayed_pre_decay" and c.spike_timing == "pre"
    k = coefficients(c, np.float32)
    assert k["alpha"][0] == np.float32(0.6) and k["beta"][0] == np.float32(0.85) and k["g"][0] == k["gs"][0] == 1
    assert isinstance(g.nodes["layer_2"], ir.IF) and g.nodes["layer_2"].r[0] == 1
    p = g.nodes["layer_3"]
    assert isinstance(p, ir.LIF) and (p.reset_mode, p.spike_timing, p.comparison) == ("none", "post", ">")
    li = g.nodes["layer_4"]
    assert isinstance(li, ir.LI) and coefficients(li, np.float32)["beta"][0] == np.float32(0.9)


def test_recurrent_layer_is_a_delayed_output_subgraph():
    rlif = snn.RLIF((5,), beta=0.8, rngs=R)
    g = tspyx.to_ir(snn.Sequential(linear(3, 5), rlif), (3,))
    sub = g.nodes["layer_1"]
    assert isinstance(sub, ir.Graph) and sub.recurrent_edges == [("w_rec", "neuron")]
    assert sub.nodes["neuron"].spike_timing == "post"
    np.testing.assert_array_equal(sub.nodes["w_rec"].weight, np.asarray(rlif.recurrent_w[...]).T)
    np.testing.assert_array_equal(sub.nodes["delay"].delay, np.ones(5))


def test_conv_kernels_and_spatial_parameters_are_channels_first():
    threshold = np.random.default_rng(0).uniform(0.5, 1.5, (6, 6, 4)).astype(np.float32)
    c = conv(2, 4, (3, 2), padding=((1, 1), (0, 0)))
    g = tspyx.to_ir(snn.Sequential(c, snn.LIF((6, 5, 4), threshold=threshold[:, :5], rngs=R)), (6, 6, 2))
    assert tuple(g.nodes["input"].shape) == (2, 6, 6)
    np.testing.assert_array_equal(g.nodes["layer_0"].weight, np.asarray(c.kernel[...]).transpose(3, 2, 0, 1))
    assert g.nodes["layer_0"].padding == (1, 0)
    np.testing.assert_array_equal(g.nodes["layer_1"].v_threshold, threshold[:, :5].transpose(2, 0, 1))


def test_dense_weight_after_flatten_reads_channels_first_features():
    dense = linear(12, 3)
    g = tspyx.to_ir(snn.Sequential(conv(1, 3, (1, 1)), snn.Flatten(), dense), (2, 2, 1))
    kernel = np.asarray(dense.kernel[...])  # rows in Spyx's (h, w, c) order
    perm = np.arange(12).reshape(2, 2, 3).transpose(2, 0, 1).reshape(-1)  # talon feature j = Spyx feature perm[j]
    np.testing.assert_array_equal(g.nodes["layer_2"].weight, kernel.T[:, perm])


def test_nested_sequentials_and_single_layers():
    g = tspyx.to_ir(snn.Sequential(linear(2, 3), snn.Sequential(snn.IF((3,)), snn.LI((3,), rngs=R))), (2,))
    assert list(g.nodes) == ["input", "layer_0", "layer_1_0", "layer_1_1", "output"]
    single = tspyx.to_ir(snn.LIF((4,), beta=0.5, rngs=R), 4)
    assert list(single.nodes) == ["input", "layer_0", "output"]


def test_other_spyx_surrogates_are_accepted():
    for activation in (axn.arctan(), axn.boxcar(), axn.triangular(), axn.tanh(), axn.custom()):
        tspyx.to_ir(snn.LIF((3,), beta=0.5, activation=activation, rngs=R), (3,))


@pytest.mark.parametrize(
    ("layers", "shape", "error", "match"),
    [
        (lambda: [require_phasor().ResonateFire((3,), rngs=R)], (3,), ir.UnsupportedModuleError,
         r"layer_0 \(ResonateFire\): .* no oscillatory primitive"),
        (lambda: [snn.ALIF((3,), rngs=R)], (3,), ir.UnsupportedModuleError, "adaptive-threshold"),
        (lambda: [snn.ActivityRegularization((3,))], (3,), ir.UnsupportedModuleError, "remove it"),
        (lambda: [nnx.Dropout(0.5, rngs=R)], (3,), ir.UnsupportedModuleError, r"layer_0 \(Dropout\): no talon"),
        (lambda: [linear(3, 4), snn.LIF((5,), beta=0.5, rngs=R)], (3,), ir.ConversionError,
         r"layer_1 \(LIF\): its hidden shape \(5,\) is not the shape of its input \(4,\)"),
        (lambda: [snn.LIF((3,), beta=0.5, activation=axn.custom(fwd=lambda x: (x >= 0).astype(x.dtype)), rngs=R)],
         (3,), ir.ConversionError, "not the Heaviside step"),
        (lambda: [snn.LIF((3,), beta=1e-12, rngs=R)], (3,), ir.ConversionError, r"layer_0 \(LIF\): beta: .* 2\*\*-29"),
        (lambda: [snn.RLIF((3,), beta=0.5, threshold=-0.5, rngs=R)], (3,), ir.ConversionError, "negative threshold"),
        (lambda: [snn.CuBaLIF((2, 2, 1), alpha=0.5, beta=0.5, rngs=R)], (2, 2, 1), ir.ConversionError,
         "only runs on 1-d layers"),
        (lambda: [conv(1, 2, (2, 2))], (6, 6, 1), ir.ConversionError, r"padding \(0, 1\) .* asymmetric"),
        (lambda: [conv(1, 2, (3, 3), padding="CIRCULAR")], (6, 6, 1), ir.ConversionError, "wrap-around"),
        (lambda: [conv(1, 2, (3, 3), input_dilation=2)], (6, 6, 1), ir.ConversionError, "input_dilation"),
        (lambda: [linear(3, 2, dtype=jnp.bfloat16)], (3,), ir.ConversionError, "computes in bfloat16"),
        (lambda: [conv(1, 2, (3, 3)), snn.Flatten()], (4, 4, 1), ir.ConversionError,
         "after 'layer_1'.*no transpose node"),
        (lambda: [snn.SumPool(2, 2, "VALID", channel_axis=None)], (4, 4, 2), ir.ConversionError, "channel axis"),
        (lambda: [snn.SumPool((2, 2), (2, 2), "VALID")], (4,), ir.ConversionError, r"pools \(H, W, C\) inputs"),
    ],
)  # fmt: skip
def test_to_ir_refusals_name_the_layer(layers, shape, error, match):
    with pytest.raises(error, match=match):
        tspyx.to_ir(snn.Sequential(*layers()), shape)


def require_phasor():
    return pytest.importorskip("spyx.phasor")


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="positive ints"):
        tspyx.to_ir(snn.IF((3,)), (0,))
    with pytest.raises(ValueError, match="positive ints"):
        tspyx.to_ir(snn.IF((3,)), (3.5,))
    with pytest.raises(ir.ConversionError, match=r"layer_0 \(Linear\): expects 4 input features"):
        tspyx.to_ir(snn.Sequential(nnx.Linear(4, 3, rngs=R), snn.IF((3,))), (3,))
    with pytest.raises(ir.ConversionError, match=r"layer_0 \(Conv\): expects 2 input channels"):
        tspyx.to_ir(conv(2, 3, (3, 3)), (5, 5, 1))

    class Broken(snn.IF):  # a user subclass whose state does not fit: Spyx itself cannot run it
        def initial_state(self, batch_size):
            return jnp.zeros((batch_size, 7))

    with pytest.raises(ir.ConversionError, match=r"does not run on inputs of shape \(3,\)"):
        tspyx.to_ir(Broken((3,)), (3,))


# ---- from_ir ----------------------------------------------------------------------------------


def _spyx_lif(shape, **kw):
    tau = np.full(shape, 4.0)
    return ir.LIF(tau=tau, r=tau, v_threshold=1.0, reset_mode="subtract", reset_timing="delayed",
                  spike_timing="pre", comparison=">", **kw)  # fmt: skip


def _chain(shape, *nodes):
    """input -> nodes... -> output."""
    names = [f"n{i}" for i in range(len(nodes))]
    out = tuple(shape)
    for node in nodes:
        node.infer_types([out])
        out = node.output_shape
    return ir.Graph(
        {
            "input": ir.Input(np.array(shape)),
            **dict(zip(names, nodes, strict=True)),
            "output": ir.Output(np.array(out)),
        },
        list(zip(["input", *names], [*names, "output"], strict=True)),
    )


def test_from_ir_runs_hand_written_graphs_exactly():
    """Per-channel neuron parameters, LI -> Threshold as PSU_LIF, a reset-free IF, identity nodes skipped."""
    rng = np.random.default_rng(3)
    graph = _chain(
        (2, 6, 6),
        ir.Conv2d(rng.normal(0, 0.5, (3, 2, 3, 3)).astype(np.float32), np.full(3, 0.1, np.float32), padding=1),
        ir.LIF(tau=np.array([2.0, 4.0, 8.0]), r=np.array([2.0, 4.0, 8.0]), v_threshold=np.array([0.5, 1.0, 1.5]),
               reset_mode="subtract", reset_timing="delayed", spike_timing="pre", comparison=">"),
        ir.Dropout(p=0.2),
        ir.SumPool2d(kernel_size=3, stride=1, padding=1),
        ir.Flatten(),
        ir.Affine(rng.normal(0, 0.2, (5, 108)).astype(np.float32), np.zeros(5, np.float32)),
        ir.LI(tau=np.full(5, 3.0), r=np.full(5, 3.0)),
        ir.Threshold(threshold=np.full(5, 0.4)),
        ir.Linear(rng.normal(0, 1.0, (4, 5)).astype(np.float32)),
        ir.IF(v_threshold=0.5, reset_mode="none", spike_timing="post", comparison=">"),
    )  # fmt: skip
    model = tspyx.from_ir(graph)
    kinds = [type(m).__name__ for m in model.layers]
    assert kinds == ["Conv", "LIF", "SumPool", "Flatten", "Linear", "PSU_LIF", "Linear", "PSU_LIF"]
    x = rng.normal(0.5, 1.0, (30, 2, 2, 6, 6)).astype(np.float32)
    engine = JaxGraph(graph)  # the conformance reference has no SumPool2d; the JAX engine passes it
    want, _ = engine.run(engine.params, x)
    got, _ = snn.run(model, jnp.asarray(tspyx.channels_last(x)))
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert 0 < np.asarray(want).mean() < 1


def _spyx_form_recurrent(neuron_kwargs=None, **subgraph_edits):
    n = 3
    neuron = ir.LIF(tau=np.full(n, 4.0), r=np.full(n, 4.0), reset_mode="subtract", reset_timing="delayed",
                    spike_timing="post", comparison=">", **(neuron_kwargs or {}))  # fmt: skip
    nodes = {
        "input": ir.Input(np.array([n])),
        "neuron": neuron,
        "w_rec": ir.Linear(np.eye(n, dtype=np.float32) * 0.5),
        "delay": ir.Delay(delay=np.ones(n, np.int64)),
        "output": ir.Output(np.array([n])),
    }
    nodes.update(subgraph_edits)
    edges = [("input", "neuron"), ("neuron", "w_rec"), ("w_rec", "neuron"), ("neuron", "delay"), ("delay", "output")]
    return ir.Graph(nodes, edges)


def test_from_ir_accepts_the_recurrent_form():
    graph = _chain((3,), _spyx_form_recurrent())
    (layer,) = tspyx.from_ir(graph).layers
    assert type(layer).__name__ == "RLIF"
    np.testing.assert_array_equal(np.asarray(layer.recurrent_w[...]), np.eye(3) * 0.5)


def _residual():
    return ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "a": _spyx_lif((2,)),
            "b": ir.Skip("residual"),
            "output": ir.Output(np.array([2])),
        },
        [("input", "a"), ("a", "b"), ("input", "b"), ("b", "output")],
    )


def _rleaky_top_level():
    return ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "lif": _spyx_lif((2,)),
            "w": ir.Linear(np.eye(2)),
            "output": ir.Output(np.array([2])),
        },
        [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
    )


@pytest.mark.parametrize(
    ("graph", "match"),
    [
        (lambda: _chain((3,), ir.LIF(tau=np.full(3, 4.0), r=np.full(3, 4.0), reset_mode="subtract",
                                     reset_timing="delayed", comparison=">")),
         r"node 'n0' \(LIF\): spike_timing='post', but Spyx's neuron has spike_timing='pre'"),
        (lambda: _chain((3,), ir.LIF(tau=np.full(3, 4.0), r=np.full(3, 4.0))), "comparison='>='"),
        (lambda: _chain((3,), _spyx_lif((3,)).__class__(tau=np.full(3, 4.0), r=np.full(3, 2.0), reset_mode="subtract",
                                                      reset_timing="delayed", spike_timing="pre", comparison=">")),
         "input gain r/tau is 0.5"),
        (lambda: _chain((3,), _spyx_lif((3,), v_leak=0.5)), "v_leak is not 0"),
        (lambda: _chain((3,), _spyx_lif((3,), v_init=0.5)), r"node 'n0' \(LIF\): v_init is not 0, but Spyx starts"),
        (lambda: _chain((3,), _spyx_form_recurrent({"v_init": 0.25})), r"neuron: LIF\): v_init is not 0"),
        (lambda: _chain((3,), ir.LIF(tau=np.full(3, 4.0), r=np.full(3, 4.0), reset_mode="subtract",
                                     spike_mode="multi")),
         r"node 'n0' \(LIF\): spike_mode='multi', but Spyx's neurons emit one spike"),
        (lambda: _chain((3,), ir.LIF(tau=np.full(3, 4.0), r=np.full(3, 4.0), reset_mode="none", comparison=">",
                                     v_min=-1.0)),
         r"node 'n0' \(LIF\): v_min \(a membrane floor\), but Spyx's neurons have none"),
        (lambda: _chain((2, 3), ir.Affine(np.ones((2, 3)))), "acts on the last"),
        (lambda: _chain((3, 2, 2), ir.CubaLIF(tau_syn=4.0, tau_mem=4.0, r=4.0, w_in=4.0, reset_mode="subtract",
                                              reset_timing="delayed_pre_decay", spike_timing="pre", comparison=">")),
         "runs on 1-d layers only"),
        (lambda: _chain((1, 5, 5), ir.SumPool2d(kernel_size=2, stride=2, padding=1)), "neither 'VALID' nor"),
        (lambda: _chain((2, 2, 2), ir.Flatten(start_dim=1)), "start_dim=1"),
        (lambda: _chain((1, 4, 4), ir.MaxPool2d(kernel_size=2)), "Spyx has no layer that computes a MaxPool2d"),
        (lambda: _chain((3,), _spyx_form_recurrent(delay=ir.Delay(delay=np.full(3, 2)))), "one step"),
        (lambda: _chain((3,), _spyx_form_recurrent({"v_threshold": -1.0})), "negative threshold"),
        (lambda: _chain((3,), ir.CubaLIF(tau_syn=2.0, tau_mem=4.0, r=4.0, w_in=2.0, reset_mode="none",
                                         comparison=">")),
         r"node 'n0' \(CubaLIF\): a CubaLIF without reset has no Spyx equivalent"),
        (lambda: _chain((3,), _spyx_lif((3,), integration="euler")),
         r"node 'n0' \(LIF\): integration='euler' .* Spyx's neurons compute the decay order"),
        (lambda: _chain((3,), ir.LI(tau=np.full(3, 4.0), r=np.full(3, 4.0), integration="euler")),
         r"node 'n0' \(LI\): integration='euler'"),
        (lambda: _chain((3,), ir.LI(tau=np.full(3, 4.0), r=np.full(3, 4.0), integration="euler"),
                        ir.Threshold(threshold=np.full(3, 0.5))),
         r"nodes 'n0', 'n1' \(LI, Threshold\): integration='euler'"),
        (lambda: _chain((3,), _spyx_form_recurrent({"integration": "euler"})),
         r"neuron: LIF\): integration='euler'"),
        (lambda: _chain((3,), ir.LIF(tau=np.full(3, 4.0), r=np.full(3, 4.0), v_threshold=np.array([0.5, 1.0, 1.5]),
                                     reset_mode="subtract", reset_timing="delayed", spike_timing="pre", comparison=">",
                                     surrogate="threshold_step_window(window=0.5)")),
         r"node 'n0' \(LIF\): surrogate 'threshold_step_window\(window=0.5\)': its derivative reads each neuron's"),
        (_residual, "node 'input' has 2 outgoing edges"),
        (_rleaky_top_level, r"recurrent edges \[\('w', 'lif'\)\] outside a recurrent-layer subgraph"),
    ],
)  # fmt: skip
def test_from_ir_refusals_name_the_node(graph, match):
    with pytest.raises(ir.ConversionError, match=match):
        tspyx.from_ir(graph())


def test_from_ir_gives_a_threshold_kind_its_one_threshold():
    """Rockpool's StepPWL on a layer with one threshold: Spyx's activation gets ``step_window`` at it."""
    lif = ir.LIF(tau=np.full(3, 4.0), r=np.full(3, 4.0), v_threshold=np.full(3, 0.8), reset_mode="subtract",
                 reset_timing="delayed", spike_timing="pre", comparison=">",
                 surrogate="threshold_step_window")  # fmt: skip
    (layer,) = tspyx.from_ir(_chain((3,), lif)).layers
    x = jnp.asarray([-0.6, -0.4, 0.3], jnp.float32)
    np.testing.assert_allclose(jax.vmap(jax.grad(layer.spike))(x), [0.0, 1 / 0.8, 1 / 0.8], rtol=1e-6)


def test_from_ir_wrong_subgraph_form():
    sub = _spyx_form_recurrent()
    broken = ir.Graph(sub.nodes, [e for e in sub.edges if e != ("neuron", "delay")] + [("input", "delay")])
    with pytest.raises(ir.ConversionError, match=r"its edges .* are not input -> neuron"):
        tspyx.from_ir(_chain((3,), broken))


def test_graph_arrays_are_owned_and_writable():
    model = snn.Sequential(conv(1, 2, (3, 3)), snn.LIF((6, 6, 2), beta=0.5, rngs=R), snn.Flatten(), linear(72, 3))
    graph = tspyx.to_ir(model, (6, 6, 1))
    arrays = [a for node in graph.nodes.values() for a in node.arrays().values()]
    assert arrays and all(a.flags.writeable and a.flags.owndata for a in arrays)


def test_a_missing_spyx_names_the_extra():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['spyx'] = None\n"
        "try:\n    import talon.interop.spyx\nexcept Exception as e:\n    print(type(e).__name__, e)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=child_env()
    ).stdout
    assert out.startswith("MissingDependencyError") and "pip install -e '.[jax]'" in out
