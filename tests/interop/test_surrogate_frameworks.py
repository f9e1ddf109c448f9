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


def test_engines_reproduce_snntorch_surrogates():
    """Three layers, three ``spike_grad``s: fast_sigmoid, sigmoid and the straight-through estimator."""
    import snntorch.utils
    from torch import nn

    torch.manual_seed(0)
    options = dict(init_hidden=True, threshold=0.5)
    model = nn.Sequential(
        nn.Linear(10, 16), snntorch.Leaky(beta=0.8, spike_grad=surrogate.fast_sigmoid(slope=10), **options),
        nn.Linear(16, 12), snntorch.Synaptic(alpha=0.5, beta=0.7, spike_grad=surrogate.sigmoid(slope=5), **options),
        nn.Linear(12, 4), snntorch.Leaky(beta=0.9, spike_grad=surrogate.straight_through_estimator(), **options),
    )  # fmt: skip
    xs = (torch.randn(T, B, 10) * 3).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every one of these is represented: no warning
        graph = bridge.to_ir(model, torch.from_numpy(xs[0]))
    assert [n.surrogate for n in _spiking(graph)] == ["superspike(k=10.0)", "sigmoid(slope=5.0)", "straight_through"]

    _check_snntorch_sequential(model, graph, xs)


def _check_snntorch_sequential(model, graph, xs) -> None:
    """snnTorch's weight gradients of a weighted spike count of a Linear/Leaky ×3 ``Sequential`` (its
    output layer fires) against both engines' on ``graph``."""
    import snntorch.utils

    weights = np.arange(1.0, 5.0, dtype=np.float32)
    snntorch.utils.reset(model)
    out = torch.stack([model(x) for x in torch.from_numpy(xs)])
    (out * torch.from_numpy(weights)).sum().backward()
    _fires(out.detach(), "snnTorch's output layer")
    keys = {"0": "0", "2": "2", "4": "4"}
    _check({k: model[int(k)].weight.grad.numpy() for k in keys}, graph, xs, weights, keys)


def test_engines_reproduce_snntorch_other_surrogates():
    """``spike_rate_escape``, ``SFS`` (sparse fast sigmoid) and ``triangular`` (whose backward is the
    slope of a triangle, ±threshold): each a TALON IR kind, trained as snnTorch trains it."""
    import snntorch.utils
    from torch import nn

    torch.manual_seed(2)
    options = dict(init_hidden=True, threshold=0.5)
    model = nn.Sequential(
        nn.Linear(10, 16), snntorch.Leaky(beta=0.8, spike_grad=surrogate.spike_rate_escape(beta=2, slope=3), **options),
        nn.Linear(16, 12), snntorch.Leaky(beta=0.7, spike_grad=surrogate.SFS(slope=4, B=-0.5), **options),
        nn.Linear(12, 4), snntorch.Leaky(beta=0.9, spike_grad=surrogate.triangular(threshold=0.3), **options),
    )  # fmt: skip
    xs = (torch.randn(T, B, 10) * 3).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every one of these is represented: no warning
        graph = bridge.to_ir(model, torch.from_numpy(xs[0]))
    assert [n.surrogate for n in _spiking(graph)] == [
        "spike_rate_escape(beta=2.0, slope=3.0)", "sparse_fast_sigmoid(k=4.0, b=-0.5)", "triangle_slope(threshold=0.3)"
    ]  # fmt: skip

    _check_snntorch_sequential(model, graph, xs)


# ---- Norse -------------------------------------------------------------------------------------

norse = pytest.importorskip("norse.torch")


def test_engines_reproduce_norse_surrogates():
    """Three cells, three methods: ``'super'`` (whose alpha Norse 1.1 ignores), ``'triangle'``, ``'tanh'``."""
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.functional.lif_box import LIFBoxParameters
    from torch import nn

    def box(method, alpha, v_th):
        return norse.LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_th=torch.tensor(v_th),
                                                 method=method, alpha=torch.tensor(alpha)))  # fmt: skip

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(10, 16), box("super", 50.0, 0.3)
            self.fc2 = nn.Linear(16, 12)
            self.iaf = norse.IAFCell(IAFParameters(v_th=torch.tensor(0.5), method="triangle", alpha=torch.tensor(0.5)))
            self.fc3, self.out = nn.Linear(12, 4), box("tanh", 3.0, 0.1)
            with torch.no_grad():
                self.fc3.weight.mul_(3.0)  # the output layer fires on ~9 % of the steps

        def forward(self, x, state=None):
            s1, s2, s3 = state if state is not None else (None, None, None)
            z, s1 = self.lif(self.fc(x), s1)
            z, s2 = self.iaf(self.fc2(z), s2)
            z, s3 = self.out(self.fc3(z), s3)
            return z, (s1, s2, s3)

    torch.manual_seed(1)
    net = Net()
    xs = (np.random.default_rng(2).random((T, B, 10)) * 2).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = bridge.to_ir(net, torch.from_numpy(xs[0]))
    assert [n.surrogate for n in _spiking(graph)] == ["superspike(k=1.0)", "triangle(alpha=0.5, k=1.0)", "tanh(k=3.0)"]

    weights = np.arange(1.0, 5.0, dtype=np.float32)
    outs, state = [], None
    for x in torch.from_numpy(xs):
        z, state = net(x, state)
        outs.append(z)
    out = torch.stack(outs)
    (out * torch.from_numpy(weights)).sum().backward()
    _fires(out.detach(), "Norse's output layer")
    keys = {"fc": "fc", "fc2": "fc2", "fc3": "fc3"}
    _check({k: getattr(net, k).weight.grad.numpy() for k in keys}, graph, xs, weights, keys)


# ---- Spyx --------------------------------------------------------------------------------------

nnx = pytest.importorskip("flax.nnx")
snn = pytest.importorskip("spyx.nn")
axn = pytest.importorskip("spyx.axn")


def _spyx_linear(n_in, n_out, rng, rngs, gain):
    layer = nnx.Linear(n_in, n_out, rngs=rngs)
    layer.kernel = nnx.Param(jnp.asarray(rng.normal(0, gain / np.sqrt(n_in), (n_in, n_out)), jnp.float32))
    layer.bias = nnx.Param(jnp.asarray(rng.normal(0, 0.1, (n_out,)), jnp.float32))
    return layer


def test_engines_reproduce_spyx_surrogates():
    """Three layers, three activations: ``arctan(k=1)``, ``triangular(k=1)``, ``boxcar(1, 0.8)``."""
    from talon.interop import spyx as tspyx

    rng, rngs = np.random.default_rng(3), nnx.Rngs(0)
    model = snn.Sequential(
        _spyx_linear(6, 20, rng, rngs, 1.0),
        snn.LIF((20,), beta=0.8, activation=axn.arctan(k=1.0), rngs=rngs),
        _spyx_linear(20, 10, rng, rngs, 2.0),
        snn.CuBaLIF((10,), alpha=0.7, beta=0.8, activation=axn.triangular(k=1.0), rngs=rngs),
        _spyx_linear(10, 8, rng, rngs, 2.0),
        snn.IF((8,), activation=axn.boxcar(width=1.0, height=0.8)),
    )
    xs = rng.normal(0.5, 1.5, (T, B, 6)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = tspyx.to_ir(model, (6,))
    assert [n.surrogate for n in _spiking(graph)] == [
        "arctan(k=1.0)", "triangle(alpha=1.0, k=1.0)", "boxcar(width=1.0, height=0.8)"
    ]  # fmt: skip

    weights = np.arange(1.0, 9.0, dtype=np.float32)
    graphdef, params = nnx.split(model, nnx.Param)
    spikes, _ = snn.run(model, jnp.asarray(xs))
    _fires(spikes, "the Spyx model's output layer")
    grads = jax.grad(lambda p: (snn.run(nnx.merge(graphdef, p), jnp.asarray(xs))[0] * weights).sum())(params)
    keys = {f"layer_{i}": f"layer_{i}" for i in (0, 2, 4)}
    expected = {f"layer_{i}": np.asarray(grads["layers"][i]["kernel"][...]).T for i in (0, 2, 4)}
    _check(expected, graph, xs, weights, keys)


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
    stochastic = nn.Sequential(nn.Linear(4, 3), snntorch.Leaky(0.9, init_hidden=True, spike_grad=surrogate.SSO()))
    with pytest.warns(UserWarning, match=r"spike_grad=SSO\(mean=0, variance=0.2\) has no TALON IR form"):
        graph = bridge.to_ir(stochastic, torch.randn(2, 4))  # its backward draws noise: no closed form
    assert graph.nodes["1"].metadata["snntorch_spike_grad"] == "SSO(mean=0, variance=0.2)"

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
