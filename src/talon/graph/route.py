"""``route``: multicast routes on the mesh, per-core routing tables, link loads, feedback checks.

Every vertex that sends spikes to another core gets a multicast **key** (its index). Its packets
follow dimension-order (X then Y) routes: along the source's row to every destination column,
then along each column to the destination rows, forking where the destinations part — a multicast
tree whose path to each destination is a shortest one. Each router on a tree has an **entry**
``key -> route`` (a set of the outputs E, W, N, S and the local core) unless the packet just goes
straight on (default routing, as SpiNNaker's routers do), so only the source, turns, forks and
deliveries cost an entry.

**Compression** merges entries into ternary ``(key, mask)`` entries (a packet matches when
``packet_key & mask == key``): an aligned block of keys becomes one entry when every key of the
block that reaches this router has the same route; keys that never reach the router are free
("don't care"). Compressed entries of different routes never overlap, so their order does not
matter, and every key that reaches a router is routed exactly as before (the tests walk every
packet through both tables).

**Feedback**: a connection across a recurrent (one-step delayed) edge must arrive before the next
step: its hop count must not exceed ``max_feedback_delay``; violations are listed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .. import ir
from .partition import mapped_vertices
from .place import placement_slots
from .spec import HardwareSpec, get_spec

EAST, WEST, NORTH, SOUTH, CORE = 1, 2, 4, 8, 16
DIRECTIONS = {EAST: "E", WEST: "W", NORTH: "N", SOUTH: "S", CORE: "core"}


@dataclass
class RoutingTable:
    """The multicast table of one router (mesh slot ``position``; ``core``: the logical core there, or None).

    ``entries``: ``(n, 2)`` int64 ``[key, route]``; ``compressed``: ``(m, 3)`` ``[key, mask, route]``.
    ``route`` is a bit set of :data:`DIRECTIONS`.
    """

    position: tuple[int, int]
    core: int | None
    entries: np.ndarray
    compressed: np.ndarray | None = None
    capacity: int | None = None

    @property
    def n_entries(self) -> int:
        return int(len(self.compressed) if self.compressed is not None else len(self.entries))

    @property
    def fits(self) -> bool:
        return self.capacity is None or self.n_entries <= self.capacity

    def lookup(self, key: int, compressed: bool = True) -> int | None:
        """The route of ``key`` (a bit set), or None for default routing (straight on)."""
        if compressed and self.compressed is not None:
            hit = (key & self.compressed[:, 1]) == self.compressed[:, 0]
            return int(self.compressed[np.argmax(hit), 2]) if hit.any() else None
        hit = self.entries[:, 0] == key
        return int(self.entries[np.argmax(hit), 1]) if hit.any() else None

    def to_dict(self) -> dict:
        table = self.compressed if self.compressed is not None else None
        return {
            "position": list(self.position),
            "core": self.core,
            "entries": len(self.entries),
            "compressed_entries": None if table is None else len(table),
            "capacity": self.capacity,
            "table": (
                [{"key": int(k), "mask": int(m), "route": _route_names(int(r))} for k, m, r in table]
                if table is not None
                else [{"key": int(k), "mask": -1, "route": _route_names(int(r))} for k, r in self.entries]
            ),
        }


@dataclass
class RoutingResult:
    tables: dict[int, RoutingTable]  # mesh slot -> table (routers with at least one entry)
    keys: dict[int, str]  # key -> source vertex (node name)
    key_source: dict[int, int]  # key -> source slot
    key_destinations: dict[int, np.ndarray]  # key -> destination slots
    link_load_east_west: np.ndarray  # (rows, cols - 1) spikes per step on each horizontal link
    link_load_north_south: np.ndarray  # (rows - 1, cols)
    spike_hops: float  # Σ links of the load: spikes x hops per step
    feedback_violations: list[dict] = field(default_factory=list)
    table_violations: list[dict] = field(default_factory=list)
    mesh: tuple[int, int] = (1, 1)
    hop_energy_pj: tuple[float, float] | None = None

    @property
    def max_link_load(self) -> float:
        loads = [a.max() for a in (self.link_load_east_west, self.link_load_north_south) if a.size]
        return float(max(loads)) if loads else 0.0

    @property
    def total_entries(self) -> int:
        return sum(t.n_entries for t in self.tables.values())

    @property
    def noc_energy_pj_per_step(self) -> float | None:
        """Σ link load x energy per hop (east-west, north-south); None when the spec gives no energy."""
        if self.hop_energy_pj is None:
            return None
        ew, ns = self.hop_energy_pj
        return float(self.link_load_east_west.sum() * ew + self.link_load_north_south.sum() * ns)

    def deliver(self, key: int, compressed: bool = True) -> set[int]:
        """Walk a packet of ``key`` from its source through the tables; the slots whose core receives it."""
        rows, cols = self.mesh
        start = self.key_source[key]
        delivered, frontier, seen = set(), [(start, None)], set()
        while frontier:
            slot, heading = frontier.pop()
            if (slot, heading) in seen:
                raise RuntimeError(f"key {key} loops at slot {slot}")
            seen.add((slot, heading))
            table = self.tables.get(slot)
            route = table.lookup(key, compressed) if table is not None else None
            if route is None:
                if heading is None:
                    continue  # a source without an entry sends nothing
                route = heading  # default routing: straight on
            r, c = divmod(slot, cols)
            if route & CORE:
                delivered.add(slot)
            for bit, (dr, dc) in ((EAST, (0, 1)), (WEST, (0, -1)), (NORTH, (-1, 0)), (SOUTH, (1, 0))):
                if route & bit:
                    nr, nc = r + dr, c + dc
                    if not (0 <= nr < rows and 0 <= nc < cols):
                        raise RuntimeError(f"key {key} leaves the mesh at slot {slot}")
                    frontier.append((nr * cols + nc, bit))
        return delivered

    def summary(self) -> dict:
        return {
            "routers_with_entries": len(self.tables),
            "keys": len(self.keys),
            "total_entries": int(sum(len(t.entries) for t in self.tables.values())),
            "total_compressed_entries": self.total_entries,
            "max_entries_per_router": max((t.n_entries for t in self.tables.values()), default=0),
            "max_link_load": self.max_link_load,
            "spike_hops": self.spike_hops,
            "noc_energy_pj_per_step": self.noc_energy_pj_per_step,
            "feedback_violations": self.feedback_violations,
            "table_violations": self.table_violations,
        }


def _route_names(route: int) -> list[str]:
    return [name for bit, name in DIRECTIONS.items() if route & bit]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each pair."""
    lengths = np.maximum(lengths, 0)
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, np.int64)
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def route(graph: ir.Graph, hw_spec: HardwareSpec | str, *, compress: bool = True) -> ir.Graph:
    """Route a partitioned (and optionally placed) graph; return it with ``graph.routing``
    (:class:`RoutingResult`) and ``graph.routing_tables`` (``{mesh slot: RoutingTable}``) attached,
    a summary in ``graph.metadata["talon.routing"]``."""
    spec = get_spec(hw_spec)
    vg, parts = mapped_vertices(graph)
    n_cores = int(parts.max()) + 1 if parts.size else 0
    result = route_vertices(vg, parts, spec, placement_slots(graph, spec, n_cores), compress=compress)
    graph.routing = result
    graph.routing_tables = result.tables
    graph.metadata["talon.routing"] = dict(result.summary().items())
    return graph


def route_vertices(
    vg, parts: np.ndarray, spec: HardwareSpec, slots: np.ndarray, *, compress: bool = True
) -> RoutingResult:
    """Route the connections of a vertex graph whose vertices sit on cores ``parts`` at mesh ``slots``."""
    n_cores = int(parts.max()) + 1 if parts.size else 0
    rows, cols = spec.mesh
    if n_cores > rows * cols:
        from .errors import MappingError

        raise MappingError(f"the partition uses {n_cores} cores but the mesh has {rows * cols} positions")
    src_slot = slots[parts[vg.src]]
    dst_slot = slots[parts[vg.dst]]
    # one key per source vertex that reaches another core; its destinations: every core it feeds
    crossing = src_slot != dst_slot
    key_vertices = np.unique(vg.src[crossing])
    # (source, destination slot) pairs sorted once; the max rate of each source's connections
    pair = np.unique(vg.src.astype(np.int64) << 32 | dst_slot)
    pair_src, pair_dst = pair >> 32, pair & 0xFFFFFFFF
    bounds = np.searchsorted(pair_src, np.concatenate([key_vertices, key_vertices + 1]))
    starts, stops = bounds[: key_vertices.size], bounds[key_vertices.size :]
    rate_of = np.zeros(vg.n)
    np.maximum.at(rate_of, vg.src, vg.traffic)
    east_west = np.zeros((rows, max(cols - 1, 0)))
    north_south = np.zeros((max(rows - 1, 0), cols))
    ent_slot, ent_key, ent_route = [], [], []  # entries
    arr_slot, arr_key = [], []  # every router a key reaches (for compression)
    key_source, key_dests, keys = {}, {}, {}
    for key, v, a, b in zip(range(key_vertices.size), key_vertices.tolist(), starts, stops, strict=True):
        s = int(slots[parts[v]])
        dests = pair_dst[a:b]
        rate = float(rate_of[v])
        keys[key], key_source[key], key_dests[key] = vg.names[v], s, dests
        tree_slots, tree_routes, tree_entry = _tree(s, dests, rows, cols, east_west, north_south, rate)
        arr_slot.append(tree_slots)
        arr_key.append(np.full(tree_slots.size, key, np.int64))
        ent_slot.append(tree_slots[tree_entry])
        ent_key.append(np.full(int(tree_entry.sum()), key, np.int64))
        ent_route.append(tree_routes[tree_entry])
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
    ent_slot, ent_key, ent_route = cat(ent_slot), cat(ent_key), cat(ent_route)
    arr_slot, arr_key = cat(arr_slot), cat(arr_key)
    compressed = _compress(ent_slot, ent_key, ent_route, arr_slot, arr_key) if compress else None
    core_at = {int(s): k for k, s in enumerate(slots)}
    tables = {}
    order_e = np.lexsort((ent_key, ent_slot))
    ent_slot, ent_key, ent_route = ent_slot[order_e], ent_key[order_e], ent_route[order_e]
    for slot in np.unique(ent_slot).tolist():
        lo, hi = np.searchsorted(ent_slot, [slot, slot + 1])
        table = RoutingTable(
            (slot // cols, slot % cols), core_at.get(slot), np.stack([ent_key[lo:hi], ent_route[lo:hi]], axis=1),
            None if compressed is None else compressed.get(slot), spec.routing_entries_per_core,
        )  # fmt: skip
        tables[slot] = table
    table_violations = [
        {"position": list(t.position), "core": t.core, "entries": t.n_entries, "limit": t.capacity,
         "excess": t.n_entries - t.capacity}
        for t in tables.values() if not t.fits
    ]  # fmt: skip
    feedback = []
    rec = vg.recurrent & crossing
    if rec.any():
        rs, cs = np.divmod(src_slot[rec], cols)
        rd, cd = np.divmod(dst_slot[rec], cols)
        hops = np.abs(rs - rd) + np.abs(cs - cd)
        for s, d, h in zip(vg.src[rec].tolist(), vg.dst[rec].tolist(), hops.tolist(), strict=True):
            if h > spec.max_feedback_delay:
                feedback.append(
                    {"source": vg.names[s], "target": vg.names[d], "hops": int(h), "limit": spec.max_feedback_delay}
                )
    result = RoutingResult(
        tables, keys, key_source, key_dests, east_west, north_south, float(east_west.sum() + north_south.sum()),
        feedback, table_violations, (rows, cols), spec.hop_energy_pj,
    )  # fmt: skip
    return result


def _tree(s: int, dests: np.ndarray, rows: int, cols: int, east_west, north_south, rate: float):
    """The X-then-Y multicast tree from slot ``s`` to ``dests``: (router slots, route bits, needs-entry mask);
    adds ``rate`` to the load of every link of the tree."""
    rs, cs = divmod(s, cols)
    dr, dc = np.divmod(dests, cols)
    ucols, inverse = np.unique(dc, return_inverse=True)
    rmin = np.full(ucols.size, rows, np.int64)
    rmax = np.full(ucols.size, -1, np.int64)
    np.minimum.at(rmin, inverse, dr)
    np.maximum.at(rmax, inverse, dr)
    cmin, cmax = min(int(ucols.min()), cs), max(int(ucols.max()), cs)
    # the source row
    row_cols = np.arange(cmin, cmax + 1)
    bits = np.zeros(row_cols.size, np.int64)
    bits |= np.where((row_cols < cmax) & (row_cols >= cs), EAST, 0)
    bits |= np.where((row_cols > cmin) & (row_cols <= cs), WEST, 0)
    at = np.searchsorted(ucols, row_cols)
    has = (at < ucols.size) & (ucols[np.minimum(at, ucols.size - 1)] == row_cols)
    idx = np.minimum(at, ucols.size - 1)
    bits |= np.where(has & (rmin[idx] < rs), NORTH, 0)
    bits |= np.where(has & (rmax[idx] > rs), SOUTH, 0)
    row_slots = rs * cols + row_cols
    straight = np.where(row_cols > cs, EAST, WEST)
    if cmax > cmin:
        east_west[rs, cmin:cmax] += rate
    # the columns: north parts (rows rmin..rs-1) and south parts (rs+1..rmax)
    n_len = np.maximum(rs - rmin, 0)
    s_len = np.maximum(rmax - rs, 0)
    n_rows = _ranges(rmin, n_len)
    n_cols = np.repeat(ucols, n_len)
    s_rows = _ranges(np.full(ucols.size, rs + 1), s_len)
    s_cols = np.repeat(ucols, s_len)
    n_bits = np.where(n_rows > np.repeat(rmin, n_len), NORTH, 0)
    s_bits = np.where(s_rows < np.repeat(rmax, s_len), SOUTH, 0)
    np.add.at(north_south, (n_rows, n_cols), rate)  # link (r, r+1) for r in [rmin, rs)
    np.add.at(north_south, (s_rows - 1, s_cols), rate)  # link (r-1, r) for r in (rs, rmax]
    slots = np.concatenate([row_slots, n_rows * cols + n_cols, s_rows * cols + s_cols])
    routes = np.concatenate([bits, n_bits, s_bits])
    straight = np.concatenate([straight, np.full(n_rows.size, NORTH), np.full(s_rows.size, SOUTH)])
    is_dest = np.zeros(rows * cols, bool)
    is_dest[dests] = True
    routes |= np.where(is_dest[slots], CORE, 0)
    entry = (routes != straight) | (slots == s)
    return slots, routes, entry


def _compress(ent_slot, ent_key, ent_route, arr_slot, arr_key) -> dict[int, np.ndarray]:
    """Per router, ternary entries ``[key, mask, route]`` covering aligned blocks of keys (module docstring)."""
    if not ent_slot.size:
        return {}
    # every (router, key) arrival, sorted by router then key; label = its route, -1 when default-routed
    code = arr_slot.astype(np.int64) << 32 | arr_key
    order = np.argsort(code, kind="stable")
    code, a_slot, a_key = code[order], arr_slot[order].astype(np.int64), arr_key[order]
    label = np.full(code.size, -1, np.int64)
    at = np.searchsorted(code, ent_slot.astype(np.int64) << 32 | ent_key)
    label[at] = ent_route
    is_entry = label >= 0
    level = np.zeros(code.size, np.int64)  # largest clean aligned block (log2 of its size) per arrival
    bits = int(max(int(arr_key.max()), 1)).bit_length()
    for j in range(1, bits + 1):
        block = a_slot << 32 | (a_key >> j)  # non-decreasing in this order
        starts = np.flatnonzero(np.concatenate([[True], block[1:] != block[:-1]]))
        lo = np.minimum.reduceat(label, starts)
        hi = np.maximum.reduceat(label, starts)
        clean = np.repeat((lo == hi) & (lo >= 0), np.diff(np.append(starts, code.size)))
        grow = clean & is_entry & (level == j - 1)
        if not grow.any():
            break
        level[grow] = j
    ent_slot, ent_key, ent_route, level = a_slot[is_entry], a_key[is_entry], label[is_entry], level[is_entry]
    mask_all = (1 << 62) - 1
    base = (ent_key >> level) << level
    mask = mask_all & ~((np.int64(1) << level) - 1)
    order = np.lexsort((ent_route, base, ent_slot))
    slot_s, base_s, mask_s, route_s = ent_slot[order], base[order], mask[order], ent_route[order]
    first = np.concatenate([[True], (slot_s[1:] != slot_s[:-1]) | (base_s[1:] != base_s[:-1])])
    slot_s, base_s, mask_s, route_s = slot_s[first], base_s[first], mask_s[first], route_s[first]
    cuts = np.flatnonzero(np.concatenate([[True], slot_s[1:] != slot_s[:-1], [True]]))
    return {
        int(slot_s[a]): np.stack([base_s[a:b], mask_s[a:b], route_s[a:b]], axis=1) for a, b in itertools.pairwise(cuts)
    }
