"""The canonical form lives in the IR (``talon.ir.fingerprint``); ``tests/sdk/test_fingerprint.py``
checks the stream byte by byte through ``sdk.fingerprint_graph``, which reads a file and calls it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from talon import ir, sdk
from talon.examples import blocks_graph, hybrid_graph
from talon.ir import fingerprint
from talon.ir.fingerprint import canonical_bytes, graph_fingerprint, graph_fingerprints
from talon.ir.graph import walk


def test_the_sdk_fingerprint_is_the_ir_one(tmp_path):
    graph = hybrid_graph()
    ir.write(tmp_path / "g.t1c", graph)
    for flags in ((True, False), (False, False), (True, True)):
        assert sdk.fingerprint_graph(tmp_path / "g.t1c", *flags) == graph_fingerprint(graph, *flags)


def test_an_empty_graph_by_hand():
    """stream = text("s", "talon-fingerprint/1") + flags + "G" + n(0) + "E" + n(0)."""
    header = b"talon-fingerprint/1"
    stream = b"s" + len(header).to_bytes(8, "little") + header + bytes([1, 0]) + b"G" + bytes(8) + b"E" + bytes(8)
    assert graph_fingerprint(ir.Graph({}, [])) == hashlib.sha256(stream).hexdigest()


def test_canonical_bytes_ignore_key_order_not_values():
    assert canonical_bytes({"a": 1, "b": [2.5]}) == canonical_bytes({"b": (2.5,), "a": 1})
    assert canonical_bytes({"a": 1}) != canonical_bytes({"a": 1.0})
    assert canonical_bytes(np.arange(3, dtype=">i4")) == canonical_bytes(np.arange(3, dtype="<i4"))


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match=r"graph_fingerprint expects a talon\.ir\.Graph, got str"):
        graph_fingerprint("model.t1c")
    with pytest.raises(TypeError, match="include_metadata must be a bool, got int"):
        graph_fingerprint(hybrid_graph(), True, 1)
    with pytest.raises(TypeError, match="metadata key: cannot fingerprint a value of type object"):
        canonical_bytes({object(): 1}, "metadata")


def _with_large_and_small_arrays() -> ir.Graph:
    """The hybrid example, a 300 x 300 Affine (360,000 bytes: fed to the hash apart) and arrays in
    the graph and node metadata (whose values count in both fingerprints)."""
    graph = hybrid_graph()
    width = graph.output_type["output"][0]
    nodes = dict(graph.nodes)
    out = nodes.pop("output")
    nodes["wide"] = ir.Affine(np.arange(300 * width, dtype=np.float32).reshape(300, width) / 7)
    nodes["narrow"] = ir.Affine(np.ones((int(width), 300), np.float32), metadata={"w": np.arange(5.0)})
    nodes["output"] = out
    edges = [(s, "wide" if d == "output" else d) for s, d in graph.edges] + [("wide", "narrow"), ("narrow", "output")]
    metadata = {"big": np.arange(20_000, dtype=np.int64), "small": np.arange(3)}
    return ir.Graph(nodes, edges, metadata)


@pytest.mark.parametrize("include_metadata", [False, True])
def test_both_fingerprints_from_one_walk_are_the_two_fingerprints(include_metadata):
    for graph in (_with_large_and_small_arrays(), blocks_graph(80), ir.Graph({}, [])):
        full, structure = graph_fingerprints(graph, include_metadata)
        assert full == graph_fingerprint(graph, True, include_metadata)
        assert structure == graph_fingerprint(graph, False, include_metadata)


def test_both_fingerprints_walk_the_graph_once(monkeypatch):
    graph = blocks_graph(80)
    leaves = sum(1 for _ in walk(graph))
    calls = [0]
    original = fingerprint._node

    def counting(*args):
        calls[0] += 1
        return original(*args)

    monkeypatch.setattr(fingerprint, "_node", counting)
    graph_fingerprints(graph)
    assert calls[0] == leaves
    calls[0] = 0
    stamped = sdk.stamp_graph(graph)
    assert calls[0] == leaves  # stamp_graph: both fingerprints in one walk
    assert sdk.verify_stamp(stamped)


def test_both_fingerprints_refuse_bad_input():
    with pytest.raises(TypeError, match=r"graph_fingerprints expects a talon\.ir\.Graph, got str"):
        graph_fingerprints("model.t1c")
    with pytest.raises(TypeError, match="include_metadata must be a bool, got int"):
        graph_fingerprints(hybrid_graph(), 1)
