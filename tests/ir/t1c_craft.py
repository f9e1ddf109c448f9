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
