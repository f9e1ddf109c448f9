"""The edge index of a Graph (``EdgeList.adjacency``): always equal to a scan of the edge list, and
what makes ``in_edges`` / ``out_edges`` cost their result instead of a pass over every edge."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir
from talon.examples import blocks_graph
from talon.ir.graph import EdgeList

NAMES = ["a", "b", "c", "d", "e"]


def _scan(edges, name):
    """The definitions: indices in edge order, by a scan of every edge."""
    ins = [i for i, (_, d) in enumerate(edges) if d == name]
    outs = [i for i, (s, _) in enumerate(edges) if s == name]
    return ins, outs, [edges[i][0] for i in ins], [edges[i][1] for i in outs]


def _assert_index_is_the_scan(graph: ir.Graph) -> None:
    edges = list(graph.edges)  # a plain copy: its scan does not touch the index
    for name in [*NAMES, "renamed", "unknown"]:
        ins, outs, preds, succs = _scan(edges, name)
        assert graph.in_edges(name) == ins, name
        assert graph.out_edges(name) == outs, name
        assert graph.predecessors(name) == preds, name
        assert graph.successors(name) == succs, name


edge = st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES))
edge_lists = st.lists(edge, max_size=8)
position = st.integers(-10, 10)


# every list method that changes the list, the edges assigned anew, and a node renamed
MUTATIONS = st.one_of(
    st.tuples(st.just("append"), edge),
    st.tuples(st.just("extend"), edge_lists),
    st.tuples(st.just("insert"), position, edge),
    st.tuples(st.just("pop"), position),
    st.tuples(st.just("remove"), edge),
    st.tuples(st.just("setitem"), position, edge),
    st.tuples(st.just("setslice"), position, position, edge_lists),
    st.tuples(st.just("delitem"), position),
    st.tuples(st.just("delslice"), position, position),
    st.tuples(st.just("iadd"), edge_lists),
    st.tuples(st.just("imul"), st.integers(0, 2)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("sort")),
    st.tuples(st.just("sort_reverse_key")),
    st.tuples(st.just("reverse")),
    st.tuples(st.just("assign"), edge_lists),
    st.tuples(st.just("rename"), st.sampled_from(NAMES)),
    st.tuples(st.just("reinit"), edge_lists),
    st.tuples(st.just("copy")),
)


def _apply(graph: ir.Graph, op: tuple) -> ir.Graph:
    kind, *args = op
    e = graph.edges
    try:
        if kind == "append":
            e.append(args[0])
        elif kind == "extend":
            e.extend(args[0])
        elif kind == "insert":
            e.insert(*args)
        elif kind == "pop":
            e.pop(args[0])
        elif kind == "remove":
            e.remove(args[0])
        elif kind == "setitem":
            e[args[0]] = args[1]
        elif kind == "setslice":
            e[args[0] : args[1]] = args[2]
        elif kind == "delitem":
            del e[args[0]]
        elif kind == "delslice":
            del e[args[0] : args[1]]
        elif kind == "iadd":
            graph.edges += args[0]
        elif kind == "imul":
            graph.edges *= args[0]
        elif kind == "clear":
            e.clear()
        elif kind == "sort":
            e.sort()
        elif kind == "sort_reverse_key":
            e.sort(key=lambda x: x[1], reverse=True)
        elif kind == "reverse":
            e.reverse()
        elif kind == "assign":
            graph.edges = list(args[0])
        elif kind == "rename":  # a node renamed: its edges rewritten in place
            old = args[0]
            e[:] = [("renamed" if s == old else s, "renamed" if d == old else d) for s, d in e]
        elif kind == "reinit":
            e.__init__(args[0])
        elif kind == "copy":
            return copy.deepcopy(graph) if len(e) % 2 else pickle.loads(pickle.dumps(graph))
    except (IndexError, ValueError):  # an index out of range, a missing edge: the list is unchanged
        pass
    return graph


@settings(max_examples=300, deadline=None)
@given(start=edge_lists, ops=st.lists(MUTATIONS, max_size=12))
def test_the_index_equals_the_scan_after_any_mutation(start, ops):
    graph = ir.Graph({n: ir.Input(np.array([1])) for n in NAMES}, start, validate=False)
    _assert_index_is_the_scan(graph)
    for op in ops:
        graph = _apply(graph, op)
        assert type(graph.edges) is EdgeList
        _assert_index_is_the_scan(graph)


def test_edges_stay_a_list():
    graph = blocks_graph(24)
    assert isinstance(graph.edges, list) and graph.edges[:2] == [("input", "fc0"), ("fc0", "lif0")]
    assert graph.edges == list(graph.edges) and type(graph.edges[:2]) is list
    assert copy.copy(graph).edges is graph.edges  # a shallow copy shares the list, as before


@pytest.fixture
def edge_visits(monkeypatch):
    """How many edges every pass over an EdgeList (``for``, ``enumerate``, ``list()``, ``zip``) has read."""
    visits = [0]
    original = list.__iter__

    def counting(self):
        visits[0] += len(self)
        return original(self)

    monkeypatch.setattr(EdgeList, "__iter__", counting)
    return visits


def test_in_and_out_edges_of_every_node_read_the_edges_once(edge_visits):
    """Asking for every node's edges of a 20,000-node graph reads its ~27,600 edges once (building
    the index); a scan per call read all of them per call: 2 x 20,000 x 27,600 = 1.1e9 edges."""
    graph = blocks_graph(20_000)
    n_edges = len(graph.edges)
    assert n_edges > 25_000
    edge_visits[0] = 0
    graph.edges.append(graph.edges[-1])  # a fresh list: the index is built anew below
    found = sum(len(graph.in_edges(n)) + len(graph.out_edges(n)) for n in graph.nodes)
    assert found == 2 * (n_edges + 1)
    assert edge_visits[0] == n_edges + 1
