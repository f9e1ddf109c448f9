"""talon metadata <-> NIR metadata, losslessly.

NIR metadata is a tree of HDF5 groups and datasets, so only some Python values survive
``nir.write`` / ``nir.read`` unchanged: strings, numpy scalars, numpy arrays of at least one
dimension and dicts of those with string keys. Those are written as themselves (any NIR tool can
read them). Everything else talon may keep in metadata (Python ints, floats and bools, None,
tuples, lists, 0-d arrays, dicts with other keys ...) goes into one ``talon_metadata`` group:
a JSON document in talon's ``.t1c`` encoding (``talon.ir.codec``) plus its arrays. Reading merges
both back in the original key order.

Keys of the form ``talon_*`` are reserved for talon's own records in NIR metadata.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from talon.ir.codec import decode, encode

BLOB = "talon_metadata"


def is_native(value: Any) -> bool:
    """Whether ``value`` round-trips through NIR's HDF5 metadata with its exact type."""
    if isinstance(value, str):
        return True
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return True
    if isinstance(value, np.ndarray):
        return value.ndim >= 1 and value.dtype.kind in "fiub"
    if isinstance(value, dict):
        return all(_native_key(k) for k in value) and all(is_native(v) for v in value.values())
    return False


def _native_key(key: Any) -> bool:
    return isinstance(key, str) and key not in ("", ".") and "/" not in key and not key.startswith("talon_")


def to_nir_metadata(
    metadata: dict[str, Any], records: dict[str, Any] | None = None, reserved: tuple[str, ...] = ()
) -> dict[str, Any]:
    """NIR metadata for talon ``metadata`` plus talon's own ``records`` (``talon_*`` keys, native values).

    Keys in ``reserved`` (written by the caller itself, such as the graph's ``dt``) always go into
    the blob, so they come back under their own name.
    """
    native: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in metadata.items():
        if _native_key(key) and key not in reserved and is_native(value):
            native[key] = value
        else:
            rest[key] = value
    if rest:
        arrays: list[np.ndarray] = []
        doc = {"order": encode(list(metadata), arrays, "metadata keys"), "values": encode(rest, arrays, "metadata")}
        blob: dict[str, Any] = {"json": json.dumps(doc, separators=(",", ":"), allow_nan=True)}
        if arrays:
            # 0-d arrays become numpy scalars: h5py cannot compress (and nir.write compresses) scalar datasets
            blob["arrays"] = {str(i): (a[()] if a.ndim == 0 else a) for i, a in enumerate(arrays)}
        native[BLOB] = blob
    if records:
        native.update(_scalars_for_h5(records))
    return native


def _scalars_for_h5(value: Any) -> Any:
    """0-d arrays as numpy scalars, recursively: nir.write compresses datasets, and h5py cannot
    compress a scalar dataset."""
    if isinstance(value, dict):
        return {k: _scalars_for_h5(v) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def from_nir_metadata(
    metadata: dict[str, Any] | None, where: str, reserved: tuple[str, ...] = ()
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split NIR metadata into (talon metadata, talon records).

    Records are the ``talon_*`` entries other than the metadata blob, plus the native entries
    whose key is in ``reserved``; the blob is decoded and merged back in the original key order.
    """
    if not metadata:
        return {}, {}
    if not isinstance(metadata, dict):
        return {"nir_metadata": metadata}, {}
    out: dict[str, Any] = {}
    records: dict[str, Any] = {}
    blob = None
    for key, value in metadata.items():
        if key == BLOB:
            blob = value
        elif (isinstance(key, str) and key.startswith("talon_")) or key in reserved:
            records[key] = value
        else:
            out[key] = value
    if blob is not None:
        out = _merge_blob(out, blob, where)
    return out, records


def _merge_blob(native: dict[str, Any], blob: Any, where: str) -> dict[str, Any]:
    from ._common import NIRFormatError

    try:
        doc = json.loads(blob["json"])
        stored = blob.get("arrays", {}) or {}
        arrays = [np.asarray(stored[str(i)]) for i in range(len(stored))]
        order = decode(doc["order"], arrays, where)
        values = decode(doc["values"], arrays, where)
    except (KeyError, TypeError, ValueError) as exc:
        raise NIRFormatError(f"{where}: the {BLOB!r} metadata entry written by talon is damaged ({exc})") from None
    merged = {**native, **values}
    ordered = {k: merged[k] for k in order if k in merged}
    ordered.update({k: v for k, v in merged.items() if k not in ordered})
    return ordered
