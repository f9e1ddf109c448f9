"""Fingerprints: SHA-256 over a canonical form of the graph.

The canonical form (version 1, ``docs/sdk.md``) is a byte stream of tagged, length-prefixed
values, so no two different graphs produce the same stream:

* header ``b"talon-fingerprint/1"`` and the two mode flags;
* the graph: its nodes **in order** (node order decides the recurrent edges and tie-breaks, so it
  counts), each as name, type name, parameters sorted by name, ``input_type`` and
  ``output_type``, and (``include_metadata``) its metadata; subgraphs recursively; then the edges
  **in order** (edge order decides Concat order and which ChannelSplit section goes where); then
  (``include_metadata``) the graph metadata without the stamp key ``talon_stamp``;
* arrays: dtype in little-endian form, shape and (``include_weights``) the C-order bytes; so the
  hash does not depend on memory layout (Fortran order, strides, byte order) or on how a file
  stored the array; ``include_weights=False`` hashes every array's dtype and shape but not its
  values (the structure hash: names, types, hyperparameters, shapes, edges);
* dicts are sorted by the canonical bytes of their keys, so key order does not count; tuples and
  lists are the same sequence; floats are exact (``float.hex``); enums are their value.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from enum import Enum
from typing import Any

import numpy as np

from .graph import Graph
from .node import Node

CANONICAL_VERSION = 1
STAMP_KEY = "talon_stamp"
"""The ``graph.metadata`` key holding the provenance stamp (``talon.sdk.stamp_graph``; never part
of a fingerprint)."""


class _Sink:
    """Collects canonical bytes (for dict keys, which must be sorted) or feeds a hash.

    Pieces are collected and fed to the hash in one call per :meth:`flush` (a node's worth; large
    arrays go straight through): SHA-256 of the concatenation does not depend on how it is split,
    and one ``hash.update`` per piece cost more than the hashing itself.
    """

    LARGE = 1 << 16  # bytes; a larger array is fed to the hash without being joined to the pieces

    def __init__(self, target=None):
        self.target = target
        self.parts: list[bytes] = []
        self.update = self.parts.append  # bytes pieces (arrays as copies: tobytes)

    def large(self, data: memoryview) -> None:
        if self.target is None:
            self.parts.append(bytes(data))
        else:
            self.flush()
            self.target.update(data)

    def flush(self) -> None:
        if self.target is not None and self.parts:
            self.target.update(b"".join(self.parts))
            self.parts.clear()

    def value(self) -> bytes:
        return b"".join(self.parts)


class _PairSink(_Sink):
    """Feeds the full fingerprint's hash (``target``) and the structure fingerprint's at once.

    The two canonical streams differ only in the array values of node parameters (their byte count
    and bytes, written with :meth:`values`), which only the full one holds: one walk of the graph
    gives both (``graph_fingerprints``).
    """

    def __init__(self, full, structure):
        super().__init__(full)
        self.structure = structure
        self.values_at: list[int] = []  # indices into parts of the pieces only the full stream holds

    def values(self, data: bytes) -> None:
        self.values_at.append(len(self.parts))
        self.parts.append(data)

    def large_values(self, data: memoryview) -> None:
        self.flush()
        self.target.update(data)

    def large(self, data: memoryview) -> None:
        self.flush()
        self.target.update(data)
        self.structure.update(data)

    def flush(self) -> None:
        if not self.parts:
            return
        joined = b"".join(self.parts)
        self.target.update(joined)
        if self.values_at:
            kept, start = [], 0
            for i in self.values_at:
                kept += self.parts[start:i]
                start = i + 1
            kept += self.parts[start:]
            joined = b"".join(kept)
            self.values_at.clear()
        self.structure.update(joined)
        self.parts.clear()


_SPLIT = "split"
"""``weights`` of a :class:`_PairSink` walk: node parameters' array values go to the full stream only."""


_pack_n = struct.Struct("<Q").pack


def _n(sink: _Sink, k: int) -> None:
    sink.update(_pack_n(k))


def _text(sink: _Sink, tag: bytes, s: str) -> None:
    data = s.encode("utf-8")
    sink.update(tag + _pack_n(len(data)) + data)


_PLAIN_TAGS: dict[type, tuple[bytes, Any]] = {str: (b"s", str), int: (b"i", str), float: (b"f", float.hex)}


def _plain(sink: _Sink, value: Any) -> bool:
    """Write a value whose type is exactly str, int, float, bool or None as :func:`_value` does; False
    for any other value (the common values, without the isinstance chain and the location text)."""
    entry = _PLAIN_TAGS.get(type(value))
    if entry is not None:
        _text(sink, entry[0], entry[1](value))
    elif value is None:
        sink.update(b"N")
    elif type(value) is bool:
        sink.update(b"T" if value else b"F")
    else:
        return False
    return True


def _value(sink: _Sink, value: Any, weights: bool, where: str) -> None:
    if _plain(sink, value):
        return
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        sink.update(b"N")
    elif isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, np.bool_):
        _array(sink, np.asarray(value), weights, where)  # numpy scalars (np.float64 too) hash as 0-d arrays
    elif isinstance(value, (bool, np.bool_)):
        sink.update(b"T" if value else b"F")
    elif isinstance(value, int):
        _text(sink, b"i", str(value))
    elif isinstance(value, float):
        _text(sink, b"f", value.hex())
    elif isinstance(value, str):
        _text(sink, b"s", value)
    elif isinstance(value, (np.ndarray, np.generic)):
        _array(sink, np.asarray(value), weights, where)
    elif isinstance(value, (list, tuple)):
        sink.update(b"l")
        _n(sink, len(value))
        for i, item in enumerate(value):
            if not _plain(sink, item):
                _value(sink, item, weights, f"{where}[{i}]")
    elif isinstance(value, Mapping):
        entries = []
        for k, v in value.items():
            key = _Sink()
            _value(key, k, True, f"{where} key")
            entries.append((key.value(), v, k))
        entries.sort(key=lambda e: e[0])
        sink.update(b"d")
        _n(sink, len(entries))
        for key_bytes, v, k in entries:
            sink.update(key_bytes)
            if not _plain(sink, v):
                _value(sink, v, weights, f"{where}[{k!r}]")
    else:
        raise TypeError(f"{where}: cannot fingerprint a value of type {type(value).__name__}")


def _array(sink: _Sink, arr: np.ndarray, weights: bool, where: str) -> None:
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: cannot fingerprint an array of dtype {arr.dtype}")
    dtype = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    _text(sink, b"a", dtype.str)
    _n(sink, arr.ndim)
    for d in arr.shape:
        _n(sink, d)
    if weights is _SPLIT:
        data = np.ascontiguousarray(arr, dtype=dtype)
        if data.nbytes > _Sink.LARGE:
            sink.values(_pack_n(data.nbytes))
            sink.large_values(memoryview(data).cast("B"))
        else:
            sink.values(_pack_n(data.nbytes) + data.tobytes())
    elif weights:
        data = np.ascontiguousarray(arr, dtype=dtype)
        _n(sink, data.nbytes)
        if data.nbytes > _Sink.LARGE:
            sink.large(memoryview(data).cast("B"))
        else:
            sink.update(data.tobytes())


def _graph(sink: _Sink, graph: Graph, weights: bool, metadata: bool, where: str) -> None:
    sink.update(b"G")
    _n(sink, len(graph.nodes))
    for name, node in graph.nodes.items():
        loc = f"{where} node {name!r}"
        _text(sink, b"s", name)
        _text(sink, b"s", type(node).__name__)
        if isinstance(node, Graph):
            _graph(sink, node, weights, metadata, loc)
        else:
            _node(sink, node, weights, metadata, loc)
        sink.flush()
    sink.update(b"E")
    _n(sink, len(graph.edges))
    for s, d in graph.edges:
        _text(sink, b"s", s)
        _text(sink, b"s", d)
    if metadata:
        meta = {k: v for k, v in graph.metadata.items() if k != STAMP_KEY}
        _value(sink, meta, True, f"{where} metadata")


def _node(sink: _Sink, node: Node, weights: bool, metadata: bool, where: str) -> None:
    params = node.stored_params()
    sink.update(b"P")
    _n(sink, len(params))
    for key in sorted(params):
        _text(sink, b"s", key)
        _value(sink, params[key], weights, f"{where} {key}")
    for types in (node.input_type, node.output_type):
        _value(sink, None if types is None else {k: [int(d) for d in v] for k, v in types.items()}, True, where)
    if metadata:
        _value(sink, node.metadata, True, f"{where} metadata")


def graph_fingerprint(graph: Graph, include_weights: bool = True, include_metadata: bool = False) -> str:
    """SHA-256 (64 hex digits) of the canonical form of ``graph`` (see the module docstring).

    ``include_weights=False`` gives the structure hash, which ignores array values;
    ``include_metadata=True`` adds graph and node metadata (the stamp is always left out). Raises
    ``TypeError`` for a non-graph, a non-bool flag or a value the canonical form cannot encode.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph_fingerprint expects a talon.ir.Graph, got {type(graph).__name__}")
    for flag, name in ((include_weights, "include_weights"), (include_metadata, "include_metadata")):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    h = hashlib.sha256()
    sink = _Sink(h)
    _text(sink, b"s", f"talon-fingerprint/{CANONICAL_VERSION}")
    sink.update(bytes([include_weights, include_metadata]))
    _graph(sink, graph, include_weights, include_metadata, "graph")
    sink.flush()
    return h.hexdigest()


def graph_fingerprints(graph: Graph, include_metadata: bool = False) -> tuple[str, str]:
    """``(full, structure)``: ``graph_fingerprint(graph, True, include_metadata)`` and
    ``graph_fingerprint(graph, False, include_metadata)`` from one walk of the graph."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph_fingerprints expects a talon.ir.Graph, got {type(graph).__name__}")
    if not isinstance(include_metadata, bool):
        raise TypeError(f"include_metadata must be a bool, got {type(include_metadata).__name__}")
    full, structure = hashlib.sha256(), hashlib.sha256()
    header = _Sink()
    _text(header, b"s", f"talon-fingerprint/{CANONICAL_VERSION}")
    full.update(header.value() + bytes([True, include_metadata]))
    structure.update(header.value() + bytes([False, include_metadata]))
    sink = _PairSink(full, structure)
    _graph(sink, graph, _SPLIT, include_metadata, "graph")
    sink.flush()
    return full.hexdigest(), structure.hexdigest()


def canonical_bytes(value: Any, where: str = "value") -> bytes:
    """The canonical bytes of a plain value (metadata: dicts, lists, scalars, arrays with their
    values), so that two values compare equal exactly when their bytes do; ``where`` names the
    value in a ``TypeError`` for what cannot be encoded."""
    sink = _Sink()
    _value(sink, value, True, where)
    return sink.value()
