"""The CPU backend's neuron coefficients are :mod:`talon.ir.coefficients`, the PyTorch executor's and
the JAX engine's: ``g = r/tau``, ``c = v_leak/tau``, ``gs = w_in/tau_syn`` divided in float64 and cast
once (docs/semantics.md §3).

The backend used to multiply by the reciprocal (``r·(1/tau)``), one float64 rounding more: ~7 % of
the float64 coefficients of the conformance and random neurons came out an ulp apart, none after the
cast to float32 or float16 (every simulation was bit-identical before and after the change). Where
``r/tau`` is exactly halfway between two float32 values, that ulp decides the cast: the parameters
below make the old backend disagree with the other engines and with the documented equation.
"""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir
from talon.backend.cpu.kernels.float_neurons import neuron_coefficients
from talon.backend.cpu.kernels.params import per_neuron  # (C,) per channel -> the layer
from tests.conformance.cases import CASES
from tests.conformance.engines import load

TAU = 49.0


def _halfway_numerators(n: int, seed: int) -> np.ndarray:
    """``p`` with ``p/TAU`` exactly halfway between two float32 values and ``p·(1/TAU)`` rounded off it."""
    rng = np.random.default_rng(seed)
    found: list[float] = []
    while len(found) < n:
        mantissa, exponent = int(rng.integers(2**23, 2**24)), int(rng.integers(-12, 0))
        halfway = (mantissa + 0.5) * 2.0 ** (exponent - 23)
        p = halfway * TAU
        if p / TAU == halfway and np.float32(p * (1.0 / TAU)) != np.float32(p / TAU):
            found.append(p)
    return np.array(found)


def _graph(node: ir.Node, n: int) -> ir.Graph:
    nodes = {"input": ir.Input(np.array([n])), "neuron": node, "output": ir.Output(np.array([n]))}
    return ir.Graph(nodes, [("input", "neuron"), ("neuron", "output")])


N = 8
NODES = {
    "LI": lambda: ir.LI(tau=np.full(N, TAU), r=_halfway_numerators(N, 1), v_leak=_halfway_numerators(N, 2)),
    "CubaLI": lambda: ir.CubaLI(tau_syn=np.full(N, TAU), tau_mem=np.full(N, 4.0), r=4.0, v_leak=0.0,
                                w_in=_halfway_numerators(N, 3)),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(NODES))
@pytest.mark.parametrize("engine", ["torch", "jax"])
def test_the_cpu_backend_rounds_the_coefficients_as_the_other_engines_where_it_matters(kind, engine):
    node = NODES[kind]()
    x = np.ones((6, 2, N), np.float32)
    cpu = load("cpu").run(_graph(node, N), x)["outputs"]["output"]
    module = load(engine)
    for requirement in module.REQUIRES:
        pytest.importorskip(requirement)
    other = module.run(_graph(node, N), x)["outputs"]["output"]
    np.testing.assert_array_equal(cpu, other)
    if kind == "LI":  # the first step is g·1 + c: the float32 roundings of r/tau and v_leak/tau, summed
        g, c = (np.float32(p / TAU) for p in (node.r, node.v_leak))
        np.testing.assert_array_equal(cpu[0, 0], g + c)


def _stateful(graph: ir.Graph):
    for node in graph.nodes.values():
        if isinstance(node, ir.Graph):
            yield from _stateful(node)
        elif isinstance(node, ir.coefficients.STATEFUL):
            yield node


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_every_conformance_neuron_gets_the_shared_coefficients(dtype):
    nodes = [node for case in CASES for node in _stateful(case.build())]
    assert len(nodes) > 50
    for node in nodes:
        shape = tuple(node.input_shape)
        mine = {k: v.astype(dtype) for k, v in neuron_coefficients(node, shape).items()}
        for name, value in ir.coefficients.neuron_coefficients(node, dtype).items():
            np.testing.assert_array_equal(mine[name], per_neuron(value, shape), err_msg=f"{node!r}: {name}")
