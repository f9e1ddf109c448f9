"""A state handed back to a GraphExecutor is checked before the step (talon.bridge.state_check): a
wrong one is refused naming the node, never run silently differently or failed inside torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talon import bridge, examples, ir
from talon.bridge.executor import ExecutorState
from talon.graph import examples as graph_examples


@pytest.fixture(scope="module")
def executor():
    inner = examples.chain((4,), ("s", ir.Scale(np.full(4, 0.5, np.float32))), ("lif", ir.CubaLIF(5.0, 3.0, 1.0)))
    graph = examples.chain((4,), ("sub", inner), ("d", ir.Delay(np.arange(4))), ("li", ir.LI(tau=4.0, r=1.0)))
    return bridge.ir_to_torch(graph, return_state=True)


def _calls(executor, state):
    """The three ways a state goes in: a call, step() and run_sequence()."""
    return [
        lambda: executor(torch.ones(2, 4), state),
        lambda: executor.step(torch.ones(2, 4), state=state),
        lambda: executor.run_sequence(torch.ones(3, 2, 4), state),
    ]


def test_the_returned_state_goes_back_in_and_continues_the_run(executor):
    x = torch.rand(6, 2, 4) * 2
    whole, _ = executor.run_sequence(x)
    first, state = executor.run_sequence(x[:3])
    second, _ = executor.run_sequence(x[3:], state)
    assert torch.equal(torch.cat([first, second]), whole)
    _, state = executor(x[0])
    executor(x[1], state)
    executor(x[1], {"li": torch.zeros(1, 4)})  # one membrane for every batch entry broadcasts


@pytest.mark.parametrize(
    "state, error, message",
    [
        ({"other_model_lif": torch.zeros(2, 4)}, ValueError, r"names \['other_model_lif'\], which hold no state"),
        (
            {"sub": {"lif": torch.zeros(2, 4)}},
            TypeError,
            r"state\['sub'\]\['lif'\] must be the pair \(v, i\) of a CubaLIF",
        ),
        ({"sub": torch.zeros(2, 4)}, TypeError, r"state\['sub'\] must be a dict by node name"),
        ({"li": torch.zeros(7)}, ValueError, r"state\['li'\] has shape \[7\]; this batch needs .*\[2, 4\]"),
        ({"li": torch.zeros(3, 4)}, ValueError, r"state\['li'\] has shape \[3, 4\]"),
        ({"li": torch.zeros(2, 4, dtype=torch.float64)}, TypeError, r"state\['li'\] is torch.float64 but the executor"),
        ({"li": torch.zeros(2, 4, dtype=torch.int64)}, TypeError, r"state\['li'\] is torch.int64"),
        ({"li": np.zeros((2, 4), np.float32)}, TypeError, r"state\['li'\] must be a torch.Tensor"),
        ({"li": "rest"}, TypeError, r"state\['li'\] must be a torch.Tensor, got a str"),
        (
            {"d": torch.zeros(2, 4)},
            ValueError,
            r"state\['d'\] has shape \[2, 4\]; this batch needs exactly \[3, 2, 4\]",
        ),
        (ExecutorState({}, edges={0: torch.zeros(2, 4)}), ValueError, r"edge 0, which is not a recurrent edge"),
    ],
    ids=[
        "unknown-node",
        "tensor-for-pair",
        "tensor-for-subgraph",
        "shape",
        "batch",
        "float64",
        "int64",
        "numpy",
        "str",
        "delay-history",
        "edge",
    ],
)
def test_a_wrong_state_is_refused_naming_the_node(executor, state, error, message):
    for call in _calls(executor, state):
        with pytest.raises(error, match=message):
            call()


def test_a_recurrent_edge_value_of_the_wrong_shape_is_refused():
    executor = bridge.ir_to_torch(graph_examples.recurrent_snn(6, 5, 3), return_state=True)
    _, state = executor(torch.ones(2, 6))
    inner = state["rec"]
    [edge] = inner.edges
    executor(torch.ones(2, 6), state)
    bad = ExecutorState(dict(inner), edges={edge: torch.zeros(2, 9)})
    with pytest.raises(ValueError, match=rf"state\['rec'\].edges\[{edge}\] has shape \[2, 9\]"):
        executor(torch.ones(2, 6), {"rec": bad})


def test_an_integer_input_is_refused_naming_the_input(executor):
    with pytest.raises(TypeError, match=r"input 'input' is torch.int64 but the executor computes in torch.float32"):
        executor(torch.ones(2, 4, dtype=torch.int64))
