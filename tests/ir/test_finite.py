"""talon.ir.finite: the one rule for NaN / infinite parameters that linter, engines and readers share."""

import warnings

import numpy as np
import pytest

from talon import ir

from ..sdk import graphs


def test_rule_nan_and_inf_are_not_finite_except_positive_inf_time_constants():
    assert ir.finite.is_finite_param("weight", np.array([1.0, -2.0]))
    assert not ir.finite.is_finite_param("weight", np.array([1.0, np.nan]))
    assert not ir.finite.is_finite_param("bias", np.array([np.inf]))
    assert ir.finite.is_finite_param("tau", np.array([5.0, np.inf]))  # +inf: no leak
    assert not ir.finite.is_finite_param("tau", np.array([5.0, -np.inf]))
    assert not ir.finite.is_finite_param("tau", np.array([np.nan]))
    assert ir.finite.is_finite_param("delay", np.array([1, 2]))  # integers are always finite
    assert ir.finite.is_finite_param("weight", np.zeros((0, 3)))


def test_problems_name_every_node_and_field_including_subgraph_paths():
    g = graphs.chain()
    g.nodes["fc1"].weight[0, 0] = np.nan
    g.nodes["fc2"].weight[1, 1] = -np.inf
    g.nodes["fc2"].bias[0] = np.nan
    assert ir.non_finite_problems(g) == [
        "node 'fc1': weight has NaN or infinite values",
        "node 'fc2': weight, bias have NaN or infinite values",
    ]
    outer = ir.Graph(
        {"input": ir.Input(np.array([8])), "sub": g, "output": ir.Output(np.array([2]))},
        [("input", "sub"), ("sub", "output")],
    )
    assert [path for path, _ in ir.finite.iter_non_finite(outer)] == ["sub.fc1", "sub.fc2"]
    with pytest.raises(ir.NonFiniteParameterError, match=r"the CPU backend refuses node 'sub\.fc1': weight"):
        ir.check_finite(outer, "the CPU backend")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ir.warn_non_finite(outer, "model.nir")
    assert len(caught) == 1 and "model.nir: node 'sub.fc1': weight" in str(caught[0].message)


def test_finite_graph_passes_silently():
    g = graphs.chain()
    g.nodes["lif1"].tau = np.full(4, np.inf)
    ir.check_finite(g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ir.warn_non_finite(g, "x")
    assert ir.non_finite_problems(g) == []
