"""Hostile `.t1c` files (issue 18): each one gives one clear T1CFormatError, quickly and in little memory.

The files are crafted with h5py and then re-sealed (``t1c_craft``), i.e. with a *valid* checksum:
these are attacks, not damage, so the reader's other checks must refuse them on their own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import zlib

import h5py
import numpy as np
import pytest

from talon import ir
from talon.ir import T1CFormatError, t1c_header
from talon.ir import serialization as ser
from tests.subprocesses import child_env

from .examples import chain_graph
from .t1c_craft import (
    array_index,
    edit_manifest,
    edited,
    load_manifest,
    node_entries,
    reseal,
    store_manifest,
    stored,
    wrap_graph,
)

F32 = np.float32


@pytest.fixture(params=[2, 3], ids=["format2", "format3"])
def version(request):
    """Every crafted file is tried in both written formats (format 3 stores node tables)."""
    return request.param


def weights_file(tmp_path, name="w.t1c", version=ir.FORMAT_VERSION):
    """A file whose Affine weight (64x64 float32 = 16 KiB) is its own dataset arrays/000000."""
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([64])),
            "fc": ir.Affine(np.arange(64 * 64, dtype=F32).reshape(64, 64) / 4096),
            "output": ir.Output(np.array([64])),
        },
        [("input", "fc"), ("fc", "output")],
    )
    path = tmp_path / name
    ir.write(path, graph, format_version=version)
    return path


def replace_weight(path, make):
    """Replace arrays/000000 by ``make(arrays_group, name)`` and re-seal."""
    with edited(path) as f:
        del f["arrays/000000"]
        make(f["arrays"], "000000")


# ---- reads outside the file -----------------------------------------------------------------


def test_external_storage_is_refused_by_name(tmp_path, version):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"S" * 64 * 64 * 4)
    path = weights_file(tmp_path, version=version)
    replace_weight(
        path, lambda g, n: g.create_dataset(n, stored((64, 64), version), F32, external=[(str(secret), 0, 64 * 64 * 4)])
    )
    with pytest.raises(T1CFormatError, match=r"external storage \(its bytes are read from .*secret\.bin"):
        ir.read(path)


def test_external_link_is_refused_by_name(tmp_path, version):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["w"] = np.ones(stored((64, 64), version), F32)
    path = weights_file(tmp_path, version=version)
    replace_weight(path, lambda g, n: g.__setitem__(n, h5py.ExternalLink(str(other), "/w")))
    with pytest.raises(T1CFormatError, match=r"'000000' is an external link \(to .*other\.h5"):
        ir.read(path)


def test_soft_link_is_refused_by_name(tmp_path, version):
    path = weights_file(tmp_path, version=version)
    with edited(path) as f:
        f["elsewhere"] = f["arrays/000000"][()]
    replace_weight(path, lambda g, n: g.__setitem__(n, h5py.SoftLink("/elsewhere")))
    with pytest.raises(T1CFormatError, match=r"'000000' is a soft link \(to '/elsewhere'\)"):
        ir.read(path)


def test_virtual_dataset_is_refused_by_name(tmp_path, version):
    other = tmp_path / "other.h5"
    shape = stored((64, 64), version)
    with h5py.File(other, "w") as f:
        f["w"] = np.ones(shape, F32)
    path = weights_file(tmp_path, version=version)

    def virtual(group, name):
        layout = h5py.VirtualLayout(shape=shape, dtype=F32)
        layout[:] = h5py.VirtualSource(str(other), "w", shape=shape)
        group.create_virtual_dataset(name, layout)

    replace_weight(path, virtual)
    with pytest.raises(T1CFormatError, match="is a virtual dataset"):
        ir.read(path)


def _in_thread(fn, timeout=10):
    result = {}

    def target():
        try:
            fn()
        except BaseException as exc:
            result["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the reader blocked"
    return result.get("exc")


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "f.t1c"
    os.mkfifo(fifo)
    exc = _in_thread(lambda: ir.read(fifo))
    assert isinstance(exc, T1CFormatError) and "is a FIFO (named pipe), not a regular .t1c file" in str(exc)
    exc = _in_thread(lambda: ir.read("/dev/zero"))
    assert isinstance(exc, T1CFormatError) and "character device" in str(exc)


# ---- memory bombs ----------------------------------------------------------------------------


def test_never_written_chunks_are_refused(tmp_path, version):
    path = weights_file(tmp_path, version=version)
    replace_weight(
        path, lambda g, n: g.create_dataset(n, stored((64, 64), version), F32, chunks=stored((8, 8), version))
    )
    with pytest.raises(T1CFormatError, match="0 of its 64 chunks stored"):
        ir.read(path)


def test_compressed_data_is_charged_at_its_decoded_size(tmp_path, version):
    path = weights_file(tmp_path, version=version)
    shape = stored((1024, 1024), version)
    edit_manifest(path, lambda m: m["arrays"][0].update(shape=list(shape)))
    replace_weight(path, lambda g, n: g.create_dataset(n, data=np.zeros(shape, F32), compression="gzip"))
    assert path.stat().st_size < 64 * 1024  # 4 MiB of zeros compress to a few KiB
    with pytest.raises(T1CFormatError, match=r"array 0 needs 4,194,304 bytes.*budget of 1,000,000"):
        ir.read(path, max_bytes=1_000_000)


def _fills(m, count, size, referenced):
    for _ in range(count):
        m["arrays"].append({"dtype": "<f8", "shape": [size], "packed": "<f4", "offset": 0, "fill": True})
    if referenced:
        first = len(m["arrays"]) - count
        m["graph"]["metadata"]["bombs"] = [{"$array": first + i} for i in range(count)]


def test_unreferenced_arrays_are_never_materialised(tmp_path, version):
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("LIF"), format_version=version)
    edit_manifest(path, lambda m: _fills(m, 12, 2**28, referenced=False))  # 24 GiB if expanded
    assert ir.read(path).metadata == {"example": "LIF"}


def test_fills_are_charged_against_one_budget_per_file(tmp_path, version):
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("LIF"), format_version=version)
    edit_manifest(path, lambda m: _fills(m, 12, 2**25, referenced=True))  # 12 x 256 MiB, each under the cap
    with pytest.raises(T1CFormatError, match=r"needs 268,435,456 bytes.*budget of 268,435,456 decoded bytes"):
        ir.read(path)


def test_broadcast_layer_shapes_are_charged_before_allocating(tmp_path, version):
    graph = ir.Graph(
        {"input": ir.Input(np.array([4])), "lif": ir.LIF(tau=10.0, r=1.0), "output": ir.Output(np.array([4]))},
        [("input", "lif"), ("lif", "output")],
    )
    path = tmp_path / "g.t1c"
    ir.write(path, graph, format_version=version)

    def grow(m):  # scalar LIF parameters (as a hand-written file may have) and a 2**25-wide layer
        for node in node_entries(m):
            for key in ("input_type", "output_type"):
                if node.get(key):
                    node[key] = {port: [2**25] for port in node[key]}
            for value in node.get("params", {}).values():
                if isinstance(value, dict) and "$array" in value:
                    m["arrays"][array_index(node, value["$array"])]["shape"] = list(stored((), version))

    edit_manifest(path, grow)
    with pytest.raises(T1CFormatError, match=r"LIF: \w+ broadcast to the layer shape \[33554432\] needs 268,435,456"):
        ir.read(path)


def test_layers_too_large_for_memory_are_a_shape_error_in_memory_too():
    with pytest.raises(ir.ShapeError, match=r"Delay: delay broadcast to the layer shape \[1099511627776\] needs"):
        ir.Graph(
            {"input": ir.Input(np.array([2**40])), "d": ir.Delay(0), "output": ir.Output(np.array([2**40]))},
            [("input", "d"), ("d", "output")],
        )


def test_hostile_files_are_refused_in_little_memory(tmp_path, version):
    """Refusing every bomb above costs < 100 MB of peak RSS beyond the interpreter with talon loaded."""
    files = []
    for i, edit in enumerate(
        (
            lambda m: _fills(m, 12, 2**28, referenced=True),
            lambda m: m["arrays"][0].update(shape=[16, 2**25]),
        )
    ):
        path = tmp_path / f"bomb{i}.t1c"
        ir.write(path, chain_graph("LIF"), format_version=version)
        edit_manifest(path, edit)
        files.append(str(path))
    chunked = weights_file(tmp_path, "chunked.t1c", version)
    shape = stored((16, 2**25), version)
    edit_manifest(chunked, lambda m: m["arrays"][0].update(shape=list(shape)))
    replace_weight(chunked, lambda g, n: g.create_dataset(n, shape, F32, chunks=stored((1, 2**20), version)))
    files.append(str(chunked))
    # VmHWM: the peak RSS of this process image (ru_maxrss would start at the parent's peak after exec)
    script = (
        "import sys\nfrom talon import ir\n"
        "def kb(field):\n"
        "    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith(field))\n"
        "before = kb('VmRSS:')\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n        ir.read(p)\n        print('read', p)\n"
        "    except ir.T1CFormatError as e:\n        print('refused', e)\n"
        "print((kb('VmHWM:') - before) // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *files], capture_output=True, text=True, check=True, env=child_env()
    ).stdout
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["refused"] * len(files), out
    assert int(lines[-1]) < 100, f"peak RSS grew by {lines[-1]} MB while refusing"


# ---- integrity -------------------------------------------------------------------------------


def test_a_flipped_bit_in_array_data_is_reported(tmp_path, version):
    path = weights_file(tmp_path, version=version)
    with h5py.File(path, "r") as f:
        offset = f["arrays/000000"].id.get_offset()
    raw = bytearray(path.read_bytes())
    raw[offset + 1000] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(T1CFormatError, match="SHA-256 checksum does not match"):
        ir.read(path)


@pytest.mark.parametrize(
    ("cut", "message"),
    [(100, "shorter than the 512-byte header"), (-1, r"header says .* \(it is truncated\)"), (None, "extra bytes")],
)
def test_truncated_or_extended_files_are_reported_before_hdf5_parses_them(tmp_path, cut, message, version):
    path = weights_file(tmp_path, version=version)
    data = path.read_bytes()
    path.write_bytes(data + b"\0" if cut is None else data[:cut])
    with pytest.raises(T1CFormatError, match=message):
        ir.read(path)


def test_a_sealed_file_without_its_header_is_damaged(tmp_path, version):
    path = weights_file(tmp_path, version=version)
    data = bytearray(path.read_bytes())
    data[:512] = b"\0" * 512
    path.write_bytes(bytes(data[512:]))  # the HDF5 part alone is a valid HDF5 file
    with pytest.raises(T1CFormatError, match=f"format {version} file without its integrity header"):
        ir.read(path)


def write_v1(path, graph):
    """A file exactly as talon 0.1 (format 1) wrote it: no user block, the manifest a UTF-8 string."""
    arrays = []
    manifest = {"graph": ser._encode_graph(graph, arrays, "graph", 0)}
    refs = ser._array_refs(arrays)
    manifest["arrays"] = refs
    with h5py.File(path, "w") as f:
        f.attrs["talon_format"] = "t1c"
        f.attrs["format_version"] = 1
        f.attrs["talon_version"] = "0.1.0"
        f.create_dataset("manifest", data=json.dumps(manifest), dtype=h5py.string_dtype("utf-8"))
        ser._write_arrays(f, arrays, refs, None)


def test_format_1_files_are_still_read(tmp_path):
    graph = chain_graph("Conv2d")
    path = tmp_path / "v1.t1c"
    write_v1(path, graph)
    assert ir.read_version(path) == "1"
    assert ir.graph_differences(graph, ir.read(path)) == []


def test_the_header_layout_is_the_documented_one(tmp_path, version):
    path = weights_file(tmp_path, version=version)
    data = path.read_bytes()
    assert data[:8] == b"\x89T1C\r\n\x1a\n" and data[512:520] == b"\x89HDF\r\n\x1a\n"
    assert int.from_bytes(data[8:12], "little") == version and int.from_bytes(data[16:24], "little") == len(data)
    import hashlib

    assert data[24:56] == hashlib.sha256(data[:24] + data[56:]).digest()
    assert not any(data[56:512])
    with h5py.File(path, "r") as f:  # plain HDF5 tools still read it
        assert f.userblock_size == t1c_header.HEADER_SIZE and f["manifest"].dtype == np.uint8


# ---- raw Python errors -----------------------------------------------------------------------


def test_huge_shapes_are_value_errors_not_overflow_errors(tmp_path, version):
    with pytest.raises(ValueError, match="dimension of 2\\*\\*63 or more"):
        ir.Input(np.array([2**63], dtype=np.uint64))
    with pytest.raises(ValueError, match=r"shape .* 2\*\*63"):
        ir.Input([2**63])
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("Affine"), format_version=version)
    edit_manifest(path, lambda m: m["arrays"][0].update(shape=[2**63, 2]))
    with pytest.raises(T1CFormatError, match=r"shape dimension 9223372036854775808 is out of range"):
        ir.read(path)


def test_shape_products_beyond_int64_are_shape_errors():
    with pytest.raises(ir.ShapeError, match=r"Flatten.*shape \[1208925819614629174706176\] has a dimension of 2\*\*63"):
        ir.Graph(
            {"input": ir.Input(np.array([2**40, 2**40])), "f": ir.Flatten(), "output": ir.Output(np.array([1]))},
            [("input", "f"), ("f", "output")],
        )
    with pytest.raises(ir.ShapeError, match="dimension of 2\\*\\*63"):
        ir.Flatten(input_type={"input": [2**40, 2**40]})


def test_edges_that_are_not_pairs_are_named():
    with pytest.raises(ir.GraphValidationError, match=r"an edge is a \(src, dst\) pair of node names, got \{'a': 1\}"):
        ir.Graph({"a": ir.Input(np.array([2]))}, [{"a": 1}])


def test_an_edge_stored_as_an_object_is_named(tmp_path, version):
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("Affine"), format_version=version)
    edit_manifest(path, lambda m: m["graph"]["edges"].__setitem__(0, {"input": "node"}))
    with pytest.raises(T1CFormatError, match=r"graph: edge 0 is not a \[source, destination\] pair"):
        ir.read(path)


def test_a_talon_format_attribute_that_is_an_array(tmp_path, version):
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("Affine"), format_version=version)
    with edited(path) as f:
        f.attrs["talon_format"] = np.array([1, 2])
    with pytest.raises(T1CFormatError, match=r"not a \.t1c file"):
        ir.read(path)


def _nested(depth):
    graph = ir.Graph({"input": ir.Input(np.array([2])), "output": ir.Output(np.array([2]))}, [("input", "output")])
    for _ in range(depth):
        graph = ir.Graph(
            {"input": ir.Input(np.array([2])), "sub": graph, "output": ir.Output(np.array([2]))},
            [("input", "sub"), ("sub", "output")],
        )
    return graph


def test_writes_refuse_what_cannot_be_stored_with_t1c_errors(tmp_path):
    path = tmp_path / "g.t1c"
    graph = chain_graph("Affine")
    graph.metadata["big"] = 10**4300
    with pytest.raises(T1CFormatError, match=r"metadata\['big'\]: an int of 14,285 bits is too long"):
        ir.write(path, graph)
    graph.metadata["big"] = cyclic = []
    cyclic.append(cyclic)
    with pytest.raises(T1CFormatError, match="nest deeper than 64 levels"):
        ir.write(path, graph)
    with pytest.raises(T1CFormatError, match="subgraphs nest deeper than 64 levels"):
        ir.write(path, _nested(330))
    assert not path.exists()


def test_deeply_nested_manifests_are_refused(tmp_path, version):
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("Affine"), format_version=version)
    edit_manifest(path, lambda m: m["graph"]["metadata"].update(deep=json.loads("[" * 500 + "]" * 500)))
    with pytest.raises(T1CFormatError, match="nest deeper than 64 levels"):
        ir.read(path)
    with edited(path) as f:  # deeper than json's own recursion limit
        manifest = load_manifest(f)
        text = json.dumps(manifest).replace(
            '"metadata": {', '"metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1
        )
        store_manifest(f, text)
    with pytest.raises(T1CFormatError, match="RecursionError"):
        ir.read(path)
    deep = tmp_path / "deep.t1c"
    ir.write(deep, _nested(60), format_version=version)
    edit_manifest(deep, lambda m: m.update(graph=_wrap(m["graph"], 10)))
    with pytest.raises(T1CFormatError, match="subgraphs nest deeper than 64 levels"):
        ir.read(deep)


def _wrap(graph_entry, times):
    return wrap_graph(graph_entry, times)


def test_a_zip_bomb_manifest_is_charged_before_it_is_inflated(tmp_path, version):
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("Affine"), format_version=version)
    with edited(path) as f:
        bomb = zlib.compress(b" " * (64 << 20), 9)
        del f["manifest"]
        f["manifest"] = np.frombuffer(bomb, np.uint8)
    with pytest.raises(T1CFormatError, match="the manifest needs"):
        ir.read(path, max_bytes=1 << 20)
    reseal(path)


def test_a_table_of_many_names_is_charged_before_its_nodes_are_built(tmp_path):
    """Format 3: a name costs a few manifest bytes but becomes a whole node, so each is charged."""
    path = tmp_path / "g.t1c"
    ir.write(path, chain_graph("LIF"))
    count = 300_000

    def many(m):
        m["graph"]["tables"].append(
            {"type": "Input", "names": [f"x{i}" for i in range(count)], "params": {}, "columns": [],
             "input_type": {"input": [2]}, "output_type": None}
        )  # fmt: skip
        m["graph"]["order"] += [len(m["graph"]["tables"]) - 1] * count

    edit_manifest(path, many)
    with pytest.raises(
        T1CFormatError, match=r"graph: table 3 \(300,000 nodes\) needs 76,800,000 bytes.*budget of 67,108,864"
    ):
        ir.read(path, max_bytes=64 << 20)
