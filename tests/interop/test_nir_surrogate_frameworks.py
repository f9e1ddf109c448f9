"""A NIR file read with ``producer=`` trains in talon with the surrogate gradient its framework's
importer builds (``talon.interop.nir.surrogate_conventions``).

For SpikingJelly 2.0.0 (``Sigmoid(alpha=4)``; ``Rect(alpha=1)`` on its CUBALIFNode), Sinabs 3.1.3
(``SingleExponential``, width relative to each neuron's threshold) and Rockpool 3.1.0 (``StepPWL``,
divided by each neuron's threshold; both with one threshold per layer and with per-neuron
thresholds): the framework's own model is exported by its own NIR exporter and imported back by its
own NIR importer with nothing overridden — the model it would fine-tune from the file. Its torch
autograd gradient of a weighted spike-count loss with respect to the dense weights equals, within
float32 rounding, the gradient of the graph talon reads with the profile, in the PyTorch executor and
in ``JaxGraph``; with talon's default surrogate (``atan(alpha=2.0)``, what every such file trained
with before) the gradients miss it. The inputs make the neurons fire and reset (several spikes per
step for Sinabs and Rockpool).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from talon import bridge, ir
from talon.interop.nir import SurrogateWarning, from_nir, read_nir, to_nir, write_nir

from .nir_framework_models import (
    rockpool_model,
    rockpool_run,
    sinabs_model,
    sinabs_run,
    spikingjelly_model,
    spikingjelly_run,
)
from .test_nir_reset_gradient_frameworks import Case, relative_difference

torch = pytest.importorskip("torch")
nir = pytest.importorskip("nir")

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
    from spikingjelly.activation_based import neuron, surrogate

    x, weights, exported, module = spikingjelly_model()  # nothing overridden: its importer's surrogates
    kinds = [type(c.surrogate_function) for c in module.modules() if isinstance(c, neuron.BaseNode)]
    assert kinds == [surrogate.Rect, surrogate.Sigmoid, surrogate.Sigmoid]
    out, grads = spikingjelly_run(module, x, weights)
    graph = _read(from_nir, exported, producer="spikingjelly")
    assert [graph.nodes[n].surrogate for n in ("_1", "_3", "_5")] == [
        "boxcar(width=1.0, height=1.0)", "logistic(alpha=4.0)", "logistic(alpha=4.0)"
    ]  # fmt: skip
    return Case(graph, x, weights, out, grads)


def sinabs_case(per_neuron: bool) -> Case:
    """Sinabs' SingleExponential: its width is grad_width (0.5) of each neuron's threshold."""
    x, weights, exported, module = sinabs_model(per_neuron)
    from sinabs.activation import SingleExponential

    kinds = [c.surrogate_grad_fn for c in module.modules() if hasattr(c, "surrogate_grad_fn")]
    assert kinds == [SingleExponential(), SingleExponential()]
    out, grads = sinabs_run(module, x, weights)
    graph = _read(from_nir, exported, producer="sinabs")
    neurons = [n for n in graph.nodes.values() if isinstance(n, (ir.IF, ir.LIF))]
    assert [n.surrogate for n in neurons] == ["threshold_exponential(width=0.5, scale=1.0)"] * 2
    distinct = [np.unique(n.v_threshold).size for n in neurons]
    assert distinct == ([10, 4] if per_neuron else [1, 1])
    if not per_neuron:  # one threshold: the same function as single_exponential at it
        width = float(np.float32(0.8)) * 0.5
        resolved = [ir.resolve_surrogate(n.surrogate, n.v_threshold) for n in neurons]
        expected = ["single_exponential(width=0.5, scale=1.0)", f"single_exponential(width={width!r}, scale=1.0)"]
        assert resolved == expected
    return Case(graph, x, weights, out, grads)


ROCKPOOL_PER_NEURON = ([1.0, 0.6, 1.4, 0.8, 1.1, 0.5], [0.7, 1.3, 0.9])  # its two LIFTorch layers'


def rockpool_case(tmp_path_factory, per_neuron: bool) -> Case:
    """Rockpool's StepPWL: divided by each neuron's threshold."""
    thresholds = dict(first_threshold=ROCKPOOL_PER_NEURON[0], second_threshold=ROCKPOOL_PER_NEURON[1])
    x, weights, path, module = rockpool_model(
        tmp_path_factory.mktemp("rockpool"), **(thresholds if per_neuron else {"second_threshold": 0.7})
    )
    from rockpool.nn.modules import LIFTorch

    lifs = [c for c in module.modules() if isinstance(c, LIFTorch)]
    assert [float(c.learning_window) for c in lifs] == [0.5, 0.5]  # StepPWL's window, its default
    out, grads = rockpool_run(module, x, weights)
    graph = _read(read_nir, path, type_check=False, producer="rockpool")  # (also warns of its batch axis)
    neurons = [n for n in graph.nodes.values() if isinstance(n, ir.CubaLIF)]
    assert [n.surrogate for n in neurons] == ["threshold_step_window(window=0.5)"] * 2
    assert [np.unique(n.v_threshold).size for n in neurons] == ([6, 3] if per_neuron else [1, 1])
    if not per_neuron:
        theta = float(np.float32(0.7))
        resolved = [ir.resolve_surrogate(n.surrogate, n.v_threshold) for n in neurons]
        assert resolved == ["step_window(window=0.5, threshold=1.0)", f"step_window(window=0.5, threshold={theta!r})"]
    return Case(graph, x, weights, out, grads)


@pytest.fixture(
    scope="module",
    params=["spikingjelly", "sinabs", "sinabs per-neuron thresholds", "rockpool", "rockpool per-neuron thresholds"],
)
def case(request, tmp_path_factory) -> Case:
    per_neuron = request.param.endswith("per-neuron thresholds")
    if request.param.startswith("rockpool"):
        return rockpool_case(tmp_path_factory, per_neuron)
    if request.param.startswith("sinabs"):
        return sinabs_case(per_neuron)
    return spikingjelly_case()


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


def test_threshold_kinds_compare_with_their_form_at_one_threshold():
    """A graph read from Sinabs or Rockpool before (``single_exponential`` / ``step_window`` at the one
    θ) is what their importers build; per-neuron thresholds need the threshold kind."""
    from talon.interop.nir.surrogate_conventions import mismatches

    node = ir.LIF(tau=np.full(3, 2.0), v_threshold=np.full(3, 0.8), comparison=">")
    assert mismatches(_one_layer(replace(node, surrogate="single_exponential(width=0.4, scale=1.0)")), "sinabs") == []
    assert mismatches(_one_layer(replace(node, surrogate="step_window(window=0.5, threshold=0.8)")), "rockpool") == []
    assert mismatches(_one_layer(replace(node, surrogate="step_window(window=0.5, threshold=0.7)")), "rockpool") == [
        "n: step_window(window=0.5, threshold=0.7) -> threshold_step_window(window=0.5)"
    ]
    per_neuron = replace(node, v_threshold=np.array([0.5, 0.8, 1.2]), surrogate="single_exponential(width=0.4)")
    assert mismatches(_one_layer(per_neuron), "sinabs") == [
        "n: single_exponential(width=0.4, scale=1.0) -> threshold_exponential(width=0.5, scale=1.0)"
    ]


@pytest.mark.parametrize("kind", list(ir.SURROGATE_KINDS))
def test_every_surrogate_kind_travels_through_a_nir_file(kind, tmp_path):
    """NIR has no surrogate field: talon records a non-default one (``talon_surrogate``) and reads it back,
    on a LIF with per-neuron thresholds and on a Threshold."""
    values = {p: 3.0 if p == "n" else d * 0.5 + 1.5 for p, d in ir.SURROGATE_KINDS[kind]}
    surrogate = ir.format_surrogate(kind, **values)
    lif = ir.LIF(tau=np.full(3, 2.0), v_threshold=np.array([0.5, 0.8, 1.2]), comparison=">", surrogate=surrogate)
    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "n": lif, "t": ir.Threshold(np.array([0.2, 0.4, 0.6]), surrogate=surrogate),
         "output": ir.Output(np.array([3]))},
        [("input", "n"), ("n", "t"), ("t", "output")],
    )  # fmt: skip
    write_nir(tmp_path / "m.nir", graph)
    back = read_nir(tmp_path / "m.nir")
    assert back.nodes["n"].surrogate == surrogate and back.nodes["t"].surrogate == surrogate


def test_to_nir_warns_when_the_consumer_trains_with_another_surrogate():
    lif = ir.LIF(tau=np.full(3, 2.0), v_threshold=np.ones(3), comparison=">=", reset_gradient="through")
    changes = r"\['n: atan\(alpha=2.0\) -> logistic\(alpha=4.0\)'\] \(talon's -> theirs\)"
    with pytest.warns(SurrogateWarning, match=rf"consumer='spikingjelly'.*{changes}"):
        to_nir(_one_layer(lif), consumer="spikingjelly")
    with warnings.catch_warnings():
        warnings.simplefilter("error", SurrogateWarning)
        to_nir(_one_layer(ir.LIF(**{**lif.params(), "surrogate": "logistic(alpha=4)"})), consumer="spikingjelly")
        to_nir(_one_layer(ir.LIF(**{**lif.params(), "comparison": ">"})))  # NIR itself states none
