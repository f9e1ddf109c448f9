"""``spike_mode='multi'`` and the membrane floor ``v_min`` (docs/semantics.md §3.1) in the IR, ``.t1c``,
the fixed-point backend, the PyTorch surrogate, and the exporters that cannot state them. Every
engine's trace is checked against the reference in ``tests/conformance`` (the multi-spike cases)."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.backend.fpga.lowering import unsupported_nodes
from talon.sdk import fingerprint_graph

from ..backend.graphs import chain

MULTI = dict(reset_mode="subtract", spike_mode="multi")


def if_graph(**kwargs) -> ir.Graph:
    return chain([2], ("if", ir.IF(v_threshold=[0.75, 0.25], **kwargs)))


def test_unset_fields_leave_files_fingerprints_and_reprs_as_they_were(tmp_path):
    plain = if_graph(reset_mode="subtract")
    node = plain.nodes["if"]
    assert node.spike_mode == "binary" and node.v_min is None and not node.multi_spike
    assert "spike_mode" not in node.stored_params() and "v_min" not in node.stored_params()
    assert "spike_mode" not in repr(node) and "v_min" not in repr(node)
    multi = if_graph(**MULTI, v_min=-0.5)
    assert "spike_mode='multi'" in repr(multi.nodes["if"]) and "v_min=float64[2]" in repr(multi.nodes["if"])
    assert fingerprint_graph(plain) != fingerprint_graph(if_graph(**MULTI))
    assert fingerprint_graph(plain) != fingerprint_graph(if_graph(reset_mode="subtract", v_min=-0.5))
    for name, graph, has_it in (("plain.t1c", plain, False), ("multi.t1c", multi, True)):
        ir.write(tmp_path / name, graph)
        with h5py.File(tmp_path / name) as f:
            manifest = zlib.decompress(f["manifest"][()].tobytes()).decode()
        assert ('"spike_mode"' in manifest) is has_it and ('"v_min"' in manifest) is has_it
    back = ir.read(tmp_path / "multi.t1c").nodes["if"]
    assert back.spike_mode == "multi" and back.multi_spike
    np.testing.assert_array_equal(back.v_min, [-0.5, -0.5])
    assert ir.read(tmp_path / "plain.t1c").nodes["if"].v_min is None


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        (dict(spike_mode="multi"), r"reset_mode='value' \(needs 'subtract'\)"),
        (dict(MULTI, comparison=">"), r"comparison='>' \(needs '>='\)"),
        (dict(MULTI, reset_timing="delayed"), r"reset_timing='delayed' \(needs 'immediate'\)"),
        (dict(MULTI, v_threshold=[0.5, -1.0]), "spike_mode='multi' needs v_threshold > 0"),
        (dict(spike_mode="several"), "spike_mode='several' is not one of 'binary', 'multi'"),
        (dict(v_min=[0.0, np.nan]), "v_min must be finite"),
        (dict(reset_mode="subtract", reset_timing="delayed", v_min=-1.0), "v_min .* reset_timing='immediate' only"),
    ],
)
def test_combinations_that_are_not_stated_are_refused_naming_the_field(fields, match):
    fields = {"v_threshold": [0.75, 0.25], **fields}
    with pytest.raises(ValueError, match=match):
        ir.IF(**fields)


def test_fixed_point_counts_by_integer_floor_division_and_floors_the_membrane():
    """int8 (state 24 bits): s_v = 2**-22, THETA = [3145728, 1048576], V_MIN = [-2097152, -1048576].

    Input 2.0 saturates to 2 - 2**-22 (the input format's symmetric bound). Neuron 0: U = 8388607,
    n = 8388607 // 3145728 = 2, U = 2097151; + 0.25: 3145727 < THETA, no spike; - 2: -5242881, floored to
    -2097152; + 1.5: 4194304, n = 1, U = 1048576. Neuron 1: 0.5 -> 2097152, n = 2, U = 0; 1.125 -> 4718592,
    n = 4, U = 524288; -2 -> -7864320, floored to -1048576; 0.75 -> 2097152, n = 2, U = 0.
    """
    graph = if_graph(**MULTI, v_min=[-0.5, -0.25])
    x = np.array([[[2.0, 0.5]], [[0.25, 1.125]], [[-2.0, -2.0]], [[1.5, 0.75]]], np.float32)
    result = get_backend("cpu").simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    neuron = result.node_states["if"]
    np.testing.assert_array_equal(
        neuron["v_int"][:, 0], [[2097151, 0], [3145727, 524288], [-2097152, -1048576], [1048576, 0]]
    )
    np.testing.assert_array_equal(neuron["output_int"][:, 0], [[2, 2], [0, 4], [0, 0], [1, 2]])
    assert result.spike_counts == {"if": 11}  # counts, not neurons that fired
    floats = get_backend("cpu").simulate(graph, {"input": x})
    np.testing.assert_array_equal(floats.outputs["output"][:, 0], [[2, 2], [1, 4], [0, 0], [1, 2]])
    assert floats.spike_counts == {"if": 12}


def test_fpga_backend_refuses_by_node_name():
    problems = unsupported_nodes(if_graph(**MULTI))
    assert problems == [
        "if (IF): spike_mode='multi' (spike counts, membrane floor, input-first synapse) are not in the HLS neuron "
        "kernel, which emits one spike bit per step; simulate it with the CPU backend (its fixed point runs them)"
    ]
    assert "v_min" in unsupported_nodes(if_graph(reset_mode="subtract", v_min=-1.0))[0]
    assert unsupported_nodes(if_graph(reset_mode="subtract")) == []


def test_nir_export_refuses_by_node_or_records_the_lossy_change(tmp_path):
    pytest.importorskip("nir")
    from talon.interop.nir import LossyConversionWarning, to_nir

    graph = if_graph(**MULTI, v_min=-0.5, comparison=">=")
    with pytest.raises(ir.ConversionError, match=r"'if'.*spike_mode='multi'.*v_min.*spike_mode='binary', v_min=None"):
        to_nir(graph)
    with pytest.warns(LossyConversionWarning, match="one spike per step; .*no floor"):
        out = to_nir(graph, lossy=True)
    assert "spike_mode='multi'" in out.metadata["talon_lossy"]["if"]


def test_pytorch_surrogate_goes_straight_through_the_first_spike():
    torch = pytest.importorskip("torch")
    from talon.bridge.modules import IFModule
    from talon.bridge.spike import spike

    module = IFModule(node=ir.IF(v_threshold=np.full(3, 0.5), r=np.ones(3), **MULTI, v_min=-0.5))
    x = torch.tensor([[1.75, 0.25, -2.0]], requires_grad=True)
    n, v = module(x)
    assert n.tolist() == [[3.0, 0.0, 0.0]] and v.tolist() == [[0.25, 0.25, -0.5]]
    n.sum().backward()
    probe = torch.tensor([[1.75, 0.25, -2.0]], requires_grad=True)
    spike(probe - 0.5, True).sum().backward()  # the binary spike's arc-tangent surrogate
    assert torch.equal(x.grad, probe.grad)


def test_max_spikes_and_the_input_first_synapse_round_trip_and_are_validated(tmp_path):
    cuba = ir.CubaLIF(tau_syn=[2.0, 4.0], tau_mem=4.0, synapse="input_first", **MULTI, max_spikes=3)
    graph = chain([2], ("cuba", cuba))
    ir.write(tmp_path / "c.t1c", graph)
    back = ir.read(tmp_path / "c.t1c").nodes["cuba"]
    assert back.max_spikes == 3 and back.synapse == "input_first"
    plain = ir.CubaLIF(tau_syn=[2.0, 4.0], tau_mem=4.0)
    assert "synapse" not in plain.stored_params() and "max_spikes" not in repr(plain)
    with pytest.raises(ValueError, match="max_spikes bounds the spike count of spike_mode='multi' only"):
        ir.IF(max_spikes=3)
    for bad in (0, 2**31, 2**70):  # an int32 count in every engine
        with pytest.raises(ValueError, match=r"max_spikes must be a whole number from 1 to 2\*\*31 - 1"):
            ir.IF(**MULTI, max_spikes=bad)
    with pytest.raises(ValueError, match="synapse='later' is not one of 'decay', 'input_first'"):
        ir.CubaLIF(tau_syn=2.0, tau_mem=4.0, synapse="later")
    first = chain([2], ("cuba", ir.CubaLIF(tau_syn=[2.0, 4.0], tau_mem=4.0, synapse="input_first")))
    assert "synapse='input_first'" in unsupported_nodes(first)[0]
