"""The JAX engine rounds a sum's terms on their own only where a term may be a product.

XLA on CPU fuses ``a*b + c`` into one fused multiply-add; the engine rounds every product before
the sum it feeds, and since :mod:`talon.interop.jax.products` leaves the ``+ 0`` rounding out on
terms that are never a multiplication (a dot, a sum, a spike, a membrane). These graphs mix both
kinds — a Linear of one input feature (a single product per output), a Scale merged with an
Affine, per-neuron decays such as ``beta = 2/3`` (``beta*v`` is inexact) — and must equal the
plain numpy transcription of ``docs/semantics.md`` bit for bit, membranes included. Weights and
inputs are multiples of 1/16 so that the dense sums themselves are exact in float32.
"""

import numpy as np
import pytest

from talon import ir
from tests.conformance import reference

jax = pytest.importorskip("jax")
from talon.interop.jax import JaxGraph  # noqa: E402
from talon.interop.jax.executor import MODES  # noqa: E402
from talon.interop.jax.plan import flatten  # noqa: E402
from talon.interop.jax.products import plain_values  # noqa: E402


def _sixteenths(rng, *shape, high=8):
    return (rng.integers(-high, high + 1, shape) / 16).astype(np.float32)


def _lif(n, rng):
    tau = rng.choice([1.5, 3.0, 7.0], n)  # beta = 1/3, 2/3, 6/7: inexact products
    return ir.LIF(tau=tau, r=tau, v_threshold=np.full(n, 0.4))


def _mixed_graph() -> ir.Graph:
    """fc (Affine) -> lif_a; fc -> lif_b and fc -> scale -> lif_b (a dot merged with a product)."""
    rng = np.random.default_rng(11)
    nodes = {
        "input": ir.Input(np.array([4])),
        "fc": ir.Affine(_sixteenths(rng, 6, 4), _sixteenths(rng, 6)),
        "scale": ir.Scale(np.array([0.7, -1.3, 0.9, 1.1, 0.35, 2.2], np.float32)),
        "lif_a": _lif(6, rng),
        "lif_b": _lif(6, rng),
        "out_a": ir.Output(np.array([6])),
        "out_b": ir.Output(np.array([6])),
    }
    edges = [
        ("input", "fc"), ("fc", "lif_a"), ("fc", "scale"), ("fc", "lif_b"), ("scale", "lif_b"),
        ("lif_a", "out_a"), ("lif_b", "out_b"),
    ]  # fmt: skip
    return ir.Graph(nodes, edges)


def _one_feature_graph() -> ir.Graph:
    """A Linear of one input feature: each output is one product ``w * x``, summed into an LI."""
    tau = np.random.default_rng(12).choice([1.5, 3.0, 7.0], 4)
    nodes = {
        "input": ir.Input(np.array([1])),
        "lin": ir.Linear(np.array([[0.3], [-0.7], [1.9], [0.45]], np.float32)),
        "li": ir.LI(tau=tau, r=tau),  # g = r/tau = 1: the input term is w*x itself
        "output": ir.Output(np.array([4])),
    }
    return ir.Graph(nodes, [("input", "lin"), ("lin", "li"), ("li", "output")])


def test_plain_values():
    mixed = plain_values(flatten(_mixed_graph()))
    assert {"input", "fc", "lif_a", "lif_b", "out_a", "out_b"} <= mixed
    assert "scale" not in mixed  # x * scale: a product
    assert "lin" not in plain_values(flatten(_one_feature_graph()))  # a dot of one term is a product


@pytest.mark.parametrize("make", [_mixed_graph, _one_feature_graph])
def test_same_bits_as_the_reference(make):
    graph = make()
    (name,) = graph.input_nodes
    size = int(np.prod(graph.nodes[name].output_shape))
    x = _sixteenths(np.random.default_rng(13), 40, 3, size, high=24)
    want = reference.run(graph, x)
    model = JaxGraph(graph)
    for mode in MODES:
        outputs, _, trace = model.run(model.params, x, record=True, mode=mode)
        outputs = outputs if isinstance(outputs, dict) else {model.output_names[0]: outputs}
        for out, value in want["outputs"].items():
            np.testing.assert_array_equal(np.asarray(outputs[out]).view(np.uint32), value.view(np.uint32), mode)
        for path, states in want["states"].items():
            got = np.asarray(trace[path]["v"])
            np.testing.assert_array_equal(got.view(np.uint32), states["v"].view(np.uint32), f"{mode} {path}")
    spikes = np.asarray(model.run(model.params, x)[0]["out_b"]) if make is _mixed_graph else None
    if spikes is not None:  # the neurons fire and rest
        assert 0 < spikes.mean() < 1
