"""Format 3 node tables: round trips, independent nodes, bulk checks that refuse exactly what the constructor does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from talon import ir
from talon.ir import T1CFormatError, t1c_tables
from talon.ir.node import _REGISTRY

from .examples import EXAMPLES
from .t1c_craft import edited, load_manifest

BATCHED = sorted(name for name, cls in _REGISTRY.items() if cls.__dict__.get("_batch_check"))
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 1e300, -1e-300, 0.5, 3.0]


def _many(count: int, seed: int = 0):
    """A chain of ``count`` Affine 6x6 + LIF 6 pairs (random values) plus a few other batched types."""
    rng = np.random.default_rng(seed)
    nodes = {"input": ir.Input(np.array([6]))}
    for i in range(count):
        nodes[f"fc{i}"] = ir.Affine(rng.standard_normal((6, 6)).astype(np.float32), rng.standard_normal(6))
        nodes[f"lif{i}"] = ir.LIF(tau=rng.uniform(2, 20, 6), v_threshold=rng.uniform(0.5, 1.5, 6), comparison=">")
    for i in range(3):
        nodes[f"scale{i}"] = ir.Scale(rng.standard_normal(6))
        nodes[f"delay{i}"] = ir.Delay(rng.integers(0, 4, 6))
        # types without _batch_check: a table of them is read node by node through the constructor
        stats = rng.standard_normal((4, 6)).astype(np.float32)
        nodes[f"bn{i}"] = ir.BatchNorm1d(6, stats[0], stats[1], stats[2], stats[3] ** 2)
        nodes[f"relu{i}"] = ir.ReLU(features=6, negative_slope=0.1)
    nodes["output"] = ir.Output(np.array([6]))
    return ir.Graph(nodes, list(itertools.pairwise(nodes)), metadata={"note": "tables"})


def test_many_nodes_round_trip_bit_exactly_in_a_few_tables(tmp_path):
    graph = _many(40)
    path = tmp_path / "many.t1c"
    ir.write(path, graph)
    back = ir.read(path)
    assert ir.graph_differences(graph, back) == [] and list(back.nodes) == list(graph.nodes)
    assert back.edges == graph.edges and back.metadata == graph.metadata
    with edited(path) as f:
        tables = load_manifest(f)["graph"]["tables"]
    assert [(t["type"], len(t["names"])) for t in tables] == [
        ("Input", 1), ("Affine", 40), ("LIF", 40), ("Scale", 3), ("Delay", 3), ("BatchNorm1d", 3), ("ReLU", 3),
        ("Output", 1)
    ]  # fmt: skip
    for name in ("fc3", "lif7", "delay2", "bn1", "relu2"):
        assert type(back.nodes[name]) is type(graph.nodes[name])
        assert back.nodes[name].__dict__.keys() == graph.nodes[name].__dict__.keys()


def test_nodes_read_from_one_table_share_nothing_mutable(tmp_path):
    path = tmp_path / "many.t1c"
    ir.write(path, _many(5))
    back = ir.read(path)
    a, b = back.nodes["lif1"], back.nodes["lif2"]
    before = b.tau.copy()
    a.tau[:] = 99.0
    a.input_type["input"][0] = 7
    a.metadata["mine"] = 1
    assert np.array_equal(b.tau, before) and b.input_shape == (6,) and b.metadata == {}
    assert a._declared_types[0] is not b._declared_types[0]


def test_format_2_is_still_written_on_request(tmp_path):
    graph = _many(3)
    path = tmp_path / "v2.t1c"
    ir.write(path, graph, format_version=2)
    assert ir.read_version(path) == "2"
    assert ir.graph_differences(graph, ir.read(path)) == []
    with pytest.raises(ValueError, match=r"format_version must be one of \(2, 3\)"):
        ir.write(path, graph, format_version=1)


def test_a_bad_value_in_one_row_is_refused_naming_that_node(tmp_path):
    rng = np.random.default_rng(3)
    nodes = {"input": ir.Input(np.array([64]))}
    for i in range(10):
        nodes[f"lif{i}"] = ir.LIF(tau=rng.uniform(2, 20, 64))
    nodes["output"] = ir.Output(np.array([64]))
    path = tmp_path / "bad.t1c"
    ir.write(path, ir.Graph(nodes, list(itertools.pairwise(nodes))))
    with edited(path) as f:
        manifest = load_manifest(f)
        table = next(t for t in manifest["graph"]["tables"] if t["type"] == "LIF")
        tau = manifest["arrays"][table["columns"][table["params"]["tau"]["$array"]]]
        data = f[tau["dataset"]][()]  # 10 rows x 64 x 8 bytes: a dataset of its own
        data[6, 17] = -2.0
        f[tau["dataset"]][...] = data
    with pytest.raises(T1CFormatError, match=r"graph node 'lif6' \(LIF\) cannot be rebuilt: LIF: tau must be > 0"):
        ir.read(path)


def _table_of(node: ir.Node, rows: int) -> tuple[dict, list[np.ndarray]]:
    """The format-3 table of ``rows`` copies of ``node`` (its columns as a list indexed by the table)."""
    graph = ir.Graph({"n": node}, [])
    arrays: list[np.ndarray] = []
    (table,) = t1c_tables.encode_tables(graph, arrays, "graph", 0)["tables"]
    table["names"] = [f"n{r}" for r in range(rows)]
    columns = [np.ascontiguousarray(np.repeat(arrays[c], rows, axis=0)) for c in table["columns"]]
    table["columns"] = list(range(len(columns)))
    return table, columns


def _outcome(build, *args):
    try:
        return "ok", build(*args)
    except ValueError as exc:
        return "refused", str(exc)


def _state(node: ir.Node) -> dict:
    out = {}
    for key, value in node.__dict__.items():
        if isinstance(value, np.ndarray):
            value = (value.dtype.str, value.shape, value.tobytes())
        elif key in ("input_type", "output_type") and value is not None:
            value = {p: a.tolist() for p, a in value.items()}
        elif key == "_declared_types" and value is not None:
            value = tuple(None if t is None else {p: a.tolist() for p, a in t.items()} for t in value)
        out[key] = value
    return out


# neuron options whose checks look at array values only in some modes
VARIANTS = {
    "LIF multi-spike": lambda: ir.LIF(
        tau=np.full(6, 5.0), v_threshold=np.full(6, 0.5), reset_mode="subtract", spike_mode="multi", max_spikes=3,
        v_min=np.full(6, -1.0),
    ),
    "IF multi-spike": lambda: ir.IF(v_threshold=np.full(4, 2.0), reset_mode="subtract", spike_mode="multi"),
    "CubaLIF v_min": lambda: ir.CubaLIF(tau_syn=np.full(3, 5.0), tau_mem=np.full(3, 9.0), v_min=np.zeros(3)),
    "LIF reset zero": lambda: ir.LIF(tau=np.full(4, 5.0), reset_mode="zero"),
}  # fmt: skip


@pytest.mark.parametrize("name", BATCHED + sorted(VARIANTS))
def test_bulk_checks_refuse_exactly_what_the_constructor_refuses(name, monkeypatch):
    """Rows with NaN, infinities, zeros, negatives ... placed at random: the table reader builds
    the same nodes as the constructor row by row, or refuses with the constructor's message."""
    if name in ("Input", "Output"):
        node = getattr(ir, name)(np.array([5]))
    elif name in VARIANTS:
        node = VARIANTS[name]()
    else:
        factory, in_shape, _ = EXAMPLES[name]
        node = factory()
        node.infer_types([in_shape])
    rng = np.random.default_rng(sum(map(ord, name)))
    rows = 5
    calls = []
    build = t1c_tables.build_node
    monkeypatch.setattr(t1c_tables, "build_node", lambda *a: calls.append(1) or build(*a))
    table, columns = _table_of(node, rows)
    t1c_tables._decode_table(table, columns, "graph", 0, None)
    assert len(calls) == 1  # a good table: the constructor builds the first row, the others are its copies
    refused = accepted = 0
    for _trial in range(40):
        table, columns = _table_of(node, rows)
        for col in columns:
            for _ in range(rng.binomial(2, 0.5 / len(columns))):
                flat = col.reshape(-1)
                if not flat.size:
                    continue
                value = rng.choice(SPECIAL)
                if flat.dtype.kind in "iub":
                    value = int(rng.choice([-3, -1, 0, 1, 2, 100]))
                    if flat.dtype.kind in "ub" and value < 0:
                        continue
                with np.errstate(over="ignore"):  # 1e300 in a float32 column is inf
                    flat[rng.integers(flat.size)] = value
        expected = _outcome(lambda t, c: [_one_row(t, c, r) for r in range(rows)], table, columns)
        actual = _outcome(t1c_tables._decode_table, table, columns, "graph", 0, None)
        assert expected[0] == actual[0], (expected, actual)
        if expected[0] == "ok":
            accepted += 1
            assert [_state(n) for n in expected[1]] == [_state(n) for n in actual[1]]
        else:
            refused += 1
            assert expected[1] == actual[1]
    assert accepted
    if type(node).__dict__["_batch_check"] == "elementwise":
        assert refused  # neuron parameters have value checks, and the corruption reached them


def _one_row(table: dict, columns: list[np.ndarray], r: int) -> ir.Node:
    """What the format-2 reader does for one node: decode its values and call the constructor."""
    from talon.ir.codec import decode
    from talon.ir.node import normalize_types

    where = f"graph node {table['names'][r]!r}"
    local = [c[r, ...].copy() for c in columns]
    cls = ir.str_to_node(table["type"])
    return t1c_tables.build_node(
        cls,
        table["type"],
        decode(table["params"], local, where),
        normalize_types(table.get("input_type"), "input", where),
        normalize_types(table.get("output_type"), "output", where),
        decode(table.get("metadata", {}), local, where),
        where,
    )
