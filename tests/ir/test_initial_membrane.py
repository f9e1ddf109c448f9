"""``v_init``: the membrane of LIF / IF / CubaLIF at t = 0 (docs/semantics.md), in the IR, ``.t1c`` and the
fixed-point backend. The engines' traces are checked against the reference in ``tests/conformance``."""

from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.sdk import fingerprint_graph

from ..backend.graphs import chain


def lif_graph(**kwargs) -> ir.Graph:
    return chain([3], ("lif", ir.LIF(tau=np.full(3, 4.0), r=4.0, **kwargs)))


@pytest.mark.parametrize("kind", [ir.LIF, ir.IF, ir.CubaLIF])
def test_v_init_defaults_to_none_and_broadcasts_like_the_other_parameters(kind):
    extra = {ir.LIF: {"tau": [2.0, 4.0]}, ir.IF: {"r": [1.0, 1.0]}, ir.CubaLIF: {"tau_syn": [2.0, 2.0], "tau_mem": 4.0}}
    node = kind(**extra[kind])
    assert node.v_init is None and float(node.initial_membrane) == 0.0
    node = kind(**extra[kind], v_init=0.25)
    assert node.v_init.shape == (2,) and node.v_init.dtype.kind == "f"
    np.testing.assert_array_equal(node.initial_membrane, [0.25, 0.25])


def test_bad_v_init_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="v_init must be finite"):
        ir.LIF(tau=[2.0, 4.0], v_init=[0.0, np.nan])
    with pytest.raises(ir.ShapeError, match=r"v_init\[3\]"):
        ir.IF(r=[1.0, 1.0], v_init=[0.0, 0.5, 1.0])


def test_t1c_round_trip_keeps_v_init_and_leaves_it_out_when_unset(tmp_path):
    graph = lif_graph(v_init=[0.5, -0.25, 1.5], v_reset=0.5)
    ir.write(tmp_path / "v.t1c", graph)
    back = ir.read(tmp_path / "v.t1c").nodes["lif"]
    np.testing.assert_array_equal(back.v_init, graph.nodes["lif"].v_init)
    assert back.v_init.dtype == graph.nodes["lif"].v_init.dtype
    plain = lif_graph()
    ir.write(tmp_path / "plain.t1c", plain)
    assert ir.read(tmp_path / "plain.t1c").nodes["lif"].v_init is None
    for name, has_it in (("plain.t1c", False), ("v.t1c", True)):  # files without v_init are what they were
        with h5py.File(tmp_path / name) as f:
            manifest = zlib.decompress(f["manifest"][()].tobytes()).decode()
        assert ('"v_init"' in manifest) is has_it
    # the fingerprint of a graph without v_init is unchanged by the new field; with one, it differs
    assert "v_init" not in plain.nodes["lif"].stored_params() and "v_init" not in repr(plain.nodes["lif"])
    assert "v_init=float64[3]" in repr(graph.nodes["lif"])
    assert fingerprint_graph(plain) != fingerprint_graph(lif_graph(v_init=0.0))


def test_fixed_point_starts_at_the_quantised_v_init():
    """int8 (state 24 bits, 16 fraction bits), the IF of tests/backend/test_fixed_point.py with v_init.

    s_v = 2**-22 (|v|, θ <= 1), THETA = 4194304; v(0) = rint([0.5, 0.3] * 2**22) = [2097152, 1258291]
    (0.3 is not dyadic: it is rounded like every other membrane value). Per step row 0 adds 4194304
    (spike, subtract: back to 2097152), row 1 adds 1198373: 2456664, 3655037, 4853410 -> spike -> 659106.
    """
    w = np.array([[0.7, 0.3], [-0.2, 0.5]])
    fc = ir.SpikingAffine(w, np.zeros(2), weight_bits=4, accumulator_bits=8)
    graph = chain([2], ("fc", fc), ("if", ir.IF(v_threshold=np.ones(2), reset_mode="subtract", v_init=[0.5, 0.3])))
    x = np.ones((3, 1, 2), np.float32)
    result = get_backend("cpu").simulate(graph, {"input": x}, precision="int8", step_by_step=True)
    neuron = result.node_states["if"]
    np.testing.assert_array_equal(neuron["v_int"][:, 0], [[2097152, 2456664], [2097152, 3655037], [2097152, 659106]])
    np.testing.assert_array_equal(neuron["output_int"][:, 0], [[1, 0], [1, 0], [1, 1]])
    # the float engine agrees on the spikes
    floats = get_backend("cpu").simulate(graph, {"input": x})
    np.testing.assert_array_equal(floats.outputs["output"][:, 0], [[1, 0], [1, 0], [1, 1]])
