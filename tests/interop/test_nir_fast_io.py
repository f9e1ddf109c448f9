"""The one-pass .nir reader and the low-level writer (docs/nir.md, "Speed"): the files write_nir makes
are the files nir.write makes, and read_dict gives what a plain h5py walk of the file gives."""

from __future__ import annotations

import warnings

import h5py
import nir
import numpy as np
import pytest

from talon import ir
from talon.interop.nir import NIRFormatError, from_nir, hdf5_read, read_nir, to_nir, write_nir
from talon.interop.nir import files as nir_files
from tests.paths import NIR_PAPER

from .nir_helpers import MALFORMED, PAPER_FILES, chain
from .test_nir_convert import TALON_GRAPHS

F32 = np.float32


def hdf5_content(path) -> dict:
    """Every group and dataset of an HDF5 file with all that defines it: the link's character set,
    attributes, dtype, HDF5 type class, shape, storage (layout, chunks, filters, fill value, timestamps)
    and the value's bytes."""
    out = {}
    with h5py.File(path, "r") as f:

        def describe(name, obj):
            parent, _, base = name.rpartition("/")
            group = f[parent or "/"]  # kept alive: a LinkProxy does not hold its group open
            link = group.id.links.get_info(base.encode())
            entry = {"cset": link.cset, "attrs": {k: repr(v) for k, v in obj.attrs.items()}}
            plist = obj.id.get_create_plist()
            entry["track_times"] = plist.get_obj_track_times()
            if isinstance(obj, h5py.Dataset):
                value = obj[()]
                if isinstance(value, np.ndarray) and value.dtype.kind != "O":
                    value = value.tobytes()
                elif isinstance(value, np.ndarray):
                    value = value.tolist()
                entry.update(
                    dtype=obj.dtype.str,
                    string=repr(h5py.check_string_dtype(obj.dtype)),
                    type_class=obj.id.get_type().get_class(),
                    shape=obj.shape,
                    layout=plist.get_layout(),
                    chunks=obj.chunks,
                    filters=(obj.compression, obj.compression_opts, obj.shuffle, obj.fletcher32),
                    fill=repr(obj.fillvalue),
                    value=(type(value).__name__, repr(value)),
                )
            out[name] = entry

        f.visititems(describe)
        out["/"] = {"attrs": dict(f.attrs), "libver": f.libver, "userblock": f.userblock_size}
    return out


def metadata_graph() -> ir.Graph:
    graph = chain([2], ("ü_lin", ir.Linear(np.eye(2, dtype=F32))), ("lif", ir.LIF(tau=[2.0, 3.0], comparison=">")))
    graph.metadata.update(
        {
            "name": "net",
            "epochs": 3,
            "lr": 1e-3,
            "flags": (True, None),
            "nested": {"array": np.arange(3), "scalar": np.float32(2.5), 7: "int key", "zero_d": np.array(1.5)},
            "grün": np.array([True, False]),
            "bool": np.bool_(True),
            "dt": "a user's own dt entry",
        }
    )
    graph.nodes["lif"].metadata["trained"] = {"acc": np.float64(0.93), "note": "ok", "ints": np.arange(4, dtype=">i4")}
    return graph


def sinabs_style_graph() -> ir.Graph:
    rng = np.random.default_rng(2)
    tau = np.array([2.5, 4.0, 10.0, 33.0])
    return ir.Graph(
        {
            "input": ir.Input(np.array([6])),
            "fc1": ir.Affine(rng.normal(0, 1.5, (5, 6)).astype(F32), rng.normal(0, 0.2, 5).astype(F32)),
            "if1": ir.IF(
                v_threshold=np.full(5, 0.75), reset_mode="subtract", spike_mode="multi", v_min=np.full(5, -0.75)
            ),
            "fc2": ir.Linear(rng.normal(0, 1.0, (4, 5)).astype(F32)),
            "lif": ir.LIF(tau=tau, r=tau, v_threshold=1.0, reset_mode="subtract", spike_mode="multi"),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "lif"), ("lif", "output")],
    )


def deep_graph(layers: int = 12, width: int = 16) -> ir.Graph:
    rng = np.random.default_rng(0)
    items = []
    for i in range(layers):
        items.append((f"fc{i}", ir.Affine(rng.normal(0, 0.2, (width, width)).astype(F32), np.zeros(width, F32))))
        tau = rng.uniform(5, 20, width).astype(F32)
        items.append((f"lif{i}", ir.LIF(tau=tau, r=tau, v_threshold=np.ones(width, F32), comparison=">")))
    return chain([width], *items)


def _cases():
    for name, graph in TALON_GRAPHS:
        yield name, graph, {}
    yield "deep", deep_graph(), {}
    yield "deep-uncompressed", deep_graph(3), {"compression": None}
    yield "metadata", metadata_graph(), {}
    yield "lossy-ge", chain([3], ("lif", ir.LIF(tau=[2.0, 3.0, 4.0], comparison=">="))), {"lossy": True}
    yield "consumer-sinabs", sinabs_style_graph(), {"consumer": "sinabs"}
    yield "dt", deep_graph(2), {"dt": 1e-3}
    for name in PAPER_FILES:
        if name not in MALFORMED:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield name, read_nir(NIR_PAPER / name, type_check=False), {}


CASES = list(_cases())


@pytest.mark.parametrize(("graph", "options"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_write_nir_makes_the_file_nir_write_makes(graph, options, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compression = options.pop("compression", "gzip")
        write_nir(tmp_path / "talon.nir", graph, compression=compression, **options)
        nir.write(tmp_path / "nir.nir", to_nir(graph, **options), compression=compression)
    ours, theirs = hdf5_content(tmp_path / "talon.nir"), hdf5_content(tmp_path / "nir.nir")
    assert list(ours) == list(theirs)
    for name in theirs:
        assert ours[name] == theirs[name], name
    # and the file reads back through talon's reader and nir's (the files are the same, so are the graphs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = read_nir(tmp_path / "talon.nir", type_check=False)
    assert ir.graph_differences(back, read_nir(tmp_path / "nir.nir", type_check=False)) == []
    nir.read(tmp_path / "talon.nir", type_check=False)


def test_the_content_comparison_sees_a_difference(tmp_path):
    graph = deep_graph(1)
    write_nir(tmp_path / "a.nir", graph)
    write_nir(tmp_path / "b.nir", graph, compression=None)
    graph.nodes["fc0"].weight[0, 0] += 1
    write_nir(tmp_path / "c.nir", graph)
    a, b, c = (hdf5_content(tmp_path / f"{n}.nir") for n in "abc")
    assert a["node/nodes/fc0/weight"]["chunks"] != b["node/nodes/fc0/weight"]["chunks"]
    assert a["node/nodes/fc0/weight"]["value"] != c["node/nodes/fc0/weight"]["value"]


def test_h5py_track_order_is_left_to_h5py(tmp_path):
    graph = metadata_graph()
    with _track_order(True):
        write_nir(tmp_path / "talon.nir", graph)
        nir.write(tmp_path / "nir.nir", to_nir(graph))
    assert hdf5_content(tmp_path / "talon.nir") == hdf5_content(tmp_path / "nir.nir")


class _track_order:
    def __init__(self, value: bool):
        self.value = value

    def __enter__(self):
        config = h5py.get_config()
        self.before, config.track_order = config.track_order, self.value

    def __exit__(self, *exc):
        h5py.get_config().track_order = self.before


# ---- reading ---------------------------------------------------------------------------------------


def plain_walk(path) -> dict:
    """The NIR dict of a file through h5py's high-level objects: nested dicts in h5py's member order."""

    def walk(group, where):
        return {
            key: walk(item, f"{where}/{key}")
            if isinstance(item, h5py.Group)
            else nir_files._value(item[()], f"{where}/{key}")
            for key, item in group.items()
        }

    with h5py.File(path, "r") as f:
        return walk(f["node"], "node")


def same_tree(a, b, where="node"):
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            same_tree(a[key], b[key], f"{where}/{key}")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert (a.tolist() == b.tolist()) if a.dtype.kind == "O" else a.tobytes() == b.tobytes(), where
    else:
        assert a == b, where


def odd_datasets_file(path):
    """A NIR file whose unknown fields hold every kind of dataset h5py reads (each read as h5py reads it)."""
    write_nir(path, chain([2], ("lif", ir.LIF(tau=[2.0, 3.0], comparison=">"))))
    with h5py.File(path, "r+") as f:
        g = f["node/nodes/lif"].create_group("odd")
        g["bool"] = True
        g["bools"] = np.array([True, False])
        g["fixed"] = np.bytes_(b"abc")
        g["fixed_array"] = np.array([b"ab", b"cd"])
        g.create_dataset("vlen_array", data=["x", "yz"], dtype=h5py.string_dtype())
        g.create_dataset("ascii", data=b"plain", dtype=h5py.string_dtype("ascii"))
        g["int"] = 7
        g["float"] = np.float32(2.5)
        g["empty"] = np.zeros(0)
        g["big_endian"] = np.arange(3, dtype=">f8")
        compact = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        compact.set_layout(h5py.h5d.COMPACT)
        dsid = h5py.h5d.create(g.id, b"compact", h5py.h5t.NATIVE_INT64, h5py.h5s.create_simple((4,)), dcpl=compact)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(4, dtype=np.int64))
        g.create_dataset("contiguous", data=np.arange(5, dtype=np.int16))
        g.create_dataset("shuffled", data=np.arange(100.0), chunks=(30,), shuffle=True, fletcher32=True)
        g.create_dataset("lzf", data=np.arange(50), compression="lzf")
        g.create_group("nested").create_group("deeper")["x"] = np.ones((2, 3), F32)


@pytest.mark.parametrize("name", PAPER_FILES)
def test_read_dict_is_the_plain_walk_of_every_paper_file(name):
    tree, _version = nir_files.read_dict(NIR_PAPER / name)
    same_tree(tree, plain_walk(NIR_PAPER / name))


def test_names_that_are_not_utf8_are_refused_naming_the_entry(tmp_path):
    path = tmp_path / "names.nir"
    odd_datasets_file(path)
    with h5py.File(path, "a") as f:
        f["node/nodes/lif/odd"][b"not-utf8-\xff"] = np.arange(2)
    with pytest.raises(NIRFormatError, match=r"node/nodes/lif/odd: entry b'not-utf8-\\xff' cannot be read"):
        nir_files.read_dict(path)


def test_groups_that_track_creation_order_are_read_in_it(tmp_path):
    path = tmp_path / "ordered.nir"
    names = ["zeta", "input", "alpha", "output"]
    with h5py.File(path, "w", track_order=True) as f:
        f.attrs["version"] = "1.0.4"
        graph = f.create_group("node", track_order=True)
        graph["type"] = np.bytes_("NIRGraph")
        nodes = graph.create_group("nodes", track_order=True)
        for name in names:
            node = nodes.create_group(name, track_order=True)
            node["type"] = np.bytes_(name.capitalize() if name in ("input", "output") else "Affine")
            if name in ("input", "output"):
                node["shape"] = np.array([3])
            else:
                node["weight"], node["bias"] = np.eye(3, dtype=F32), np.zeros(3, F32)
        graph["edges"] = np.array([[b"input", b"zeta"], [b"zeta", b"alpha"], [b"alpha", b"output"]])
        graph.create_group("metadata")
    tree, _ = nir_files.read_dict(path)
    assert list(tree["nodes"]) == names  # as h5py and nir.read give them, not sorted by name
    assert list(nir.read(path).nodes) == names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(read_nir(path).nodes) == names


def test_read_dict_reads_every_kind_of_dataset_as_h5py_does(tmp_path, monkeypatch):
    path = tmp_path / "odd.nir"
    odd_datasets_file(path)
    tree, _ = nir_files.read_dict(path)
    same_tree(tree, plain_walk(path))
    odd = tree["nodes"]["lif"]["odd"]
    assert odd["bool"] is np.True_ and odd["fixed"] == "abc" and odd["int"] == 7 and odd["empty"].shape == (0,)
    with h5py.File(path, "r") as f:
        assert f["node/nodes/lif/odd/compact"].id.get_create_plist().get_layout() == h5py.h5d.COMPACT
    # without /proc the file object is read through h5py's Python driver: the same tree
    monkeypatch.setattr(hdf5_read.os.path, "exists", lambda p: False)
    same_tree(nir_files.read_dict(path)[0], tree)
    with pytest.warns(UserWarning, match="unknown to NIR 1.0: odd"):
        assert list(read_nir(path).nodes) == ["input", "lif", "output"]


def test_a_read_gives_the_graph_from_nir_gives(tmp_path):
    graph = deep_graph(4)
    write_nir(tmp_path / "d.nir", graph)
    assert ir.graph_differences(read_nir(tmp_path / "d.nir"), from_nir(nir.read(tmp_path / "d.nir"))) == []
    assert ir.graph_differences(read_nir(tmp_path / "d.nir"), graph, metadata=False) == []
