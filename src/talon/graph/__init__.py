"""Hardware mapping (``docs/mapping.md``): fit a graph onto a many-core neuromorphic chip.

``partition`` splits layers that exceed a core into slices (ordinary IR nodes, so the partitioned
graph simulates bit-identically) and assigns them to cores; ``place`` puts the cores on the mesh;
``route`` builds the multicast routing tables; ``allocate`` checks every per-core budget.
Needs numpy, scipy and pymetis (talon's ``graph`` extra); never torch.
"""

from .allocate import CoreBudget, ResourceBudget, ResourceMap, allocate
from .errors import HardwareSpecError, MappingError
from .partition import (
    ALGORITHMS,
    mapped_vertices,
    partition,
    partition_edgemap,
    partition_greedy,
    partition_metadata,
    partition_spectral,
)
from .place import PlacementResult, place
from .route import RoutingResult, RoutingTable, route
from .spec import PRESETS, SETTLED, HardwareSpec, get_spec

__all__ = [
    "ALGORITHMS",
    "PRESETS",
    "SETTLED",
    "CoreBudget",
    "HardwareSpec",
    "HardwareSpecError",
    "MappingError",
    "PlacementResult",
    "ResourceBudget",
    "ResourceMap",
    "RoutingResult",
    "RoutingTable",
    "allocate",
    "get_spec",
    "mapped_vertices",
    "partition",
    "partition_edgemap",
    "partition_greedy",
    "partition_metadata",
    "partition_spectral",
    "place",
    "route",
]
