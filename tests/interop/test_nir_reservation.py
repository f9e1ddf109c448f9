"""The disk blocks write_nir reserves before libhdf5 writes (talon.interop.nir.hdf5_size): never fewer
than the file takes (a disk filled after the reservation cannot fail the write:
tests/ir/test_disk_full.py), and at most 1.2 times it (before: 2.1 to 10.6 times on these graphs,
so a disk with room for the file could refuse it). The gzip chunks are compressed before the file
is created and written as they are: they are the bytes HDF5's deflate filter makes."""

from __future__ import annotations

import random
import warnings

import h5py
import nir
import numpy as np
import pytest

from talon import ir
from talon.interop.nir import hdf5_write, to_nir, write_nir
from talon.ir import hdf5_output

from .nir_helpers import chain
from .test_nir_fast_io import CASES, _track_order, metadata_graph


@pytest.fixture
def reserved(monkeypatch) -> list[int]:
    """The ``end`` of every reservation made while the test runs."""
    ends, real = [], hdf5_output.reserve

    def spy(fh, end, target=None):
        ends.append(end)
        real(fh, end, target)

    monkeypatch.setattr(hdf5_output, "reserve", spy)
    return ends


def _write(path, graph, options, compression) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_nir(path, graph, compression=compression, **options)
    return path.stat().st_size


@pytest.mark.parametrize("compression", ["gzip", None])
@pytest.mark.parametrize(("graph", "options"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_reservation_covers_the_file_and_little_more(graph, options, compression, reserved, tmp_path):
    options = {k: v for k, v in options.items() if k != "compression"}
    actual = _write(tmp_path / "g.nir", graph, options, compression)
    (bound,) = reserved
    assert actual <= bound <= 1.2 * actual, (actual, bound, bound / actual)


def test_gzip_chunks_are_the_bytes_hdf5_deflate_makes(tmp_path):
    """Several chunks per array, edge chunks padded, big-endian and integer dtypes: each chunk of
    write_nir's file is the chunk of nir.write's (h5py's deflate filter), byte for byte."""
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 1, (300, 700)).astype(np.float32) * (rng.random((300, 700)) < 0.3)
    graph = chain([700], ("fc", ir.Linear(weight)), ("lif", ir.LIF(tau=np.full(300, 5.0), comparison=">")))
    graph.nodes["lif"].metadata["counts"] = np.arange(100_001, dtype=">i8").reshape(1, -1)
    write_nir(tmp_path / "talon.nir", graph)
    nir.write(tmp_path / "nir.nir", to_nir(graph))
    with h5py.File(tmp_path / "talon.nir", "r") as ours, h5py.File(tmp_path / "nir.nir", "r") as theirs:
        for name in ("node/nodes/fc/weight", "node/nodes/lif/metadata/counts"):
            a, b = ours[name], theirs[name]
            assert a.chunks == b.chunks and a.compression == "gzip"
            offsets = [c.chunk_offset for c in (b.id.get_chunk_info(i) for i in range(b.id.get_num_chunks()))]
            assert len(offsets) > 1 and a.id.get_num_chunks() == len(offsets)
            assert any(any(o + c > n for o, c, n in zip(off, a.chunks, a.shape, strict=True)) for off in offsets)
            for offset in offsets:
                assert a.id.read_direct_chunk(offset) == b.id.read_direct_chunk(offset), (name, offset)
            np.testing.assert_array_equal(a[()], b[()])


def random_tree(seed: int) -> dict:
    """A NIR dict of every kind of entry nir.write stores: nested groups of up to 300 links, names of
    1-40 characters (some non-ASCII), arrays of rank 1-6 up to 300,000 elements (random, sparse, zero,
    integer), strings up to 12,000 characters, numbers, tuples, lists of name pairs, bools."""
    rand, rng = random.Random(seed), np.random.default_rng(seed)
    letters = "abcdefghijklmnopqrstuvwxyz_0123456789üé漢"

    def name():
        return "".join(rand.choice(letters) for _ in range(rand.choice([1, 2, 3, 5, 8, 12, 20, 40])))

    def array():
        rank, size = rand.choice([1, 1, 2, 2, 3, 4, 5, 6]), rand.choice([1, 3, 16, 100, 1000, 5000, 60000, 300000])
        shape = [1] * rank
        for _ in range(40):
            i = rand.randrange(rank)
            shape[i] *= 2 if np.prod(shape) * 2 <= size else 1
        shape = tuple(max(1, s + rand.choice([0, 0, 1, -1])) for s in shape)
        values = {
            "normal": lambda: rng.normal(size=shape),
            "sparse": lambda: rng.normal(size=shape) * (rng.random(shape) < 0.1),
            "zeros": lambda: np.zeros(shape),
            "ints": lambda: rng.integers(0, 5, shape),
        }[rand.choice(["normal", "sparse", "zeros", "ints"])]()
        return values.astype(rand.choice([np.float32, np.float64, np.int64, np.int32, np.uint8, ">i4"]))

    def value(depth):
        r = rand.random()
        if r < 0.35:
            return array()
        if r < 0.5:
            return rand.choice(["LIF", "x" * rand.choice([1, 50, 3000, 5000, 12000]), "ü" * 30])
        if r < 0.6:
            return rand.choice([1.5, 3, (1, 2, 3), np.float32(2.5), np.int64(7)])
        if r < 0.65:
            return [(name(), name()) for _ in range(rand.choice([1, 5, 50, 300]))]
        if r < 0.68:
            return np.bool_(True)
        return group(depth + 1) if depth < 3 and r < 0.85 else array()

    def group(depth):
        counts = [0, 1, 3, 8, 9, 17, 40, 120, 300] if depth <= 1 else [0, 1, 2, 5, 9]
        out = {}
        for _ in range(rand.choice(counts)):
            key = name()
            while key in out or key in (".", ".."):
                key = name()
            out[key] = value(depth)
        if rand.random() < 0.5:
            out["metadata"] = rand.choice([{}, {"k": "v"}, {"a": array()}])
        return out

    return {"type": "NIRGraph", "nodes": group(0), "edges": [("a", "b")], "metadata": {}}


@pytest.mark.parametrize("compression", ["gzip", None])
@pytest.mark.parametrize("seed", range(12))
def test_the_reservation_covers_any_nir_dict(seed, compression, reserved, tmp_path):
    path = tmp_path / "t.nir"
    path.touch()
    with open(path, "r+b") as fh:
        hdf5_write.write_nir_dict(fh, random_tree(seed), nir.version, compression=compression)
    (bound,) = reserved
    assert path.stat().st_size <= bound


def test_h5py_track_order_files_are_covered_too(reserved, tmp_path):
    with _track_order(True):
        write_nir(tmp_path / "t.nir", metadata_graph())
    assert (tmp_path / "t.nir").stat().st_size <= reserved[0]
