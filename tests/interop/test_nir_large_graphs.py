"""``to_nir`` on large graphs: its work grows linearly with the graph (counted, never timed)."""

from __future__ import annotations

import warnings

import pytest

from talon import ir
from talon.examples import blocks_graph
from talon.interop.nir import LossyConversionWarning, NIRCompatibilityWarning, to_nir
from talon.ir.graph import EdgeList


def _dag(n_nodes: int) -> ir.Graph:
    """``blocks_graph`` without its recurrent edges: a DAG whose residual Skips the exporter may
    remove, which asks for the edges of each one and of its successors."""
    graph = blocks_graph(n_nodes)
    recurrent = set(graph.recurrent_edges)
    return ir.Graph(graph.nodes, [e for e in graph.edges if e not in recurrent])


def _edges_read(graph: ir.Graph, monkeypatch) -> int:
    """Edges read by every pass over an edge list (``for``, ``enumerate``, ``list()``, ``zip``) in ``to_nir``."""
    visits = [0]
    original = list.__iter__

    def counting(self):
        visits[0] += len(self)
        return original(self)

    with monkeypatch.context() as patch:
        patch.setattr(EdgeList, "__iter__", counting)
        with warnings.catch_warnings():  # blocks_graph's neurons reset as snnTorch does: lossy in NIR
            warnings.simplefilter("ignore", LossyConversionWarning)
            warnings.simplefilter("ignore", NIRCompatibilityWarning)
            exported = to_nir(graph, lossy=True)
    assert len(exported.nodes) < len(graph.nodes)  # the residual Skips were removed
    return visits[0]


def _all_edges(graph: ir.Graph) -> int:
    return len(graph.edges) + sum(_all_edges(n) for n in graph.nodes.values() if isinstance(n, ir.Graph))


def test_to_nir_reads_the_edges_a_fixed_number_of_times(monkeypatch):
    """Edges read per edge of the graph is the same at 300 and 3,000 nodes (linear work); looking
    up each Skip's edges with a scan read all edges per Skip (10x more per edge at 3,000)."""
    small, large = _dag(300), _dag(3_000)
    per_edge = [_edges_read(g, monkeypatch) / _all_edges(g) for g in (small, large)]
    assert per_edge[1] == pytest.approx(per_edge[0], rel=0.05), per_edge
