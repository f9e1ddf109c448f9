"""fingerprint_graph (canonical form), stamp_graph, get_stamp, verify_fingerprint."""

import hashlib
import re
import struct

import numpy as np
import pytest

from talon import ir, sdk
from talon.ir.fingerprint import _Sink, _value

from . import graphs


def test_canonical_form_of_a_minimal_graph_is_the_documented_encoding():
    def n(k):
        return struct.pack("<Q", k)

    def text(tag, s):
        data = s.encode()
        return tag + n(len(data)) + data

    def types(port, dims):
        return b"d" + n(1) + text(b"s", port) + b"l" + n(len(dims)) + b"".join(text(b"i", str(d)) for d in dims)

    g = ir.Graph({"input": ir.Input(np.array([2])), "output": ir.Output(np.array([2]))}, [("input", "output")])
    stream = (
        text(b"s", "talon-fingerprint/1") + bytes([1, 0])
        + b"G" + n(2)
        + text(b"s", "input") + text(b"s", "Input") + b"P" + n(0) + types("input", [2]) + types("output", [2])
        + text(b"s", "output") + text(b"s", "Output") + b"P" + n(0) + types("input", [2]) + types("output", [2])
        + b"E" + n(1) + text(b"s", "input") + text(b"s", "output")
    )  # fmt: skip
    assert sdk.fingerprint_graph(g) == hashlib.sha256(stream).hexdigest()


def test_array_encoding_is_documented():
    def n(k):
        return struct.pack("<Q", k)

    w = np.array([[1.5, -2.0]], dtype=np.float32)
    g = ir.Graph({"s": ir.Scale(w)}, [])
    array = b"a" + n(3) + b"<f4" + n(2) + n(1) + n(2) + n(8) + w.tobytes()
    sink = _Sink()
    _value(sink, w, True, "w")
    assert sink.value() == array
    structure = _Sink()
    _value(structure, w, False, "w")
    assert structure.value() == b"a" + n(3) + b"<f4" + n(2) + n(1) + n(2)
    assert sdk.fingerprint_graph(g) != sdk.fingerprint_graph(g, include_weights=False)


def test_deterministic_hex_and_independent_of_file_layout(tmp_path):
    g = graphs.hybrid()
    fp = sdk.fingerprint_graph(g)
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert sdk.fingerprint_graph(graphs.hybrid()) == fp  # a fresh build with the same seed
    ir.write(tmp_path / "plain.t1c", g)
    ir.write(tmp_path / "gzip.t1c", g, compression="gzip")
    assert sdk.fingerprint_graph(tmp_path / "plain.t1c") == fp
    assert sdk.fingerprint_graph(ir.read(tmp_path / "gzip.t1c")) == fp


def _chain_with_weight(w):
    return ir.Graph(
        {"input": ir.Input(np.array([3])), "fc": ir.Linear(w), "output": ir.Output(np.array([2]))},
        [("input", "fc"), ("fc", "output")],
    )


def test_independent_of_array_memory_layout():
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    reference = sdk.fingerprint_graph(_chain_with_weight(w))
    assert sdk.fingerprint_graph(_chain_with_weight(np.asfortranarray(w))) == reference
    assert sdk.fingerprint_graph(_chain_with_weight(w.astype(">f4"))) == reference
    strided = np.zeros((2, 6), np.float32)
    strided[:, ::2] = w
    assert sdk.fingerprint_graph(_chain_with_weight(strided[:, ::2])) == reference
    assert sdk.fingerprint_graph(_chain_with_weight(w.astype(np.float64))) != reference  # the dtype counts


def test_metadata_is_hashed_only_on_request_and_independently_of_dict_order():
    a, b = graphs.chain(), graphs.chain()
    a.metadata = {"x": 1, "nested": {"p": [1, 2], "q": np.arange(3)}}
    b.metadata = {"nested": {"q": np.arange(3), "p": [1, 2]}, "x": 1}
    assert sdk.fingerprint_graph(a) == sdk.fingerprint_graph(graphs.chain())  # metadata ignored by default
    assert sdk.fingerprint_graph(a, include_metadata=True) == sdk.fingerprint_graph(b, include_metadata=True)
    b.metadata["x"] = 2
    assert sdk.fingerprint_graph(a, include_metadata=True) != sdk.fingerprint_graph(b, include_metadata=True)
    c = graphs.chain()
    c.metadata = {1: "a"}
    d = graphs.chain()
    d.metadata = {"1": "a"}
    assert sdk.fingerprint_graph(c, include_metadata=True) != sdk.fingerprint_graph(d, include_metadata=True)


def test_what_changes_the_full_and_the_structure_hash():
    base = graphs.chain()
    full, structure = sdk.fingerprint_graph(base), sdk.fingerprint_graph(base, include_weights=False)

    def hashes(g):
        return sdk.fingerprint_graph(g), sdk.fingerprint_graph(g, include_weights=False)

    ulp = graphs.chain()
    ulp.nodes["fc1"].weight[0, 0] = np.nextafter(ulp.nodes["fc1"].weight[0, 0], np.float32(np.inf))
    ulp_full, ulp_structure = hashes(ulp)
    assert ulp_full != full and ulp_structure == structure

    tau = graphs.chain()
    tau.nodes["lif1"].tau[:] = 6.0
    assert hashes(tau)[1] == structure and hashes(tau)[0] != full

    nodes = dict(graphs.chain().nodes)
    renamed = ir.Graph(
        {("dense1" if k == "fc1" else k): v for k, v in nodes.items()},
        [("input", "dense1"), ("dense1", "lif1"), ("lif1", "fc2"), ("fc2", "output")],
    )
    assert hashes(renamed)[0] != full and hashes(renamed)[1] != structure

    subtract = graphs.chain()
    subtract.nodes["lif1"].reset_mode = ir.ResetMode.SUBTRACT  # a hyperparameter is structure
    assert hashes(subtract)[1] != structure


def test_edge_order_and_node_order_count():
    def concat(edges, order=("input", "a", "b", "cat", "output")):
        nodes = {
            "input": ir.Input(np.array([2, 3])),
            "a": ir.ReLU(),
            "b": ir.Sigmoid(),
            "cat": ir.Concat(),
            "output": ir.Output(np.array([4, 3])),
        }
        return ir.Graph({k: nodes[k] for k in order}, edges)

    edges = [("input", "a"), ("input", "b"), ("a", "cat"), ("b", "cat"), ("cat", "output")]
    swapped = [("input", "a"), ("input", "b"), ("b", "cat"), ("a", "cat"), ("cat", "output")]
    reference = sdk.fingerprint_graph(concat(edges))
    assert sdk.fingerprint_graph(concat(swapped), include_weights=False) != sdk.fingerprint_graph(
        concat(edges), include_weights=False
    )
    assert sdk.fingerprint_graph(concat(edges, order=("input", "b", "a", "cat", "output"))) != reference


def test_stamp_round_trip_and_verification(tmp_path):
    g = graphs.hybrid()
    before = sdk.fingerprint_graph(g, include_metadata=True)
    stamped = sdk.stamp_graph(g, notes="trained 3 epochs", git_commit="abc123", training_run_id="run-7",
                              quantization_config={"bits": 8}, dataset="mnist")  # fmt: skip
    assert "talon_stamp" not in g.metadata and sdk.get_stamp(g) is None  # the input is untouched
    assert sdk.fingerprint_graph(g, include_metadata=True) == before
    stamp = sdk.get_stamp(stamped)
    assert stamp["fingerprint_full"] == sdk.fingerprint_graph(g)
    assert stamp["fingerprint_structure"] == sdk.fingerprint_graph(g, include_weights=False)
    assert stamp["sdk_versions"]["talon"] == sdk.__version__ and stamp["sdk_versions"]["talon.sdk"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", stamp["timestamp"])
    assert (stamp["notes"], stamp["git_commit"], stamp["training_run_id"]) == ("trained 3 epochs", "abc123", "run-7")
    assert stamp["quantization_config"] == {"bits": 8} and stamp["extra"] == {"dataset": "mnist"}
    # The stamp is excluded from every fingerprint, so stamping does not change the hash.
    assert sdk.fingerprint_graph(stamped, include_metadata=True) == before
    assert sdk.verify_fingerprint(stamped) and sdk.verify_fingerprint(stamped, include_weights=False)
    assert sdk.verify_stamp(stamped)

    path = tmp_path / "stamped.t1c"
    ir.write(path, stamped)
    back = ir.read(path)
    assert sdk.get_stamp(back) == stamp
    assert sdk.verify_fingerprint(path)

    back.nodes["fc2"].bias[0] += 1
    assert not sdk.verify_fingerprint(back)
    assert sdk.verify_fingerprint(back, include_weights=False)  # the structure did not change
    assert not sdk.verify_stamp(back)
    restamped = sdk.stamp_graph(back)
    assert sdk.verify_stamp(restamped) and "notes" not in sdk.get_stamp(restamped)


def test_verify_with_an_explicit_hash_and_bad_arguments():
    g = graphs.chain()
    fp = sdk.fingerprint_graph(g)
    assert sdk.verify_fingerprint(g, fp) and sdk.verify_fingerprint(g, fp.upper())
    assert not sdk.verify_fingerprint(g, "0" * 64)
    with pytest.raises(ValueError, match="64 hexadecimal"):
        sdk.verify_fingerprint(g, "abc")
    with pytest.raises(ValueError, match="no provenance stamp"):
        sdk.verify_fingerprint(g)
    with pytest.raises(TypeError, match="include_weights"):
        sdk.fingerprint_graph(g, include_weights="yes")
    with pytest.raises(TypeError, match="notes"):
        sdk.stamp_graph(g, notes=3)
    with pytest.raises(TypeError, match=r"must survive ir\.write"):
        sdk.stamp_graph(g, blob=object())
    with pytest.raises(TypeError, match="calibration_config"):
        sdk.stamp_graph(g, calibration_config=[1, 2])


def test_numpy_float64_scalars_hash_as_arrays_not_as_python_floats():
    """np.float64 subclasses float; the canonical form still treats it as a numpy scalar."""
    from talon import sdk

    a, b = graphs.chain(), graphs.chain()
    a.metadata["x"], b.metadata["x"] = np.float64(1.5), 1.5
    assert sdk.fingerprint_graph(a, include_metadata=True) != sdk.fingerprint_graph(b, include_metadata=True)
