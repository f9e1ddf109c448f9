"""Reading and writing ``.t1c`` files (HDF5). The layout is specified in ``docs/format.md``.

Format 2: a 512-byte integrity header (length + SHA-256, :mod:`.t1c_header`) in the HDF5 user
block, checked before libhdf5 parses anything; root attributes ``talon_format = "t1c"`` and
``format_version``; a zlib-compressed UTF-8 JSON ``manifest`` holds the graph (node order, types,
parameters, shapes, metadata, edges) with numpy arrays replaced by references; each array of at
least ``PACK_BELOW`` bytes is its own dataset under ``arrays/``, smaller ones are concatenated per
dtype under ``packed/`` (one HDF5 dataset costs ~1 ms to write, so thousands of tiny arrays must
not each get one). Format 1 files (no header, a string manifest) are still read.

Reading never unpickles or evaluates anything: it instantiates registered node classes from
JSON values and numeric arrays, then validates the graph. Files may be hostile: only regular
files and plain in-file datasets are read (:mod:`.hdf5_guard`), within a decoded-bytes budget
(:mod:`.budget`). Writing goes to a temporary file renamed over the target once complete
(:mod:`.atomic`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import zlib
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from . import hdf5_output, t1c_header
from .atomic import write_atomically
from .budget import MAX_NESTING, ByteBudget, active_budget, default_budget, element_count
from .codec import decode, encode
from .errors import T1CFormatError
from .graph import _FRESH_NODES, Graph
from .hdf5_guard import check_plain_dataset, child, open_regular, read_dataset
from .node import Node, normalize_types
from .paths import check_path
from .t1c_tables import build_node, decode_tables, encode_tables, node_class

FORMAT_NAME = "t1c"
FORMAT_VERSION = 3
WRITABLE_VERSIONS = (2, 3)
PACK_BELOW = 4096  # bytes
MAX_FILL = 1 << 28  # elements of an array stored as one repeated value

PathLike = str | os.PathLike


# ---- writing ----------------------------------------------------------------------------------


def write(
    path: PathLike, graph: Graph, *, compression: str | None = None, format_version: int = FORMAT_VERSION
) -> None:
    """Write ``graph`` to ``path`` in format version 3 (parent folders are created).

    ``compression`` (e.g. ``"gzip"``) applies to the arrays stored as their own datasets.
    ``format_version=2`` writes the previous version, for readers of talon releases before format 3. The
    file is written to a temporary file and renamed into place (:mod:`talon.ir.atomic`: a failure
    or SIGTERM leaves any existing file unchanged; the existing file's mode is kept; a symbolic
    link is written through to its target). Raises :class:`T1CFormatError` naming ``path``.
    """
    check_path(path, "ir.write: the .t1c file to write")
    if not isinstance(graph, Graph):
        raise TypeError(f"ir.write expects a talon.ir.Graph, got {type(graph).__name__}")
    if compression not in (None, "gzip", "lzf"):
        raise ValueError(f"compression must be None, 'gzip' or 'lzf', got {compression!r}")
    if format_version not in WRITABLE_VERSIONS:
        raise ValueError(f"format_version must be one of {WRITABLE_VERSIONS}, got {format_version!r}")
    arrays: list[np.ndarray] = []
    try:
        with collector_paused():
            if format_version >= 3:
                manifest = {"graph": encode_tables(graph, arrays, "graph", 0)}
            else:
                manifest = {"graph": _encode_graph(graph, arrays, "graph", 0)}
            refs = _array_refs(arrays)
            manifest["arrays"] = refs
            text = json.dumps(manifest, separators=(",", ":"), allow_nan=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise T1CFormatError(f"cannot write {os.fspath(path)}: {exc}") from None
    packed_manifest = np.frombuffer(zlib.compress(text.encode("utf-8"), 6), dtype=np.uint8)

    def fill(tmp: Path) -> None:
        # through a Python file object, its blocks reserved first: a full disk is an OSError, never
        # libhdf5's crash (:mod:`.hdf5_output`); nothing is held in memory but the graph's own arrays
        with open(tmp, "r+b") as fh:
            with hdf5_output.create(fh, userblock_size=t1c_header.HEADER_SIZE, libver=("v110", "v110")) as f:
                hdf5_output.reserve(fh, _file_size_bound(arrays, compression) + packed_manifest.nbytes)
                # fixed-length strings: nothing in a format-2 file lives in HDF5's global heap, which has no checksum
                f.attrs["talon_format"] = np.bytes_(FORMAT_NAME)
                f.attrs["format_version"] = np.int64(format_version)
                f.attrs["talon_version"] = np.bytes_(_talon_version())
                f.create_dataset("manifest", data=packed_manifest, track_times=False)
                _write_arrays(f, arrays, refs, compression)
            t1c_header.seal(fh, format_version)

    write_atomically(path, fill, T1CFormatError)


def _file_size_bound(arrays: list[np.ndarray], compression: str | None) -> int:
    """An upper bound of the ``.t1c`` file's size without its manifest: the stored arrays, 1 KiB of
    HDF5 metadata per dataset (libhdf5 uses well under that) and 64 KiB for the header, superblock
    and root group. A compressed array may grow: by 5 bytes per 64 KiB (deflate's stored blocks)
    or 1 byte per 32 (lzf) at most; the bound allows 1 in 32."""
    stored = sum(a.nbytes for a in arrays)
    own = [a.nbytes for a in arrays if a.nbytes >= PACK_BELOW]
    datasets = len(own) + len({a.dtype.str for a in arrays if a.nbytes < PACK_BELOW}) + 1
    growth = sum(own) // 32 if compression else 0
    return stored + growth + 1024 * datasets + (64 << 10)


def _encode_graph(graph: Graph, arrays: list, where: str, depth: int) -> dict[str, Any]:
    if depth >= MAX_NESTING:
        raise TypeError(f"{where}: subgraphs nest deeper than {MAX_NESTING} levels")
    nodes = []
    for name, node in graph.nodes.items():
        loc = f"{where} node {name!r}"
        entry: dict[str, Any] = {"name": name, "type": type(node).__name__}
        if isinstance(node, Graph):
            entry["graph"] = _encode_graph(node, arrays, loc, depth + 1)
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
    """Whether every element has the same bit pattern (so one element describes the array).

    Checked in slices with an early exit, so a large array costs no temporary of its size."""
    if arr.size < 2:
        return False
    flat = arr.reshape(-1)
    if flat.dtype.itemsize not in (1, 2, 4, 8):
        return False
    bits = flat.view(f"u{arr.dtype.itemsize}") if flat.flags.c_contiguous else None
    if bits is None:
        return bool(np.all(flat == flat[0])) and _is_constant(np.ascontiguousarray(flat[:2]))
    first = bits[0]
    step = 1 << 16
    return all(bool(np.all(bits[i : i + step] == first)) for i in range(0, bits.size, step))


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


def read(path: PathLike, *, max_bytes: int | None = None) -> Graph:
    """Read a graph written by :func:`write`. Raises :class:`T1CFormatError` for any bad file.

    ``max_bytes`` bounds the bytes of arrays the read may allocate (checked before allocating);
    ``None`` means :func:`talon.ir.budget.default_budget` of the file size.
    """
    path = check_path(path, "ir.read: the .t1c file to read")
    with _open(path) as (f, size, version), _damage_is_format_error(path), collector_paused():
        budget = ByteBudget(default_budget(size) if max_bytes is None else max_bytes, os.fspath(path))
        with active_budget(budget):
            manifest = json.loads(_read_manifest(f, size, budget))
            if not isinstance(manifest, dict):
                raise ValueError("the manifest is not a JSON object")
            arrays = _ArrayTable(f, manifest.get("arrays"), size, budget)
            decode_graph = _decode_graph_v3 if version >= 3 else _decode_graph
            return decode_graph(manifest.get("graph"), arrays, "graph", 0)


@contextlib.contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector while a graph is read or encoded.

    A read builds a few objects per node and none of them form cycles, but at 6,000 nodes the
    collector would run ~40 young and several full collections over the whole heap meanwhile
    (a third of the read's time); afterwards one young collection sees them once. The collector
    is enabled again only if it was enabled before.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_version(path: PathLike) -> str:
    """The format version of the ``.t1c`` file at ``path`` (e.g. ``"2"``)."""
    path = check_path(path, "ir.read_version: the .t1c file to read")
    with _open(path, check_version=False) as (_f, _size, version):
        return str(version)


@contextlib.contextmanager
def _damage_is_format_error(path: PathLike):
    """Report whatever a damaged file makes h5py, json or a node constructor raise as T1CFormatError
    naming the file (the checks of :mod:`.hdf5_guard` name only the array or dataset)."""
    shown = os.fspath(path)
    try:
        yield
    except T1CFormatError as exc:
        if str(exc).startswith(shown):
            raise
        raise T1CFormatError(f"{shown}: {exc}") from None
    except (ValueError, TypeError, KeyError, IndexError, OSError, RuntimeError, MemoryError, ArithmeticError,
            AttributeError, zlib.error) as exc:  # fmt: skip
        detail = str(exc) if isinstance(exc, (ValueError, OSError, KeyError)) else f"{type(exc).__name__}: {exc}"
        raise T1CFormatError(f"{shown}: {detail}") from None


@contextlib.contextmanager
def _open(path: PathLike, check_version: bool = True):
    """Open ``path`` (a regular file), verify a v2 file's checksum, open it with h5py, check the header.

    Yields ``(h5py file, file size, format version)``.
    """
    shown = os.fspath(path)
    fh, size = open_regular(path, T1CFormatError, ".t1c")
    with fh:
        head = fh.read(t1c_header.HEADER_SIZE)
        sealed = t1c_header.is_sealed(head)
        source: Any = fh
        header_version = None
        if sealed:
            try:
                header_version, source = t1c_header.verify(fh, size)
            except t1c_header.DamagedFile as exc:
                raise T1CFormatError(f"{shown}: damaged .t1c file: {exc}") from None
        elif head[:8] != t1c_header.HDF5_SIGNATURE:
            raise T1CFormatError(
                f"{shown}: not a readable HDF5 file (no .t1c header or HDF5 signature); a .t1c file is HDF5"
            )
        fh.seek(0)
        try:
            f = h5py.File(source, "r")
        except Exception as exc:
            raise T1CFormatError(f"{shown}: not a readable HDF5 file ({exc}); a .t1c file is HDF5") from None
        with f, _damage_is_format_error(path):
            version = _check_header(f, path, check_version)
            if sealed and version != header_version and version <= FORMAT_VERSION:
                raise T1CFormatError(f"{shown}: damaged: the header says format {header_version}, the file {version}")
            if not sealed and version >= 2:
                raise T1CFormatError(f"{shown}: damaged: a format {version} file without its integrity header")
            yield f, size, version


def _check_header(f: h5py.File, path: PathLike, check_version: bool) -> int:
    fmt = f.attrs.get("talon_format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    if not isinstance(fmt, str) or fmt != FORMAT_NAME:
        hint = ""
        if "node" in f and "version" in f:
            hint = "; it looks like a NIR file: read it with talon.interop.nir.read_nir"
        elif (isinstance(fmt, str) and fmt == "talon-events") or ("events" in f and "ms_to_idx" in f):
            hint = "; it is an event recording: read it with talon.io.read_events ('talon events info FILE')"
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
    if version < 1:
        raise T1CFormatError(f"{path}: invalid format_version {version}")
    return version


def _read_manifest(f: h5py.File, size: int, budget: ByteBudget) -> str:
    ds = child(f, "manifest", "manifest", T1CFormatError)
    if not isinstance(ds, h5py.Dataset):
        raise ValueError("missing or malformed 'manifest' dataset")
    if ds.shape == () and ds.dtype.kind == "O":  # format 1: a UTF-8 string
        text = read_dataset(ds, "manifest", T1CFormatError, size, budget)
        return text.decode("utf-8") if isinstance(text, bytes) else str(text)
    if ds.ndim != 1 or ds.dtype != np.uint8:
        raise ValueError("malformed 'manifest' dataset (expected zlib-compressed UTF-8 bytes)")
    packed = read_dataset(ds, "manifest", T1CFormatError, size, budget)
    inflate = zlib.decompressobj()
    limit = max(budget.limit - budget.used, 0)
    text = inflate.decompress(packed.tobytes(), limit)
    if inflate.unconsumed_tail:
        budget.charge(limit + 1, "the manifest")
    if not inflate.eof:
        raise ValueError("the compressed manifest is truncated")
    budget.charge(len(text), "the manifest")
    return text.decode("utf-8")


class _ArrayTable:
    """The manifest's array list, read on first use: an array no node refers to is never read or allocated.

    Each array is charged to the read's budget at its declared (decoded) size before it is read."""

    def __init__(self, f: h5py.File, refs: Any, size: int, budget: ByteBudget):
        if not isinstance(refs, list):
            raise ValueError("manifest has no 'arrays' list")
        self.f, self.refs, self.size, self.budget = f, refs, size, budget
        self.loaded: dict[int, np.ndarray] = {}
        self.packed: dict[str, np.ndarray] = {}
        self.dtypes: dict[Any, np.dtype] = {}
        self.groups: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> np.ndarray:
        arr = self.loaded.get(i)
        if arr is None:
            arr = self.loaded[i] = self._load(i)
        return arr

    def _dtype(self, text: Any, where: str) -> np.dtype:
        key = text if isinstance(text, str) else None
        dtype = self.dtypes.get(key) if key is not None else None
        if dtype is None:
            dtype = _numeric_dtype(text, where)
            if key is not None:
                self.dtypes[key] = dtype
        return dtype

    def _group(self, name: str, where: str) -> Any:
        if name not in self.groups:
            self.groups[name] = child(self.f, name, where, T1CFormatError)
        return self.groups[name]

    def _load(self, i: int) -> np.ndarray:
        ref = self.refs[i]
        where = f"array {i}"
        if not isinstance(ref, dict):
            raise ValueError(f"{where}: malformed reference")
        dtype = self._dtype(ref.get("dtype"), where)
        shape = ref.get("shape")
        if not isinstance(shape, list) or not all(type(d) is int for d in shape):
            raise ValueError(f"{where}: invalid shape {shape!r}")
        count = element_count(shape, where)
        fill = ref.get("fill", False) is True
        if fill and count > MAX_FILL:
            raise ValueError(f"{where}: a constant array of {count} elements exceeds the limit of {MAX_FILL}")
        self.budget.charge(count * dtype.itemsize, where)
        stored_shape, stored_size = ([1], 1) if fill else (shape, count)
        if "dataset" in ref:
            name = ref["dataset"]
            parts = name.split("/") if isinstance(name, str) else []
            if len(parts) != 2 or parts[0] != "arrays":
                raise ValueError(f"{where}: dataset name {name!r} is not under arrays/")
            group = self._group("arrays", where)
            ds = child(group, parts[1], where, T1CFormatError) if isinstance(group, h5py.Group) else None
            if not isinstance(ds, h5py.Dataset):
                raise ValueError(f"{where}: dataset {name!r} is missing")
            if ds.dtype != dtype or list(ds.shape or ()) != stored_shape:
                raise ValueError(
                    f"{where}: dataset {name!r} is {ds.dtype}{list(ds.shape or ())}, "
                    f"the manifest says {dtype}{stored_shape}"
                )
            check_plain_dataset(ds, f"{where} ({name})", T1CFormatError, self.size)
            arr = ds[()] if stored_shape else np.asarray(ds[()], dtype=dtype)
        else:
            key, offset = ref.get("packed"), ref.get("offset")
            buf = self.packed.get(key) if isinstance(key, str) else None
            if buf is None:
                group = self._group("packed", where)
                ds = child(group, str(key), where, T1CFormatError) if isinstance(group, h5py.Group) else None
                if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype != self._dtype(key, where):
                    raise ValueError(f"{where}: packed dataset {key!r} is missing or malformed")
                buf = self.packed[key] = read_dataset(
                    ds, f"packed dataset {key!r}", T1CFormatError, self.size, self.budget
                )
            if buf.dtype != dtype or type(offset) is not int or offset < 0 or offset + stored_size > buf.shape[0]:
                raise ValueError(
                    f"{where}: packed reference ({key!r}, offset {offset}, {stored_size} values) is out of range"
                )
            arr = buf[offset : offset + stored_size].reshape(stored_shape).copy()
        return np.full(shape, arr[0], dtype=dtype) if fill else arr


def _numeric_dtype(text: Any, where: str) -> np.dtype:
    try:
        dtype = np.dtype(str(text))
    except TypeError:
        raise ValueError(f"{where}: unknown dtype {text!r}") from None
    if dtype.kind not in "fiub" or dtype.str != text:
        raise ValueError(f"{where}: unsupported dtype {text!r} (numeric dtypes only)")
    return dtype


def _decode_graph(obj: Any, arrays: list[np.ndarray], where: str, depth: int) -> Graph:
    if depth >= MAX_NESTING:
        raise ValueError(f"{where}: subgraphs nest deeper than {MAX_NESTING} levels")
    if not isinstance(obj, dict) or not isinstance(obj.get("nodes"), list) or not isinstance(obj.get("edges"), list):
        raise ValueError(f"{where}: malformed graph entry (needs 'nodes' and 'edges' lists)")
    nodes: dict[str, Node] = {}
    for entry in obj["nodes"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{where}: malformed node entry")
        name = entry["name"]
        if name in nodes:
            raise ValueError(f"{where}: duplicate node name {name!r}")
        nodes[name] = _decode_node(entry, arrays, f"{where} node {name!r}", depth)
    edges = []
    for i, e in enumerate(obj["edges"]):
        if not (isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e)):
            raise ValueError(f"{where}: edge {i} is not a [source, destination] pair of node names ({e!r:.80})")
        edges.append((e[0], e[1]))
    return _fresh_graph(nodes, edges, obj.get("metadata", {}), arrays, where)


def _decode_graph_v3(obj: Any, arrays: list[np.ndarray], where: str, depth: int) -> Graph:
    nodes, stored_edges, metadata = decode_tables(
        obj, arrays, where, depth, lambda entry, loc, level: _decode_graph_v3(entry, arrays, loc, level)
    )
    edges = []
    for i, e in enumerate(stored_edges):
        if not (type(e) is list and len(e) == 2 and type(e[0]) is str and type(e[1]) is str):
            raise ValueError(f"{where}: edge {i} is not a [source, destination] pair of node names ({e!r:.80})")
        edges.append((e[0], e[1]))
    return _fresh_graph(nodes, edges, metadata, arrays, where)


def _fresh_graph(nodes: dict[str, Node], edges: list, metadata: Any, arrays, where: str) -> Graph:
    """The graph of nodes a reader has just built (their declared types are trusted by shape inference)."""
    metadata = decode(metadata, arrays, f"{where} metadata")
    token = _FRESH_NODES.set({id(node) for node in nodes.values()})
    try:
        return Graph(nodes, edges, metadata)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"the stored {where} is invalid: {exc}") from None
    finally:
        _FRESH_NODES.reset(token)


def _decode_node(entry: dict, arrays: list[np.ndarray], where: str, depth: int) -> Node:
    type_name = entry.get("type")
    cls = node_class(type_name, where)
    if cls is Graph:
        return _decode_graph(entry.get("graph"), arrays, where, depth + 1)
    metadata = decode(entry.get("metadata", {}), arrays, f"{where} metadata")
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: metadata must be a dict")
    params = decode(entry.get("params", {}), arrays, f"{where} params")
    in_type = normalize_types(entry.get("input_type"), "input", where)
    out_type = normalize_types(entry.get("output_type"), "output", where)
    return build_node(cls, type_name, params, in_type, out_type, metadata, where)


def _talon_version() -> str:
    from .. import __version__

    return __version__
