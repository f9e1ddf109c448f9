"""Fine-tuning reproduces the source framework's gradients: each importer records its framework's
``reset_gradient`` (docs/semantics.md §3.1), and both engines (``JaxGraph`` and the PyTorch executor)
honour it by default.

* Spyx (``jax.grad`` of a ``spyx.nn`` model): its neurons subtract their spike ``s·θ`` without
  stopping the gradient — ``'through'``;
* snnTorch (torch autograd): its delayed reset is detached — ``'detached'`` — but the zero reset
  with ``reset_delay=False`` (``mem - (spk - reset)·mem``) differentiates through this step's spike,
  which is ``'through'`` on talon's immediate value reset;
* Norse (torch autograd): ``(1 - z)·v + z·v_reset`` with the surrogate spike ``z`` — ``'through'``.

Every framework is run with a surrogate the importers record (Spyx's ``arctan``, snnTorch's ``atan``,
Norse's SuperSpike; test_surrogate_frameworks.py tests the surrogates themselves), on inputs that make
every layer fire on some steps and not on others; gradients agree within float32 rounding (1e-5 of the largest entry),
and the other convention is shown to miss them.
"""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
nnx = pytest.importorskip("flax.nnx")
snn = pytest.importorskip("spyx.nn")
axn = pytest.importorskip("spyx.axn")
import jax.numpy as jnp  # noqa: E402

from talon import bridge, ir  # noqa: E402
from talon.interop import spyx as tspyx  # noqa: E402
from talon.interop.jax import JaxGraph  # noqa: E402

TOLERANCE = 1e-5  # of the largest gradient entry: float32 rounding over 30-40 steps
RNG = np.random.default_rng(3)


def _relative_difference(expected: np.ndarray, got: np.ndarray) -> float:
    scale = np.abs(expected).max()
    assert scale > 0, "no gradient reaches this parameter"
    return float(np.abs(got - expected).max() / scale)


def _assert_gradients(expected: dict, got: dict, who: str):
    for name, want in expected.items():
        difference = _relative_difference(want, got[name])
        assert difference < TOLERANCE, f"{who}: {name}: relative gradient difference {difference:.2e}"


def _misses(expected: dict, got: dict) -> float:
    return max(_relative_difference(want, got[name]) for name, want in expected.items())


def _fires(spikes: np.ndarray, who: str):
    rate = float(np.mean(spikes))
    assert 0.02 < rate < 0.98, f"{who} fires on {rate:.1%} of the steps"


# ---- Spyx --------------------------------------------------------------------------------------

SPYX_ATAN = axn.custom(lambda x: 1.0 / (1.0 + (jnp.pi * x) ** 2))  # the engines' 'atan' surrogate
SPYX_ARCTAN = axn.arctan()  # exported as the neurons' surrogate 'arctan(k=2.0)', which the engines then use
T_SPYX, B = 40, 3


def _linear(n_in, n_out, rngs, gain=1.0):
    layer = nnx.Linear(n_in, n_out, rngs=rngs)
    layer.kernel = nnx.Param(jnp.asarray(RNG.normal(0, gain / np.sqrt(n_in), (n_in, n_out)), jnp.float32))
    layer.bias = nnx.Param(jnp.asarray(RNG.normal(0, 0.1, (n_out,)), jnp.float32))
    return layer


def _recurrent(cls, n, rngs, **kwargs):
    layer = cls((n,), activation=SPYX_ARCTAN, rngs=rngs, **kwargs)
    layer.recurrent_w = nnx.Param(jnp.asarray(RNG.normal(0, 0.5 / np.sqrt(n), (n, n)), jnp.float32))
    return layer


def spyx_feed_forward():
    rngs = nnx.Rngs(0)
    return snn.Sequential(
        _linear(6, 20, rngs),
        snn.LIF((20,), beta=0.8, activation=SPYX_ARCTAN, rngs=rngs),
        _linear(20, 10, rngs, 1.5),
        snn.CuBaLIF((10,), alpha=0.7, beta=0.8, activation=SPYX_ARCTAN, rngs=rngs),
        _linear(10, 8, rngs, 2.0),
        snn.IF((8,), activation=SPYX_ARCTAN),
        _linear(8, 4, rngs),
        snn.LI((4,), beta=0.8, rngs=rngs),
    )


def spyx_recurrent():
    rngs = nnx.Rngs(0)
    return snn.Sequential(
        _linear(6, 12, rngs),
        _recurrent(snn.RLIF, 12, rngs, beta=0.8),
        _linear(12, 10, rngs, 1.5),
        _recurrent(snn.RCuBaLIF, 10, rngs, alpha=0.7, beta=0.8),
        _linear(10, 8, rngs, 2.0),
        _recurrent(snn.RIF, 8, rngs),
        _linear(8, 4, rngs),
        snn.LI((4,), beta=0.8, rngs=rngs),
    )


def _readout_loss(y):
    """Touches every step of the LI readout, nonlinearly at the end."""
    return (y[-1] ** 2).sum() + y.sum()


def _spyx_gradients(model, x):
    """Spyx's own gradients of every Linear kernel (as talon's [out, in] weights) and recurrent weight
    (as talon's w_rec weight), and the spike trace of every spiking layer."""
    graphdef, params = nnx.split(model, nnx.Param)

    def loss(params):
        y, _ = snn.run(nnx.merge(graphdef, params), x)
        return _readout_loss(y)

    grads = jax.grad(loss)(params)["layers"]
    out = {}
    for i, layer in enumerate(model.layers):
        if isinstance(layer, nnx.Linear):
            out[f"layer_{i}"] = np.asarray(grads[i]["kernel"][...]).T
        elif hasattr(layer, "recurrent_w"):
            out[f"layer_{i}.w_rec"] = np.asarray(grads[i]["recurrent_w"][...]).T
    return out


def _spike_trains(model, x) -> dict[int, np.ndarray]:
    """The spikes of every spiking layer of a Spyx model, step by step."""
    state, trains = model.initial_state(x.shape[1]), {}
    for t in range(x.shape[0]):
        h, new = x[t], []
        for i, (layer, s) in enumerate(zip(model.layers, state, strict=True)):
            if s is None:
                h = layer(h)
            else:
                h, s = layer(h, s)
            new.append(s)
            if s is not None and not isinstance(layer, snn.LI):
                trains.setdefault(i, []).append(np.asarray(h))
        state = new
    return {i: np.stack(steps) for i, steps in trains.items()}


def _w_rec_name(graph: ir.Graph, layer: str) -> str:
    (name,) = [n for n, node in graph.nodes[layer].nodes.items() if isinstance(node, (ir.Linear, ir.Affine))]
    return f"{layer}.{name}"


def _jax_gradients(graph, x, keys, **options):
    engine = JaxGraph(graph, **options)  # the neurons' own surrogate, recorded from Spyx

    def loss(params):
        y, _ = engine.run(params, x)
        return _readout_loss(y)

    grads = jax.grad(loss)(engine.params)
    return {key: np.asarray(grads[path]["weight"]) for key, path in keys.items()}


def _torch_gradients(graph, x, keys, **options):
    executor = bridge.ir_to_torch(graph, **options)
    y, _ = executor.run_sequence(torch.from_numpy(np.array(x)))
    _readout_loss(y).backward()
    out = {}
    for key, path in keys.items():
        module = executor
        for part in path.split("."):
            module = module.module_of(part)
        out[key] = module.weight.grad.numpy()
    return out


@pytest.fixture(scope="module", params=[spyx_feed_forward, spyx_recurrent], ids=lambda f: f.__name__)
def spyx_case(request):
    model = request.param()
    x = jnp.asarray(RNG.normal(0.5, 1.5, (T_SPYX, B, 6)).astype(np.float32))
    graph = tspyx.to_ir(model, (6,))
    expected = _spyx_gradients(model, x)
    keys = {k: (_w_rec_name(graph, k.split(".")[0]) if k.endswith("w_rec") else k) for k in expected}
    return model, graph, x, expected, keys


def test_spyx_import_records_spyx_convention(spyx_case):
    _, graph, *_ = spyx_case
    nodes = [
        n for node in graph.nodes.values() for n in (node.nodes.values() if isinstance(node, ir.Graph) else [node])
    ]
    spiking = [node for node in nodes if isinstance(node, (ir.LIF, ir.IF, ir.CubaLIF))]
    assert len(spiking) == 3
    assert {node.reset_gradient for node in spiking} == {ir.ResetGradient.THROUGH}


def test_spyx_layers_fire(spyx_case):
    model, _, x, *_ = spyx_case
    trains = _spike_trains(model, x)
    assert len(trains) == 3
    for i, spikes in trains.items():
        _fires(spikes, f"Spyx layer {i}")


@pytest.mark.parametrize("engine", ["jax", "torch"])
def test_engines_reproduce_spyx_gradients(spyx_case, engine):
    _, graph, x, expected, keys = spyx_case
    gradients = _jax_gradients if engine == "jax" else _torch_gradients
    _assert_gradients(expected, gradients(graph, x, keys), f"{engine} engine")
    # snnTorch's convention, forced by the override, misses Spyx's gradients
    assert _misses(expected, gradients(graph, x, keys, reset_gradient="detached")) > 0.05


def test_a_spyx_nir_file_read_as_spyx_trains_with_spyx_gradients(tmp_path):
    """``read_nir(path, producer="spyx")`` restates the file as Spyx's importer runs it, reset
    gradient included: the engines reproduce ``jax.grad`` of the model Spyx builds from the file."""
    import warnings

    nir = pytest.importorskip("nir")
    snir = pytest.importorskip("spyx.nir")
    from talon.interop.nir import read_nir

    rngs = nnx.Rngs(0)
    model = snn.Sequential(
        _linear(6, 20, rngs),
        snn.LIF((20,), beta=0.8, activation=SPYX_ATAN, rngs=rngs),
        _linear(20, 8, rngs, 1.5),
        snn.CuBaLIF((8,), alpha=0.7, beta=0.8, activation=SPYX_ATAN, rngs=rngs),
    )
    x = jnp.asarray(RNG.normal(0.5, 1.5, (T_SPYX, B, 6)).astype(np.float32))
    weights = jnp.linspace(0.5, 2.0, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(tmp_path / "spyx.nir", snir.to_nir(model, {"input": (6,)}, {"output": (8,)}, dt=1.0))
    graph = read_nir(tmp_path / "spyx.nir", producer="spyx")
    assert {graph.nodes[n].reset_gradient.value for n in ("layer_1", "layer_3")} == {"through"}
    # the surrogate of the layers Spyx's own importer builds from the file (its default activation)
    assert {graph.nodes[n].surrogate for n in ("layer_1", "layer_3")} == {"superspike(k=25.0)"}

    graphdef, params = nnx.split(model, nnx.Param)
    spikes, _ = snn.run(model, x)
    _fires(np.asarray(spikes), "the Spyx model's output layer")
    grads = jax.grad(lambda p: (snn.run(nnx.merge(graphdef, p), x)[0] * weights).sum())(params)["layers"]
    expected = {name: np.asarray(grads[i]["kernel"][...]).T for i, name in ((0, "layer_0"), (2, "layer_2"))}
    engine = JaxGraph(graph, surrogate="atan")
    got = jax.grad(lambda p: (engine.run(p, x)[0] * weights).sum())(engine.params)
    _assert_gradients(expected, {name: np.asarray(got[name]["weight"]) for name in expected}, "JAX engine")


# ---- snnTorch ----------------------------------------------------------------------------------

snntorch = pytest.importorskip("snntorch")
T_TORCH, N_IN, N_HID, N_OUT = 30, 10, 16, 4
WEIGHTS = torch.arange(1.0, N_OUT + 1.0)


def _snntorch_model(kind: str, reset_mechanism: str, reset_delay: bool):
    from torch import nn

    torch.manual_seed(0)
    options = dict(init_hidden=True, threshold=0.5, reset_mechanism=reset_mechanism, reset_delay=reset_delay)
    if kind == "Leaky":
        first, second = snntorch.Leaky(beta=0.8, **options), snntorch.Leaky(beta=0.7, **options)
    else:
        first = snntorch.Synaptic(alpha=0.6, beta=0.8, **options)
        second = snntorch.Synaptic(alpha=0.5, beta=0.7, **options)
    return nn.Sequential(nn.Linear(N_IN, N_HID), first, nn.Linear(N_HID, N_OUT), second)


SNNTORCH_CASES = [
    (kind, mechanism, delay)
    for kind in ("Leaky", "Synaptic")
    for mechanism, delay in (("zero", False), ("zero", True), ("subtract", False), ("subtract", True))
]


@pytest.mark.parametrize(("kind", "reset_mechanism", "reset_delay"), SNNTORCH_CASES,
                         ids=[f"{k}-{m}-delay{d}" for k, m, d in SNNTORCH_CASES])  # fmt: skip
def test_engines_reproduce_snntorch_gradients(kind, reset_mechanism, reset_delay):
    import snntorch.utils

    model = _snntorch_model(kind, reset_mechanism, reset_delay)
    xs = torch.randn(T_TORCH, B, N_IN) * 6
    graph = bridge.to_ir(model, xs[0])
    convention = "through" if (reset_mechanism, reset_delay) == ("zero", False) else "detached"
    spiking = [node for node in graph.nodes.values() if isinstance(node, (ir.LIF, ir.CubaLIF))]
    assert [node.reset_gradient.value for node in spiking] == [convention] * 2

    snntorch.utils.reset(model)
    expected_out = torch.stack([model(x) for x in xs])
    (expected_out * WEIGHTS).sum().backward()
    _fires(expected_out.detach().numpy(), "snnTorch's output layer")
    expected = {"fc": model[0].weight.grad.numpy(), "fc2": model[2].weight.grad.numpy()}
    names = [n for n, node in graph.nodes.items() if isinstance(node, (ir.Affine, ir.Linear))]
    keys = dict(zip(("fc", "fc2"), names, strict=True))

    def torch_run(**options):
        executor = bridge.ir_to_torch(graph, **options)
        out, _ = executor.run_sequence(xs)
        (out * WEIGHTS).sum().backward()
        assert torch.equal(out.detach(), expected_out.detach())
        return {key: executor.module_of(path).weight.grad.numpy() for key, path in keys.items()}

    def jax_run(**options):
        engine = JaxGraph(graph, surrogate="atan", **options)

        def loss(params):
            y, _ = engine.run(params, jnp.asarray(xs.numpy()))
            return (y * jnp.asarray(WEIGHTS.numpy())).sum(), y

        (_, y), grads = jax.value_and_grad(loss, has_aux=True)(engine.params)
        np.testing.assert_array_equal(np.asarray(y), expected_out.detach().numpy())
        return {key: np.asarray(grads[path]["weight"]) for key, path in keys.items()}

    _assert_gradients(expected, torch_run(), "PyTorch executor")
    _assert_gradients(expected, jax_run(), "JAX engine")
    if (reset_mechanism, reset_delay) == ("zero", False):  # the convention matters here
        other = "detached"
        assert _misses(expected, torch_run(reset_gradient=other)) > 0.01
        assert _misses(expected, jax_run(reset_gradient=other)) > 0.01


# ---- Norse -------------------------------------------------------------------------------------

norse = pytest.importorskip("norse.torch")


def _norse_superspike(x):
    """Norse 1.1's SuperSpike backward, ``1/(|x| + 1)²`` (it ignores its ``alpha``)."""
    return 1.0 / (jnp.abs(x) + 1.0) ** 2


@pytest.mark.parametrize("reset", ["value", "subtract"])
def test_jax_engine_reproduces_norse_gradients(reset):
    from norse.torch.functional.lif_box import LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract, reset_value
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(N_IN, N_HID)
            method = reset_value if reset == "value" else reset_subtract
            self.cell = norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_th=torch.tensor(0.3),
                                                          v_reset=torch.tensor(-0.1 if reset == "value" else 0.0),
                                                          reset_method=method))  # fmt: skip

        def forward(self, x, state=None):
            return self.cell(self.fc(x), state)

    torch.manual_seed(1)
    net = Net()
    xs = torch.rand(T_TORCH, B, N_IN) * 2
    weights = torch.linspace(0.5, 2.0, N_HID)
    graph = bridge.to_ir(net, xs[0])
    assert graph.nodes["cell"].reset_gradient == ir.ResetGradient.THROUGH

    outs, state = [], None
    for x in xs:
        out, state = net(x, state)
        outs.append(out)
    expected_out = torch.stack(outs)
    (expected_out * weights).sum().backward()
    _fires(expected_out.detach().numpy(), "Norse's cell")
    expected = {"fc": net.fc.weight.grad.numpy(), "fc.bias": net.fc.bias.grad.numpy()}

    def jax_run(**options):
        engine = JaxGraph(graph, surrogate=_norse_superspike, **options)

        def loss(params):
            y, _ = engine.run(params, jnp.asarray(xs.numpy()))
            return (y * jnp.asarray(weights.numpy())).sum(), y

        (_, y), grads = jax.value_and_grad(loss, has_aux=True)(engine.params)
        np.testing.assert_array_equal(np.asarray(y), expected_out.detach().numpy())
        return {"fc": np.asarray(grads["fc"]["weight"]), "fc.bias": np.asarray(grads["fc"]["bias"])}

    _assert_gradients(expected, jax_run(), "JAX engine")
    assert _misses(expected, jax_run(reset_gradient="detached")) > 0.01


def test_a_norse_nir_file_read_as_norse_trains_with_norse_gradients():
    """``from_nir(graph, producer="norse")``: the engine reproduces the gradients of the module Norse's
    own importer builds from the file (a LIFBox and an IAF layer, both reset through the spike)."""
    import warnings

    from norse.torch.utils.export_nir import to_nir as norse_to_nir
    from norse.torch.utils.import_nir import from_nir as norse_from_nir

    from talon.interop.nir import from_nir
    from tests.interop.test_nir_profile_norse import norse_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = norse_to_nir(norse_model(), torch.zeros(5), dt=1e-3)
        module = norse_from_nir(exported, dt=1e-3)
    graph = from_nir(exported, producer="norse")
    assert [n.reset_gradient.value for n in graph.nodes.values() if isinstance(n, (ir.LIF, ir.IF))] == ["through"] * 2
    assert [n.surrogate for n in graph.nodes.values() if isinstance(n, (ir.LIF, ir.IF))] == ["superspike(k=1.0)"] * 2

    xs = (np.random.default_rng(1).random((T_TORCH, B, 5)) * 2 - 0.3).astype(np.float32)
    weights = torch.tensor([1.0, 2.0, 3.0])
    outs, state = [], None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for x in xs:
            out, state = module(torch.from_numpy(x), state)
            outs.append(out)
    expected_out = torch.stack(outs)
    (expected_out * weights).sum().backward()
    _fires(expected_out.detach().numpy(), "Norse's output layer")
    parameters = dict(module.named_parameters())
    expected = {name: parameters[f"{name}.weight"].grad.numpy() for name in ("0", "2")}

    engine = JaxGraph(graph)  # the profile's surrogate, superspike(k=1.0), is Norse's _norse_superspike

    def loss(params):
        y, _ = engine.run(params, jnp.asarray(xs))
        return (y * jnp.asarray(weights.numpy())).sum(), y

    (_, y), grads = jax.value_and_grad(loss, has_aux=True)(engine.params)
    np.testing.assert_array_equal(np.asarray(y), expected_out.detach().numpy())
    _assert_gradients(expected, {name: np.asarray(grads[name]["weight"]) for name in expected}, "JAX engine")
