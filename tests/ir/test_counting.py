"""Totals of a graph (``talon.ir.counting.count_graph``), worked out by hand, and the SDK reporting them.

The per-node rules are tested in ``tests/sdk/test_analysis.py`` and ``tests/sdk/test_model_params.py``
through the reports that use them; here the sums, the recurrent buffers and the memory figures.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir, sdk
from talon.ir.counting import count_graph, is_uniform


def _f32(*shape, value=None):
    return np.full(shape, 0.5 if value is None else value, dtype=np.float32)


def recurrent_layer() -> ir.Graph:
    """input(4) → fc (Affine 4→3, bias) → lif (LIF 3) → output, and lif → w_rec (Linear 3→3) → lif."""
    lif = ir.LIF(tau=_f32(3, value=10), r=_f32(3, value=10), v_leak=_f32(3, value=0), v_threshold=_f32(3, value=1),
                 v_reset=_f32(3, value=0))  # fmt: skip
    nodes = {
        "input": ir.Input(np.array([4])),
        "fc": ir.Affine(weight=_f32(3, 4), bias=_f32(3)),
        "lif": lif,
        "w_rec": ir.Linear(weight=_f32(3, 3)),
        "output": ir.Output(np.array([3])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output"), ("lif", "w_rec"), ("w_rec", "lif")]
    return ir.Graph(nodes, edges)


def test_totals_by_hand():
    """fc: 12 + 3 = 15 params (60 B float32), 3·4 = 12 MACs. lif: 5 arrays × 3 = 15 params (60 B),
    each uniform (5 neuron constants); two inputs: (2 − 1)·3 = 3 MACs; 3 spike ops; 3 state values.
    w_rec: 9 params (36 B), 9 MACs. The edge w_rec → lif closes the cycle: 3 buffered values.

    params 39 (weights 24 + neuron 15; model 24 + 5 = 29), bytes 156, MACs 24, FLOPs 48, ops 27;
    activation: the largest output, input's 4 values, × 4 B = 16; state (3 + 3) × 4 = 24;
    total 156 + 16 + 24 = 196; 8-bit estimate 39 + 16 + 24 = 79."""
    counts = count_graph(recurrent_layer())
    assert [layer.name for layer in counts.layers] == ["input", "fc", "lif", "w_rec", "output"]
    assert [layer.counts.macs for layer in counts.layers] == [0, 12, 3, 9, 0]
    assert (counts.total_params, counts.weight_params, counts.neuron_params, counts.neuron_constants) == (39, 24, 15, 5)
    assert (counts.model_params, counts.total_bytes, counts.model_bytes) == (29, 156, 96 + 5 * 4)
    assert (counts.total_macs, counts.total_flops, counts.spike_ops, counts.total_ops) == (24, 48, 3, 27)
    assert (counts.state_values, counts.recurrent_values, counts.recurrent_edges) == (3, 3, 1)
    assert (counts.activation_memory, counts.state_memory, counts.total_memory) == (16, 24, 196)
    assert counts.estimated_quantized_memory == 79
    assert counts.uncounted == ()


def test_analyze_and_profile_report_the_totals():
    graph = recurrent_layer()
    counts, stats, profile = count_graph(graph), sdk.analyze_graph(graph), sdk.profile_graph(graph)
    for key in ("total_params", "total_bytes", "total_macs", "total_flops", "weight_params", "model_params"):
        assert getattr(stats, key) == getattr(counts, key), key
    assert stats.spiking_neurons == profile.spike_ops == counts.spike_ops
    for key in ("weight_memory", "activation_memory", "state_memory", "total_memory", "estimated_quantized_memory"):
        assert getattr(profile, key) == getattr(counts, key), key
    assert (profile.mac_ops, profile.total_ops, profile.recurrent_edges) == (24, 27, 1)


def test_a_subgraph_counts_its_nodes_under_qualified_names():
    outer = ir.Graph(
        {"input": ir.Input(np.array([4])), "rnn": recurrent_layer(), "output": ir.Output(np.array([3]))},
        [("input", "rnn"), ("rnn", "output")],
    )
    counts = count_graph(outer)
    assert [layer.name for layer in counts.layers][1:6] == ["rnn.input", "rnn.fc", "rnn.lif", "rnn.w_rec", "rnn.output"]
    inner = count_graph(recurrent_layer())
    assert (counts.total_macs, counts.recurrent_values) == (inner.total_macs, inner.recurrent_values)
    assert sdk.analyze_node("rnn", outer.nodes["rnn"]).macs == inner.total_macs


def test_a_zero_dimensional_spiking_layer_is_one_neuron_in_every_report():
    """A LIF on shape () holds one neuron: analyze's spiking_neurons said 0 (its own copy of the rule,
    ``prod(shape or (0,))``) while profile's spike_ops said 1; both are count_graph's now."""
    lif = ir.LIF(tau=np.array(2.0), r=np.array(1.0), v_leak=np.array(0.0), v_threshold=np.array(1.0),
                 v_reset=np.array(0.0), input_type={"input": ()})  # fmt: skip
    graph = ir.Graph({"i": ir.Input(()), "lif": lif, "o": ir.Output(())}, [("i", "lif"), ("lif", "o")])
    assert sdk.analyze_graph(graph).spiking_neurons == sdk.profile_graph(graph).spike_ops == 1


def test_bad_input_is_refused_by_name():
    with pytest.raises(TypeError, match=r"count_graph expects a talon\.ir\.Graph, got LIF"):
        count_graph(ir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=0.0, v_threshold=1.0))
    broken = ir.Graph({"input": ir.Input(np.array([2])), "output": ir.Output(np.array([2]))}, [("input", "gone")],
                      validate=False)  # fmt: skip
    with pytest.raises(ir.GraphValidationError, match=r"edge \(.input., .gone.\) refers to unknown node .gone."):
        count_graph(broken)


def _uniform_by_numpy(arr: np.ndarray) -> bool:
    """``is_uniform``'s rule, all in numpy (how it was computed before small arrays took Python numbers)."""
    flat = arr.reshape(-1)
    if flat.size == 0:
        return True
    first = flat[0]
    if first != first:
        return bool(np.isnan(flat).all())
    return bool((flat == first).all())


SPECIAL = [0.0, -0.0, 1.0, 1.5, np.nan, np.inf, -np.inf, 2.0**-149, 1e300, 16777217.0]


@settings(max_examples=400, deadline=None)
@given(
    dtype=st.sampled_from(["float16", "float32", "float64", "int8", "int64", "uint64", "bool"]),
    picks=st.lists(st.integers(0, len(SPECIAL) - 1), min_size=0, max_size=40),
    same=st.booleans(),
)
def test_is_uniform_is_numpy_equality(dtype, picks, same):
    """Small arrays compare Python numbers, large ones numpy: either way numpy's ``==`` in the
    array's dtype (-0.0 equals 0.0, NaN only NaN, 16777217 rounds to 16777216 in float32)."""
    values = [SPECIAL[picks[0]]] * len(picks) if same and picks else [SPECIAL[i] for i in picks]
    with np.errstate(all="ignore"):
        raw = np.array(values, dtype=np.float64)
        if np.dtype(dtype).kind in "iub":
            raw = np.nan_to_num(raw, nan=3.0, posinf=5.0, neginf=-5.0).clip(0 if dtype == "uint64" else -100, 100)
        arr = raw.astype(dtype)
    for shaped in (arr, arr.reshape(1, -1), np.tile(arr, 3)):
        assert is_uniform(shaped) == _uniform_by_numpy(shaped), shaped
