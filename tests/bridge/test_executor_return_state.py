"""An executor returns what it was built to return: one built with ``return_state=False`` returns only
the output, so a call with a state (``out, state = executor(x, state)``, the stateful convention) is
refused instead of splitting the output tensor's batch rows (or a cyclic executor's per-step list)
into ``out`` and ``state`` without an error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talon import bridge, examples, ir

_GRAPH = examples.chain((4,), ("fc", ir.Affine(np.eye(4, dtype=np.float32) * 2, np.zeros(4, np.float32))),
                        ("lif", ir.LIF(tau=np.full(4, 5.0), r=np.full(4, 5.0), v_leak=np.zeros(4),
                                       v_threshold=np.ones(4))))  # fmt: skip


def test_a_state_given_to_an_executor_built_without_return_state_is_refused():
    executor = bridge.ir_to_torch(_GRAPH)
    x = torch.rand(2, 4) * 3  # two batch rows: the unpacking the refusal prevents would have "worked"
    for state in (None, {}, bridge.ir_to_torch(_GRAPH, return_state=True)(x)[1]):
        with pytest.raises(TypeError, match=r"built with return_state=False and was called with a state") as error:
            executor(x, state)
        assert "ir_to_torch(graph, return_state=True)" in str(error.value)
        assert "executor.step(x, state=state)" in str(error.value)
    out = executor(x)  # the stateless call is unchanged
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4)
    executor.return_state = True  # the remedy the message names
    stepped, state = executor(x, None)
    assert torch.equal(stepped, out) and set(state) == {"lif"}
    executor.return_state = False
    outs, state = executor.step(x, state=state)  # step returns (outputs, state) however it was built
    assert outs[0].shape == (2, 4) and set(state) == {"lif"}
    seq, state = executor.run_sequence(torch.rand(3, 2, 4), None)  # documented as a pair either way
    assert seq.shape == (3, 2, 4) and set(state) == {"lif"}


def test_a_cyclic_executor_built_without_return_state_refuses_a_state():
    modules = bridge.from_ir(_GRAPH)
    cyclic = bridge.CyclicGraphExecutor(modules, _GRAPH.edges, timesteps=2, output_nodes=["lif"], return_state=False)
    x = torch.rand(2, 4) * 3
    with pytest.raises(TypeError, match=r"CyclicGraphExecutor was built with return_state=False.*return_state=True"):
        cyclic(x, {})  # two timesteps: `outs, state = ...` would have split the list of outputs
    outputs = cyclic(x)
    assert isinstance(outputs, list) and len(outputs) == 2


def test_a_subgraph_executor_that_returns_no_state_is_refused_naming_its_node():
    inner = bridge.ir_to_torch(_GRAPH)
    with pytest.raises(ValueError, match=r"node 'sub' is a GraphExecutor built with return_state=False"):
        bridge.GraphExecutor({"sub": inner}, [("input", "sub"), ("sub", "output")], return_state=True)
    inner.return_state = True
    outer = bridge.GraphExecutor({"sub": inner}, [("input", "sub"), ("sub", "output")], return_state=True)
    x = torch.rand(2, 4) * 3
    out, state = outer(x, None)
    inner_out, inner_state = inner(x, None)
    assert torch.equal(out, inner_out) and torch.equal(state["sub"]["lif"], inner_state["lif"])
