"""NIR files (HDF5, as written by ``nir.write``) <-> plain "NIR dicts".

A NIR dict is what ``nir.NIRNode.to_dict()`` produces: ``{"type": "LIF", "tau": array, ...}``,
for a graph ``{"type": "NIRGraph", "nodes": {name: dict}, "edges": [(src, dst)], "metadata": {}}``.
Reading goes through h5py directly rather than ``nir.read`` so that every file that exists can
be read: files of every nir version (0.x paper files, files with or without ``v_reset``), unknown
fields, the float ``(0,)`` dataset nir writes for empty edges, and files nir's own type inference
rejects (``nir.read`` mutates graphs and mis-infers some convolutions). Reading does not need the
``nir`` package; writing does (``nir.write``, so files are exactly what every NIR tool expects).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._common import NIRFormatError, import_nir

PathLike = str | os.PathLike


def read_dict(path: PathLike) -> tuple[dict[str, Any], str | None]:
    """Read a NIR file into a NIR dict; returns ``(graph dict, nir version string or None)``."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no NIR file at {path}")
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise NIRFormatError(f"{path} is not a NIR file: it cannot be opened as HDF5 ({exc})") from None
    with handle as f:
        if "node" not in f:
            if f.attrs.get("talon_format") is not None:
                raise NIRFormatError(f"{path} is a talon .t1c file, not a NIR file: read it with talon.ir.read")
            raise NIRFormatError(
                f"{path} is an HDF5 file but not a NIR graph: it has no 'node' group (found {sorted(f.keys())})"
            )
        version = None
        if "version" in f and isinstance(f["version"], h5py.Dataset):
            version = _value(f["version"][()])
            version = version if isinstance(version, str) else None
        node = f["node"]
        if not isinstance(node, h5py.Group):
            raise NIRFormatError(f"{path}: 'node' is not an HDF5 group")
        tree = _group(node)
    if tree.get("type") != "NIRGraph":
        raise NIRFormatError(f"{path}: the root node is a {tree.get('type')!r}, expected a 'NIRGraph'")
    return tree, version


def _group(group) -> dict[str, Any]:
    import h5py

    out: dict[str, Any] = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = _group(item)
        else:
            out[key] = _value(item[()])
    return out


def _value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v), otypes=[object])(value)
    return value


def parse_edges(raw: Any, where: str) -> list[tuple[str, str]]:
    """Edges as ``[(src, dst)]`` from a file dataset, a list of pairs or nir's empty float quirk."""
    if raw is None:
        return []
    arr = np.asarray(raw, dtype=object) if not isinstance(raw, np.ndarray) else raw
    if arr.size == 0:
        return []  # nir writes an empty edge list as a float64 (0,) dataset
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise NIRFormatError(f"{where}: edges must be (source, destination) pairs, got an array of shape {arr.shape}")
    edges = []
    for src, dst in arr.tolist():
        if not isinstance(src, str) or not isinstance(dst, str):
            raise NIRFormatError(f"{where}: edge ({src!r}, {dst!r}) does not name two nodes")
        edges.append((src, dst))
    return edges


def write_graph(path: PathLike, nir_graph: Any, *, compression: str | None = "gzip") -> None:
    """Write a ``nir.NIRGraph`` with ``nir.write``, atomically (temporary file + rename)."""
    nir = import_nir()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        nir.write(tmp, nir_graph, compression=compression)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
