"""The canonical form lives in the IR (``talon.ir.fingerprint``); ``tests/sdk/test_fingerprint.py``
checks the stream byte by byte through ``sdk.fingerprint_graph``, which reads a file and calls it."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from talon import ir, sdk
from talon.examples import hybrid_graph
from talon.ir.fingerprint import canonical_bytes, graph_fingerprint


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
