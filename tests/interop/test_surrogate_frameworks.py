"""Fine-tuning reproduces the source framework's surrogate gradient: each importer records its
framework's surrogate in the neurons' ``surrogate`` field (talon.ir.surrogate), and both engines —
the PyTorch executor and ``JaxGraph`` — differentiate every spike with it by default.

For snnTorch (``spike_grad``), Norse (``method``/``alpha``) and Spyx (``activation``), a model whose
neurons fire and reset on some steps and not on others is trained for one step by the framework
itself; the weight gradients of the imported graph agree with the framework's within float32
rounding (1e-5 of the largest entry) in both engines. The behaviour before the field existed — the
PyTorch executor always atan(alpha=2), the JAX engine always its own default — is reproduced with
the engines' override and shown to miss the framework's gradients.
"""

import warnings

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

from talon import bridge, ir  # noqa: E402
from talon.interop.jax import JaxGraph  # noqa: E402

TOLERANCE = 1e-5  # of the largest gradient entry: float32 rounding over 30 steps
OLD_TORCH = "atan(alpha=2.0)"  # what the PyTorch executor used for every graph before
OLD_JAX = "superspike"  # JaxGraph's default before (k = 25)
T, B = 30, 3


def _difference(expected: dict, got: dict) -> float:
    worst = 0.0
    for name, want in expected.items():
        scale = np.abs(want).max()
        assert scale > 0, f"no gradient reaches {name}"
        worst = max(worst, float(np.abs(got[name] - want).max() / scale))
    return worst


def _fires(spikes, who: str):
    rate = float(np.mean(np.asarray(spikes)))
    assert 0.02 < rate < 0.98, f"{who} fires on {rate:.1%} of the steps"


def _spiking(graph: ir.Graph) -> list[ir.Node]:
    return [n for n in graph.nodes.values() if isinstance(n, (ir.LIF, ir.IF, ir.CubaLIF))]


def _torch_gradients(graph, xs: np.ndarray, weights: np.ndarray, keys: dict[str, str], surrogate=None) -> dict:
    """Weight gradients of ``sum(y * weights)`` in the PyTorch executor."""
    executor = bridge.ir_to_torch(graph, surrogate=surrogate)
    y, _ = executor.run_sequence(torch.from_numpy(xs))
    (y * torch.from_numpy(weights)).sum().backward()
    return {key: executor.module_of(path).weight.grad.numpy() for key, path in keys.items()}


def _jax_gradients(graph, xs: np.ndarray, weights: np.ndarray, keys: dict[str, str], surrogate=None) -> dict:
    """The same in the JAX engine."""
    engine = JaxGraph(graph, surrogate=surrogate)
    grads = jax.grad(lambda p: (engine.run(p, jnp.asarray(xs))[0] * weights).sum())(engine.params)
    return {key: np.asarray(grads[path]["weight"]) for key, path in keys.items()}


def _check(expected: dict, graph, xs, weights, keys) -> None:
    """Both engines reproduce ``expected`` with the graph's surrogates, and miss it with the engines'
    surrogate of before (the PyTorch executor's atan, JaxGraph's superspike)."""
    assert _difference(expected, _torch_gradients(graph, xs, weights, keys)) < TOLERANCE, "PyTorch executor"
    assert _difference(expected, _jax_gradients(graph, xs, weights, keys)) < TOLERANCE, "JAX engine"
    old_torch = _difference(expected, _torch_gradients(graph, xs, weights, keys, surrogate=OLD_TORCH))
    old_jax = _difference(expected, _jax_gradients(graph, xs, weights, keys, surrogate=OLD_JAX))
    assert old_torch > 0.01 and old_jax > 0.01, (old_torch, old_jax)


# ---- snnTorch ----------------------------------------------------------------------------------

snntorch = pytest.importorskip("snntorch")
from snntorch import surrogate  # noqa: E402

SNNTORCH = {
    "superspike(k=10.0)": lambda: surrogate.fast_sigmoid(slope=10),
    "sigmoid(slope=5.0)": lambda: surrogate.sigmoid(slope=5),
    "straight_through": surrogate.straight_through_estimator,
}


@pytest.mark.parametrize("recorded", list(SNNTORCH))
def test_engines_reproduce_snntorch_surrogates(recorded):
    import snntorch.utils
    from torch import nn

    torch.manual_seed(0)
    options = dict(init_hidden=True, threshold=0.5, spike_grad=SNNTORCH[recorded]())
    model = nn.Sequential(nn.Linear(10, 16), snntorch.Leaky(beta=0.8, **options), nn.Linear(16, 4),
                          snntorch.Synaptic(alpha=0.5, beta=0.7, **options))  # fmt: skip
    xs = (torch.randn(T, B, 10) * 3).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every one of these is represented: no warning
        graph = bridge.to_ir(model, torch.from_numpy(xs[0]))
    assert [n.surrogate for n in _spiking(graph)] == [recorded] * 2

    weights = np.arange(1.0, 5.0, dtype=np.float32)
    snntorch.utils.reset(model)
    out = torch.stack([model(x) for x in torch.from_numpy(xs)])
    (out * torch.from_numpy(weights)).sum().backward()
    _fires(out.detach(), "snnTorch's output layer")
    expected = {"0": model[0].weight.grad.numpy(), "2": model[2].weight.grad.numpy()}
    _check(expected, graph, xs, weights, {"0": "0", "2": "2"})


# ---- Norse -------------------------------------------------------------------------------------

norse = pytest.importorskip("norse.torch")

NORSE = {  # method, alpha -> the surrogate recorded
    ("super", 50.0): "superspike(k=1.0)",  # Norse 1.1's SuperSpike ignores its alpha
    ("triangle", 0.5): "triangle(alpha=0.5, k=1.0)",
    ("tanh", 3.0): "tanh(k=3.0)",
}


@pytest.mark.parametrize(("method", "alpha"), list(NORSE), ids=[m for m, _ in NORSE])
def test_engines_reproduce_norse_surrogates(method, alpha):
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.lif_box import LIFBoxParameters
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(10, 16)
            self.lif = norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_th=torch.tensor(0.3),
                                                         method=method, alpha=torch.tensor(alpha)))  # fmt: skip
            self.fc2 = nn.Linear(16, 4)
            self.iaf = norse.IAFCell(IAFParameters(v_th=torch.tensor(0.5), method=method, alpha=torch.tensor(alpha)))

        def forward(self, x, state=None):
            s1, s2 = state if state is not None else (None, None)
            z, s1 = self.lif(self.fc(x), s1)
            z, s2 = self.iaf(self.fc2(z), s2)
            return z, (s1, s2)

    torch.manual_seed(1)
    net = Net()
    xs = (np.random.default_rng(2).random((T, B, 10)) * 2).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = bridge.to_ir(net, torch.from_numpy(xs[0]))
    assert [n.surrogate for n in _spiking(graph)] == [NORSE[method, alpha]] * 2

    weights = np.arange(1.0, 5.0, dtype=np.float32)
    outs, state = [], None
    for x in torch.from_numpy(xs):
        z, state = net(x, state)
        outs.append(z)
    out = torch.stack(outs)
    (out * torch.from_numpy(weights)).sum().backward()
    _fires(out.detach(), "Norse's output layer")
    expected = {"fc": net.fc.weight.grad.numpy(), "fc2": net.fc2.weight.grad.numpy()}
    _check(expected, graph, xs, weights, {"fc": "fc", "fc2": "fc2"})


# ---- Spyx --------------------------------------------------------------------------------------

nnx = pytest.importorskip("flax.nnx")
snn = pytest.importorskip("spyx.nn")
axn = pytest.importorskip("spyx.axn")

SPYX = {
    "arctan(k=1.0)": lambda: axn.arctan(k=1.0),
    "triangle(alpha=1.0, k=1.0)": lambda: axn.triangular(k=1.0),
    "boxcar(width=1.0, height=0.8)": lambda: axn.boxcar(width=1.0, height=0.8),
}


def _spyx_linear(n_in, n_out, rng, rngs, gain):
    layer = nnx.Linear(n_in, n_out, rngs=rngs)
    layer.kernel = nnx.Param(jnp.asarray(rng.normal(0, gain / np.sqrt(n_in), (n_in, n_out)), jnp.float32))
    layer.bias = nnx.Param(jnp.asarray(rng.normal(0, 0.1, (n_out,)), jnp.float32))
    return layer


@pytest.mark.parametrize("recorded", list(SPYX))
def test_engines_reproduce_spyx_surrogates(recorded):
    from talon.interop import spyx as tspyx

    rng, rngs = np.random.default_rng(3), nnx.Rngs(0)
    model = snn.Sequential(
        _spyx_linear(6, 20, rng, rngs, 1.0),
        snn.LIF((20,), beta=0.8, activation=SPYX[recorded](), rngs=rngs),
        _spyx_linear(20, 8, rng, rngs, 2.0),
        snn.CuBaLIF((8,), alpha=0.7, beta=0.8, activation=SPYX[recorded](), rngs=rngs),
    )
    xs = rng.normal(0.5, 1.5, (T, B, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = tspyx.to_ir(model, (6,))
    assert [n.surrogate for n in _spiking(graph)] == [recorded] * 2

    weights = np.arange(1.0, 9.0, dtype=np.float32)
    graphdef, params = nnx.split(model, nnx.Param)
    spikes, _ = snn.run(model, jnp.asarray(xs))
    _fires(spikes, "the Spyx model's output layer")
    grads = jax.grad(lambda p: (snn.run(nnx.merge(graphdef, p), jnp.asarray(xs))[0] * weights).sum())(params)
    expected = {name: np.asarray(grads["layers"][i]["kernel"][...]).T for i, name in ((0, "layer_0"), (2, "layer_2"))}
    _check(expected, graph, xs, weights, {k: k for k in expected})


def test_a_surrogate_talon_cannot_state_is_warned_about_and_recorded():
    """A custom backward (snnTorch ``custom_surrogate``, a Spyx ``custom`` lambda, Norse's ``circ``) is
    never replaced silently: a warning, the source's description in the node's metadata, and the
    default surrogate in the node."""
    from norse.torch.functional.lif_box import LIFBoxParameters
    from torch import nn

    def custom(input_, grad_input, spikes):
        return grad_input * 0.3

    model = nn.Sequential(nn.Linear(4, 3), snntorch.Leaky(0.9, init_hidden=True,
                                                          spike_grad=surrogate.custom_surrogate(custom)))  # fmt: skip
    with pytest.warns(UserWarning, match=r"module '1': its surrogate gradient spike_grad=.* has no TALON IR form"):
        graph = bridge.to_ir(model, torch.randn(2, 4))
    assert graph.nodes["1"].surrogate == ir.DEFAULT_SURROGATE
    assert graph.nodes["1"].metadata["snntorch_spike_grad"].startswith("custom_surrogate")

    cell = norse.LIFBoxCell(LIFBoxParameters(method="circ", alpha=torch.tensor(2.0)))
    with pytest.warns(UserWarning, match=r"\(method='circ', alpha=2.0\) has no TALON IR form"):
        graph = bridge.to_ir(nn.Sequential(nn.Linear(4, 3), cell), torch.randn(2, 4))
    assert graph.nodes["1"].metadata["norse_surrogate"] == "method='circ', alpha=2.0"

    from talon.interop import spyx as tspyx

    layer = snn.LIF((3,), activation=axn.custom(lambda x: 0.3 * jnp.ones_like(x)), rngs=nnx.Rngs(0))
    with pytest.warns(UserWarning, match=r"layer_1 \(LIF\): its activation's surrogate gradient .* has no TALON IR"):
        graph = tspyx.to_ir(snn.Sequential(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), layer), (4,))
    assert "<lambda>" in graph.nodes["layer_1"].metadata["spyx_activation"]
    assert graph.nodes["layer_1"].surrogate == ir.DEFAULT_SURROGATE
