"""Node tables of ``.t1c`` format 3 (``docs/format.md``, "Node tables"): writing and reading.

Format 3 stores the nodes of a graph as *tables*: the nodes of one type whose parameters, metadata,
types and array dtypes / shapes are equal up to the array values share one manifest entry (the
parameters written once, each array a *column* ``(rows, *shape)``), so 6,000 small layers cost a
few manifest entries and a few array reads instead of 6,000 of each.

Reading never trusts a table. Every node is what its class's constructor would build from the same
values, and every check the constructor makes still runs:

* the first row is built through the constructor (every parameter check, every shape check);
* a class that declares ``_batch_check`` (:class:`~talon.ir.node.Node`) builds the other rows as
  copies of the first with their own arrays, which is what its constructor would build, provided
  the constructor kept the first row's arrays as given (no conversion, no broadcast) and set no
  attribute a row would need its own copy of; an ``"elementwise"`` class is checked on the values
  of all rows at once by constructing one node whose arrays are the columns flattened;
* anything else — another class, a row the constructor changed, a failed check — builds every row
  through the constructor, so a bad value is reported as the constructor reports it, naming the node.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from .budget import MAX_NESTING, charge
from .codec import decode, encode
from .graph import Graph, Input, Output
from .node import Node, normalize_types, str_to_node

STACK_BELOW = 1 << 16  # bytes: a node with an array this large gets a table of its own (stacking would copy it)
NODE_BYTES = 256  # charged to the read's budget per node of a table: a name in the manifest becomes a whole node
_BOOKKEEPING = ("input_type", "output_type", "_declared_types", "_types_explicit", "metadata")


# ---- writing ----------------------------------------------------------------------------------


def encode_tables(graph: Graph, arrays: list[np.ndarray], where: str, depth: int) -> dict[str, Any]:
    """The format-3 manifest entry of ``graph``; its columns are appended to ``arrays``."""
    if depth >= MAX_NESTING:
        raise TypeError(f"{where}: subgraphs nest deeper than {MAX_NESTING} levels")
    tables: list[dict[str, Any]] = []
    rows: list[list[list[np.ndarray]]] = []
    by_key: dict[tuple, int] = {}
    order: list[int] = []
    for name, node in graph.nodes.items():
        loc = f"{where} node {name!r}"
        if isinstance(node, Graph):
            order.append(len(tables))
            tables.append({"type": "Graph", "names": [name], "graph": encode_tables(node, arrays, loc, depth + 1)})
            rows.append([])
            continue
        local: list[np.ndarray] = []
        params = {}
        for k, v in node.stored_params().items():
            if type(v) is np.ndarray and v.dtype.kind in "fiub":  # what encode() does with an array, without its checks
                local.append(v)
                params[k] = {"$array": len(local) - 1}
            else:
                params[k] = encode(v, local, f"{loc} {k}")
        entry: dict[str, Any] = {
            "type": type(node).__name__,
            "params": params,
            "input_type": _types_json(node.input_type),
            "output_type": _types_json(node.output_type),
        }
        if node.metadata:
            entry["metadata"] = encode(node.metadata, local, f"{loc} metadata")
        key = None
        if all(a.nbytes < STACK_BELOW for a in local):
            # repr of the JSON-ready entry: equal entries give equal text (stricter than JSON: 1 != 1.0)
            key = (repr(entry), tuple((a.dtype.str, a.shape) for a in local))
        index = by_key.get(key) if key is not None else None
        if index is None:
            index = len(tables)
            if key is not None:
                by_key[key] = index
            entry["names"] = []
            tables.append(entry)
            rows.append([])
        tables[index]["names"].append(name)
        rows[index].append(local)
        order.append(index)
    for table, members in zip(tables, rows, strict=True):
        if table["type"] == "Graph":
            continue
        count = len(members[0]) if members else 0
        table["columns"] = list(range(len(arrays), len(arrays) + count))
        for k in range(count):
            parts = [m[k] for m in members]
            arrays.append(parts[0][np.newaxis] if len(parts) == 1 else np.stack(parts))
    return {
        "tables": tables,
        "order": order,
        "edges": [list(e) for e in graph.edges],
        "metadata": encode(graph.metadata, arrays, f"{where} metadata"),
    }


def _types_json(types) -> dict[str, list[int]] | None:
    if types is None:
        return None
    return {
        k: v.tolist() if type(v) is np.ndarray and v.dtype == np.int64 else [int(d) for d in v]
        for k, v in types.items()
    }


# ---- reading ----------------------------------------------------------------------------------


def node_class(type_name: Any, where: str) -> type[Node]:
    try:
        return str_to_node(str(type_name))
    except ValueError:
        raise ValueError(
            f"{where} has unknown type {type_name!r}; if it is a custom node, import the module "
            "that registers it (@register_node) before ir.read"
        ) from None


def build_node(cls: type[Node], type_name: Any, params: Any, in_type, out_type, metadata: Any, where: str) -> Node:
    """``cls`` built through its constructor from decoded values (every check runs)."""
    if not isinstance(metadata, dict):
        raise ValueError(f"{where}: metadata must be a dict")
    if not isinstance(params, dict):
        raise ValueError(f"{where}: params must be a dict")
    try:
        if cls in (Input, Output):
            return cls(input_type=in_type, output_type=out_type, metadata=metadata)
        return cls(**params, input_type=in_type, output_type=out_type, metadata=metadata)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} ({type_name}) cannot be rebuilt: {exc}") from None


def decode_tables(obj: Any, arrays, where: str, depth: int, decode_subgraph) -> tuple[dict[str, Node], list, Any]:
    """The nodes (in graph order), edges and metadata of a format-3 graph entry.

    ``decode_subgraph(entry, where, depth)`` rebuilds a nested graph."""
    if depth >= MAX_NESTING:
        raise ValueError(f"{where}: subgraphs nest deeper than {MAX_NESTING} levels")
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), list) for k in ("tables", "order", "edges")):
        raise ValueError(f"{where}: malformed graph entry (needs 'tables', 'order' and 'edges' lists)")
    tables, order = obj["tables"], obj["order"]
    built = []
    for i, table in enumerate(tables):
        if not isinstance(table, dict) or not isinstance(table.get("names"), list) or not table["names"]:
            raise ValueError(f"{where}: table {i} is malformed (needs a non-empty 'names' list)")
        if not all(isinstance(n, str) for n in table["names"]):
            raise ValueError(f"{where}: table {i} has a node name that is not a string")
        charge(len(table["names"]) * NODE_BYTES, f"{where}: table {i} ({len(table['names']):,} nodes)")
        built.append(_decode_table(table, arrays, where, depth, decode_subgraph))
    if not all(type(t) is int and 0 <= t < len(tables) for t in order):
        raise ValueError(f"{where}: 'order' must list table indices (0 .. {len(tables) - 1})")
    counts = np.bincount(np.asarray(order, dtype=np.int64), minlength=len(tables)) if order else np.zeros(len(tables))
    for i, table in enumerate(tables):
        if counts[i] != len(table["names"]):
            raise ValueError(
                f"{where}: 'order' places {int(counts[i])} nodes in table {i}, which has {len(table['names'])}"
            )
    nodes: dict[str, Node] = {}
    cursor = [0] * len(tables)
    for t in order:
        r = cursor[t]
        cursor[t] = r + 1
        name = tables[t]["names"][r]
        if name in nodes:
            raise ValueError(f"{where}: duplicate node name {name!r}")
        nodes[name] = built[t][r]
    return nodes, obj["edges"], obj.get("metadata", {})


def _decode_table(table: dict, arrays, where: str, depth: int, decode_subgraph) -> list[Node]:
    names = table["names"]
    type_name = table.get("type")
    cls = node_class(type_name, f"{where} node {names[0]!r}")
    if cls is Graph:
        if len(names) != 1:
            raise ValueError(f"{where}: a Graph table holds one subgraph, this one has {len(names)} names")
        return [decode_subgraph(table.get("graph"), f"{where} node {names[0]!r}", depth + 1)]
    columns = table.get("columns", [])
    if not isinstance(columns, list) or not all(type(c) is int for c in columns):
        raise ValueError(f"{where} node {names[0]!r}: 'columns' must be a list of array indices")
    cols = []
    for c in columns:
        if not 0 <= c < len(arrays):
            raise ValueError(f"{where} node {names[0]!r}: bad array reference {c!r}")
        col = arrays[c]
        if col.ndim < 1 or col.shape[0] != len(names):
            raise ValueError(
                f"{where} node {names[0]!r}: array {c} has shape {list(col.shape)}, not one row per node ({len(names)})"
            )
        cols.append(col)
    in_type = normalize_types(table.get("input_type"), "input", f"{where} node {names[0]!r}")
    out_type = normalize_types(table.get("output_type"), "output", f"{where} node {names[0]!r}")
    params, metadata = table.get("params", {}), table.get("metadata", {})

    def row(r: int) -> tuple[Node, list[np.ndarray]]:
        loc = f"{where} node {names[r]!r}"
        local = [col[r, ...] for col in cols]
        meta = decode(metadata, local, f"{loc} metadata")
        values = decode(params, local, f"{loc} params")
        return build_node(cls, type_name, values, in_type, out_type, meta, loc), local

    first, local = row(0)
    rest = _copies_of_first_row(cls, first, local, cols, params, metadata, len(names)) if len(names) > 1 else []
    if rest is None:
        rest = [row(r)[0] for r in range(1, len(names))]
    return [first, *rest]


def _copies_of_first_row(
    cls, first: Node, local: list[np.ndarray], cols: list, params: Any, metadata: Any, count: int
) -> list[Node] | None:
    """Rows 1.. as copies of ``first`` with their own arrays, or None when only the constructor may build them."""
    mode = cls.__dict__.get("_batch_check")
    if mode not in ("shapes", "elementwise") or not isinstance(params, dict):
        return None
    slots: dict[str, int] = {}
    for key, value in params.items():
        if type(value) is dict and len(value) == 1 and type(value.get("$array")) is int:
            slots[key] = value["$array"]
        elif not _array_free(value):
            return None
    if sorted(slots.values()) != list(range(len(cols))) or not _array_free(metadata):
        return None
    state = first.__dict__
    if any(state.get(key) is not local[k] for key, k in slots.items()):
        return None  # the constructor converted or replaced an array
    if not all(_immutable(v) for key, v in state.items() if key not in slots and key not in _BOOKKEEPING):
        return None
    in_type, out_type, declared = state.get("input_type"), state.get("output_type"), state.get("_declared_types")
    if declared is not None and (declared[0] is not in_type or declared[1] is not out_type):
        return None
    if not (_shape_arrays(in_type) and _shape_arrays(out_type) and type(state.get("metadata")) is dict):
        return None
    if mode == "elementwise" and not _values_pass(cls, params, slots, cols):
        return None
    keys = list(slots)
    values = [_row_views(cols[slots[key]]) for key in keys]
    ports_in, ports_out = _port_views(in_type, count), _port_views(out_type, count)
    empty_metadata = metadata == {}
    nodes = []
    new = object.__new__
    for r in range(1, count):
        node = new(cls)
        d = dict(state)
        for key, rows in zip(keys, values, strict=True):
            d[key] = rows[r]
        i = None if ports_in is None else {p: rows[r] for p, rows in ports_in}
        o = None if ports_out is None else {p: rows[r] for p, rows in ports_out}
        d["input_type"], d["output_type"] = i, o
        if declared is not None:
            d["_declared_types"] = (i, o)
        d["metadata"] = {} if empty_metadata else decode(metadata, (), "metadata")
        node.__dict__ = d
        nodes.append(node)
    return nodes


def _row_views(col: np.ndarray) -> list[np.ndarray]:
    """Each row of ``col`` as an array view (0-d rows too, where iterating would give numpy scalars)."""
    return list(col) if col.ndim > 1 else [col[r, ...] for r in range(col.shape[0])]


def _port_views(types, count: int) -> list[tuple[str, list[np.ndarray]]] | None:
    """For each port, ``count`` separate copies of its shape array (one block, one view per node)."""
    if types is None:
        return None
    return [(port, list(np.repeat(shape[np.newaxis], count, axis=0))) for port, shape in types.items()]


def _values_pass(cls, params: dict, slots: dict[str, int], cols: list) -> bool:
    """Whether one node whose arrays are the columns flattened passes the constructor's checks."""
    sizes = {col[0].size for col in cols}
    if len(sizes) > 1:
        return False
    values = {k: decode(v, (), k) for k, v in params.items() if k not in slots}
    values.update({k: cols[i].reshape(-1) for k, i in slots.items()})
    try:
        cls(**values)
    except Exception:  # the rows are rebuilt one by one, and the constructor says which one and why
        return False
    return True


def _shape_arrays(types: Any) -> bool:
    return types is None or (type(types) is dict and all(type(v) is np.ndarray for v in types.values()))


def _array_free(value: Any) -> bool:
    """Whether a manifest value holds no array reference (then it decodes without the columns)."""
    if isinstance(value, dict):
        return not any(k in ("$array", "$scalar") for k in value) and all(_array_free(v) for v in value.values())
    if isinstance(value, list):
        return all(_array_free(v) for v in value)
    return True


def _immutable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str, bytes, Enum, np.generic)):
        return True
    return type(value) is tuple and all(_immutable(v) for v in value)
