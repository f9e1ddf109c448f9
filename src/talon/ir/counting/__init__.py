"""Counting: what a node and a graph cost in parameters, bytes, MACs, spikes, neurons and memory.

The one copy of the rules behind ``talon analyze``, ``talon profile``, the CPU backend's profiler
and the costs ``talon.viz`` shows (numpy only, like the rest of :mod:`talon.ir`):

* :mod:`~talon.ir.counting.rules` — one node: :func:`count_node` returns :class:`NodeCounts`;
* :mod:`~talon.ir.counting.detection` — the MACs of the ghost and detection primitives;
* :mod:`~talon.ir.counting.totals` — a graph: :func:`count_graph` returns every node's counts and
  the totals (:class:`GraphCounts`).

``docs/sdk.md`` lists the rules with worked examples.
"""

from .detection import CONV_LIKE_TYPES, DETECTION_TYPES, detection_macs
from .rules import (
    BYTES_PER_ACTIVATION,
    CONV_TYPES,
    DENSE_TYPES,
    POOL_TYPES,
    SPIKING_TYPES,
    NodeCounts,
    count_node,
    is_uniform,
)
from .totals import CountedNode, GraphCounts, count_graph

__all__ = [
    "BYTES_PER_ACTIVATION",
    "CONV_LIKE_TYPES",
    "CONV_TYPES",
    "DENSE_TYPES",
    "DETECTION_TYPES",
    "POOL_TYPES",
    "SPIKING_TYPES",
    "CountedNode",
    "GraphCounts",
    "NodeCounts",
    "count_graph",
    "count_node",
    "detection_macs",
    "is_uniform",
]
