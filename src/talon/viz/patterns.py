"""Structural patterns the graph view folds into collapsible groups.

A pattern is found between a **fan-out point** ``f`` (where the branches start) and a **merge
point** ``m`` (the node that joins them). Its members are ``m`` and every node on a path from
``f`` to ``m`` (``f`` itself excluded, so consecutive blocks do not overlap):

* ``RepConv`` — ``m`` is a residual Skip whose branches from ``f`` are a 3×3 convolution, a 1×1
  convolution (each optionally followed by normalisation) and optionally the identity;
* ``SPP`` — ``m`` concatenates (Skip concatenate or Concat) ``f`` (directly or through a passthrough
  Skip) and ≥ 2 MaxPool2d fed by ``f`` with different kernel sizes;
* ``SPPF`` — ``m`` concatenates ``f`` and a chain ``f → pool₁ → pool₂ → …`` of ≥ 2 MaxPool2d with the
  same kernel, taking every pool of the chain;
* ``SkipConnection`` — any other residual Skip with ≥ 2 inputs (a residual bypass around a block).

The fan-out point of a merge is the latest node, in topological order, with a path to every
input of the merge (where its branches last met). Recurrent edges are ignored. Group ids
read ``<kind>_<fan-out>_<merge>`` (``skip_input_skip``), as in the TALON docs.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from talon.ir import Concat, Conv1d, Conv2d, Graph, MaxPool2d, Skip, SkipType
from talon.ir.normalization import BatchNorm1d, BatchNorm2d

PATTERN_TYPES = ("RepConv", "SPP", "SPPF", "SkipConnection")
_PREFIX = {"RepConv": "repconv", "SPP": "spp", "SPPF": "sppf", "SkipConnection": "skip"}


@dataclass
class Pattern:
    """One detected pattern: its kind, a stable id, and its member nodes (merge point first)."""

    pattern_type: str
    group_id: str
    nodes: list[str]
    fan_out: str
    merge: str
    info: dict = field(default_factory=dict)


class _Topology:
    """Forward (non-recurrent) adjacency and ancestor sets of a graph."""

    def __init__(self, graph: Graph):
        self.graph = graph
        mask = graph.recurrent_mask()
        self.edges = [e for e, rec in zip(graph.edges, mask, strict=True) if not rec]
        self.order = {n: i for i, n in enumerate(graph.topological_order())}
        self.preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
        self.succs: dict[str, list[str]] = {n: [] for n in graph.nodes}
        for s, d in self.edges:
            self.preds[d].append(s)
            self.succs[s].append(d)

    def fan_out(self, merge: str) -> str | None:
        """The latest (in topological order) node with a forward path to every input of ``merge``.

        Walks backwards from the inputs in decreasing topological order, carrying which inputs
        reach each node; a node is complete when popped (its successors come later in the order),
        so the first node reached from every input is the answer. The walk covers only the region
        between the fan-out point and the merge."""
        preds = list(dict.fromkeys(self.preds[merge]))
        if len(preds) < 2:
            return None
        full = (1 << len(preds)) - 1
        reach: dict[str, int] = {}
        heap: list[tuple[int, str]] = []
        for i, p in enumerate(preds):
            if p not in reach:
                heapq.heappush(heap, (-self.order[p], p))
            reach[p] = reach.get(p, 0) | (1 << i)
        while heap:
            _, node = heapq.heappop(heap)
            labels = reach[node]
            if labels == full:
                return node
            for q in self.preds[node]:
                if q not in reach:
                    reach[q] = 0
                    heapq.heappush(heap, (-self.order[q], q))
                reach[q] |= labels
        return None

    def between(self, start: str, end: str) -> list[str]:
        """Nodes on a forward path start → end, start excluded, end included, in topological order."""
        lo = self.order[start]
        back, stack = {end}, [end]
        while stack:
            for p in self.preds[stack.pop()]:
                if p not in back and self.order[p] >= lo:
                    back.add(p)
                    stack.append(p)
        members, stack = set(), [start]
        while stack:
            for s in self.succs[stack.pop()]:
                if s in back and s not in members:
                    members.add(s)
                    stack.append(s)
        return sorted(members, key=self.order.__getitem__)

    def branch(self, start: str, pred: str) -> list[str] | None:
        """The straight chain start → … → pred (single-input, single-output nodes), or None."""
        chain = []
        node = pred
        while node != start:
            if len(self.preds[node]) != 1 or (chain and len(self.succs[node]) != 1):
                return None
            chain.append(node)
            node = self.preds[node][0]
        return chain[::-1]


def _kernel(node) -> tuple[int, ...] | None:
    if isinstance(node, (Conv1d, Conv2d)):
        return tuple(int(k) for k in node.weight.shape[2:])
    return None


def _is_residual(node) -> bool:
    return isinstance(node, Skip) and node.skip_type is SkipType.RESIDUAL


def _is_concat(node) -> bool:
    return isinstance(node, Concat) or (isinstance(node, Skip) and node.skip_type is SkipType.CONCATENATE)


def _is_passthrough(node) -> bool:
    return isinstance(node, Skip) and node.skip_type is SkipType.PASSTHROUGH


def _pool_kernel(node) -> tuple[int, ...]:
    return tuple(int(k) for k in node.kernel_size)


class PatternDetector:
    """Finds RepConv, SPP, SPPF and SkipConnection patterns in one graph (not inside subgraphs:
    :func:`talon.viz.graph_to_dict` calls it on every nested graph)."""

    def __init__(self, graph: Graph):
        if not isinstance(graph, Graph):
            raise TypeError(f"PatternDetector needs a talon.ir.Graph, got {type(graph).__name__}")
        self.graph = graph
        self.topo = _Topology(graph)

    # ---- one merge point each ----------------------------------------------------------------

    def _repconv(self, merge: str) -> Pattern | None:
        f = self.topo.fan_out(merge)
        if f is None or not _is_residual(self.graph.nodes[merge]):
            return None
        kernels, identity = [], False
        for p in self.topo.preds[merge]:
            if p == f:
                identity = True
                continue
            chain = self.topo.branch(f, p)
            if not chain or len(chain) > 2:
                return None
            conv = self.graph.nodes[chain[0]]
            rest = [self.graph.nodes[n] for n in chain[1:]]
            if _kernel(conv) is None or not all(isinstance(r, (BatchNorm1d, BatchNorm2d)) for r in rest):
                return None
            kernels.append(_kernel(conv))
        if not ({(3, 3), (1, 1)} <= set(kernels) or {(3,), (1,)} <= set(kernels)):
            return None
        return self._pattern("RepConv", f, merge, identity=identity)

    def _spp(self, merge: str) -> Pattern | None:
        f = self.topo.fan_out(merge)
        if f is None or not _is_concat(self.graph.nodes[merge]):
            return None
        kernels, has_identity = [], False
        for p in self.topo.preds[merge]:
            node = self.graph.nodes[p]
            if p == f or (_is_passthrough(node) and self.topo.preds[p] == [f]):
                has_identity = True
            elif isinstance(node, MaxPool2d) and self.topo.preds[p] == [f]:
                kernels.append(_pool_kernel(node))
            else:
                return None
        if len(kernels) < 2 or len(set(kernels)) != len(kernels) or not has_identity:
            return None
        return self._pattern("SPP", f, merge, kernels=[list(k) for k in kernels])

    def _sppf(self, merge: str) -> Pattern | None:
        f = self.topo.fan_out(merge)
        if f is None or not _is_concat(self.graph.nodes[merge]):
            return None
        preds = self.topo.preds[merge]
        pools = [p for p in preds if isinstance(self.graph.nodes[p], MaxPool2d)]
        others = [p for p in preds if p not in pools]
        if len(pools) < 2 or len(others) != 1:
            return None
        ident = others[0]
        if not (ident == f or (_is_passthrough(self.graph.nodes[ident]) and self.topo.preds[ident] == [f])):
            return None
        # the pools must form one chain f -> p1 -> p2 -> ... with equal kernels
        chain, node = [], f
        while True:
            nxt = [s for s in self.topo.succs[node] if s in pools and s not in chain]
            if len(nxt) != 1:
                break
            node = nxt[0]
            chain.append(node)
        if sorted(chain) != sorted(pools) or len({_pool_kernel(self.graph.nodes[p]) for p in pools}) != 1:
            return None
        return self._pattern("SPPF", f, merge, kernel=list(_pool_kernel(self.graph.nodes[pools[0]])))

    def _skip(self, merge: str) -> Pattern | None:
        if not _is_residual(self.graph.nodes[merge]):
            return None
        f = self.topo.fan_out(merge)
        return None if f is None else self._pattern("SkipConnection", f, merge)

    def _pattern(self, kind: str, fan_out: str, merge: str, **info) -> Pattern:
        members = self.topo.between(fan_out, merge)
        members.remove(merge)
        return Pattern(kind, f"{_PREFIX[kind]}_{fan_out}_{merge}", [merge, *members], fan_out, merge, info)

    # ---- public detectors --------------------------------------------------------------------

    def _detect(self, finder) -> list[Pattern]:
        found = []
        for name in self.topo.order:
            pattern = finder(name)
            if pattern is not None:
                found.append(pattern)
        return found

    def detect_repconv_patterns(self) -> list[Pattern]:
        return self._detect(self._repconv)

    def detect_spp_patterns(self) -> list[Pattern]:
        return self._detect(self._spp)

    def detect_sppf_patterns(self) -> list[Pattern]:
        return self._detect(self._sppf)

    def detect_skip_connection_patterns(self) -> list[Pattern]:
        return self._detect(self._skip)

    def detect_all_patterns(self) -> list[Pattern]:
        """Every pattern, one per merge point (RepConv, SPPF and SPP before SkipConnection), in
        topological order of the merge points."""
        found = []
        for name in self.topo.order:
            for finder in (self._repconv, self._sppf, self._spp, self._skip):
                pattern = finder(name)
                if pattern is not None:
                    found.append(pattern)
                    break
        return found

    def find_fan_out_points(self) -> list[str]:
        """Nodes with more than one outgoing (non-recurrent) edge."""
        return [n for n in self.topo.order if len(self.topo.succs[n]) > 1]

    def find_merge_points(self) -> list[str]:
        """Nodes with more than one incoming (non-recurrent) edge."""
        return [n for n in self.topo.order if len(self.topo.preds[n]) > 1]


def detect_all_patterns(graph: Graph) -> list[Pattern]:
    return PatternDetector(graph).detect_all_patterns()


def detect_repconv_patterns(graph: Graph) -> list[Pattern]:
    return PatternDetector(graph).detect_repconv_patterns()


def detect_spp_patterns(graph: Graph) -> list[Pattern]:
    return PatternDetector(graph).detect_spp_patterns()


def detect_sppf_patterns(graph: Graph) -> list[Pattern]:
    return PatternDetector(graph).detect_sppf_patterns()


def detect_skip_connection_patterns(graph: Graph) -> list[Pattern]:
    return PatternDetector(graph).detect_skip_connection_patterns()


def find_fan_out_points(graph: Graph) -> list[str]:
    return PatternDetector(graph).find_fan_out_points()


def find_merge_points(graph: Graph) -> list[str]:
    return PatternDetector(graph).find_merge_points()
