"""What the page says a graph costs: the numbers of ``talon analyze``, ``talon profile`` and
``talon.graph.allocate``, computed by their own code (never a second copy of their rules).

Per node (``node["cost"]`` of :func:`talon.viz.graph_to_dict`), from
:func:`talon.ir.counting.count_graph` — the counts ``analyze_graph`` and ``profile_graph`` take
for every node, with the same fan-in (:func:`talon.ir.graph.walk`):

* ``layer``: the node's name in ``talon analyze`` (``outer.inner`` inside a subgraph);
* ``bytes``: parameter bytes, the arrays' real ``nbytes`` (analyze's ``LayerStats.bytes``);
* ``macs``: multiply-accumulates per sample and step (``LayerStats.macs``);
* ``spike_ops``: spiking-neuron updates per step (summed, profile's ``spike_ops``);
* ``ops = macs + spike_ops`` (summed, profile's ``total_ops``);
* ``state_bytes``: 4 bytes per neuron state value (profile's ``state_memory`` without the
  buffers of recurrent edges, which belong to edges, not nodes);
* ``neurons``, ``synapses``: what a core stores (:func:`talon.graph.resources.node_cost`, as
  ``allocate`` counts them);
* ``sram_bytes``: ``{precision: weight + state bytes on a core}`` at each datapath precision of
  :data:`talon.graph.spec.PRECISION_BITS` (int4 packs two weights per byte).

The summary (``summary["cost"]``) is ``analyze_graph``'s and ``profile_graph``'s totals, the
same :class:`talon.ir.counting.GraphCounts` they report. A partitioned graph whose record names
its hardware (``talon.graph.partition`` writes ``spec`` and ``precision``) also gets ``mapping``:
per core the :func:`talon.graph.allocate` budget (neurons, synapses, weight / state / routing /
SRAM bytes and each one's load against the spec's limit), its status (``"over"`` past a limit,
``"near"`` at :data:`NEAR_FULL` of one or more, else ``"ok"``) and the allocation's violations.
"""

from __future__ import annotations

import warnings
from typing import Any

from talon.ir import Graph
from talon.ir.counting import BYTES_PER_ACTIVATION, GraphCounts

NEAR_FULL = 0.9
"""A core whose largest load (neurons, synapses or SRAM against the spec) reaches this fraction is
marked near-full."""


def node_costs(counted: GraphCounts) -> list[dict[str, Any]]:
    """One cost record per non-subgraph node of the counted graph, in the order
    :func:`talon.ir.graph.walk` (and the page's flattening) visits them."""
    from talon.graph.resources import node_cost
    from talon.graph.spec import PRECISION_BITS

    records = []
    for name, node, counts in counted.layers:
        core = node_cost(node, *PRECISION_BITS["fp32"])
        # a node that stores nothing at 32 bits stores nothing at any width (bytes = ceil(n * bits / 8))
        per_precision = {p: core if core.free else node_cost(node, w, s) for p, (w, s) in PRECISION_BITS.items()}
        records.append(
            {
                "layer": name,
                "bytes": counts.nbytes,
                "macs": counts.macs,
                "spike_ops": counts.spike_ops,
                "ops": counts.macs + counts.spike_ops,
                "state_bytes": counts.state_values * BYTES_PER_ACTIVATION,
                "counted": counts.counted,
                "neurons": core.neurons,
                "synapses": core.synapses,
                "sram_bytes": {p: c.sram_bytes for p, c in per_precision.items()},
            }
        )
    return records


GRAPH_COST_FIELDS = (
    "total_params",
    "total_bytes",
    "total_macs",
    "total_flops",
    "spike_ops",
    "total_ops",
    "weight_memory",
    "activation_memory",
    "state_memory",
    "total_memory",
    "estimated_quantized_memory",
)
"""The totals ``summary["cost"]`` holds, named as :class:`talon.sdk.GraphStats` and
:class:`talon.sdk.HardwareProfile` name them (``mac_ops`` is ``total_macs``)."""


def graph_costs(counted: GraphCounts) -> dict[str, Any]:
    """``summary["cost"]``: the totals of ``analyze_graph`` and ``profile_graph`` (module docstring)."""
    return {**{key: getattr(counted, key) for key in GRAPH_COST_FIELDS}, "uncounted": list(counted.uncounted)}


def core_budgets(graph: Graph, record: dict[str, Any], assignments: dict[str, int]) -> dict[str, Any] | None:
    """``mapping``: per-core budgets of :func:`talon.graph.allocate` against the partition record's
    spec; None when the record names no spec (a graph annotated by hand); ``{"error": why}``, with a
    warning, when the record cannot be budgeted (a damaged or hand-edited file)."""
    from talon.graph.allocate import allocate
    from talon.graph.partition import METADATA_KEY
    from talon.graph.spec import HardwareSpec
    from talon.ir.errors import TalonError

    # allocate reads the record talon.graph.partition keeps (a hand-annotated graph has none)
    if not isinstance(record.get("spec"), dict) or not (
        getattr(graph, "partition_metadata", None) or graph.metadata.get(METADATA_KEY)
    ):
        return None
    try:
        spec = HardwareSpec.from_dict(record["spec"])
        budget = allocate(graph, spec, precision=record.get("precision"))
    except (TalonError, KeyError, TypeError, ValueError) as exc:
        message = f"the graph's partition record cannot be budgeted against its chip ({type(exc).__name__}: {exc})"
        warnings.warn(message + "; the page shows no core budgets", stacklevel=3)
        return {"error": message}
    limits = {
        "neurons": spec.max_neurons_per_core,
        "synapses": spec.max_synapses_per_core,
        "sram_bytes": spec.sram_bytes_per_core,
    }
    nodes_on: dict[int, int] = {}
    for core in assignments.values():
        nodes_on[core] = nodes_on.get(core, 0) + 1
    cores = []
    for core, b in sorted(budget.budgets.items()):
        used = {"neurons": b.neuron_count, "synapses": b.synapse_count, "sram_bytes": b.sram_bytes}
        load = {k: used[k] / limits[k] for k in limits}
        over = any(used[k] > limits[k] for k in limits)
        cores.append(
            {
                "core": int(core),
                "nodes": nodes_on.get(core, 0),
                **used,
                "weight_bytes": b.weight_bytes,
                "state_bytes": b.state_bytes,
                "routing_bytes": b.routing_bytes,
                "load": load,
                "utilization": b.utilization,
                "status": "over" if over else "near" if b.utilization >= NEAR_FULL else "ok",
            }
        )
    return {
        "spec": spec.name,
        "precision": budget.precision,
        "num_cores": spec.num_cores,
        "limits": limits,
        "near_full": NEAR_FULL,
        "cores": cores,
        "peak_utilization": budget.peak_core_utilization,
        "fits_hardware": budget.fits_hardware,
        "violations": budget.violations,
    }
