"""A NIR file read with ``producer=`` trains in talon with its framework's reset gradient.

For snnTorch 1.0.0, SpikingJelly 2.0.0, Sinabs 3.1.3 and Rockpool 3.1.0 (Spyx and Norse:
``test_reset_gradient_frameworks.py``): the framework's own model is exported by its own NIR
exporter and imported back by its own NIR importer (the model it would fine-tune from the file);
its torch autograd gradient of a weighted spike-count loss with respect to the dense weights
equals, within float32 rounding, the gradient of the graph talon reads with the profile — in
the PyTorch executor and in ``JaxGraph`` — and the other convention (``reset_gradient='detached'``
forced on every neuron) misses it. Every framework runs with a surrogate the engines have (the
arc-tangent ``1/(1 + (π(v − θ))²)``, each framework's own ``ATan`` where it has one), on inputs
that make the neurons fire and reset (several spikes per step for Sinabs and Rockpool).

``to_nir(graph, consumer=...)`` warns (``ResetGradientWarning``) when the graph's neurons record
another convention than the consumer trains with; the consequence is shown with SpikingJelly.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from talon import bridge, ir
from talon.interop.nir import ResetGradientWarning, from_nir, read_nir, to_nir, write_nir

from .nir_framework_models import (
    T,
    quiet,
    rockpool_model,
    rockpool_run,
    sinabs_model,
    sinabs_run,
    spikingjelly_model,
    spikingjelly_run,
)

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

TOLERANCE = 1e-5  # of the largest gradient entry: float32 rounding over 30 steps


def relative_difference(expected: np.ndarray, got: np.ndarray) -> float:
    scale = np.abs(expected).max()
    assert scale > 0, "no gradient reaches this weight"
    return float(np.abs(got - expected).max() / scale)


class Case:
    """A framework's run of its own NIR file: output ``[T, B, N]``, weight gradients as talon's
    ``[out, in]`` keyed by talon node name, and the graph talon reads with the profile."""

    def __init__(self, graph: ir.Graph, x: np.ndarray, weights: torch.Tensor, out: torch.Tensor, grads: dict):
        self.graph, self.x, self.weights, self.out, self.grads = graph, x, weights, out.detach(), grads


def atan_surrogate(x: torch.Tensor) -> torch.Tensor:
    """talon's spike surrogate (``talon.bridge.spike``, alpha = 2): ``1/(1 + (πx)²)``."""
    return 1.0 / (1.0 + (math.pi * x) ** 2)


# ---- snnTorch 1.0.0: import_nir builds Leaky / Synaptic(reset_mechanism='zero', reset_delay=False) -----


def snntorch_case() -> Case:
    snn = pytest.importorskip("snntorch")
    import snntorch.utils
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(27)
            dyn = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
            self.fc1 = torch.nn.Linear(4, 8)
            self.lif1 = snn.Leaky(beta=torch.full((8,), 0.85), threshold=torch.ones(8), **dyn)
            self.fc2 = torch.nn.Linear(8, 3)
            self.syn = snn.Synaptic(alpha=torch.full((3,), 0.7), beta=torch.full((3,), 0.9), threshold=torch.ones(3),
                                    output=True, **dyn)  # fmt: skip

        def forward(self, x):
            spk, _syn, _mem = self.syn(self.fc2(self.lif1(self.fc1(x))))
            return spk

    net = Net()
    x = (np.random.default_rng(29).normal(0.3, 1.0, (T, 3, 4)) * 2.5).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 3)
    exported = quiet(export_to_nir, net, torch.zeros(1, 4), ignore_dims=[0])
    module = quiet(import_from_nir, exported)  # snnTorch's own run of the file (atan surrogate, its default)

    def step(t):
        out = module(torch.from_numpy(x[t]))
        while isinstance(out, tuple):
            out = out[0]
        return out

    snntorch.utils.reset(module)
    out = torch.stack([quiet(step, t) for t in range(T)])
    (out * weights).sum().backward()
    parameters = dict(module.named_parameters())
    grads = {name: parameters[f"{name}.weight"].grad.numpy() for name in ("fc1", "fc2")}
    # the model it was exported from trains alike (the same spikes, the same gradients)
    snntorch.utils.reset(net)
    own = torch.stack([net(torch.from_numpy(x[t])) for t in range(T)])
    (own * weights).sum().backward()
    assert torch.equal(own, out)
    for name in grads:
        assert relative_difference(grads[name], getattr(net, name).weight.grad.numpy()) < TOLERANCE
    return Case(from_nir(exported, producer="snntorch"), x, weights, out, grads)


def snntorch_recurrent_case() -> Case:
    """RLeaky (zero reset, reset_delay=False, as snnTorch's importer builds it) exported as a NIR subgraph;
    compared with the model itself: snnTorch 1.0.0 with nirtorch 2.6 cannot import recurrent files
    (``test_snntorch_100_with_nirtorch_26_breaks_recurrent_imports``)."""
    snn = pytest.importorskip("snntorch")
    import snntorch.utils
    from snntorch.export_nir import export_to_nir

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(28)
            dyn = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
            self.fc = torch.nn.Linear(4, 5)
            self.rlif = snn.RLeaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), linear_features=5, **dyn)
            with torch.no_grad():  # its bias arrives a step early (test_nir_frameworks.py)
                self.rlif.recurrent.bias.zero_()
            self.fc2 = torch.nn.Linear(5, 3)
            self.lif = snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), output=True, **dyn)

        def forward(self, x):
            spk, _mem = self.lif(self.fc2(self.rlif(self.fc(x))))
            return spk

    net = Net()
    x = (np.random.default_rng(29).normal(0.3, 1.0, (T, 3, 4)) * 2.5).astype(np.float32)
    weights = torch.linspace(0.5, 2.0, 3)
    snntorch.utils.reset(net)
    out = torch.stack([net(torch.from_numpy(x[t])) for t in range(T)])
    (out * weights).sum().backward()
    grads = {"fc": net.fc.weight.grad.numpy(), "fc2": net.fc2.weight.grad.numpy(),
             "rlif.w_rec": net.rlif.recurrent.weight.grad.numpy()}  # fmt: skip
    graph = from_nir(quiet(export_to_nir, net, torch.zeros(1, 4), ignore_dims=[0]), producer="snntorch")
    assert graph.recurrent_edges == [("rlif.w_rec", "rlif.lif")]
    return Case(graph, x, weights, out, grads)


# ---- SpikingJelly 2.0.0: detach_reset=False; hard reset spike*v_reset + (1 - spike)*v -----------------


def spikingjelly_case() -> Case:
    from spikingjelly.activation_based import neuron, surrogate

    x, weights, exported, module = spikingjelly_model()
    for child in module.modules():
        if isinstance(child, neuron.BaseNode):
            assert child.detach_reset is False  # the importer's (BaseNode's default)
            child.surrogate_function = surrogate.ATan(alpha=2.0)  # talon's surrogate
    out, grads = spikingjelly_run(module, x, weights)
    return Case(from_nir(exported, producer="spikingjelly"), x, weights, out, grads)


# ---- Sinabs 3.1.3: MembraneSubtract v - spikes*θ on MultiSpike spikes -------------------------------------


def sinabs_case() -> Case:
    x, weights, exported, module = sinabs_model()
    from sinabs.activation import MembraneSubtract, MultiSpike

    for child in module.modules():
        if hasattr(child, "surrogate_grad_fn"):
            assert isinstance(child.reset_fn, MembraneSubtract) and child.spike_fn is MultiSpike
            child.surrogate_grad_fn = lambda v, theta: atan_surrogate(v - theta)  # talon's surrogate
    out, grads = sinabs_run(module, x, weights)
    return Case(from_nir(exported, producer="sinabs"), x, weights, out, grads)


# ---- Rockpool 3.1.0: LIFTorch.evolve vmem - spikes*threshold ---------------------------------------------


class _AtanSpikeCount(torch.autograd.Function):
    """StepPWL's forward, ``(x ≥ θ)·⌊x/θ⌋`` clamped at the bound, with talon's surrogate backward."""

    @staticmethod
    def forward(ctx, x, threshold, window, max_spikes_per_dt):
        ctx.save_for_backward(x, threshold)
        count = ((x >= threshold) * torch.floor(x / threshold)).float()
        return torch.minimum(count, max_spikes_per_dt.float())

    @staticmethod
    def backward(ctx, grad):
        x, threshold = ctx.saved_tensors
        return grad * atan_surrogate(x - threshold), None, None, None


def rockpool_case(tmp_path_factory) -> Case:
    x, weights, path, module = rockpool_model(tmp_path_factory.mktemp("rockpool"))
    from rockpool.nn.modules import LIFTorch

    for child in module.modules():
        if isinstance(child, LIFTorch):
            child.spike_generation_fn = _AtanSpikeCount.apply
    out, grads = rockpool_run(module, x, weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its batch axis (test_nir_profile_rockpool.py)
        graph = read_nir(path, type_check=False, producer="rockpool")
    return Case(graph, x, weights, out, grads)


FRAMEWORKS = ["snntorch", "snntorch-recurrent", "spikingjelly", "sinabs", "rockpool"]


@pytest.fixture(scope="module", params=FRAMEWORKS)
def case(request, tmp_path_factory) -> Case:
    if request.param == "rockpool":
        return rockpool_case(tmp_path_factory)
    cases = {"snntorch": snntorch_case, "snntorch-recurrent": snntorch_recurrent_case,
             "spikingjelly": spikingjelly_case, "sinabs": sinabs_case}  # fmt: skip
    return cases[request.param]()


def torch_gradients(case: Case, **options) -> dict:
    executor = bridge.ir_to_torch(case.graph, surrogate="atan", **options)  # the frameworks' surrogate here
    out, _ = executor.run_sequence(torch.from_numpy(case.x))
    assert torch.equal(out.detach(), case.out), "the PyTorch executor spikes otherwise than the framework"
    (out * case.weights).sum().backward()
    return {name: executor.module_of(name).weight.grad.numpy() for name in case.grads}


def jax_gradients(case: Case, **options) -> dict:
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from talon.interop.jax import JaxGraph

    engine = JaxGraph(case.graph, surrogate="atan", **options)
    weights = jnp.asarray(case.weights.numpy())

    def loss(params):
        y, _ = engine.run(params, jnp.asarray(case.x))
        return (y * weights).sum(), y

    (_, y), grads = jax.value_and_grad(loss, has_aux=True)(engine.params)
    np.testing.assert_array_equal(np.asarray(y), case.out.numpy())
    return {name: np.asarray(grads[name]["weight"]) for name in case.grads}


def test_the_profile_records_the_framework_convention(case):
    spiking = [node for node in case.graph.nodes.values() if isinstance(node, (ir.LIF, ir.IF, ir.CubaLIF))]
    assert len(spiking) >= 2
    assert {node.reset_gradient for node in spiking} == {ir.ResetGradient.THROUGH}
    rate = float((case.out > 0).float().mean())
    assert 0.02 < rate < 0.98, f"the framework's output fires on {rate:.1%} of the steps"


@pytest.mark.parametrize("engine", ["torch", "jax"])
def test_engines_train_as_the_framework(case, engine):
    gradients = torch_gradients if engine == "torch" else jax_gradients
    got = gradients(case)
    for name, want in case.grads.items():
        difference = relative_difference(want, got[name])
        assert difference < TOLERANCE, f"{engine}: {name}: relative gradient difference {difference:.2e}"
    # the other convention misses the framework's gradients: the resets matter on this input
    other = gradients(case, reset_gradient="detached")
    assert max(relative_difference(want, other[name]) for name, want in case.grads.items()) > 5e-3


# ---- refused: what a profile cannot state ---------------------------------------------------------------


def _one_layer(neuron: ir.Node) -> ir.Graph:
    return ir.Graph(
        {"input": ir.Input(np.array([3])), "n": neuron, "output": ir.Output(np.array([3]))},
        [("input", "n"), ("n", "output")],
    )


def test_an_if_to_or_from_snntorch_is_refused_by_name():
    """snnTorch 1.0.0 imports nir.IF as Leaky(beta=0.9) with reset_delay=False: it leaks, and its reset
    gradient is partly detached (the delayed reset) and partly through (the same-step correction)."""
    graph = _one_layer(ir.IF(v_threshold=np.ones(3), comparison=">"))
    with pytest.raises(ir.ConversionError, match=r"consumer='snntorch': node 'n' \(IF\): .*Leaky\(beta=0.9\)"):
        to_nir(graph, consumer="snntorch")
    with pytest.raises(ir.ConversionError, match=r"producer='snntorch': node 'n' \(IF\): .*delayed reset"):
        from_nir(to_nir(graph), producer="snntorch")


# ---- consumer: warn when the framework trains otherwise -------------------------------------------------


def test_to_nir_warns_when_the_consumer_trains_otherwise(tmp_path):
    lif = ir.LIF(tau=np.full(3, 2.0), v_threshold=np.ones(3), comparison=">=")
    with pytest.warns(ResetGradientWarning, match=r"consumer='spikingjelly'.*\['n'\] record reset_gradient='detached'"):
        to_nir(_one_layer(lif), consumer="spikingjelly")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResetGradientWarning)
        to_nir(_one_layer(ir.LIF(**{**lif.params(), "reset_gradient": "through"})), consumer="spikingjelly")
        to_nir(_one_layer(ir.LIF(**{**lif.params(), "comparison": ">"})))  # NIR itself states none
    # a neuron without a reset has no reset gradient to disagree on
    from talon.interop.nir.reset_conventions import mismatches

    no_reset = _one_layer(ir.LIF(**{**lif.params(), "reset_mode": "none"}))
    assert mismatches(no_reset, ir.ResetGradient.THROUGH) == []
    assert mismatches(_one_layer(lif), ir.ResetGradient.THROUGH) == ["n"]


def test_a_detached_graph_fine_tuned_in_spikingjelly_follows_through_gradients(tmp_path):
    """What the warning says: SpikingJelly's import of the file trains with 'through', not the graph's 'detached'."""
    from spikingjelly.activation_based import functional, neuron, surrogate
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    from talon.interop.nir.reset_conventions import stamp

    case = spikingjelly_case()
    detached = stamp(case.graph, ir.ResetGradient.DETACHED)
    with pytest.warns(ResetGradientWarning, match=r"\['_1', '_3', '_5'\] record reset_gradient='detached'"):
        write_nir(tmp_path / "sj.nir", detached, consumer="spikingjelly", dt=1e-4)
    module = quiet(import_from_nir, nir.read(tmp_path / "sj.nir"), dt=1e-4)
    for child in module.modules():
        if isinstance(child, neuron.BaseNode):
            child.surrogate_function = surrogate.ATan(alpha=2.0)
    functional.reset_net(module)
    outs, state = [], None
    for t in range(T):
        y = module(torch.from_numpy(case.x[t]), state) if state is not None else module(torch.from_numpy(case.x[t]))
        if isinstance(y, tuple):
            y, state = y
        outs.append(y)
    out = torch.stack(outs)
    assert torch.equal(out.detach(), case.out)  # the same spikes
    (out * case.weights).sum().backward()
    parameters = dict(module.named_parameters())
    theirs = {name: parameters[f"{name}.weight"].grad.numpy() for name in case.grads}
    graph_own = torch_gradients(Case(detached, case.x, case.weights, case.out, theirs))
    through = torch_gradients(Case(detached, case.x, case.weights, case.out, theirs), reset_gradient="through")
    assert max(relative_difference(theirs[n], through[n]) for n in theirs) < TOLERANCE
    assert max(relative_difference(theirs[n], graph_own[n]) for n in theirs) > 5e-3
