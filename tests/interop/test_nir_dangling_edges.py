"""Dangling edges: the NIR paper's ``braille_*_subgraph.nir`` and what the refusal tells the user.

The paper's subgraph file names its inner CubaLIF ``lif1`` but every inner edge says ``lif``. NIR
requires both ends of an edge to be nodes of its graph (nir 1.0.8 ``validate_structure``), so the
file is malformed and talon refuses it as ``nir.read`` does. The message names every dangling edge
and the renaming that repairs it; the repair shown in docs/nir.md ("Malformed files") gives the
flat ``braille_noDelay_bias_zero.nir`` network, bit for bit on every engine.
"""

from __future__ import annotations

import re
import shutil
import warnings

import h5py
import nir
import numpy as np
import pytest

from talon import ir
from talon.interop.nir import NIRFormatError, from_nir, read_nir
from tests.paths import NIR_PAPER

from .nir_helpers import ENGINES, run

SUBGRAPH = NIR_PAPER / "03_rnn__extras__braille_noDelay_bias_zero_subgraph.nir"
FLAT = NIR_PAPER / "03_rnn__braille_noDelay_bias_zero.nir"
DT = 1e-4


def repaired_copy(tmp_path):
    """The repair docs/nir.md shows: rename the inner node ``lif1`` to the ``lif`` its edges name."""
    copy = tmp_path / "braille_subgraph_repaired.nir"
    shutil.copyfile(SUBGRAPH, copy)
    with h5py.File(copy, "r+") as f:
        f.move("node/nodes/lif1/nodes/lif1", "node/nodes/lif1/nodes/lif")
    return copy


@pytest.mark.parametrize("type_check", [True, False])
def test_the_papers_subgraph_file_is_refused_naming_every_dangling_edge_and_the_repair(type_check):
    with pytest.raises(NIRFormatError) as info:
        read_nir(SUBGRAPH, dt=DT, type_check=type_check)
    message = str(info.value)
    assert message.startswith(
        f"{SUBGRAPH}: subgraph 'lif1' is malformed: 4 edges name a node 'lif' that does not exist"
    )
    for edge in ("('input', 'lif')", "('lif', 'lin')", "('lin', 'lif')", "('lif', 'output')"):
        assert edge in message
    assert "(its nodes: input, lif1, lin, output)" in message
    assert "No edge touches node 'lif1'. 'lif' most likely means node 'lif1'" in message
    assert "renaming node 'lif1' to 'lif' (or the edges' 'lif' to 'lif1')" in message
    assert 'docs/nir.md, "Malformed files"' in message
    # the standard's reader agrees that the file is malformed
    with pytest.raises(ValueError, match="references destination node 'lif' which does not exist"):
        nir.read(SUBGRAPH, type_check=type_check)


def test_the_repaired_copy_is_the_flat_papers_network_bit_for_bit_on_every_engine(tmp_path):
    copy = repaired_copy(tmp_path)
    nir.read(copy)  # the standard's reader accepts the repaired copy, type checks included
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neither file records dt
        nested, flat = read_nir(copy), read_nir(FLAT)
    sub = nested.nodes["lif1"]
    assert isinstance(sub, ir.Graph) and list(sub.nodes) == ["input", "lif", "lin", "output"]
    assert sub.recurrent_edges == [("lin", "lif")]
    for mine, theirs in (("lif", "lif1.lif"), ("lin", "lif1.w_rec")):
        assert (
            ir.graph_differences(
                ir.Graph({"n": sub.nodes[mine]}, []), ir.Graph({"n": flat.nodes[theirs]}, []), metadata=False
            )
            == []
        )
    x = (np.random.default_rng(5).random((64, 2, 12)) < 0.3).astype(np.float32)
    for engine in ENGINES:
        a, b = run(engine, nested, x)["outputs"]["output"], run(engine, flat, x)["outputs"]["output"]
        assert 0 < a.sum() < a.size, engine  # the output neurons fire, not on every step
        np.testing.assert_array_equal(a, b, err_msg=engine)


def _lif(n: int) -> dict:
    return {"type": "LIF", **{k: np.full(n, v) for k, v in (("tau", 2e-3), ("r", 1.0), ("v_leak", 0.0))},
            "v_threshold": np.ones(n)}  # fmt: skip


def _io(n: int) -> tuple[dict, dict]:
    return {"type": "Input", "shape": np.array([n])}, {"type": "Output", "shape": np.array([n])}


def test_several_missing_names_each_get_the_closest_untouched_node():
    inp, out = _io(2)
    graph = {
        "type": "NIRGraph",
        "nodes": {"input": inp, "neuron_a": _lif(2), "neuron_b": _lif(2), "output": out},
        "edges": [("input", "neuronA"), ("neuronA", "neuronB"), ("neuronB", "output")],
    }
    with pytest.raises(NIRFormatError) as info:
        from_nir(graph, dt=1e-4)
    message = str(info.value)
    assert "2 edges name a node 'neuronA' that does not exist: ('input', 'neuronA'), ('neuronA', 'neuronB')" in message
    assert "2 edges name a node 'neuronB'" in message
    assert "No edge touches nodes 'neuron_a', 'neuron_b'." in message
    assert "renaming node 'neuron_a' to 'neuronA', node 'neuron_b' to 'neuronB'" in message


def test_no_repair_is_guessed_when_the_file_does_not_say_which_node_was_meant():
    inp, out = _io(2)
    graph = {
        "type": "NIRGraph",
        "nodes": {"input": inp, "p": _lif(2), "q": _lif(2), "output": out},
        "edges": [("input", "x"), ("x", "output")],
    }
    with pytest.raises(NIRFormatError) as info:
        from_nir(graph, dt=1e-4)
    message = str(info.value)
    assert re.search(
        r"is malformed: 2 edges name a node 'x' that does not exist.*No edge touches nodes 'p', 'q'\.", message
    )
    assert "most likely" not in message and "so that every edge names one of the graph's nodes" in message
