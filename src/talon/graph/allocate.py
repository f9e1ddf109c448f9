"""``allocate``: the per-core resource budget of a mapped graph, checked against the spec.

Per core (``CoreBudget``): neurons, stored synapses, weight bytes and neuron-state bytes (at the
precision's widths, :mod:`.resources`), routing-table bytes (entries after compression x
``routing_entry_bytes``, when the graph is routed) and ``utilization`` — the largest of
``neurons / max_neurons_per_core``, ``synapses / max_synapses_per_core`` and
``(weight + state + routing bytes) / sram_bytes_per_core``.

A graph that was never partitioned is budgeted as TALON does: everything on core 0 — so the
documented 1.6 MB model on 98 KB cores reports ``16.42x`` over budget, and ``partition`` fixes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .. import ir
from .partition import mapped_vertices, widths
from .resources import node_cost
from .spec import HardwareSpec, get_spec


@dataclass
class CoreBudget:
    neuron_count: int
    synapse_count: int
    weight_bytes: int
    state_bytes: int
    routing_bytes: int
    utilization: float

    @property
    def sram_bytes(self) -> int:
        return self.weight_bytes + self.state_bytes + self.routing_bytes


ResourceBudget = CoreBudget  # the TALON architecture page's name


@dataclass
class ResourceMap:
    total_weight_bytes: int
    total_state_bytes: int
    peak_core_utilization: float
    fits_hardware: bool
    violations: list[dict] = field(default_factory=list)
    budgets: dict[int, CoreBudget] = field(default_factory=dict)
    precision: str = "fp32"

    def to_dict(self) -> dict:
        return {
            "total_weight_bytes": self.total_weight_bytes,
            "total_state_bytes": self.total_state_bytes,
            "peak_core_utilization": self.peak_core_utilization,
            "fits_hardware": self.fits_hardware,
            "violations": self.violations,
            "precision": self.precision,
            "budgets": {str(k): {**asdict(v), "sram_bytes": v.sram_bytes} for k, v in self.budgets.items()},
        }


def allocate(graph: ir.Graph, hw_spec: HardwareSpec | str, *, precision: str | None = None) -> ResourceMap:
    """Budget every core of ``graph`` on ``hw_spec`` (module docstring); ``violations`` name the core,
    the resource, the amount used, the limit and the excess."""
    spec = get_spec(hw_spec)
    meta = getattr(graph, "partition_metadata", None) or graph.metadata.get("talon.partition")
    if precision is None and meta:
        precision = meta.get("precision")
    weight_bits, state_bits = widths(spec, precision)
    if meta:
        vg, parts = mapped_vertices(graph)
        costs, cores = vg.costs, parts
    else:
        costs = [node_cost(n, weight_bits, state_bits) for n in graph.nodes.values()]
        cores = np.zeros(len(costs), np.int64)
    n_cores = int(cores.max()) + 1 if len(cores) else 0
    sums = np.zeros((n_cores, 4), np.int64)
    for c, cost in zip(cores.tolist(), costs, strict=True):
        sums[c] += (cost.neurons, cost.synapses, cost.weight_bytes, cost.state_bytes)
    routing = np.zeros(n_cores, np.int64)
    routed = getattr(graph, "routing", None)
    if routed is not None:
        core_of_slot = {}
        placed = getattr(graph, "placement", None)
        slots = placed.slots if placed is not None and len(placed.slots) == n_cores else np.arange(n_cores)
        for k, s in enumerate(np.asarray(slots).tolist()):
            core_of_slot[int(s)] = k
        for slot, table in routed.tables.items():
            if slot in core_of_slot:
                routing[core_of_slot[slot]] += table.n_entries * spec.routing_entry_bytes
    budgets, violations = {}, []
    limits = {
        "neurons": spec.max_neurons_per_core,
        "synapses": spec.max_synapses_per_core,
        "sram_bytes": spec.sram_bytes_per_core,
    }
    for c in range(n_cores):
        neurons, synapses, wbytes, sbytes = (int(x) for x in sums[c])
        sram = wbytes + sbytes + int(routing[c])
        used = {"neurons": neurons, "synapses": synapses, "sram_bytes": sram}
        util = max(used[k] / limits[k] for k in limits)
        budgets[c] = CoreBudget(neurons, synapses, wbytes, sbytes, int(routing[c]), float(util))
        for k, limit in limits.items():
            if used[k] > limit:
                violations.append({"core": c, "resource": k, "used": used[k], "limit": limit, "excess": used[k] - limit,
                                   "ratio": used[k] / limit})  # fmt: skip
    if n_cores > spec.num_cores:
        violations.append({"core": None, "resource": "cores", "used": n_cores, "limit": spec.num_cores,
                           "excess": n_cores - spec.num_cores, "ratio": n_cores / spec.num_cores})  # fmt: skip
    if routed is not None:
        for v in routed.table_violations:
            violations.append({"core": v["core"], "resource": "routing_entries", "used": v["entries"],
                               "limit": v["limit"], "excess": v["excess"], "ratio": v["entries"] / v["limit"],
                               "position": v["position"]})  # fmt: skip
        for v in routed.feedback_violations:
            violations.append({"core": None, "resource": "feedback_delay", "used": v["hops"], "limit": v["limit"],
                               "excess": v["hops"] - v["limit"], "ratio": v["hops"] / max(v["limit"], 1),
                               "edge": [v["source"], v["target"]]})  # fmt: skip
    return ResourceMap(
        total_weight_bytes=int(sums[:, 2].sum()),
        total_state_bytes=int(sums[:, 3].sum()),
        peak_core_utilization=max((b.utilization for b in budgets.values()), default=0.0),
        fits_hardware=not violations,
        violations=violations,
        budgets=budgets,
        precision=precision or spec.precision,
    )
