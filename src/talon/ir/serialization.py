"""Reading and writing ``.t1c`` files (HDF5). The layout is specified in ``docs/format.md``.

Root attributes ``talon_format = "t1c"`` and ``format_version``; a UTF-8 JSON ``manifest``
dataset holds the graph (node order, types, parameters, shapes, metadata, edges) with numpy
arrays replaced by references; each array of at least ``PACK_BELOW`` bytes is its own dataset
under ``arrays/``, smaller ones are concatenated per dtype under ``packed/`` (one HDF5 dataset
costs ~1 ms to write, so thousands of tiny arrays must not each get one).

Reading never unpickles or evaluates anything: it instantiates registered node classes from
JSON values and numeric arrays, then validates the graph. Writing goes to a temporary file in
the destination folder that is renamed over the target only once complete.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .codec import decode, encode
from .errors import T1CFormatError
from .graph import Graph, Input, Output
from .node import Node, normalize_types, str_to_node

FORMAT_NAME = "t1c"
FORMAT_VERSION = 1
PACK_BELOW = 4096  # bytes
MAX_FILL = 1 << 28  # elements of an array stored as one repeated value

PathLike = str | os.PathLike


# ---- writing ----------------------------------------------------------------------------------


def write(path: PathLike, graph: Graph, *, compression: str | None = None) -> None:
    """Write ``graph`` to ``path`` (parent folders are created).

    ``compression`` (e.g. ``"gzip"``) applies to the arrays stored as their own datasets. The
    file is written to a temporary file and renamed into place, so a failure leaves any existing
    file at ``path`` unchanged.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"ir.write expects a talon.ir.Graph, got {type(graph).__name__}")
    path = Path(path)
    arrays: list[np.ndarray] = []
    try:
        manifest = {"graph": _encode_graph(graph, arrays, "graph")}
    except TypeError as exc:
        raise T1CFormatError(f"cannot write {path}: {exc}") from None
    refs = _array_refs(arrays)
    manifest["arrays"] = refs
    text = json.dumps(manifest, separators=(",", ":"), allow_nan=True)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))  # mode honours the umask
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["talon_format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["talon_version"] = _talon_version()
            f.create_dataset("manifest", data=text, dtype=h5py.string_dtype("utf-8"), track_times=False)
            _write_arrays(f, arrays, refs, compression)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _encode_graph(graph: Graph, arrays: list, where: str) -> dict[str, Any]:
    nodes = []
    for name, node in graph.nodes.items():
        loc = f"{where} node {name!r}"
        entry: dict[str, Any] = {"name": name, "type": type(node).__name__}
        if isinstance(node, Graph):
            entry["graph"] = _encode_graph(node, arrays, loc)
        else:
            entry["params"] = {k: encode(v, arrays, f"{loc} {k}") for k, v in node.stored_params().items()}
            entry["input_type"] = _types_json(node.input_type)
            entry["output_type"] = _types_json(node.output_type)
            if node.metadata:
                entry["metadata"] = encode(node.metadata, arrays, f"{loc} metadata")
        nodes.append(entry)
    return {
        "nodes": nodes,
        "edges": [list(e) for e in graph.edges],
        "metadata": encode(graph.metadata, arrays, f"{where} metadata"),
    }


def _types_json(types) -> dict[str, list[int]] | None:
    return None if types is None else {k: [int(d) for d in v] for k, v in types.items()}


def _is_constant(arr: np.ndarray) -> bool:
    """Whether every element has the same bit pattern (so one element describes the array)."""
    if arr.size < 2:
        return False
    bits = np.ascontiguousarray(arr).reshape(-1).view(f"u{arr.dtype.itemsize}")
    return bool(np.all(bits == bits[0]))


def _array_refs(arrays: list[np.ndarray]) -> list[dict[str, Any]]:
    refs, offsets, own = [], {}, 0
    for i, arr in enumerate(arrays):
        if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and np.little_endian is False):
            arrays[i] = arr = arr.astype(arr.dtype.newbyteorder("<"))  # stored little-endian; same values
        ref: dict[str, Any] = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
        if _is_constant(arr):
            arrays[i] = arr = arr.reshape(-1)[:1]
            ref["fill"] = True
        if arr.nbytes >= PACK_BELOW:
            ref["dataset"] = f"arrays/{own:06d}"
            own += 1
        else:
            key = arr.dtype.str
            ref["packed"] = key
            ref["offset"] = offsets.get(key, 0)
            offsets[key] = ref["offset"] + arr.size
        refs.append(ref)
    return refs


def _write_arrays(f: h5py.File, arrays: list[np.ndarray], refs: list[dict], compression: str | None) -> None:
    packed: dict[str, list[np.ndarray]] = {}
    for arr, ref in zip(arrays, refs, strict=True):
        if "dataset" in ref:
            kwargs = {"compression": compression} if compression and arr.size else {}
            f.create_dataset(ref["dataset"], data=np.ascontiguousarray(arr), track_times=False, **kwargs)
        else:
            packed.setdefault(ref["packed"], []).append(arr.reshape(-1))
    for key, parts in packed.items():
        f.create_dataset(f"packed/{key}", data=np.concatenate(parts), track_times=False)


# ---- reading ----------------------------------------------------------------------------------


def read(path: PathLike) -> Graph:
    """Read a graph written by :func:`write`. Raises :class:`T1CFormatError` for any bad file."""
    with _open(path) as f, _damage_is_format_error(path):
        _check_header(f, path)
        manifest = json.loads(_read_manifest(f))
        if not isinstance(manifest, dict):
            raise ValueError("the manifest is not a JSON object")
        arrays = _read_arrays(f, manifest.get("arrays"))
        return _decode_graph(manifest.get("graph"), arrays, "graph")


def read_version(path: PathLike) -> str:
    """The format version of the ``.t1c`` file at ``path`` (e.g. ``"1"``)."""
    with _open(path) as f, _damage_is_format_error(path):
        return str(_check_header(f, path, check_version=False))


@contextlib.contextmanager
def _damage_is_format_error(path: PathLike):
    """Report whatever a damaged file makes h5py, json or a node constructor raise as T1CFormatError."""
    try:
        yield
    except T1CFormatError:
        raise
    except (ValueError, TypeError, KeyError, OSError, RuntimeError, RecursionError, MemoryError) as exc:
        raise T1CFormatError(f"{path}: {exc}") from None


def _open(path: PathLike) -> h5py.File:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such .t1c file: {path}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise T1CFormatError(f"{path}: not a readable HDF5 file ({exc}); a .t1c file is HDF5") from None


def _check_header(f: h5py.File, path: PathLike, check_version: bool = True) -> int:
    fmt = f.attrs.get("talon_format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    if fmt != FORMAT_NAME:
        hint = ""
        if "node" in f and "version" in f:
            hint = "; it looks like a NIR file: read it with talon.interop.nir.read_nir"
        raise T1CFormatError(f"{path}: not a .t1c file (HDF5 without the talon_format='t1c' attribute){hint}")
    version = f.attrs.get("format_version")
    if isinstance(version, (np.integer, int)) and not isinstance(version, bool):
        version = int(version)
    else:
        raise T1CFormatError(f"{path}: format_version attribute is missing or not an integer ({version!r})")
    if check_version and version > FORMAT_VERSION:
        raise T1CFormatError(
            f"{path}: written in .t1c format version {version}, newer than the version "
            f"{FORMAT_VERSION} this talon reads; upgrade talon"
        )
    if check_version and version < 1:
        raise T1CFormatError(f"{path}: invalid format_version {version}")
    return version


def _read_manifest(f: h5py.File) -> str:
    ds = f.get("manifest")
    if not isinstance(ds, h5py.Dataset) or ds.shape != () or ds.dtype.kind != "O":
        raise ValueError("missing or malformed 'manifest' dataset")
    text = ds[()]
    return text.decode("utf-8") if isinstance(text, bytes) else str(text)


def _read_arrays(f: h5py.File, refs: Any) -> list[np.ndarray]:
    if not isinstance(refs, list):
        raise ValueError("manifest has no 'arrays' list")
    packed_cache: dict[str, np.ndarray] = {}
    arrays = []
    for i, ref in enumerate(refs):
        where = f"array {i}"
        if not isinstance(ref, dict):
            raise ValueError(f"{where}: malformed reference")
        dtype = _numeric_dtype(ref.get("dtype"), where)
        shape = ref.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise ValueError(f"{where}: invalid shape {shape!r}")
        size = math.prod(shape)
        fill = ref.get("fill", False) is True
        if fill and size > MAX_FILL:
            raise ValueError(f"{where}: a constant array of {size} elements exceeds the limit of {MAX_FILL}")
        stored_shape, stored_size = ([1], 1) if fill else (shape, size)
        if "dataset" in ref:
            ds = f.get(str(ref["dataset"]))
            if not isinstance(ds, h5py.Dataset):
                raise ValueError(f"{where}: dataset {ref['dataset']!r} is missing")
            if ds.dtype != dtype or list(ds.shape) != stored_shape:
                raise ValueError(
                    f"{where}: dataset {ref['dataset']!r} is {ds.dtype}{list(ds.shape)}, "
                    f"the manifest says {dtype}{stored_shape}"
                )
            arr = ds[()] if stored_shape else np.asarray(ds[()], dtype=dtype)
        else:
            key, offset = ref.get("packed"), ref.get("offset")
            if key not in packed_cache:
                ds = f.get(f"packed/{key}")
                if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype != _numeric_dtype(key, where):
                    raise ValueError(f"{where}: packed dataset {key!r} is missing or malformed")
                packed_cache[key] = ds[()]
            buf = packed_cache[key]
            if buf.dtype != dtype or not isinstance(offset, int) or offset < 0 or offset + stored_size > buf.shape[0]:
                raise ValueError(
                    f"{where}: packed reference ({key!r}, offset {offset}, {stored_size} values) is out of range"
                )
            arr = buf[offset : offset + stored_size].reshape(stored_shape).copy()
        arrays.append(np.full(shape, arr[0], dtype=dtype) if fill else arr)
    return arrays


def _numeric_dtype(text: Any, where: str) -> np.dtype:
    try:
        dtype = np.dtype(str(text))
    except TypeError:
        raise ValueError(f"{where}: unknown dtype {text!r}") from None
    if dtype.kind not in "fiub" or dtype.str != text:
        raise ValueError(f"{where}: unsupported dtype {text!r} (numeric dtypes only)")
    return dtype


def _decode_graph(obj: Any, arrays: list[np.ndarray], where: str) -> Graph:
    if not isinstance(obj, dict) or not isinstance(obj.get("nodes"), list) or not isinstance(obj.get("edges"), list):
        raise ValueError(f"{where}: malformed graph entry (needs 'nodes' and 'edges' lists)")
    nodes: dict[str, Node] = {}
    for entry in obj["nodes"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{where}: malformed node entry")
        name = entry["name"]
        if name in nodes:
            raise ValueError(f"{where}: duplicate node name {name!r}")
        nodes[name] = _decode_node(entry, arrays, f"{where} node {name!r}")
    edges = [tuple(e) if isinstance(e, list) else e for e in obj["edges"]]
    metadata = decode(obj.get("metadata", {}), arrays, f"{where} metadata")
    try:
        return Graph(nodes, edges, metadata)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the stored {where} is invalid: {exc}") from None


def _decode_node(entry: dict, arrays: list[np.ndarray], where: str) -> Node:
    type_name = entry.get("type")
    try:
        cls = str_to_node(str(type_name))
    except ValueError:
        raise ValueError(
            f"{where} has unknown type {type_name!r}; if it is a custom node, import the module "
            "that registers it (@register_node) before ir.read"
        ) from None
    if cls is Graph:
        return _decode_graph(entry.get("graph"), arrays, where)
    metadata = decode(entry.get("metadata", {}), arrays, f"{where} metadata")
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: metadata must be a dict")
    params = decode(entry.get("params", {}), arrays, f"{where} params")
    if not isinstance(params, dict):
        raise ValueError(f"{where}: params must be a dict")
    in_type = normalize_types(entry.get("input_type"), "input", where)
    out_type = normalize_types(entry.get("output_type"), "output", where)
    try:
        if cls in (Input, Output):
            return cls(input_type=in_type, output_type=out_type, metadata=metadata)
        return cls(**params, input_type=in_type, output_type=out_type, metadata=metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} ({type_name}) cannot be rebuilt: {exc}") from None


def _talon_version() -> str:
    from .. import __version__

    return __version__
