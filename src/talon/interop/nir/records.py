"""talon's own records in NIR files: the import record a node keeps in ``metadata["nir"]``
(``source`` holds the file's values the import changed), the node order talon writes, and the
``talon_node`` hints of nodes NIR has no type for."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from talon import ir


def node_metadata_for_nir(metadata: dict[str, Any]) -> dict[str, Any]:
    """talon node metadata for NIR: the import record's ``source`` values are regenerated on import."""
    meta = dict(metadata)
    record = meta.get("nir")
    if isinstance(record, dict) and "source" in record:
        record = {k: v for k, v in record.items() if k != "source"}
        if record:
            meta["nir"] = record
        else:
            del meta["nir"]
    return meta


def source_record(node: ir.Node) -> dict[str, Any]:
    record = node.metadata.get("nir") if isinstance(node.metadata, dict) else None
    source = record.get("source") if isinstance(record, dict) else None
    return source if isinstance(source, dict) else {}


def padding_as_written(node, padding):
    """'same' / 'valid' as the NIR file had it, when the node still pads that way."""
    text = source_record(node).get("padding")
    if text == "valid" and not np.any(np.asarray(padding)):
        return "valid"
    if text == "same" and np.all(np.asarray(node.stride) == 1):
        spans = [
            d * (k - 1)
            for d, k in zip(np.broadcast_to(node.dilation, len(node.kernel_size)), node.kernel_size, strict=True)
        ]
        if all(s % 2 == 0 for s in spans) and tuple(s // 2 for s in spans) == tuple(
            np.broadcast_to(padding, len(spans))
        ):
            return "same"
    return padding


def json_params(node: ir.Node) -> dict[str, Any]:
    out = {}
    for key, value in node.params().items():
        out[key] = value.value if hasattr(value, "value") and not isinstance(value, (int, float)) else value
    return out


def merge_record(metadata: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """Merge a fresh import record into ``metadata['nir']`` (an older record may come from the blob)."""
    old = metadata.get("nir")
    record = {**old, **fresh} if isinstance(old, dict) else dict(fresh)
    if "source" in record and not record["source"]:
        del record["source"]
    if not record:
        return metadata
    out = dict(metadata)
    out["nir"] = record
    return out


def node_order(recorded: Any, nodes: dict[str, Any]) -> list[str]:
    """The node order talon wrote (HDF5 sorts a group's members by name), when it names the same nodes."""
    if isinstance(recorded, str):
        try:
            order = json.loads(recorded)
        except ValueError:
            order = None
        if (
            isinstance(order, list)
            and all(isinstance(n, str) for n in order)
            and sorted(order) == sorted(nodes)
            and len(set(order)) == len(order)
        ):
            return order
    return list(nodes)
