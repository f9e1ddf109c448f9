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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [4095, 4096, 4097, 5003, 65536 + 7])
def test_large_arrays_find_nan_and_inf_at_every_position(dtype, size):
    """Arrays from 4096 elements on are checked with one dot product first (``finite._all_finite``):
    NaN, +inf and -inf at the start, in the middle, and in the last, unrolled elements are found."""
    arr = np.random.default_rng(0).standard_normal(size).astype(dtype)
    assert ir.finite.is_finite_param("weight", arr)
    for bad in (np.nan, np.inf, -np.inf):
        for position in [*range(40), size // 2, *range(size - 40, size)]:
            damaged = arr.copy()
            damaged[position] = bad
            assert not ir.finite.is_finite_param("weight", damaged), (bad, position)
            assert ir.finite.is_finite_param("tau", damaged) == (bad == np.inf), (bad, position)
    assert not ir.finite.is_finite_param("weight", np.where(np.arange(size) % 2 == 0, np.inf, -np.inf).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_finite_values_whose_squares_overflow_are_finite_without_a_warning(dtype):
    big = np.full((80, 80), np.finfo(dtype).max, dtype)
    big[0, 0] = -np.finfo(dtype).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ir.finite.is_finite_param("weight", big)
        assert ir.finite.is_finite_param("weight", big.T)  # not contiguous: the element-wise test
        big[3, 5] = np.nan
        assert not ir.finite.is_finite_param("weight", big)
