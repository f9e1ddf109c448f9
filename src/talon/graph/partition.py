"""``partition``: split what does not fit a core, then assign every vertex to a core.

Steps (``docs/mapping.md``): (0) subgraphs (recurrent layers) are inlined, so their neurons and
recurrent weights occupy cores like any layer and their feedback is routed (:mod:`.inline`);
(1) layers that exceed a core are cut into slices (:mod:`.split`);
(2) the graph becomes vertices and spike-weighted connections (:mod:`.traffic`); (3) each
recurrent loop (strongly connected set of vertices) that fits one core is kept together; (4) an
algorithm assigns the vertices to cores without exceeding any per-core limit:

* ``metis`` (default) — multilevel k-way partitioning minimising the cut spike traffic (METIS
  through ``pymetis``), followed by a repair pass that moves vertices out of any over-full core;
* ``greedy`` — the documented TALON algorithm: vertices in topological (BFS) order fill cores
  one after another;
* ``edgemap`` — greedy, each vertex to the open core it exchanges the most traffic with;
* ``spectral`` — recursive spectral bisection (Fiedler vector of the traffic Laplacian) until
  every part fits a core.

Cores are numbered by the first vertex they hold in topological order. The result is a new
graph: every node has ``core_id`` (also in ``node.metadata["core_id"]``) and the graph has
``partition_metadata`` (also in ``graph.metadata["talon.partition"]``, so it survives ``.t1c``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import ir
from .errors import MappingError
from .inline import inline_subgraphs
from .spec import PRECISION_BITS, HardwareSpec, get_spec
from .split import ROLE_KEY, split_graph
from .traffic import VertexGraph, check_rate_names, rates_of, vertex_graph

ALGORITHMS = ("metis", "greedy", "edgemap", "spectral")
METADATA_KEY = "talon.partition"


def widths(spec: HardwareSpec, precision: str | None) -> tuple[int, int]:
    precision = spec.precision if precision is None else str(precision).lower()
    if precision not in PRECISION_BITS:
        raise MappingError(f"precision must be one of {', '.join(PRECISION_BITS)}, got {precision!r}")
    return PRECISION_BITS[precision]


def loads(vg: VertexGraph, spec: HardwareSpec) -> np.ndarray:
    """``(n, 3)`` fractions of a core each vertex uses: neurons, synapses, SRAM bytes."""
    caps = np.array([spec.max_neurons_per_core, spec.max_synapses_per_core, spec.sram_bytes_per_core], float)
    raw = np.array([[c.neurons, c.synapses, c.sram_bytes] for c in vg.costs], float).reshape(-1, 3)
    return raw / caps


def partition(
    graph: ir.Graph,
    hw_spec: HardwareSpec | str,
    algorithm: str = "metis",
    activity=None,
    *,
    precision: str | None = None,
    seed: int = 0,
) -> ir.Graph:
    """Map ``graph`` onto the cores of ``hw_spec``; return the partitioned graph (module docstring).

    ``activity``: spike rates that weight the connections (a ``SimulationResult`` of the original
    graph, or ``{node: spikes per step}``); without it every element counts one event per step.
    ``precision`` (default: the spec's) sets the bytes of weights and state. Raises
    :class:`MappingError` when a layer cannot be cut to fit a core (the message names the node, the
    limit and the excess). A graph that needs more cores than ``num_cores`` is still partitioned,
    with a warning; :func:`~talon.graph.allocate` then reports ``fits_hardware=False``.
    """
    if not isinstance(graph, ir.Graph):
        raise TypeError(f"partition expects a talon.ir.Graph, got {type(graph).__name__}")
    spec = get_spec(hw_spec)
    if algorithm not in ALGORITHMS:
        raise MappingError(f"unknown partition algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    weight_bits, state_bits = widths(spec, precision)
    rates = rates_of(graph, activity)
    flat, inlined = inline_subgraphs(graph)
    check_rate_names(graph, flat, rates)
    split = split_graph(flat, spec, weight_bits, state_bits)
    new = split.graph
    vg = vertex_graph(new, weight_bits, state_bits, rates)
    load = loads(vg, spec)
    too_big = np.flatnonzero(load.max(axis=1) > 1.0 + 1e-12)
    if too_big.size:
        v = int(too_big[0])
        what = ["neurons", "synapses", "SRAM bytes"][int(np.argmax(load[v]))]
        node = new.nodes[vg.names[v]]
        raise MappingError(
            f"node {vg.names[v]!r} ({type(node).__name__}) needs {load[v].max():.2f}x a core's {what} and "
            "cannot be split (only weight layers with groups=1 and channel-wise layers are): use a spec with "
            "larger cores"
        )
    order = _vertex_order(new, vg)
    groups = _loop_groups(vg, load, _unit_groups(split, vg))
    parts = _run(algorithm, vg, load, groups, order, seed, spec.num_cores)
    parts = _repair(parts, vg, load)
    parts = _renumber(parts, order)
    n_cores = int(parts.max()) + 1 if parts.size else 0
    if n_cores > spec.num_cores:
        warnings.warn(
            f"the graph needs {n_cores} cores but {spec.name!r} has {spec.num_cores}; allocate() reports the excess",
            stacklevel=2,
        )
    assignments = _assign_all(new, vg, parts)
    for name, node in new.nodes.items():
        node.core_id = assignments[name]
        node.metadata["core_id"] = assignments[name]
    meta = _metadata(new, vg, parts, load, assignments, algorithm, spec, split.slices, rates, precision)
    meta["inlined_subgraphs"] = inlined
    new.metadata[METADATA_KEY] = meta
    new.partition_metadata = meta
    new._talon_vertices = (vg, parts)  # reused by route / place / allocate
    return new


def partition_greedy(graph: ir.Graph, hw_spec, **kwargs) -> ir.Graph:
    return partition(graph, hw_spec, "greedy", **kwargs)


def partition_edgemap(graph: ir.Graph, hw_spec, **kwargs) -> ir.Graph:
    return partition(graph, hw_spec, "edgemap", **kwargs)


def partition_spectral(graph: ir.Graph, hw_spec, **kwargs) -> ir.Graph:
    return partition(graph, hw_spec, "spectral", **kwargs)


def partition_metadata(graph: ir.Graph) -> dict:
    """The ``partition_metadata`` of a partitioned graph (also after a ``.t1c`` round trip)."""
    meta = getattr(graph, "partition_metadata", None) or graph.metadata.get(METADATA_KEY)
    if not meta:
        raise MappingError("this graph has not been partitioned; call talon.graph.partition(graph, spec) first")
    return meta


def mapped_vertices(graph: ir.Graph) -> tuple[VertexGraph, np.ndarray]:
    """The vertex graph and per-vertex cores of a partitioned graph (recomputed after reading a file)."""
    cached = getattr(graph, "_talon_vertices", None)
    if cached is not None:
        return cached
    meta = partition_metadata(graph)
    spec = HardwareSpec.from_dict(meta["spec"])
    weight_bits, state_bits = widths(spec, meta.get("precision"))
    vg = vertex_graph(graph, weight_bits, state_bits, meta.get("rates") or {})
    parts = np.array([int(meta["assignments"][n]) for n in vg.names], np.int64)
    graph._talon_vertices = (vg, parts)
    return vg, parts


# ---- helpers ---------------------------------------------------------------------------------


def _vertex_order(graph: ir.Graph, vg: VertexGraph) -> np.ndarray:
    position = {n: i for i, n in enumerate(graph.topological_order())}
    return np.argsort([position[n] for n in vg.names], kind="stable")


def _unit_groups(split, vg: VertexGraph) -> np.ndarray:
    """Group id per vertex: the nodes of one unit slice (a weight layer and its neurons) share one."""
    group = np.arange(vg.n)
    for unit in split.units:
        if len(unit.parts) > 1:
            sets = [[split.slices[m][i]["name"] for m in unit.nodes] for i in range(len(unit.parts))]
        else:
            sets = [unit.nodes]
        for names in sets:
            ids = [vg.index[n] for n in names if n in vg.index]
            if ids:
                group[ids] = min(ids)
    return group


def _loop_groups(vg: VertexGraph, load: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Group id per vertex: ``group`` (unit slices), and the vertices of a recurrent loop that fits
    one core share one id."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = vg.n
    group = group.copy()
    if not vg.src.size:
        return group
    adj = coo_matrix((np.ones(vg.src.size), (vg.src, vg.dst)), shape=(n, n)).tocsr()
    _, labels = connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(labels)
    for label in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(labels == label)
        if np.all(load[members].sum(axis=0) <= 1.0 + 1e-12):
            group[np.isin(group, group[members])] = members[0]
    return group


def _contract(vg: VertexGraph, load: np.ndarray, groups: np.ndarray):
    """Super-vertices (one per group): their loads and symmetric traffic matrix (CSR)."""
    from scipy.sparse import coo_matrix

    uniq, inverse = np.unique(groups, return_inverse=True)
    m = uniq.size
    gl = np.zeros((m, 3))
    np.add.at(gl, inverse, load)
    s, d = inverse[vg.src], inverse[vg.dst]
    keep = s != d
    w = vg.traffic[keep] + 1e-9  # a connection with no measured spikes still links its ends
    mat = coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([s[keep], d[keep]]), np.concatenate([d[keep], s[keep]]))), shape=(m, m)
    ).tocsr()
    mat.sum_duplicates()
    return inverse, gl, mat


def _run(
    algorithm: str, vg: VertexGraph, load: np.ndarray, groups: np.ndarray, order: np.ndarray, seed: int, cores: int
) -> np.ndarray:
    inverse, gl, mat = _contract(vg, load, groups)
    rank = np.empty(vg.n, np.int64)
    rank[order] = np.arange(vg.n)
    super_rank = np.full(gl.shape[0], np.iinfo(np.int64).max)
    np.minimum.at(super_rank, inverse, rank)
    super_order = np.argsort(super_rank, kind="stable")
    if algorithm == "greedy":
        sp = _greedy(gl, super_order)
    elif algorithm == "edgemap":
        sp = _edgemap(gl, mat, super_order)
    elif algorithm == "spectral":
        sp = _spectral(gl, mat, super_order)
    else:
        sp = _metis(gl, mat, seed, cores)
        if sp is None:
            sp = _greedy(gl, super_order)
    return sp[inverse]


def _fits(a: np.ndarray) -> bool:
    return bool(np.all(a <= 1.0 + 1e-12))


def _greedy(gl: np.ndarray, order: np.ndarray) -> np.ndarray:
    parts = np.zeros(gl.shape[0], np.int64)
    current, used = 0, np.zeros(3)
    for v in order:
        if used.any() and not _fits(used + gl[v]):
            current, used = current + 1, np.zeros(3)
        parts[v] = current
        used = used + gl[v]
    return parts


def _edgemap(gl: np.ndarray, mat, order: np.ndarray) -> np.ndarray:
    parts = np.full(gl.shape[0], -1, np.int64)
    used: list[np.ndarray] = []
    for v in order:
        row = mat.getrow(v)
        score: dict[int, float] = {}
        for u, w in zip(row.indices, row.data, strict=True):
            if parts[u] >= 0:
                score[int(parts[u])] = score.get(int(parts[u]), 0.0) + float(w)
        best = None
        for core, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0])):
            if _fits(used[core] + gl[v]):
                best = core
                break
        if best is None and used and _fits(used[-1] + gl[v]):
            best = len(used) - 1
        if best is None:
            used.append(np.zeros(3))
            best = len(used) - 1
        parts[v] = best
        used[best] = used[best] + gl[v]
    return parts


def _spectral(gl: np.ndarray, mat, order: np.ndarray) -> np.ndarray:
    parts = np.zeros(gl.shape[0], np.int64)
    rank = np.empty(gl.shape[0], np.int64)
    rank[order] = np.arange(gl.shape[0])
    next_part = [0]

    def bisect(members: np.ndarray) -> None:
        if members.size <= 1 or _fits(gl[members].sum(axis=0)):
            parts[members] = next_part[0]
            next_part[0] += 1
            return
        sub = mat[members][:, members].tocsr()
        # a faint chain along the topological order keeps the Laplacian connected
        idx = np.argsort(rank[members])
        chain = np.zeros((members.size, members.size))
        chain[idx[:-1], idx[1:]] = chain[idx[1:], idx[:-1]] = 1e-6 * (sub.data.mean() if sub.nnz else 1.0)
        a = sub.toarray() + chain if members.size <= 2000 else None
        if a is not None:
            lap = np.diag(a.sum(axis=1)) - a
            _, vecs = np.linalg.eigh(lap)
            key = vecs[:, 1]
        else:  # too large for a dense eigensolver: the topological order is the 1-d embedding
            key = rank[members].astype(float)
        sorted_members = members[np.lexsort((rank[members], key))]
        weight = gl[sorted_members].max(axis=1)
        cut = int(np.searchsorted(np.cumsum(weight), weight.sum() / 2.0))
        cut = min(max(cut, 1), members.size - 1)
        bisect(np.sort(sorted_members[:cut]))
        bisect(np.sort(sorted_members[cut:]))

    bisect(np.arange(gl.shape[0]))
    return parts


def _metis(gl: np.ndarray, mat, seed: int, cores: int) -> np.ndarray | None:
    try:
        import pymetis
    except ImportError as exc:  # pragma: no cover - CI installs it
        raise ir.MissingDependencyError(
            "the 'metis' partitioner needs pymetis (or pick algorithm='greedy'); " + ir.errors.install_hint("graph")
        ) from exc
    m = gl.shape[0]
    total = gl.sum(axis=0).max()
    # 10 % slack for METIS's balance, but not beyond the chip when the minimum fits it
    need = max(math.ceil(total - 1e-9), min(math.ceil(total * 1.1 - 1e-9), cores))
    nparts = max(1, min(m, need))
    if nparts == 1:
        return np.zeros(m, np.int64)
    if 2 * nparts > m:
        # about one vertex per core: there is nothing to cut (k-way METIS would also take minutes
        # here); the topological fill is the partition and place() optimises the traffic
        return None
    vweights = np.maximum(1, np.rint(gl.max(axis=1) * 1000)).astype(np.int64)
    data = mat.data
    scale = 1000.0 / data.max() if data.size and data.max() > 0 else 1.0
    eweights = np.maximum(1, np.rint(data * scale)).astype(np.int64)
    options = pymetis.Options(seed=int(seed))
    adjacency = pymetis.CSRAdjacency(adj_starts=mat.indptr.astype(np.int64), adjacent=mat.indices.astype(np.int64))
    _, membership = pymetis.part_graph(nparts, adjacency, vweights=vweights, eweights=eweights, options=options)
    return np.asarray(membership, np.int64)


def _repair(parts: np.ndarray, vg: VertexGraph, load: np.ndarray) -> np.ndarray:
    """Move vertices out of over-full cores: to the core they exchange most traffic with that has
    room, else to any core with room, else to a new core."""
    from scipy.sparse import coo_matrix

    parts = parts.copy()
    n_parts = int(parts.max()) + 1 if parts.size else 0
    used = np.zeros((n_parts, 3))
    np.add.at(used, parts, load)
    over = [p for p in range(n_parts) if not _fits(used[p])]
    if not over:
        return parts
    n = vg.n
    w = vg.traffic + 1e-9
    adj = coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([vg.src, vg.dst]), np.concatenate([vg.dst, vg.src]))), shape=(n, n)
    ).tocsr()
    for p in over:
        members = np.flatnonzero(parts == p)
        inside = np.array([adj[v].toarray()[0][members].sum() for v in members])
        for v in members[np.argsort(inside, kind="stable")]:  # least connected inside the core first
            if _fits(used[p]):
                break
            row = adj[v]
            score = np.bincount(parts[row.indices], weights=row.data, minlength=used.shape[0])
            score[p] = -1.0
            room = np.all(used + load[v] <= 1.0 + 1e-12, axis=1)
            room[p] = False
            if room.any():
                candidates = np.flatnonzero(room)
                target = int(candidates[np.argmax(score[candidates])])
            else:
                used = np.vstack([used, np.zeros((1, 3))])
                target = used.shape[0] - 1
            parts[v] = target
            used[p] -= load[v]
            used[target] += load[v]
    return parts


def _renumber(parts: np.ndarray, order: np.ndarray) -> np.ndarray:
    mapping: dict[int, int] = {}
    for v in order:
        mapping.setdefault(int(parts[v]), len(mapping))
    return np.array([mapping[int(p)] for p in parts], np.int64)


def _assign_all(graph: ir.Graph, vg: VertexGraph, parts: np.ndarray) -> dict[str, int]:
    """Cores of every node: vertices their own; a virtual node the core of its nearest vertex
    upstream (an entry node or Input: downstream)."""
    core = {name: int(parts[i]) for i, name in enumerate(vg.names)}
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    succs: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for s, d in graph.edges:
        preds[d].append(s)
        succs[s].append(d)

    def search(start: str, neighbours) -> int | None:
        seen, frontier = {start}, [start]
        while frontier:
            nxt = []
            for n in frontier:
                for m in neighbours[n]:
                    if m in core:
                        return core[m]
                    if m not in seen:
                        seen.add(m)
                        nxt.append(m)
            frontier = nxt
        return None

    out = {}
    for name, node in graph.nodes.items():
        if name in core:
            out[name] = core[name]
            continue
        downstream_first = node.metadata.get(ROLE_KEY) in ("entry", "split")
        order = (succs, preds) if downstream_first else (preds, succs)
        found = search(name, order[0])
        if found is None:
            found = search(name, order[1])
        out[name] = 0 if found is None else found
    return out


def _metadata(graph, vg, parts, load, assignments, algorithm, spec, slices, rates, precision) -> dict:
    n_cores = int(parts.max()) + 1 if parts.size else 0
    cross = parts[vg.src] != parts[vg.dst]
    per_core = np.zeros((n_cores, 3))
    np.add.at(per_core, parts, load)
    utilization = per_core.max(axis=1) if n_cores else np.zeros(0)
    cut_edges = [[s, d] for s, d in graph.edges if assignments[s] != assignments[d]]
    return {
        "algorithm": algorithm,
        "num_cores_used": n_cores,
        "assignments": assignments,
        "cross_core_edges": cut_edges,
        "metrics": {
            "cut_ratio": float(cross.mean()) if cross.size else 0.0,
            "balance_stddev": float(utilization.std()) if n_cores else 0.0,
            "cut_spikes": float(vg.traffic[cross].sum()),
            "total_spikes": float(vg.traffic.sum()),
            "connections": int(vg.src.size),
            "cut_connections": int(cross.sum()),
        },
        "slices": slices,
        "split_layers": sorted(slices),
        "spec": spec.to_dict(),
        "precision": precision or spec.precision,
        "rates": rates,
    }
