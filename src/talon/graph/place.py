"""``place``: put the logical cores of a partitioned graph on the mesh to minimise spikes x hops.

Objective (TALON's, weighted by traffic): ``H = Σ_{a<b} T_ab · (|r_a − r_b| + |c_a − c_b|)`` with
``T_ab`` the spikes per step exchanged by cores ``a`` and ``b`` (connections of
:mod:`.traffic`). The identity placement puts core ``k`` at ``(k // cols, k % cols)``;
``improvement = (H_identity − H_placed) / H_identity`` (a fraction; 0 when nothing crosses a core).

The optimiser is simulated annealing over pairwise swaps (a core with another core or with a free
mesh position), seeded, starting from the identity and returning the best placement it visited,
so the result is never worse than the identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import ir
from .errors import MappingError
from .partition import mapped_vertices
from .spec import HardwareSpec, get_spec

PLACEMENT_KEY = "talon.placement"


@dataclass
class PlacementResult:
    """``logical_to_physical {core: (row, col)}``; hop totals are traffic-weighted (spikes x hops per step)."""

    logical_to_physical: dict[int, tuple[int, int]]
    total_hop_distance: float
    baseline_hops: float
    improvement: float
    iterations: int = 0
    seed: int = 0
    slots: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    @property
    def total_hops(self) -> float:
        """Alias of ``total_hop_distance`` (the name one TALON example uses)."""
        return self.total_hop_distance

    def to_dict(self) -> dict:
        return {
            "logical_to_physical": {str(k): list(v) for k, v in self.logical_to_physical.items()},
            "total_hop_distance": self.total_hop_distance,
            "baseline_hops": self.baseline_hops,
            "improvement": self.improvement,
            "iterations": self.iterations,
            "seed": self.seed,
        }


def core_traffic(graph: ir.Graph):
    """Symmetric CSR matrix of spikes per step between logical cores, and the number of cores."""
    from scipy.sparse import coo_matrix

    vg, parts = mapped_vertices(graph)
    n = int(parts.max()) + 1 if parts.size else 0
    a, b = parts[vg.src], parts[vg.dst]
    keep = a != b
    w = vg.traffic[keep]
    mat = coo_matrix(
        (np.concatenate([w, w]), (np.concatenate([a[keep], b[keep]]), np.concatenate([b[keep], a[keep]]))), shape=(n, n)
    ).tocsr()
    mat.sum_duplicates()
    return mat, n


def hop_cost(mat, slots: np.ndarray, cols: int) -> float:
    """``Σ_{a<b} T_ab · manhattan(slot_a, slot_b)``."""
    coo = mat.tocoo()
    ra, ca = np.divmod(slots[coo.row], cols)
    rb, cb = np.divmod(slots[coo.col], cols)
    return float((coo.data * (np.abs(ra - rb) + np.abs(ca - cb))).sum() / 2.0)


def place(
    graph: ir.Graph, hw_spec: HardwareSpec | str, *, seed: int = 0, iterations: int | None = None
) -> PlacementResult:
    """Place the cores of a partitioned ``graph`` on the mesh of ``hw_spec`` (module docstring).

    The result is also attached to the graph (``graph.placement`` and
    ``graph.metadata["talon.placement"]``), so :func:`route` uses it.
    """
    spec = get_spec(hw_spec)
    mat, n = core_traffic(graph)
    rows, cols = spec.mesh
    positions = rows * cols
    if n > positions:
        raise MappingError(
            f"the partition uses {n} cores but the {rows} x {cols} mesh of {spec.name!r} has {positions} positions; "
            "partition for a spec with more cores"
        )
    slots = np.arange(n, dtype=np.int64)
    baseline = hop_cost(mat, slots, cols)
    best_slots, best, steps = slots.copy(), baseline, 0
    if n > 1 and baseline > 0:
        best_slots, best, steps = _anneal(mat, slots, positions, cols, seed, iterations)
    improvement = (baseline - best) / baseline if baseline > 0 else 0.0
    mapping = {int(k): (int(s // cols), int(s % cols)) for k, s in enumerate(best_slots)}
    result = PlacementResult(mapping, best, baseline, improvement, steps, seed, best_slots)
    graph.placement = result
    graph.metadata[PLACEMENT_KEY] = result.to_dict()
    return result


def placement_slots(graph: ir.Graph, spec: HardwareSpec, n_cores: int) -> np.ndarray:
    """Physical slot (``row * cols + col``) of each logical core: the graph's placement or the identity."""
    placed = getattr(graph, "placement", None)
    if placed is not None and len(placed.slots) == n_cores:
        return np.asarray(placed.slots, np.int64)
    meta = graph.metadata.get(PLACEMENT_KEY)
    if meta and len(meta["logical_to_physical"]) == n_cores:
        cols = spec.mesh[1]
        return np.array(
            [r * cols + c for r, c in (meta["logical_to_physical"][str(k)] for k in range(n_cores))], np.int64
        )
    return np.arange(n_cores, dtype=np.int64)


def _anneal(mat, slots: np.ndarray, positions: int, cols: int, seed: int, iterations: int | None):
    rng = np.random.default_rng(seed)
    n = slots.size
    indptr, indices, data = mat.indptr, mat.indices, mat.data
    occupant = np.full(positions, -1, np.int64)
    occupant[slots] = np.arange(n)
    rr, cc = np.divmod(np.arange(positions), cols)
    current = hop_cost(mat, slots, cols)
    best, best_slots = current, slots.copy()
    degree = max(mat.nnz / max(n, 1), 1.0)
    # ~400 proposals per core, bounded by the work of a proposal (two rows of the traffic matrix)
    steps = iterations if iterations is not None else int(min(30_000, 400 * n + 2_000, 2e7 / degree))
    temperature = max(current / max(mat.nnz, 1), 1e-12)
    cooling = (1e-4) ** (1.0 / max(steps, 1))

    def moved_cost(core: int, to: int, other: int) -> float:
        """Change of core's connection cost when it moves to slot ``to`` (ignoring its link to ``other``)."""
        lo, hi = indptr[core], indptr[core + 1]
        nb, w = indices[lo:hi], data[lo:hi]
        mask = nb != other
        nb, w = nb[mask], w[mask]
        ps = slots[nb]
        old = np.abs(rr[ps] - rr[slots[core]]) + np.abs(cc[ps] - cc[slots[core]])
        new = np.abs(rr[ps] - rr[to]) + np.abs(cc[ps] - cc[to])
        return float((w * (new - old)).sum())

    for _ in range(steps):
        a = int(rng.integers(n))
        target = int(rng.integers(positions))
        if target == slots[a]:
            continue
        b = int(occupant[target])
        delta = moved_cost(a, target, b)
        if b >= 0:
            delta += moved_cost(b, int(slots[a]), a)
        if delta <= 0 or rng.random() < math.exp(-delta / temperature):
            old = int(slots[a])
            slots[a] = target
            occupant[target] = a
            occupant[old] = b
            if b >= 0:
                slots[b] = old
            current += delta
            if current < best - 1e-9:
                best, best_slots = current, slots.copy()
        temperature *= cooling
    return best_slots, hop_cost(mat, best_slots, cols), steps
