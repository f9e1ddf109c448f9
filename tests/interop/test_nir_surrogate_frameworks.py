"""A NIR file read with ``producer=`` trains in talon with the surrogate gradient its framework's
importer builds (``talon.interop.nir.surrogate_conventions``).

For SpikingJelly 2.0.0 (``Sigmoid(alpha=4)``; ``Rect(alpha=1)`` on its CUBALIFNode), Sinabs 3.1.3
(``SingleExponential``, width relative to the threshold) and Rockpool 3.1.0 (``StepPWL``, divided by
the threshold): the framework's own model is exported by its own NIR exporter and imported back by
its own NIR importer with nothing overridden — the model it would fine-tune from the file. Its torch
autograd gradient of a weighted spike-count loss with respect to the dense weights equals, within
float32 rounding, the gradient of the graph talon reads with the profile, in the PyTorch executor and
in ``JaxGraph``; with talon's default surrogate (``atan(alpha=2.0)``, what every such file trained
with before) the gradients miss it. The inputs make the neurons fire and reset (several spikes per
step for Sinabs and Rockpool).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talon import bridge, ir
from talon.interop.nir import SurrogateWarning, from_nir, read_nir, to_nir

from .test_nir_reset_gradient_frameworks import Case, quiet, relative_difference

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

T = 30
TOLERANCE = 1e-5  # of the largest gradient entry: float32 rounding over 30 steps
DEFAULT = ir.DEFAULT_SURROGATE


def _read(read, *args, **kwargs) -> ir.Graph:
    """The profile's import: one SurrogateWarning naming the producer and the surrogate option."""
    with pytest.warns(SurrogateWarning, match=r"producer='\w+': NIR carries no surrogate gradient") as record:
        graph = read(*args, **kwargs)
    (message,) = [str(w.message) for w in record if isinstance(w.message, SurrogateWarning)]
    assert "pass surrogate='kind(...)' to read_nir/from_nir" in message
    return graph


def spikingjelly_case() -> Case:
    pytest.importorskip("spikingjelly.activation_based")
    from spikingjelly.activation_based import functional, layer, neuron, surrogate
    from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layer.Linear(6, 12), neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75, v_threshold=0.5),
        layer.Linear(12, 8), neuron.IFNode(v_threshold=1.0),
        layer.Linear(8, 4), neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=0.8),
    )  # fmt: skip
    with torch.no_grad():
        net[2].weight.mul_(3.0)
        net[4].weight.mul_(5.0)
    x = np.random.default_rng(1).normal(1.0, 2.5, (T, 3, 6)).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 4)
    exported = quiet(export_to_nir, net, torch.from_numpy(x[0]), dt=1e-4)
    module = quiet(import_from_nir, exported, dt=1e-4)  # nothing overridden: its importer's surrogates
    kinds = [type(c.surrogate_function) for c in module.modules() if isinstance(c, neuron.BaseNode)]
    assert kinds == [surrogate.Rect, surrogate.Sigmoid, surrogate.Sigmoid]
    functional.reset_net(module)
    outs, state = [], None
    for t in range(T):
        y = module(torch.from_numpy(x[t]), state) if state is not None else module(torch.from_numpy(x[t]))
        if isinstance(y, tuple):
            y, state = y
        outs.append(y)
    out = torch.stack(outs)
    (out * weights).sum().backward()
    parameters = dict(module.named_parameters())
    grads = {name: parameters[f"{name}.weight"].grad.numpy() for name in ("_0", "_2", "_4")}
    graph = _read(from_nir, exported, producer="spikingjelly")
    assert [graph.nodes[n].surrogate for n in ("_1", "_3", "_5")] == [
        "boxcar(width=1.0, height=1.0)", "logistic(alpha=4.0)", "logistic(alpha=4.0)"
    ]  # fmt: skip
    return Case(graph, x, weights, out, grads)


def sinabs_case() -> Case:
    sl = pytest.importorskip("sinabs.layers")
    sinabs_nir = pytest.importorskip("sinabs.nir")
    from sinabs.activation import SingleExponential

    batch = 2
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 10), sl.IAFSqueeze(batch_size=batch, min_v_mem=-1.0),
        torch.nn.Linear(10, 4),
        sl.LIFSqueeze(tau_mem=torch.tensor([3.0, 7.5, 20.0, 1.7]), batch_size=batch, norm_input=False,
                      spike_threshold=torch.full((4,), 0.8)),
    )  # fmt: skip
    with torch.no_grad():
        for child in net.modules():
            if isinstance(child, torch.nn.Linear):
                child.weight.mul_(3.0)  # several spikes per step
    x = (np.random.default_rng(1).random((T, batch, 6)) * 2.0 - 0.4).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 4)
    exported = sinabs_nir.to_nir(net, torch.zeros(batch, 6))
    module = quiet(sinabs_nir.from_nir, exported, batch_size=batch)
    kinds = [c.surrogate_grad_fn for c in module.modules() if hasattr(c, "surrogate_grad_fn")]
    assert kinds == [SingleExponential(), SingleExponential()]
    y = quiet(module, torch.from_numpy(x).transpose(0, 1).reshape(batch * T, 6))
    out = (y[0] if isinstance(y, tuple) else y).reshape(batch, T, 4).transpose(0, 1)
    (out * weights).sum().backward()
    assert (out > 1).any(), "Sinabs never fires several spikes per step"
    parameters = dict(module.named_parameters())
    grads = {name: parameters[f"{name}.weight"].grad.numpy() for name in ("0", "2")}
    graph = _read(from_nir, exported, producer="sinabs")
    surrogates = [n.surrogate for n in graph.nodes.values() if isinstance(n, (ir.IF, ir.LIF))]
    width = float(np.float32(0.8)) * 0.5  # Sinabs' grad_width 0.5 of the float32 threshold
    assert surrogates == ["single_exponential(width=0.5, scale=1.0)", f"single_exponential(width={width!r}, scale=1.0)"]
    return Case(graph, x, weights, out, grads)


def rockpool_case(tmp_path_factory) -> Case:
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import from_nir as rockpool_from_nir
    from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir

    torch.manual_seed(1)
    layers = [LinearTorch((4, 6)), LIFTorch(6, tau_mem=0.02, tau_syn=0.01, threshold=1.0),
              LinearTorch((6, 3)), LIFTorch(3, tau_mem=0.01, tau_syn=0.004, threshold=0.7)]  # fmt: skip
    with torch.no_grad():
        for layer in layers[::2]:
            layer.weight.mul_(3.0)
    x = (np.random.default_rng(1).random((T, 2, 4)) * 2 - 0.3).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 3)
    path = tmp_path_factory.mktemp("rockpool") / "rockpool.nir"
    nir.write(path, rockpool_to_nir(Sequential(*layers)))
    module = quiet(rockpool_from_nir, nir.read(path, type_check=False))  # its own batch-axis Input needs this
    lifs = [c for c in module.modules() if isinstance(c, LIFTorch)]
    assert [float(c.learning_window) for c in lifs] == [0.5, 0.5]  # StepPWL's window, its default
    y = quiet(module, torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))))
    out = (y[0] if isinstance(y, tuple) else y).transpose(0, 1)
    (out * weights).sum().backward()
    assert (out > 1).any(), "Rockpool never fires several spikes per step"
    parameters = dict(module.named_parameters())
    grads = {name: parameters[f"{name}.weight"].grad.numpy().T for name in ("0_LinearTorch", "2_LinearTorch")}
    graph = _read(read_nir, path, type_check=False, producer="rockpool")  # (also warns of its batch axis)
    surrogates = [n.surrogate for n in graph.nodes.values() if isinstance(n, ir.CubaLIF)]
    theta = float(np.float32(0.7))
    assert surrogates == ["step_window(window=0.5, threshold=1.0)", f"step_window(window=0.5, threshold={theta!r})"]
    return Case(graph, x, weights, out, grads)


@pytest.fixture(scope="module", params=["spikingjelly", "sinabs", "rockpool"])
def case(request, tmp_path_factory) -> Case:
    if request.param == "rockpool":
        return rockpool_case(tmp_path_factory)
    return {"spikingjelly": spikingjelly_case, "sinabs": sinabs_case}[request.param]()


def torch_gradients(case: Case, surrogate: str | None = None) -> dict:
    executor = bridge.ir_to_torch(case.graph, surrogate=surrogate)
    out, _ = executor.run_sequence(torch.from_numpy(case.x))
    assert torch.equal(out.detach(), case.out), "the PyTorch executor spikes otherwise than the framework"
    (out * case.weights).sum().backward()
    return {name: executor.module_of(name).weight.grad.numpy() for name in case.grads}


def jax_gradients(case: Case, surrogate: str | None = None) -> dict:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from talon.interop.jax import JaxGraph

    engine = JaxGraph(case.graph, surrogate=surrogate)
    weights = jnp.asarray(case.weights.numpy())

    def loss(params):
        y, _ = engine.run(params, jnp.asarray(case.x))
        return (y * weights).sum(), y

    (_, y), grads = jax.value_and_grad(loss, has_aux=True)(engine.params)
    np.testing.assert_array_equal(np.asarray(y), case.out.numpy())
    return {name: np.asarray(grads[name]["weight"]) for name in case.grads}


@pytest.mark.parametrize("engine", ["torch", "jax"])
def test_engines_train_with_the_framework_surrogate(case, engine):
    gradients = torch_gradients if engine == "torch" else jax_gradients
    rate = float((case.out > 0).float().mean())
    assert 0.02 < rate < 0.98, f"the framework's output fires on {rate:.1%} of the steps"
    got = gradients(case)
    for name, want in case.grads.items():
        difference = relative_difference(want, got[name])
        assert difference < TOLERANCE, f"{engine}: {name}: relative gradient difference {difference:.2e}"
    # talon's default surrogate, what these files trained with before, misses them
    default = gradients(case, surrogate=DEFAULT)
    assert max(relative_difference(want, default[name]) for name, want in case.grads.items()) > 0.05


# ---- stating it, and what cannot be stated ------------------------------------------------------------


def _one_layer(neuron: ir.Node) -> ir.Graph:
    return ir.Graph(
        {"input": ir.Input(np.array([3])), "n": neuron, "output": ir.Output(np.array([3]))},
        [("input", "n"), ("n", "output")],
    )


def test_the_caller_states_the_surrogate_and_is_not_warned():
    file = to_nir(_one_layer(ir.LIF(tau=np.full(3, 2.0), v_threshold=np.ones(3), comparison=">")))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SurrogateWarning)
        graph = from_nir(file, producer="sinabs", surrogate="single_exponential(width=0.25)")
        assert graph.nodes["n"].surrogate == "single_exponential(width=0.25, scale=1.0)"
        assert from_nir(file).nodes["n"].surrogate == DEFAULT  # NIR itself: talon's default, no warning
    with pytest.raises(ValueError, match=r"from_nir: surrogate: surrogate kind 'bogus' is unknown"):
        from_nir(file, surrogate="bogus")


def test_per_neuron_thresholds_keep_their_surrogate_with_a_record():
    """Sinabs' width and Rockpool's divisor scale with each neuron's threshold: one TALON IR text cannot."""
    file = to_nir(_one_layer(ir.LIF(tau=np.full(3, 2.0), v_threshold=np.array([0.5, 1.0, 2.0]), comparison=">")))
    with pytest.warns(SurrogateWarning, match=r"Node\(s\) \['n'\] have per-neuron thresholds"):
        graph = from_nir(file, producer="sinabs")
    assert graph.nodes["n"].surrogate == DEFAULT
    assert graph.nodes["n"].metadata["nir_surrogate"].startswith("Sinabs' default SingleExponential")


def test_to_nir_warns_when_the_consumer_trains_with_another_surrogate():
    lif = ir.LIF(tau=np.full(3, 2.0), v_threshold=np.ones(3), comparison=">=", reset_gradient="through")
    changes = r"\['n: atan\(alpha=2.0\) -> logistic\(alpha=4.0\)'\] \(talon's -> theirs\)"
    with pytest.warns(SurrogateWarning, match=rf"consumer='spikingjelly'.*{changes}"):
        to_nir(_one_layer(lif), consumer="spikingjelly")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SurrogateWarning)
        to_nir(_one_layer(ir.LIF(**{**lif.params(), "surrogate": "logistic(alpha=4)"})), consumer="spikingjelly")
        to_nir(_one_layer(ir.LIF(**{**lif.params(), "comparison": ">"})))  # NIR itself states none
