"""Craft `.t1c` files the way an adversary would: edit the HDF5 content, then re-seal the
integrity header so the checksum is valid and only the reader's other checks stand in the way."""

from __future__ import annotations

import contextlib
import json
import zlib

import h5py
import numpy as np

from talon.ir import t1c_header


def reseal(path) -> None:
    """Recompute the v2 header (length and SHA-256) of an edited file."""
    with open(path, "rb+") as fh:
        version = int.from_bytes(fh.read(12)[8:12], "little")
        t1c_header.seal(fh, version)


@contextlib.contextmanager
def edited(path):
    """``with edited(path) as f:`` — an h5py handle opened r+; the file is re-sealed afterwards."""
    with h5py.File(path, "r+") as f:
        yield f
    reseal(path)


def load_manifest(f: h5py.File) -> dict:
    return json.loads(zlib.decompress(f["manifest"][()].tobytes()))


def store_manifest(f: h5py.File, manifest: dict | str) -> None:
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    del f["manifest"]
    f.create_dataset("manifest", data=np.frombuffer(zlib.compress(text.encode()), np.uint8))


def edit_manifest(path, edit) -> None:
    with edited(path) as f:
        manifest = load_manifest(f)
        edit(manifest)
        store_manifest(f, manifest)


# ---- the two manifest layouts: format 2 (one entry per node) and format 3 (node tables) -------


def stored(shape, version: int) -> tuple[int, ...]:
    """The stored shape of a one-node array: format 3 stores a column with one row per node."""
    return tuple(shape) if version < 3 else (1, *shape)


def node_entries(manifest: dict) -> list[dict]:
    """The per-node entries (format 2) or the node tables (format 3) of the top graph."""
    graph = manifest["graph"]
    return graph["nodes"] if "nodes" in graph else graph["tables"]


def node_entry(manifest: dict, position: int) -> dict:
    """The entry holding the node at ``position`` in graph order (its table in format 3)."""
    graph = manifest["graph"]
    return graph["nodes"][position] if "nodes" in graph else graph["tables"][graph["order"][position]]


def array_index(entry: dict, ref: int) -> int:
    """The manifest array behind ``{"$array": ref}`` in a node entry (format 3: a table column)."""
    return entry["columns"][ref] if "columns" in entry else ref


def wrap_graph(entry: dict, times: int) -> dict:
    """``entry`` nested ``times`` more levels deep as the subgraph "sub" between an Input and an Output."""
    for _ in range(times):
        boundary = {"params": {}, "input_type": {"input": [2]}, "output_type": None}
        if "tables" in entry:
            entry = {
                "tables": [
                    {"type": "Input", "names": ["input"], "columns": [], **boundary},
                    {"type": "Graph", "names": ["sub"], "graph": entry},
                    {"type": "Output", "names": ["output"], "columns": [], **boundary},
                ],
                "order": [0, 1, 2],
                "edges": [["input", "sub"], ["sub", "output"]],
                "metadata": {},
            }
        else:
            entry = {
                "nodes": [
                    {"name": "input", "type": "Input", **boundary},
                    {"name": "sub", "type": "Graph", "graph": entry},
                    {"name": "output", "type": "Output", **boundary},
                ],
                "edges": [["input", "sub"], ["sub", "output"]],
                "metadata": {},
            }
    return entry
