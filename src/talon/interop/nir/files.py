"""NIR files (HDF5, as written by ``nir.write``) <-> plain "NIR dicts".

A NIR dict is what ``nir.NIRNode.to_dict()`` produces: ``{"type": "LIF", "tau": array, ...}``,
for a graph ``{"type": "NIRGraph", "nodes": {name: dict}, "edges": [(src, dst)], "metadata": {}}``.
Reading goes through h5py directly rather than ``nir.read`` so that every file that exists can
be read: files of every nir version (0.x paper files, files with or without ``v_reset``), unknown
fields, the float ``(0,)`` dataset nir writes for empty edges, and files nir's own type inference
rejects (``nir.read`` mutates graphs and mis-infers some convolutions); it walks the file in one
pass with h5py's low-level API (:mod:`.hdf5_read`). Reading does not need the ``nir`` package;
writing does: it makes exactly the file ``nir.write`` makes, the one every NIR tool expects, with
fewer h5py calls (:mod:`.hdf5_write`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from talon.ir.atomic import write_atomically
from talon.ir.budget import ByteBudget, default_budget
from talon.ir.hdf5_guard import child, open_regular, read_dataset
from talon.ir.serialization import collector_paused

from ._common import NIRFormatError, import_nir
from .hdf5_read import open_hdf5, read_group_tree
from .hdf5_write import write_nir_dict

PathLike = str | os.PathLike


def read_dict(path: PathLike, *, max_bytes: int | None = None) -> tuple[dict[str, Any], str | None]:
    """Read a NIR file into a NIR dict; returns ``(graph dict, nir version string or None)``.

    See :func:`read_dict_budgeted`."""
    tree, version, _budget = read_dict_budgeted(path, max_bytes=max_bytes)
    return tree, version


def read_dict_budgeted(
    path: PathLike, *, max_bytes: int | None = None
) -> tuple[dict[str, Any], str | None, ByteBudget]:
    """Read a NIR file into ``(graph dict, nir version or None, the read's budget)``.

    Only regular files and plain in-file datasets are read (:mod:`talon.ir.hdf5_guard`): links
    other than hard links, hard-link cycles, external storage and virtual datasets are refused.
    ``max_bytes`` bounds the bytes of datasets decoded (default :func:`talon.ir.budget.default_budget`
    of the file size), checked before each dataset is read; groups nest at most
    ``talon.ir.budget.MAX_NESTING`` levels.
    """
    shown = os.fspath(path)
    fh, size = open_regular(path, NIRFormatError, "NIR")
    with fh:
        try:
            handle = open_hdf5(fh)
        except Exception as exc:
            raise NIRFormatError(f"{shown} is not a NIR file: it cannot be opened as HDF5 ({exc})") from None
        budget = ByteBudget(default_budget(size) if max_bytes is None else max_bytes, shown)
        try:
            with handle as f:
                return (*_read_root(f, shown, size, budget), budget)
        except (NIRFormatError, FileNotFoundError):
            raise
        except (ValueError, TypeError, KeyError, IndexError, OSError, RuntimeError, MemoryError, ArithmeticError,
                AttributeError) as exc:  # fmt: skip
            raise NIRFormatError(f"{shown}: damaged NIR file ({type(exc).__name__}: {exc})") from None


def _read_root(f, shown: str, size: int, budget: ByteBudget) -> tuple[dict[str, Any], str | None]:
    import h5py

    node = child(f, "node", shown, NIRFormatError)
    if node is None:
        kind = f.attrs.get("talon_format")
        if isinstance(kind, bytes):
            kind = kind.decode("utf-8", "replace")
        if kind == "talon-events":
            raise NIRFormatError(
                f"{shown} is a talon event file, not a NIR file: read it with talon.io.read_events "
                "(or look at it with 'talon events info')"
            )
        if kind is not None:
            raise NIRFormatError(f"{shown} is a talon .t1c file, not a NIR file: read it with talon.ir.read")
        raise NIRFormatError(
            f"{shown} is an HDF5 file but not a NIR graph: it has no 'node' group (found {sorted(f.keys())[:20]})"
        )
    version = None
    version_ds = child(f, "version", shown, NIRFormatError)
    if isinstance(version_ds, h5py.Dataset):
        version = _value(read_dataset(version_ds, f"{shown}: version", NIRFormatError, size, budget), shown)
        version = version if isinstance(version, str) else None
    if not isinstance(node, h5py.Group):
        raise NIRFormatError(f"{shown}: 'node' is not an HDF5 group")
    tree = read_group_tree(node, f"{shown}: node", size, budget, _value)
    if tree.get("type") != "NIRGraph":
        raise NIRFormatError(f"{shown}: the root node is a {tree.get('type')!r}, expected a 'NIRGraph'")
    return tree, version


def _value(value: Any, where: str) -> Any:
    try:
        if isinstance(value, bytes):
            return value.decode("utf-8")
        if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
            return np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v), otypes=[object])(value)
    except UnicodeDecodeError as exc:
        raise NIRFormatError(f"{where}: a string is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    if isinstance(value, np.ndarray) and value.dtype.kind not in "fiubO":
        raise NIRFormatError(f"{where}: unsupported dtype {value.dtype} (numbers and strings only)")
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
    """Write a ``nir.NIRGraph`` as ``nir.write`` does, atomically (:mod:`talon.ir.atomic`).

    The file is the one ``nir.write(path, nir_graph, compression=compression)`` writes, made with
    fewer h5py calls (:mod:`.hdf5_write`). Node names that HDF5 cannot store as group names (empty,
    ``.``, containing ``/`` or NUL) are refused with :class:`NIRFormatError` naming the node.
    """
    nir = import_nir()
    _check_names(nir_graph, "graph")
    tree = object_to_dict(nir_graph)  # what nir.write stores (its to_dict() deep-copies every array first)
    with collector_paused():
        write_atomically(path, lambda tmp: _fill(tmp, tree, nir.version, compression), OSError)


def _fill(tmp: Any, tree: dict[str, Any], version: str, compression: str | None) -> None:
    """Write the NIR file to ``tmp`` through a Python file object with its blocks reserved first
    (:mod:`talon.ir.hdf5_output`): a disk that fills is one ``OSError``, never libhdf5's crash or a
    flood of errors from its close."""
    with open(tmp, "r+b") as fh:
        write_nir_dict(fh, tree, version, compression=compression)


def _check_names(nir_graph: Any, where: str) -> None:
    stack = [(nir_graph, where)]
    while stack:
        graph, loc = stack.pop()
        for name, node in getattr(graph, "nodes", {}).items():
            if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\x00" in name:
                raise NIRFormatError(
                    f"{loc}: node name {name!r} cannot be written to a NIR file (HDF5 group names may not be "
                    "empty, '.', '..', or contain '/' or NUL); rename the node"
                )
            if type(node).__name__ == "NIRGraph":
                stack.append((node, f"{loc} node {name!r}"))


def object_to_dict(node: Any) -> dict[str, Any]:
    """A NIR dict of an in-memory nir node (like ``node.to_dict()``, without copying arrays)."""
    kind = type(node).__name__
    out: dict[str, Any] = {"type": kind, "metadata": getattr(node, "metadata", None) or {}}
    if kind == "NIRGraph":
        out["nodes"] = {k: object_to_dict(v) for k, v in node.nodes.items()}
        out["edges"] = [tuple(e) for e in node.edges]
    elif kind == "Input":
        out["shape"] = node.input_type["input"]
    elif kind == "Output":
        out["shape"] = node.output_type["output"]
    elif kind == "Flatten":
        out["input_type"] = (node.input_type or {}).get("input")
        out["start_dim"], out["end_dim"] = node.start_dim, node.end_dim
    elif dataclasses.is_dataclass(node):
        for f in dataclasses.fields(node):
            if f.name not in ("input_type", "output_type", "metadata"):
                out[f.name] = getattr(node, f.name)
    return out
