""".nir files: every NIR-paper file, files of older nir versions and their quirks, bad files, writing."""

from __future__ import annotations

import json
import os
import warnings

import h5py
import nir
import numpy as np
import pytest

from talon import ir
from talon.interop.nir import NIRCompatibilityWarning, NIRFormatError, files, from_nir, read_nir, write_nir
from talon.interop.nir._common import same_bits
from talon.interop.nir.files import read_dict
from talon.io import EVENT_DTYPE, write_h5
from tests.paths import NIR_PAPER

from .nir_helpers import MALFORMED, PAPER_FILES, TYPE_INCONSISTENT, chain

F32 = np.float32


def write_raw(path, tree: dict, version: str = "0.2.0") -> None:
    """Write a NIR dict with h5py the way nir.write lays it out (any version, any quirk)."""

    def group(g, d):
        for key, value in d.items():
            if isinstance(value, dict):
                group(g.create_group(key), value)
            elif isinstance(value, str):
                g.create_dataset(key, data=value, dtype=h5py.string_dtype())
            elif key == "edges" and len(value):
                g.create_dataset(key, data=np.array(value, dtype=object), dtype=h5py.string_dtype())
            elif key == "edges":
                g.create_dataset(key, data=np.zeros(0))  # nir's empty-edges quirk
            else:
                g.create_dataset(key, data=value)

    with h5py.File(path, "w") as f:
        f.create_dataset("version", data=version, dtype=h5py.string_dtype())
        group(f.create_group("node"), tree)


def graph_tree(nodes: dict, edges: list) -> dict:
    return {"type": "NIRGraph", "nodes": nodes, "edges": edges}


def lif_fields(n: int, dtype=F32) -> dict:
    return {
        "type": "LIF",
        "tau": np.full(n, 2.5e-3, dtype),
        "r": np.ones(n, dtype),
        "v_leak": np.zeros(n, dtype),
        "v_threshold": np.full(n, 0.1, dtype),
    }


def io(shape):
    return {"type": "Input", "shape": np.array(shape)}, {"type": "Output", "shape": np.array(shape)}


# ---- the NIR paper's files (nir.md §4.2) --------------------------------------------------------


@pytest.mark.parametrize("name", PAPER_FILES)
def test_every_paper_file_reads_writes_back_and_reads_again_unchanged(name, tmp_path):
    path = NIR_PAPER / name
    if name in MALFORMED:
        for type_check in (True, False):
            with pytest.raises(
                NIRFormatError, match=r"subgraph 'lif1' is malformed: 4 edges name a node 'lif' that does not exist"
            ):  # what the message says and how to repair the file: test_nir_dangling_edges.py
                read_nir(path, type_check=type_check)
        return
    if name in TYPE_INCONSISTENT:
        with pytest.raises(
            ir.ConversionError, match=r"node 'output' \(Output\) declares shape \[1, 1, 1\].*\[1\].*type_check=False"
        ):
            read_nir(path)
        with pytest.warns(UserWarning, match="using \\[1\\]"):
            graph = read_nir(path, type_check=False)
        assert graph.nodes["output"].metadata["nir"]["type_check"] == "declared shape [1, 1, 1] replaced by [1]"
    else:
        graph = read_nir(path)
        # talon's reader and nir's agree on every file nir itself can type-check
        assert ir.graph_differences(graph, from_nir(nir.read(path)), metadata=False) == []
    write_nir(tmp_path / name, graph)
    again = read_nir(tmp_path / name)
    assert ir.graph_differences(graph, again) == []
    nir.read(tmp_path / name)  # nir's own reader, with type checks, accepts what talon writes
    # the NIR parameters written back are the file's, bit for bit (v_reset is added: zeros, NIR >= 1.0.6)
    original, _ = read_dict(path)
    written, version = read_dict(tmp_path / name)
    assert version == nir.version
    assert list(original["edges"].tolist()) == list(written["edges"].tolist())
    for node_name, fields in original["nodes"].items():
        new = written["nodes"][node_name]
        assert new["type"] == fields["type"]
        for key, value in fields.items():
            if key in ("type", "metadata") or (node_name == "output" and name in TYPE_INCONSISTENT):
                continue
            assert same_bits(np.asarray(value), np.asarray(new[key])), f"{node_name}.{key}"
        if "v_threshold" in fields and "v_reset" not in fields:
            assert not np.any(new["v_reset"]) and new["v_reset"].shape == fields["v_threshold"].shape


def test_cnn_gets_the_shapes_of_the_paper():
    g = read_nir(NIR_PAPER / "02_cnn__cnn_sinabs.nir")
    shapes = {name: (g.nodes[name].input_shape, g.nodes[name].output_shape) for name in g.nodes}
    assert shapes["input"] == ((2, 34, 34), (2, 34, 34))
    conv0 = g.nodes["0"]
    assert (conv0.in_channels, conv0.out_channels, conv0.kernel_size, conv0.stride, conv0.padding) == (
        2,
        16,
        (5, 5),
        (2, 2),
        (1, 1),
    )
    expected = {
        "0": (16, 16, 16),
        "1": (16, 16, 16),
        "2": (16, 16, 16),
        "3": (16, 16, 16),
        "4": (16, 8, 8),
        "5": (8, 8, 8),
        "6": (8, 8, 8),
        "7": (8, 4, 4),
        "8": (128,),
        "9": (256,),
        "10": (256,),
        "11": (10,),
        "12": (10,),
    }
    assert {k: v[1] for k, v in shapes.items() if k in expected} == expected
    kinds = {k: type(g.nodes[k]).__name__ for k in expected}
    assert kinds == {
        "0": "Conv2d", "1": "IF", "2": "Conv2d", "3": "IF", "4": "SumPool2d", "5": "Conv2d", "6": "IF",
        "7": "SumPool2d", "8": "Flatten", "9": "Affine", "10": "IF", "11": "Affine", "12": "IF",
    }  # fmt: skip
    for k in ("1", "3", "6", "10", "12"):  # r = 1, v_thr = 1, no v_reset stored: IF with r' = dt, reset to 0
        node = g.nodes[k]
        assert np.all(node.r == F32(1e-4)) and np.all(node.v_threshold == 1) and not np.any(node.v_reset)
        assert (node.comparison, node.reset_mode, node.reset_timing) == (">", "value", "immediate")
    assert g.topological_order() == ["input", *map(str, range(13)), "output"]
    # Sinabs, Norse and snnTorch run NIR's IF as v += r x per step (no dt): that is dt = 1
    per_step = read_nir(NIR_PAPER / "02_cnn__cnn_sinabs.nir", dt=1.0)
    assert all(np.all(per_step.nodes[k].r == 1) for k in ("1", "3", "6", "10", "12"))
    assert per_step.metadata["nir"]["dt"] == 1.0


@pytest.mark.parametrize(
    ("name", "hidden", "params"),
    [
        ("03_rnn__braille_noDelay_bias_zero.nir", 38, "bias_ref_zero"),
        ("03_rnn__braille_noDelay_noBias_subtract.nir", 40, "noBias_ref_subtract"),
    ],
)
def test_braille_graphs_are_recurrent_cubalif_networks_with_the_papers_decays(name, hidden, params):
    g = read_nir(NIR_PAPER / name)
    assert list(g.nodes) == ["fc1", "fc2", "input", "lif1.lif", "lif1.w_rec", "lif2", "output"]  # dotted names kept
    assert g.recurrent_edges == [("lif1.w_rec", "lif1.lif")]
    lif1, lif2 = g.nodes["lif1.lif"], g.nodes["lif2"]
    assert lif1.output_shape == (hidden,) and lif2.output_shape == (7,)
    reference = json.loads((NIR_PAPER / f"03_rnn__data__parameters_noDelay_{params}.json").read_text())
    # the file's time constants encode dt = 1e-4: alpha = 1 - dt/tau_syn, beta = 1 - dt/tau_mem
    np.testing.assert_allclose(1 - 1 / lif1.tau_syn, reference["alpha_r"], atol=1e-6)
    np.testing.assert_allclose(1 - 1 / lif1.tau_mem, reference["beta_r"], atol=1e-6)
    np.testing.assert_allclose(1 - 1 / lif2.tau_syn, reference["alpha_out"], atol=1e-6)
    np.testing.assert_allclose(1 - 1 / lif2.tau_mem, reference["beta_out"], atol=1e-6)
    # r = tau_mem/dt and w_in = tau_syn/dt: both gains are 1 (to the float32 rounding of r and w_in)
    np.testing.assert_allclose(lif1.r / lif1.tau_mem, 1.0, rtol=1e-6)
    np.testing.assert_allclose(lif1.w_in / lif1.tau_syn, 1.0, rtol=1e-6)


# ---- files of other nir versions and their quirks -------------------------------------------------


def test_old_file_without_v_reset_reads_as_reset_to_zero(tmp_path):
    inp, out = io([2])
    tree = graph_tree({"input": inp, "lif": lif_fields(2), "output": out}, [("input", "lif"), ("lif", "output")])
    write_raw(tmp_path / "old.nir", tree, version="0.1.1")
    g = read_nir(tmp_path / "old.nir")
    assert g.nodes["lif"].v_reset.tolist() == [0.0, 0.0] and g.nodes["lif"].reset_mode == "value"
    assert g.nodes["lif"].tau.tolist() == [25.0, 25.0]


def test_unknown_fields_are_kept_and_reported(tmp_path):
    inp, out = io([2])
    lif = {**lif_fields(2), "refractory": np.array([2e-4, 2e-4])}
    tree = graph_tree({"input": inp, "lif": lif, "output": out}, [("input", "lif"), ("lif", "output")])
    write_raw(tmp_path / "future.nir", tree, version="1.9.0")
    with pytest.warns(UserWarning, match=r"node 'lif' \(LIF\) has fields unknown to NIR 1.0: refractory"):
        g = read_nir(tmp_path / "future.nir")
    np.testing.assert_array_equal(g.nodes["lif"].metadata["nir"]["unknown_fields"]["refractory"], [2e-4, 2e-4])
    write_nir(tmp_path / "again.nir", g)
    again = read_nir(tmp_path / "again.nir")  # carried in metadata now: no warning, same graph
    assert ir.graph_differences(g, again) == []


def test_dotted_names_and_nested_subgraphs(tmp_path):
    inp, out = io([3])
    sub_in, sub_out = io([3])
    sub = graph_tree(
        {
            "input": sub_in,
            "rnn.lif": lif_fields(3),
            "rnn.w": {"type": "Linear", "weight": np.eye(3, dtype=F32) * 0.5},
            "output": sub_out,
        },
        [("input", "rnn.lif"), ("rnn.lif", "rnn.w"), ("rnn.w", "rnn.lif"), ("rnn.lif", "output")],
    )
    tree = graph_tree({"input": inp, "layer.1": sub, "output": out}, [("input", "layer.1"), ("layer.1", "output")])
    write_raw(tmp_path / "nested.nir", tree)
    g = read_nir(tmp_path / "nested.nir")
    inner = g.nodes["layer.1"]
    assert isinstance(inner, ir.Graph) and inner.recurrent_edges == [("rnn.w", "rnn.lif")]
    write_nir(tmp_path / "again.nir", g)
    assert ir.graph_differences(g, read_nir(tmp_path / "again.nir")) == []


def test_flatten_with_a_torch_batch_offset_is_recognised(tmp_path):
    inp, out = io([2, 3, 3])
    out["shape"] = np.array([4])
    nodes = {
        "input": inp,
        "flat": {"type": "Flatten", "start_dim": np.int64(1), "end_dim": np.int64(-1)},  # torch dims: 1 = first feature
        "fc": {"type": "Affine", "weight": np.ones((4, 18), F32), "bias": np.zeros(4, F32)},
        "output": out,
    }
    write_raw(tmp_path / "flat.nir", graph_tree(nodes, [("input", "flat"), ("flat", "fc"), ("fc", "output")]))
    g = read_nir(tmp_path / "flat.nir")
    assert (g.nodes["flat"].start_dim, g.nodes["flat"].output_shape) == (0, (18,))
    assert g.nodes["flat"].metadata["nir"]["flatten_batch_offset"] is True
    # a batchless start_dim=1 that fits its successor is read as written
    nodes["fc"]["weight"] = np.ones((4, 9), F32)
    nodes["flat"]["end_dim"] = np.int64(2)
    nodes["fc"] = {"type": "Linear", "weight": np.ones((4, 9), F32)}
    out["shape"] = np.array([2, 4])
    write_raw(tmp_path / "flat2.nir", graph_tree(nodes, [("input", "flat"), ("flat", "fc"), ("fc", "output")]))
    g = read_nir(tmp_path / "flat2.nir")
    assert (g.nodes["flat"].start_dim, g.nodes["flat"].output_shape) == (1, (2, 9))
    assert "nir" not in g.nodes["flat"].metadata


def test_empty_edges_quirk_and_missing_boundaries_are_handled_like_nir(tmp_path):
    inp, out = io([2])
    write_raw(tmp_path / "empty.nir", graph_tree({"input": inp, "output": out}, []))
    assert h5py.File(tmp_path / "empty.nir")["node/edges"].dtype == np.float64
    g = read_nir(tmp_path / "empty.nir")
    assert sorted(g.nodes) == sorted(nir.read(tmp_path / "empty.nir").nodes)
    # a root that is not an Input and a leaf that is not an Output get boundary nodes, named as nir names them
    nodes = {"a": {"type": "Linear", "weight": np.ones((3, 2), F32)}, "lif": lif_fields(3)}
    write_raw(tmp_path / "bare.nir", graph_tree(nodes, [("a", "lif")]))
    g = read_nir(tmp_path / "bare.nir")
    ref = nir.read(tmp_path / "bare.nir")
    assert sorted(g.nodes) == sorted(ref.nodes) == ["a", "input_a", "lif", "output_lif"]
    assert sorted(g.edges) == sorted(ref.edges)


def test_zero_d_parameters_are_broadcast(tmp_path):
    # scalar neuron parameters (NIR #176, snnTorch #334/#410): nir itself cannot type-check them
    inp, out = io([3])
    out["shape"] = np.array([4])
    lif = {
        "type": "LIF",
        "tau": np.float64(1e-3),
        "r": np.float64(10.0),
        "v_leak": np.float64(0.0),
        "v_threshold": np.float64(1.0),
    }
    nodes = {"input": inp, "fc": {"type": "Linear", "weight": np.ones((4, 3), F32)}, "lif": lif, "output": out}
    write_raw(tmp_path / "scalar.nir", graph_tree(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    with pytest.raises(ValueError, match="type mismatch"):
        nir.read(tmp_path / "scalar.nir")
    g = read_nir(tmp_path / "scalar.nir")
    assert g.nodes["lif"].tau.tolist() == [10.0] * 4 and g.nodes["lif"].r.tolist() == [10.0] * 4
    write_nir(tmp_path / "full.nir", g)  # written with full arrays, which nir can type-check
    assert nir.read(tmp_path / "full.nir").nodes["lif"].tau.shape == (4,)
    assert ir.graph_differences(g, read_nir(tmp_path / "full.nir")) == []


def test_missing_shape_annotations_are_inferred(tmp_path):
    # a Conv2d without input_shape (nir 1.0.8 cannot even build it) and a Flatten without input_type
    inp, out = io([1, 4, 4])
    out["shape"] = np.array([8])
    nodes = {
        "input": inp,
        "conv": {"type": "Conv2d", "weight": np.ones((2, 1, 3, 3), F32), "bias": np.zeros(2, F32),
                 "stride": np.int64(1), "padding": np.int64(1), "dilation": np.int64(1), "groups": np.int64(1)},
        "flat": {"type": "Flatten", "start_dim": np.int64(0), "end_dim": np.int64(-1)},
        "fc": {"type": "Linear", "weight": np.ones((8, 32), F32)},
        "output": out,
    }  # fmt: skip
    edges = [("input", "conv"), ("conv", "flat"), ("flat", "fc"), ("fc", "output")]
    write_raw(tmp_path / "bare.nir", graph_tree(nodes, edges))
    g = read_nir(tmp_path / "bare.nir")
    assert g.nodes["conv"].output_shape == (2, 4, 4) and g.nodes["flat"].output_shape == (32,)
    write_nir(tmp_path / "full.nir", g)
    assert list(nir.read(tmp_path / "full.nir").nodes["conv"].input_shape) == [4, 4]
    assert ir.graph_differences(g, read_nir(tmp_path / "full.nir")) == []


def test_wrong_shape_annotations_need_type_check_false(tmp_path):
    inp, out = io([1, 4, 4])
    out["shape"] = np.array([2, 4, 4])
    conv = {"type": "Conv2d", "weight": np.ones((2, 1, 3, 3), F32), "bias": np.zeros(2, F32),
            "input_shape": np.array([5, 5]), "stride": np.int64(1), "padding": np.int64(1),
            "dilation": np.int64(1), "groups": np.int64(1)}  # fmt: skip
    write_raw(
        tmp_path / "stale.nir",
        graph_tree({"input": inp, "conv": conv, "output": out}, [("input", "conv"), ("conv", "output")]),
    )
    with pytest.raises(
        ir.ConversionError, match=r"node 'conv' \(Conv2d\) declares input_shape \[1, 5, 5\].*\[1, 4, 4\]"
    ):
        read_nir(tmp_path / "stale.nir")
    with pytest.warns(UserWarning, match="type_check=False"):
        g = read_nir(tmp_path / "stale.nir", type_check=False)
    assert g.nodes["conv"].output_shape == (2, 4, 4)
    assert "replaced by [1, 4, 4]" in g.nodes["conv"].metadata["nir"]["type_check"]


def test_duplicate_edges_are_summed_and_flagged_on_writing(tmp_path):
    inp, out = io([2])
    nodes = {"input": inp, "a": {"type": "Linear", "weight": np.eye(2, dtype=F32)}, "output": out}
    write_raw(tmp_path / "dup.nir", graph_tree(nodes, [("input", "a"), ("input", "a"), ("a", "output")]))
    g = read_nir(tmp_path / "dup.nir")
    assert g.edges.count(("input", "a")) == 2
    with pytest.warns(NIRCompatibilityWarning, match="duplicate edges"):
        write_nir(tmp_path / "again.nir", g)


# ---- bad files --------------------------------------------------------------------------------------


def test_files_that_are_not_nir_graphs(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_nir(tmp_path / "missing.nir")
    (tmp_path / "text.nir").write_text("not hdf5")
    with pytest.raises(NIRFormatError, match="cannot be opened as HDF5"):
        read_nir(tmp_path / "text.nir")
    ir.write(tmp_path / "model.t1c", chain([2], ("a", ir.Linear(np.eye(2)))))
    with pytest.raises(NIRFormatError, match=r"talon \.t1c file.*talon\.ir\.read"):
        read_nir(tmp_path / "model.t1c")
    write_h5(tmp_path / "events.h5", np.zeros(3, EVENT_DTYPE), sensor_size=(4, 4))
    with pytest.raises(NIRFormatError, match=r"talon event file, not a NIR file.*talon\.io\.read_events"):
        read_nir(tmp_path / "events.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    with pytest.raises(NIRFormatError, match=r"no 'node' group \(found \['data'\]\)"):
        read_nir(tmp_path / "other.h5")


BROKEN = [
    ("no-type", {"a": {"weight": np.eye(2)}}, NIRFormatError, r"node 'a' has no 'type'"),
    ("no-weight", {"a": {"type": "Linear"}}, NIRFormatError, r"node 'a' \(Linear\) has no 'weight'"),
    (
        "unknown-type",
        {"a": {"type": "Identity", "shape": np.array([2])}},
        ir.ConversionError,
        r"node 'a' has NIR type 'Identity'",
    ),
    (
        "wrong-shape",
        {"a": {"type": "Linear", "weight": np.eye(3)}},
        ir.ConversionError,
        r"expects inputs of 3 features",
    ),
    (
        "bad-threshold",
        {"a": {"type": "Threshold", "threshold": np.array(["x", "y"], dtype=object)}},
        NIRFormatError,
        "not numeric",
    ),
]


@pytest.mark.parametrize(("nodes", "error", "match"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_broken_nodes_are_named(tmp_path, nodes, error, match):
    inp, out = io([2])
    tree = graph_tree({"input": inp, **nodes, "output": out}, [("input", "a"), ("a", "output")])
    write_raw(tmp_path / "broken.nir", tree)
    with pytest.raises(error, match=match):
        read_nir(tmp_path / "broken.nir")


def test_malformed_edges(tmp_path):
    inp, out = io([2])
    write_raw(tmp_path / "e.nir", graph_tree({"input": inp, "output": out}, []))
    with h5py.File(tmp_path / "e.nir", "a") as f:
        del f["node/edges"]
        f["node/edges"] = np.array([1.0, 2.0, 3.0])
    with pytest.raises(NIRFormatError, match=r"edges must be \(source, destination\) pairs"):
        read_nir(tmp_path / "e.nir")


# ---- writing --------------------------------------------------------------------------------------


def test_a_failed_write_leaves_the_previous_file(tmp_path, monkeypatch):
    good = chain([2], ("a", ir.Linear(np.eye(2, dtype=F32))))
    path = tmp_path / "model.nir"
    write_nir(path, good)
    before = path.read_bytes()
    with pytest.raises(ir.ConversionError):
        write_nir(path, chain([1, 4, 4], ("p", ir.MaxPool2d(2))))

    def broken_write(target, tree, version, **kw):  # target: the temporary file (open r+b)
        if hasattr(target, "write"):
            target.write(b"half a file")
        else:
            with open(target, "wb") as fh:
                fh.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(files, "write_nir_dict", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_nir(path, good)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.nir"]


def test_nir_108_cannot_type_check_non_square_or_grouped_convolutions(tmp_path):
    """Pinned nir bugs (nir.md §1.3, no upstream issue): talon writes the exact file and reads it back."""
    assert nir.version == "1.0.8"
    rng = np.random.default_rng(0)
    graph = chain(
        [2, 9, 9],
        ("wide", ir.Conv2d(rng.normal(size=(4, 2, 3, 5)).astype(F32))),
        ("grouped", ir.Conv2d(rng.normal(size=(4, 2, 3, 3)).astype(F32), groups=2)),
    )
    with pytest.warns(NIRCompatibilityWarning, match=r"'wide' has a 3x5 kernel; Conv2d 'grouped' has groups=2"):
        write_nir(tmp_path / "conv.nir", graph)
    with pytest.raises(ValueError, match="type mismatch"):
        nir.read(tmp_path / "conv.nir")
    raw = nir.read(tmp_path / "conv.nir", type_check=False)
    assert list(raw.nodes["wide"].output_type["output"]) == [4, 7, 7]  # nir's inference: wrong (7x5 is right)
    back = read_nir(tmp_path / "conv.nir")
    assert back.nodes["wide"].output_shape == (4, 7, 5) and back.nodes["grouped"].output_shape == (4, 5, 3)
    assert ir.graph_differences(graph, back, metadata=False) == []


def test_uncompressed_writing(tmp_path):
    graph = chain([2], ("a", ir.Linear(np.eye(2, dtype=F32))))
    write_nir(tmp_path / "plain.nir", graph, compression=None)
    with h5py.File(tmp_path / "plain.nir") as f:
        assert f["node/nodes/a/weight"].compression is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ir.graph_differences(graph, read_nir(tmp_path / "plain.nir"), metadata=False) == []


def test_a_scalar_scale_writes_and_reads_back(tmp_path):
    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "s": ir.Scale(np.float32(2.0)), "output": ir.Output(np.array([3]))},
        [("input", "s"), ("s", "output")],
    )
    write_nir(tmp_path / "s.nir", graph)
    back = read_nir(tmp_path / "s.nir")
    assert ir.graph_differences(graph, back, metadata=False) == []


def test_a_flatten_with_a_batch_offset_is_written_back_with_it(tmp_path):
    """A file whose Flatten dims count the batch (snnTorch/Norse style) reads with the offset
    removed and writes back with it, so their importers read the same file again."""
    import h5py
    import nir

    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2, 3, 3])),
            "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=1, end_dim=-1),
            "fc": nir.Affine(weight=np.ones((4, 18), np.float32), bias=np.zeros(4, np.float32)),
            "output": nir.Output(np.array([4])),
        },
        edges=[("input", "flat"), ("flat", "fc"), ("fc", "output")],
        type_check=False,
    )
    nir.write(tmp_path / "in.nir", graph)
    talon_graph = read_nir(tmp_path / "in.nir")
    assert (talon_graph.nodes["flat"].start_dim, talon_graph.nodes["flat"].output_shape) == (0, (18,))
    write_nir(tmp_path / "out.nir", talon_graph)
    with h5py.File(tmp_path / "out.nir") as f:
        assert int(f["node/nodes/flat/start_dim"][()]) == 1


def test_writing_back_with_defaults_uses_the_dt_the_file_recorded(tmp_path):
    """NIR (dt 1e-3) -> talon -> .t1c -> NIR with every default gives the file's dt and parameters back."""
    lif = nir.LIF(
        tau=np.full(4, 5e-3, np.float32),
        r=np.ones(4, np.float32),
        v_leak=np.zeros(4, np.float32),
        v_threshold=np.ones(4, np.float32),
        v_reset=np.zeros(4, np.float32),
    )
    nodes = {"input": nir.Input(np.array([4])), "lif": lif, "d": nir.Delay(delay=np.full(4, 2e-3, np.float32))}
    nodes["output"] = nir.Output(np.array([4]))
    edges = [("input", "lif"), ("lif", "d"), ("d", "output")]
    nir.write(tmp_path / "a.nir", nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-3}))
    graph = read_nir(tmp_path / "a.nir")
    assert graph.metadata["nir"]["dt"] == 1e-3 and graph.nodes["lif"].tau[0] == np.float32(5.0)
    ir.write(tmp_path / "a.t1c", graph)
    write_nir(tmp_path / "b.nir", ir.read(tmp_path / "a.t1c"))
    back = nir.read(tmp_path / "b.nir")
    assert back.metadata["dt"] == 1e-3
    assert same_bits(back.nodes["lif"].tau, lif.tau) and same_bits(back.nodes["d"].delay, nodes["d"].delay)
    # an explicit dt still wins, and a graph that never came from NIR is written at 1e-4
    write_nir(tmp_path / "c.nir", graph, dt=1e-4)
    assert nir.read(tmp_path / "c.nir").metadata["dt"] == 1e-4
    write_nir(tmp_path / "d.nir", chain([2], ("a", ir.Linear(np.eye(2)))))
    assert nir.read(tmp_path / "d.nir").metadata["dt"] == 1e-4
