"""A shape error names the node and lists a few incoming edges, not all of them."""

from __future__ import annotations

import numpy as np
import pytest

from talon import ir


def test_a_shape_error_of_a_wide_concat_stays_one_readable_line():
    """1,499 branches into a Concat with a wrong dim: the error names the node and lists 8 edges."""
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array([4]))}
    edges = []
    for i in range(1499):
        nodes[f"fc{i}"] = ir.Affine(np.ones((2, 4), np.float32), np.zeros(2, np.float32))
        edges += [("input", f"fc{i}"), (f"fc{i}", "cat")]
    nodes["cat"] = ir.Concat(dim=0)
    nodes["output"] = ir.Output(np.array([2998]))
    edges.append(("cat", "output"))
    with pytest.raises(ir.ShapeError) as caught:
        ir.Graph(nodes, edges)
    message = str(caught.value)
    assert message.startswith("node 'cat' (Concat): Concat: dim=0")
    assert "('fc7' -> 'cat': [2]), ... and 1491 more" in message and "fc8" not in message
    assert len(message) < 600
