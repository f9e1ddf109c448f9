"""talon <-> NIR conversion: metadata and dt, argument checks, cyclic graphs with identities, the
integration order (the rest is in ``test_nir_convert.py``)."""

from __future__ import annotations

import sys

import nir
import numpy as np
import pytest

from talon import ir
from talon.interop.nir import (
    from_nir,
    read_nir,
    to_nir,
    write_nir,
)
from tests.subprocesses import child_env

from .nir_helpers import chain, nir_chain
from .test_nir_convert import TALON_GRAPHS

DT = 1e-4
F32 = np.float32


# ---- metadata and dt --------------------------------------------------------------------------


def test_metadata_survives_a_nir_file_with_its_python_types(tmp_path):
    graph = chain([2], ("a", ir.Linear(np.eye(2, dtype=F32))))
    graph.metadata.update(
        {
            "name": "net",
            "epochs": 3,
            "lr": 1e-3,
            "flags": (True, None),
            "nested": {"array": np.arange(3), "scalar": np.float32(2.5), 7: "int key", "zero_d": np.array(1.5)},
            "talon_like_key": [1, 2],
            "dt": "a user's own dt entry",
        }
    )
    graph.nodes["a"].metadata["trained"] = {"acc": np.float64(0.93), "note": "ok"}
    write_nir(tmp_path / "m.nir", graph)
    back = read_nir(tmp_path / "m.nir")
    assert back.metadata.pop("nir") == {"dt": DT}
    assert ir.graph_differences(graph, back) == []
    raw = nir.read(tmp_path / "m.nir")  # other tools see native NIR metadata where possible
    assert raw.metadata["name"] == "net" and float(raw.metadata["dt"]) == DT
    assert raw.nodes["a"].metadata["trained"]["note"] == "ok"


def test_dt_is_recorded_and_used(tmp_path):
    graph = chain([1], ("lif", ir.LIF(tau=[20.0], r=[20.0], comparison=">")))
    write_nir(tmp_path / "g.nir", graph, dt=1e-3)
    assert float(nir.read(tmp_path / "g.nir").metadata["dt"]) == 1e-3
    np.testing.assert_allclose(nir.read(tmp_path / "g.nir").nodes["lif"].tau, [0.02])
    back = read_nir(tmp_path / "g.nir")  # dt=None: the file's dt
    assert back.metadata["nir"]["dt"] == 1e-3 and back.nodes["lif"].tau.tolist() == [20.0]
    with pytest.warns(UserWarning, match=r"records dt=0.001 s but dt=0.0001 s"):
        other = read_nir(tmp_path / "g.nir", dt=1e-4)
    assert other.nodes["lif"].tau.tolist() == [200.0]


@pytest.mark.parametrize("dt", [0, -1e-4, float("nan"), float("inf"), "x", True])
def test_bad_dt_is_refused(dt):
    graph = chain([1], ("a", ir.Linear(np.eye(1))))
    with pytest.raises(ValueError, match="dt"):
        to_nir(graph, dt=dt)
    with pytest.raises(ValueError, match="dt"):
        from_nir(to_nir(graph), dt=dt)


def test_nir_dicts_convert_like_nir_graphs():
    nir_graph = to_nir(dict(TALON_GRAPHS)["nested-rnn"])
    assert ir.graph_differences(from_nir(nir_graph.to_dict()), from_nir(nir_graph)) == []


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"talon\.ir\.Graph"):
        to_nir(nir_chain([1]))
    with pytest.raises(TypeError, match=r"nir\.NIRGraph"):
        from_nir(42)
    with pytest.raises(ir.ConversionError, match="'NIRGraph'"):
        from_nir({"type": "LIF"})
    with pytest.raises(TypeError, match="type_check"):
        from_nir(nir_chain([1]), type_check="no")


def test_missing_nir_package_names_the_extra(monkeypatch, tmp_path):
    graph = chain([1], ("a", ir.Linear(np.eye(1))))
    write_nir(tmp_path / "g.nir", graph)
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ir.MissingDependencyError, match=r"pip install -e '\.\[nir\]' in the talon checkout"):
        to_nir(graph)
    with pytest.raises(ir.MissingDependencyError, match=r"pip install -e '\.\[nir\]' in the talon checkout"):
        write_nir(tmp_path / "h.nir", graph)
    assert ir.graph_differences(read_nir(tmp_path / "g.nir"), graph, metadata=False) == []  # reading needs h5py only


def test_talon_interop_nir_imports_neither_torch_nor_jax():
    import subprocess

    code = (
        "import sys; import talon.interop.nir as m; m.read_nir; "
        "assert not any(k in sys.modules for k in ('torch', 'jax')), [k for k in ('torch', 'jax') if k in sys.modules]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=child_env())


def _random_cyclic_graph(seed: int) -> ir.Graph:
    """Random wiring of NIR-expressible neurons, scales and identities (Skip, Dropout), with
    feedback edges: the recurrent edges depend on edge order (docs/semantics.md §2)."""
    rng = np.random.default_rng(seed)
    n = 3
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array([n]))}
    edges, names = [], ["input"]
    for k in range(6):
        kind = rng.choice(["lif", "scale", "skip", "dropout"])
        if kind == "lif":
            node = ir.LIF(tau=rng.uniform(1.5, 4, n), r=rng.uniform(0.5, 2, n), reset_mode="value", comparison=">")
        elif kind == "scale":
            node = ir.Scale(rng.uniform(-1, 1, n).astype(np.float32))
        elif kind == "skip":
            node = ir.Skip("residual")
        else:
            node = ir.Dropout(p=0.5)
        name = f"{kind}{k}"
        nodes[name] = node
        for src in rng.choice(names, size=min(len(names), int(rng.integers(1, 3))), replace=False):
            edges.append((str(src), name))
        names.append(name)
    for _ in range(int(rng.integers(1, 3))):
        a, b = rng.choice(names[1:], 2)
        edges.append((str(a), str(b)))
    nodes["output"] = ir.Output(np.array([n]))
    edges.append((names[-1], "output"))
    return ir.Graph(nodes, edges)


@pytest.mark.filterwarnings("ignore::talon.interop.nir.exporter.NIRCompatibilityWarning")
@pytest.mark.parametrize("seed", range(40))
def test_cyclic_graphs_with_identities_compute_the_same_after_a_nir_round_trip(seed):
    """Dropping an identity reorders edges, which could move the recurrent edge of another cycle;
    in cyclic graphs the exporter keeps identities (as Scale(1)), so the round trip computes the same."""
    from talon.backend import get_backend

    graph = _random_cyclic_graph(seed)
    back = from_nir(to_nir(graph))
    x = (np.random.default_rng(seed).integers(0, 12, (10, 2, 3)) / 8).astype(np.float32)
    cpu = get_backend("cpu")
    np.testing.assert_array_equal(cpu.simulate(back, inputs=x).outputs["output"],
                                  cpu.simulate(graph, inputs=x).outputs["output"])  # fmt: skip


def test_bad_parameters_of_weight_nodes_name_the_node():
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([2])),
            "a": nir.Affine(weight=np.ones((2, 2), np.float32), bias=np.ones(5, np.float32)),
            "output": nir.Output(np.array([2])),
        },
        edges=[("input", "a"), ("a", "output")],
        type_check=False,
    )
    with pytest.raises(ir.ConversionError, match=r"node 'a' \(Affine\): Affine: bias has 5 entries"):
        from_nir(graph)


def test_the_integration_order_survives_a_round_trip_and_can_be_chosen(tmp_path):
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "lif": ir.LIF(tau=np.full(3, 25.0), r=1.0, comparison=">", integration="euler"),
            "li": ir.LI(tau=np.full(3, 10.0), integration="euler"),
            "output": ir.Output(np.array([3])),
        },
        [("input", "lif"), ("lif", "li"), ("li", "output")],
    )
    write_nir(tmp_path / "e.nir", graph)
    back = read_nir(tmp_path / "e.nir")
    assert back.nodes["lif"].integration == "euler" and back.nodes["li"].integration == "euler"
    assert from_nir(to_nir(graph)).nodes["lif"].integration == "euler"
    assert read_nir(tmp_path / "e.nir", integration="decay").nodes["lif"].integration == "decay"
    reset_free = ir.Graph(  # lowered to LI + Threshold: the LI keeps the order
        {"input": ir.Input(np.array([3])), "lif": ir.LIF(tau=np.full(3, 25.0), reset_mode="none", comparison=">",
                                                          integration="euler"), "output": ir.Output(np.array([3]))},
        [("input", "lif"), ("lif", "output")],
    )  # fmt: skip
    assert from_nir(to_nir(reset_free)).nodes["lif"].integration == "euler"
    with pytest.raises(ValueError, match="'sideways' is not a valid Integration"):
        read_nir(tmp_path / "e.nir", integration="sideways")
