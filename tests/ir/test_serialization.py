"""`.t1c` round trips (bit-exact), atomic writes, and refusal of bad files."""

import contextlib
import enum
import itertools
import os
import shutil

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from talon import ir
from talon.ir import T1CFormatError
from talon.ir import serialization as ser

from ..paths import NIR_PAPER
from .examples import EXAMPLES, chain_graph
from .t1c_craft import edit_manifest, edited, node_entry, store_manifest

NIR_FILE = NIR_PAPER / "01_lif__lif_norse.nir"


def roundtrip(graph, tmp_path, name="g.t1c"):
    path = tmp_path / name
    ir.write(path, graph)
    return ir.read(path)


def assert_identical(a, b):
    assert ir.graph_differences(a, b) == []


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_primitive_roundtrips_bit_exactly(name, tmp_path):
    graph = chain_graph(name)
    back = roundtrip(graph, tmp_path)
    assert_identical(graph, back)
    assert type(back.nodes["node"]) is type(graph.nodes["node"])


def test_graph_differences_detects_a_one_ulp_change(tmp_path):
    graph = chain_graph("Affine")
    back = roundtrip(graph, tmp_path)
    back.nodes["node"].weight[0, 0] = np.nextafter(back.nodes["node"].weight[0, 0], np.float32(np.inf))
    assert any("weight" in d for d in ir.graph_differences(graph, back))


dtypes = st.sampled_from(["<f2", "<f4", "<f8", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "|b1"])


@given(arr=dtypes.flatmap(lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0))))
def test_arrays_of_every_dtype_and_shape_are_bit_exact(arr, tmp_path_factory):
    node = ir.Scale(scale=arr)
    graph = ir.Graph({"s": node}, [], metadata={"arr": arr})
    back = roundtrip(graph, tmp_path_factory.mktemp("a"))
    out = back.nodes["s"].scale
    assert out.dtype == arr.dtype and out.shape == arr.shape
    assert out.tobytes() == arr.tobytes()
    assert back.metadata["arr"].tobytes() == arr.tobytes()


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.builds(np.float32, st.floats(width=32))
    | st.builds(np.int16, st.integers(-(2**15), 2**15 - 1))
    | hnp.arrays(np.float64, st.integers(0, 5))
)
metadata_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers() | st.text(max_size=3).map(lambda s: "$" + s), inner, max_size=3)
    ),
    max_leaves=12,
)


def _equal(a, b):
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, np.generic):
        return type(a) is type(b) and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    return type(a) is type(b) and a == b


@given(meta=st.dictionaries(st.text(), metadata_values, max_size=5), node_meta=metadata_values)
def test_metadata_roundtrips_with_its_types(meta, node_meta, tmp_path_factory):
    graph = ir.Graph(
        {"input": ir.Input(np.array([2]), metadata={"m": node_meta}), "output": ir.Output(np.array([2]))},
        [("input", "output")],
        metadata=meta,
    )
    back = roundtrip(graph, tmp_path_factory.mktemp("m"))
    assert _equal(back.metadata, meta)
    assert _equal(back.nodes["input"].metadata, {"m": node_meta})


@given(names=st.lists(st.text(min_size=1), min_size=1, max_size=12, unique=True))
def test_any_node_names_and_their_order_survive(names, tmp_path_factory):
    nodes = {n: ir.Scale(np.full(3, i, np.float32)) for i, n in enumerate(names)}
    edges = list(itertools.pairwise(names))
    graph = ir.Graph(nodes, edges)
    back = roundtrip(graph, tmp_path_factory.mktemp("n"))
    assert list(back.nodes) == names and back.edges == edges
    assert_identical(graph, back)


def test_cycles_subgraphs_and_routing_roundtrip(tmp_path):
    inner = ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "lif": ir.LIF(tau=np.full(4, 3.0), reset_mode="subtract", reset_timing="delayed", comparison=">"),
            "w_rec": ir.Linear(np.arange(16, dtype=np.float32).reshape(4, 4)),
            "output": ir.Output(np.array([4])),
        },
        [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
        metadata={"kind": "rnn"},
    )
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([8])),
            "split": ir.ChannelSplit(split_sections=[4, 4]),
            "rnn": inner,
            "skip": ir.Skip("concatenate"),
            "output": ir.Output(np.array([8])),
        },
        [("input", "split"), ("split", "rnn"), ("split", "skip"), ("rnn", "skip"), ("skip", "output")],
    )
    back = roundtrip(graph, tmp_path)
    assert_identical(graph, back)
    assert back.nodes["rnn"].recurrent_edges == [("w_rec", "lif")]
    assert back.nodes["rnn"].nodes["lif"].reset_timing is ir.ResetTiming.DELAYED


def test_seed_snn_file_is_no_larger_than_the_original(tmp_path):
    """Seed 002: a 784-128-10 snnTorch-style SNN was 420,864 bytes in the original."""
    rng = np.random.default_rng(0)
    beta = np.float32(0.9)
    tau = 1.0 / (1.0 - np.float64(beta))

    def lif(n):
        return ir.LIF(tau=np.full(n, tau), r=np.full(n, tau), v_leak=np.zeros(n), v_threshold=np.ones(n))

    graph = ir.Graph(
        {
            "input": ir.Input(np.array([784])),
            "fc1": ir.Affine(rng.standard_normal((128, 784)).astype(np.float32), np.zeros(128, np.float32)),
            "lif1": lif(128),
            "fc2": ir.Affine(rng.standard_normal((10, 128)).astype(np.float32), np.zeros(10, np.float32)),
            "lif2": lif(10),
            "output": ir.Output(np.array([10])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    )
    path = tmp_path / "snn_model.t1c"
    ir.write(path, graph)
    assert os.path.getsize(path) <= 420_864
    assert_identical(graph, ir.read(path))


def test_thousands_of_small_nodes_use_a_handful_of_datasets(tmp_path):
    n = 6000
    nodes = {f"n{i}": ir.Scale(np.full(4, i, np.float32)) for i in range(n)}
    graph = ir.Graph(nodes, [(f"n{i}", f"n{i + 1}") for i in range(n - 1)])
    path = tmp_path / "many.t1c"
    ir.write(path, graph)
    with h5py.File(path) as f:
        datasets = []
        f.visititems(lambda name, obj: datasets.append(name) if isinstance(obj, h5py.Dataset) else None)
    assert len(datasets) <= 3  # manifest + packed float32 (+ nothing per node)
    assert_identical(graph, ir.read(path))


def test_read_version(tmp_path):
    path = tmp_path / "v.t1c"
    ir.write(path, chain_graph("Affine"))
    assert ir.read_version(path) == str(ir.FORMAT_VERSION)


def test_write_creates_parent_folders(tmp_path):
    path = tmp_path / "models" / "deep" / "snn.t1c"
    ir.write(str(path), chain_graph("LIF"))
    assert path.exists()


# ---- atomic writes --------------------------------------------------------------------------


def test_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "model.t1c"
    ir.write(path, chain_graph("Affine"))
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ser, "_write_arrays", explode)
    with pytest.raises(RuntimeError, match="disk full"):
        ir.write(path, chain_graph("Conv2d"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.t1c"]  # no temporary left behind


def test_unstorable_metadata_is_refused_before_touching_the_file(tmp_path):
    path = tmp_path / "model.t1c"
    ir.write(path, chain_graph("Affine"))
    before = path.read_bytes()
    bad = chain_graph("Affine")
    bad.metadata["callback"] = print
    with pytest.raises(T1CFormatError, match=r"graph metadata\['callback'\].*builtin_function_or_method"):
        ir.write(path, bad)
    assert path.read_bytes() == before


# ---- bad input ------------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path, request):
    path = tmp_path / "good.t1c"
    ir.write(path, chain_graph("Conv2d"), format_version=getattr(request, "param", ir.FORMAT_VERSION))
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such \.t1c file"):
        ir.read(tmp_path / "nope.t1c")


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.t1c"
    path.write_text("hello, I am not HDF5")
    with pytest.raises(T1CFormatError, match="not a readable HDF5 file"):
        ir.read(path)


def test_truncated(good_file):
    data = good_file.read_bytes()
    for cut in (len(data) // 2, len(data) - 100, 600):
        good_file.write_bytes(data[:cut])
        with pytest.raises(T1CFormatError):
            ir.read(good_file)


def test_hdf5_of_another_layout_names_nir(tmp_path):
    path = tmp_path / "model.nir"
    shutil.copy(NIR_FILE, path)
    with pytest.raises(T1CFormatError, match="looks like a NIR file"):
        ir.read(path)


def test_an_event_recording_is_named_as_one(tmp_path):
    import talon.io as tio

    path = tmp_path / "recording.h5"
    tio.write_h5(path, tio.generate_random_events(10, (4, 4), seed=0), sensor_size=(4, 4))
    with pytest.raises(T1CFormatError, match=r"it is an event recording: read it with talon.io.read_events"):
        ir.read(path)


def test_newer_format_version(good_file):
    with edited(good_file) as f:
        f.attrs["format_version"] = ir.FORMAT_VERSION + 1
    with pytest.raises(T1CFormatError, match=r"newer than the version .* upgrade talon"):
        ir.read(good_file)
    assert ir.read_version(good_file) == str(ir.FORMAT_VERSION + 1)


def _drop_weight(m):
    del node_entry(m, 1)["params"]["weight"]


def _unknown_type(m):
    node_entry(m, 1)["type"] = "Warp9000"


def _absurd_shape(m):
    m["arrays"][0]["shape"] = [10**12, 10**12]


def _absurd_fill(m):
    m["arrays"][0].update(shape=[2**40], fill=True)


def _string_dtype(m):
    m["arrays"][0]["dtype"] = "|O"


def _wrong_dtype(m):
    m["arrays"][0]["dtype"] = "<f8"


def _weight_as_string(m):
    node_entry(m, 1)["params"]["weight"] = "heavy"


def _dangling_edge(m):
    m["graph"]["edges"].append(["node", "nowhere"])


def _bad_reference(m):
    node_entry(m, 1)["params"]["weight"] = {"$array": 999}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_drop_weight, r"node 'node' \(Conv2d\) cannot be rebuilt: .*missing .*'weight'"),
        (_unknown_type, "unknown type 'Warp9000'"),
        (_absurd_shape, r"array 0 needs 4,000,000,000,000,000,000,000,000 bytes.* budget of"),
        (_absurd_fill, "constant array of 1099511627776 elements exceeds the limit"),
        (_string_dtype, "unsupported dtype"),
        (_wrong_dtype, "packed reference.*out of range"),
        (_weight_as_string, "weight must be a real numeric array"),
        (_dangling_edge, "unknown node 'nowhere'"),
        (_bad_reference, "bad array reference 999"),
    ],
)
@pytest.mark.parametrize("good_file", [2, 3], ids=["format2", "format3"], indirect=True)
def test_damaged_manifest(good_file, edit, message):
    edit_manifest(good_file, edit)
    with pytest.raises(T1CFormatError, match=message):
        ir.read(good_file)


def test_missing_dataset_and_attribute(tmp_path):
    big = tmp_path / "big.t1c"
    ir.write(big, ir.Graph({"a": ir.Affine(np.random.default_rng(1).random((64, 64)))}, []))
    with edited(big) as f:
        del f["arrays"]
    with pytest.raises(T1CFormatError, match="dataset 'arrays/000000' is missing"):
        ir.read(big)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(T1CFormatError, match=r"not a \.t1c file"):
        ir.read(other)


def test_manifest_that_is_not_json(good_file):
    with edited(good_file) as f:
        store_manifest(f, "{not json")
    with pytest.raises(T1CFormatError, match="Expecting property name"):
        ir.read(good_file)


@given(data=st.data())
def test_random_corruption_never_escapes_as_another_error(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("c") / "c.t1c"
    ir.write(path, chain_graph("LIF"))
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    path.write_bytes(bytes(raw))
    with contextlib.suppress(T1CFormatError):
        ir.read(path)


def test_big_endian_arrays_read_back_little_endian_with_the_same_values(tmp_path):
    for n in (4, 4000):  # packed and own dataset
        arr = np.arange(n, dtype=">f4") * np.float32(0.1)
        back = roundtrip(ir.Graph({"s": ir.Scale(arr)}, []), tmp_path, f"be{n}.t1c").nodes["s"].scale
        assert back.dtype == np.dtype("<f4")
        assert np.array_equal(back, arr) and back.tobytes() == arr.astype("<f4").tobytes()


def test_complex_metadata_is_refused_at_write(tmp_path):
    graph = chain_graph("Affine")
    graph.metadata["z"] = np.complex64(1 + 2j)
    with pytest.raises(T1CFormatError, match="cannot store a numpy scalar of type complex64"):
        ir.write(tmp_path / "z.t1c", graph)


def test_an_enum_member_is_stored_only_when_it_equals_its_value(tmp_path):
    class Stage(enum.Enum):
        CALIBRATED = 1

    class Mode(enum.StrEnum):
        FAST = "fast"

    graph = chain_graph("Affine")
    graph.metadata["mode"] = Mode.FAST
    assert roundtrip(graph, tmp_path, "str_enum.t1c").metadata["mode"] == Mode.FAST
    graph.metadata["stage"] = Stage.CALIBRATED  # would read back as 1, which is not Stage.CALIBRATED
    with pytest.raises(T1CFormatError, match=r"metadata\['stage'\]: cannot store enum member Stage.CALIBRATED"):
        ir.write(tmp_path / "enum.t1c", graph)
    graph.metadata["stage"] = enum.Enum("Weights", {"W": np.zeros(2)}).W  # an array value: refused, not compared
    with pytest.raises(T1CFormatError, match=r"cannot store enum member Weights\.W"):
        ir.write(tmp_path / "enum_array.t1c", graph)
    graph.metadata["stage"] = enum.IntEnum("Level", {"HIGH": 3}).HIGH
    assert roundtrip(graph, tmp_path, "int_enum.t1c").metadata["stage"] == 3
