"""Whole graphs: the CPU backend against the PyTorch executor (``talon.bridge.ir_to_torch``).

Both engines follow docs/semantics.md; spikes must agree exactly and values to float32 rounding
(the executor accumulates matmuls in float32, the backend in float64 before rounding).
"""

import numpy as np
import pytest

from talon import ir
from talon.backend import default_stimulus, get_backend

from ..ir.examples import EXAMPLES, chain_graph
from .graphs import hybrid_graph, mlp_graph
from .test_simulate import _cyclic_with_subgraph_and_delay

torch = pytest.importorskip("torch")
bridge = pytest.importorskip("talon.bridge")
CPU = get_backend("cpu")


def executor_outputs(graph: ir.Graph, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    # eval(): like every nn.Module the executor starts in training mode, where BatchNorm uses batch
    # statistics and Dropout drops; docs/semantics.md §4 is inference.
    executor = bridge.ir_to_torch(graph, return_state=True).eval()
    with torch.no_grad():
        outs, _ = executor.run_sequence(*(torch.from_numpy(inputs[n]) for n in graph.input_nodes))
    outs = outs if isinstance(outs, tuple) else (outs,)
    return {name: out.numpy() for name, out in zip(graph.output_nodes, outs, strict=True)}


def compare(graph: ir.Graph, inputs: dict[str, np.ndarray], spiking: set[str] = frozenset(), atol=1e-5):
    ours = CPU.simulate(graph, inputs).outputs
    theirs = executor_outputs(graph, inputs)
    for name, value in ours.items():
        if name in spiking:
            np.testing.assert_array_equal(value, theirs[name], err_msg=name)
        else:
            np.testing.assert_allclose(value, theirs[name], atol=atol, rtol=1e-5, err_msg=name)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_primitive(name):
    graph = chain_graph(name)
    shape = graph.nodes["input"].shape
    x = np.random.default_rng(0).standard_normal((6, 2, *shape)).astype(np.float32)
    spiking = {"output_0"} if name in ("LIF", "IF", "CubaLIF", "Threshold") else set()
    compare(graph, {"input": 2 * x}, spiking)


def test_hybrid_network():
    graph = hybrid_graph(0)
    inputs = default_stimulus(graph, 20, batch_size=3)
    ours = CPU.simulate(graph, inputs, step_by_step=True)
    executor = bridge.ir_to_torch(graph, return_state=True).eval()
    state = None
    with torch.no_grad():
        for t in range(20):
            out, state = executor(torch.from_numpy(inputs["input"][t]), state)
            np.testing.assert_allclose(ours.outputs["output"][t], out.numpy(), atol=1e-5, rtol=1e-5)
            np.testing.assert_allclose(ours.node_states["lif"]["v"][t], state["lif"].numpy(), atol=1e-5, rtol=1e-5)
    assert ours.spike_counts["lif"] > 0


def test_tutorial_mlp_spikes_match_exactly():
    graph = mlp_graph(5)
    inputs = default_stimulus(graph, 30, batch_size=2, seed=4)
    compare(graph, inputs, spiking={"output"})


def test_cyclic_graph_with_subgraph_and_delay():
    graph = _cyclic_with_subgraph_and_delay()
    x = (np.random.default_rng(1).integers(-4, 12, (25, 2, 4)) / 8).astype(np.float32)
    compare(graph, {"input": x}, spiking={"spikes"})
