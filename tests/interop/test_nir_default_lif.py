"""Issue #17, item 4: a default (TALON-documented) LIF is refused by ``to_nir`` with the exact fix."""

import numpy as np
import pytest

from talon import ir

pytest.importorskip("nir")
from talon.interop.nir import from_nir, to_nir


def _graph(**lif_fields) -> ir.Graph:
    rng = np.random.default_rng(0)
    return ir.Graph(
        nodes={
            "input": ir.Input(np.array([6])),
            "fc1": ir.Affine(weight=rng.standard_normal((4, 6)).astype(np.float32), bias=np.zeros(4, np.float32)),
            "lif1": ir.LIF(tau=np.full(4, 10.0), r=10.0, v_leak=0.0, v_threshold=1.0, **lif_fields),
            "output": ir.Output(np.array([4])),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "output")],
    )


def test_the_refusal_names_the_field_that_makes_the_export_exact_and_the_lossy_option():
    with pytest.raises(ir.ConversionError) as caught:
        to_nir(_graph())
    message = str(caught.value)
    assert "node 'lif1' (LIF)" in message
    assert "comparison='>'" in message
    assert "lossy=True" in message


def test_each_non_nir_behaviour_gets_its_own_fix():
    with pytest.raises(ir.ConversionError) as caught:
        to_nir(_graph(comparison=">", reset_mode="subtract", reset_timing="delayed"))
    message = str(caught.value)
    assert "reset_mode='value'" in message and "reset_timing='immediate'" in message
    assert "comparison='>'" not in message


def test_following_the_fix_exports_exactly():
    graph = _graph(comparison=">")
    back = from_nir(to_nir(graph))
    assert "lossy" not in back.metadata["nir"]  # nothing was changed on the way
    back.metadata.pop("nir")  # what the import records (dt, source); the graph itself is the same
    assert ir.graph_differences(graph, back) == []
