"""One call for the whole mapping, and the mapping's part of compile and profile.

* :func:`map_graph` — partition -> place -> route (-> allocate): the graph a chip would run;
* :func:`mapping_description` — the JSON the hardware descriptor carries (cores, placement,
  routing tables, budgets);
* :func:`noc_activity` — spike-hops of a simulation's measured spikes on the mapped mesh, for the
  NoC energy of ``profile``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import ir
from .allocate import allocate
from .errors import MappingError
from .partition import METADATA_KEY, mapped_vertices, partition, partition_metadata, widths
from .place import place, placement_slots
from .route import route, route_vertices
from .spec import HardwareSpec, get_spec
from .traffic import rates_of, vertex_graph


def is_mapped(graph: ir.Graph) -> bool:
    return bool(getattr(graph, "partition_metadata", None) or graph.metadata.get(METADATA_KEY))


def map_graph(
    graph: ir.Graph, hw_spec: HardwareSpec | str, *, algorithm: str = "metis", activity=None, seed: int = 0,
    precision: str | None = None,
) -> ir.Graph:  # fmt: skip
    """Partition, place and route ``graph`` on ``hw_spec``; the mapped graph (``.placement``, ``.routing``).

    Raises :class:`MappingError` when a layer cannot be cut to fit a core, or when the mapping needs
    more cores than the chip has (a chip's mesh cannot place it; ``allocate(partition(graph, spec),
    spec)`` reports the excess without placing)."""
    spec = get_spec(hw_spec)
    with warnings.catch_warnings():  # too many cores: refused below, with the numbers
        warnings.simplefilter("ignore", UserWarning)
        mapped = partition(graph, spec, algorithm, activity, precision=precision, seed=seed)
    needed = mapped.partition_metadata["num_cores_used"]
    if needed > spec.num_cores:
        raise MappingError(
            f"the graph needs {needed} cores but {spec.name!r} has {spec.num_cores}: it does not fit this chip; "
            "use a spec with more or larger cores (talon partition reports the per-core budget)"
        )
    place(mapped, spec, seed=seed)
    route(mapped, spec)
    return mapped


def mapping_description(graph: ir.Graph, hw_spec: HardwareSpec | str | None = None) -> dict[str, Any]:
    """The ``mapping`` section of a hardware descriptor (docs/mapping.md)."""
    meta = partition_metadata(graph)
    spec = get_spec(hw_spec) if hw_spec is not None else HardwareSpec.from_dict(meta["spec"])
    if getattr(graph, "routing", None) is None:
        route(graph, spec)
    _, parts = mapped_vertices(graph)
    n_cores = int(parts.max()) + 1 if parts.size else 0
    slots = placement_slots(graph, spec, n_cores)
    cols = spec.mesh[1]
    resources = allocate(graph, spec)
    return {
        "spec": spec.to_dict(),
        "algorithm": meta["algorithm"],
        "num_cores_used": meta["num_cores_used"],
        "assignments": meta["assignments"],
        "slices": meta["slices"],
        "metrics": meta["metrics"],
        "placement": {str(k): [int(s // cols), int(s % cols)] for k, s in enumerate(slots.tolist())},
        "routing": {
            "summary": graph.routing.summary(),
            "keys": {str(k): v for k, v in graph.routing.keys.items()},
            "tables": [t.to_dict() for t in graph.routing.tables.values()],
        },
        "resources": resources.to_dict(),
    }


def noc_activity(graph: ir.Graph, simulation) -> dict[str, Any]:
    """Spike-hops per step of ``simulation``'s measured spikes (a SimulationResult of ``graph``)
    routed on the mapped mesh, and the NoC energy when the spec gives an energy per hop."""
    meta = partition_metadata(graph)
    spec = HardwareSpec.from_dict(meta["spec"])
    weight_bits, state_bits = widths(spec, meta.get("precision"))
    _, parts_by_name = mapped_vertices(graph)
    rates = rates_of(graph, simulation)
    vg = vertex_graph(graph, weight_bits, state_bits, rates)
    assignments = meta["assignments"]
    parts = np.array([int(assignments[n]) for n in vg.names], np.int64)
    del parts_by_name
    n_cores = int(parts.max()) + 1 if parts.size else 0
    routed = route_vertices(vg, parts, spec, placement_slots(graph, spec, n_cores), compress=False)
    steps = int(simulation.timesteps_run) * int(simulation.batch_size)
    energy = routed.noc_energy_pj_per_step
    return {
        "spike_hops_per_step": routed.spike_hops,
        "spike_hops": routed.spike_hops * steps,
        "noc_energy_uj": None if energy is None else energy * steps * 1e-6,
        "hop_energy_pj": None if spec.hop_energy_pj is None else list(spec.hop_energy_pj),
    }
