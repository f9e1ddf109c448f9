"""Hostile `.nir` files (issue 18): read_nir refuses each with one NIRFormatError naming the problem."""

from __future__ import annotations

import os
import threading

import h5py
import numpy as np
import pytest

from talon import ir
from talon.interop.nir import NIRFormatError, read_nir, write_nir

F64 = np.float64


@pytest.fixture
def nir_file(tmp_path):
    """input -> lif (2 neurons) -> output, written by nir.write."""
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2])),
            "lif": ir.LIF(tau=np.full(2, 10.0), r=1.0, comparison=">"),
            "output": ir.Output(2),
        },
        [("input", "lif"), ("lif", "output")],
    )
    path = tmp_path / "g.nir"
    write_nir(path, graph)
    return path


def edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def refused(path, message, **kwargs):
    with pytest.raises(NIRFormatError, match=message):
        read_nir(path, **kwargs)


def test_the_untouched_file_reads(nir_file):
    assert list(read_nir(nir_file).nodes) == ["input", "lif", "output"]


def test_external_storage(nir_file, tmp_path):
    secret = tmp_path / "passwd"
    secret.write_bytes(b"root:x:0:0" * 10)

    def fn(f):
        del f["node/nodes/lif/tau"]
        f["node/nodes/lif"].create_dataset("tau", (2,), F64, external=[(str(secret), 0, 16)])

    edit(nir_file, fn)
    refused(nir_file, r"lif/tau has external storage \(its bytes are read from .*passwd")


def test_external_link_even_in_an_unknown_field(nir_file, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    edit(nir_file, lambda f: f["node/nodes/lif"].__setitem__("extra", h5py.ExternalLink(str(other), "/x")))
    refused(nir_file, r"lif: 'extra' is an external link")


def test_virtual_dataset(nir_file, tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.ones(2)

    def fn(f):
        del f["node/nodes/lif/tau"]
        layout = h5py.VirtualLayout(shape=(2,), dtype=F64)
        layout[:] = h5py.VirtualSource(str(other), "x", shape=(2,))
        f["node/nodes/lif"].create_virtual_dataset("tau", layout)

    edit(nir_file, fn)
    refused(nir_file, "lif/tau is a virtual dataset")


def test_soft_link_cycle_and_dangling_soft_link(nir_file):
    edit(nir_file, lambda f: f["node/nodes/lif"].__setitem__("loop", h5py.SoftLink("/node")))
    refused(nir_file, r"'loop' is a soft link \(to '/node'\)")


def test_dangling_soft_link(nir_file):
    edit(nir_file, lambda f: f["node/nodes/lif"].__setitem__("gone", h5py.SoftLink("/nowhere")))
    refused(nir_file, r"'gone' is a soft link \(to '/nowhere'\)")


def test_hard_link_cycle(nir_file):
    edit(nir_file, lambda f: f["node/nodes/lif"].__setitem__("loop", f["node"]))
    refused(nir_file, "lif/loop is a hard link to one of its own parent groups")


def test_deep_nesting(nir_file):
    def fn(f):
        group = f["node/nodes/lif"]
        for _ in range(3000):
            group = group.create_group("g")

    edit(nir_file, fn)
    refused(nir_file, "groups nest deeper than 64 levels")


def test_a_fifo_does_not_block(tmp_path):
    fifo = tmp_path / "f.nir"
    os.mkfifo(fifo)
    caught = {}
    thread = threading.Thread(target=lambda: caught.update(exc=_raises(fifo)), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "read_nir blocked on a FIFO"
    assert isinstance(caught["exc"], NIRFormatError) and "is a FIFO" in str(caught["exc"])


def _raises(path):
    try:
        read_nir(path)
    except Exception as exc:
        return exc
    return None


def test_never_written_chunked_dataset_in_an_unknown_field(nir_file):
    edit(nir_file, lambda f: f["node/nodes/lif"].create_dataset("extra", (16, 2**25), np.float32, chunks=(1, 2**20)))
    refused(nir_file, r"lif/extra has 0 of its 512 chunks stored")


def test_compressed_data_is_charged_against_the_budget(nir_file):
    edit(nir_file, lambda f: f["node/nodes/lif"].create_dataset("extra", data=np.zeros(2**20), compression="gzip"))
    refused(nir_file, r"lif/extra needs 8,388,608 bytes.*budget of 1,000,000", max_bytes=1_000_000)


def test_broadcast_to_a_huge_input_is_charged(nir_file):
    def fn(f):
        for name in ("input", "output"):
            del f[f"node/nodes/{name}/shape"]
            f[f"node/nodes/{name}/shape"] = np.array([2**25])
        for key in ("tau", "r", "v_leak", "v_reset", "v_threshold"):
            del f[f"node/nodes/lif/{key}"]
            f[f"node/nodes/lif/{key}"] = np.float64(10.0 if key == "tau" else 1.0)

    edit(nir_file, fn)
    refused(nir_file, r"broadcast to the layer shape \[33554432\] needs 268,435,456 bytes", max_bytes=1 << 24)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (np.array([np.inf]), "malformed NIR graph|shape"),
        (np.array([2**63], dtype=np.uint64), "2\\*\\*63"),
    ],
)
def test_absurd_input_shapes(nir_file, shape, message):
    def fn(f):
        del f["node/nodes/input/shape"]
        f["node/nodes/input/shape"] = shape

    edit(nir_file, fn)
    refused(nir_file, message)


def test_edge_names_that_are_not_utf8(nir_file):
    def fn(f):
        del f["node/edges"]
        f["node/edges"] = np.array([[b"input", b"\xff\xfe"], [b"lif", b"output"]], dtype=object).astype("S")

    edit(nir_file, fn)
    refused(nir_file, "not valid UTF-8")


def test_a_talon_node_order_that_does_not_name_the_nodes_is_ignored(nir_file):
    edit(nir_file, lambda f: f["node/metadata"].__setitem__("talon_node_order", '[1, "lif", null]'))
    assert list(read_nir(nir_file).nodes) == ["input", "lif", "output"]


def test_a_delay_of_1e300_seconds(tmp_path):
    graph = ir.Graph(
        {"input": ir.Input(np.array([2])), "d": ir.Delay(np.array([1, 2])), "output": ir.Output(2)},
        [("input", "d"), ("d", "output")],
    )
    path = tmp_path / "d.nir"
    write_nir(path, graph)

    def fn(f):
        del f["node/nodes/d/delay"]
        f["node/nodes/d/delay"] = np.array([1e300, 1e-4])

    edit(path, fn)
    refused(path, r"a delay of 1e\+300 s is 1e\+304 timesteps")
