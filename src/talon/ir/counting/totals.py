"""What a whole graph costs: the per-node counts (:mod:`talon.ir.counting.rules`) and their totals.

These are the totals ``talon analyze`` (:func:`talon.sdk.analyze_graph`) and ``talon profile``
(:func:`talon.sdk.profile_graph`) report and the page of ``talon.viz`` shows. Every node at every
nesting level counts (:func:`talon.ir.graph.walk`: a subgraph contributes its nodes, named
``outer.inner``, its Input receiving the subgraph node's edges). Per sample and timestep:

* ``total_params``, ``total_bytes``, ``total_macs``, ``spike_ops``, ``neuron_params``,
  ``neuron_constants``, ``model_bytes``: the sums of the nodes' counts;
* ``total_flops = 2 * total_macs``; ``total_ops = total_macs + spike_ops``;
* ``weight_params = total_params - neuron_params``; ``model_params = weight_params + neuron_constants``.

Memory, in bytes, activations and state as float32 (:data:`BYTES_PER_ACTIVATION`):

* ``weight_memory = total_bytes`` (every array's real ``nbytes``);
* ``activation_memory`` = the largest single node output (all outputs of a multi-output node) x 4,
  the peak buffer a layer-by-layer engine needs;
* ``state_memory`` = 4 x (the nodes' state values + one buffered value per element of every
  recurrent edge, which carries the previous step's value);
* ``total_memory = weight_memory + activation_memory + state_memory``;
* ``estimated_quantized_memory`` = 1 byte per parameter + activation + state (8-bit weights,
  activations and state unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from ..graph import Graph, check_edges, walk
from ..node import Node
from .rules import BYTES_PER_ACTIVATION, NodeCounts, count_node, shape_numel


class CountedNode(NamedTuple):
    """One node of :attr:`GraphCounts.layers`: its qualified name, the node and its counts."""

    name: str
    node: Node
    counts: NodeCounts


@dataclass(frozen=True)
class GraphCounts:
    """Result of :func:`count_graph` (see the module docstring for every field and property)."""

    layers: tuple[CountedNode, ...]
    total_params: int
    total_bytes: int
    total_macs: int
    spike_ops: int
    neuron_params: int
    neuron_constants: int
    model_bytes: int
    state_values: int
    """The nodes' state values (neuron state, Delay slots), recurrent buffers excluded."""
    peak_output_elements: int
    recurrent_values: int
    """Values buffered on recurrent edges (one per element of each), subgraphs included."""
    recurrent_edges: int
    recurrent_mask: tuple[bool, ...]
    """For each edge of the top-level graph, whether it closes a cycle (``Graph.recurrent_mask``)."""
    uncounted: tuple[str, ...]
    """Nodes whose MACs could not be counted (unknown input shape or no rule), counted as 0."""

    @property
    def total_flops(self) -> int:
        return 2 * self.total_macs

    @property
    def total_ops(self) -> int:
        return self.total_macs + self.spike_ops

    @property
    def weight_params(self) -> int:
        return self.total_params - self.neuron_params

    @property
    def model_params(self) -> int:
        return self.weight_params + self.neuron_constants

    @property
    def weight_memory(self) -> int:
        return self.total_bytes

    @property
    def activation_memory(self) -> int:
        return self.peak_output_elements * BYTES_PER_ACTIVATION

    @property
    def state_memory(self) -> int:
        return (self.state_values + self.recurrent_values) * BYTES_PER_ACTIVATION

    @property
    def total_memory(self) -> int:
        return self.weight_memory + self.activation_memory + self.state_memory

    @property
    def estimated_quantized_memory(self) -> int:
        return self.total_params + self.activation_memory + self.state_memory


def count_graph(graph: Graph) -> GraphCounts:
    """Count every node of ``graph`` and sum (module docstring). Raises ``TypeError`` for a
    non-graph and :class:`~talon.ir.GraphValidationError` for an edge naming an unknown node."""
    if not isinstance(graph, Graph):
        raise TypeError(f"count_graph expects a talon.ir.Graph, got {type(graph).__name__}")
    check_edges(graph)
    layers = []
    params = nbytes = macs = spike_ops = neuron_params = neuron_constants = model_bytes = state = peak = 0
    uncounted = []
    for name, node, n_in in walk(graph):  # one pass: the sums are taken as the nodes are counted
        c = count_node(node, n_in)
        layers.append(CountedNode(name, node, c))
        params += c.params
        nbytes += c.nbytes
        macs += c.macs
        spike_ops += c.spike_ops
        neuron_params += c.neuron_params
        neuron_constants += c.neuron_constants
        model_bytes += c.model_nbytes
        state += c.state_values
        if c.output_elements > peak:
            peak = c.output_elements
        if not c.counted:
            uncounted.append(name)
    mask = tuple(graph.recurrent_mask())
    buffered, n_recurrent = _recurrent_buffers(graph, mask)
    return GraphCounts(
        layers=tuple(layers),
        total_params=params,
        total_bytes=nbytes,
        total_macs=macs,
        spike_ops=spike_ops,
        neuron_params=neuron_params,
        neuron_constants=neuron_constants,
        model_bytes=model_bytes,
        state_values=state,
        peak_output_elements=peak,
        recurrent_values=buffered,
        recurrent_edges=n_recurrent,
        recurrent_mask=mask,
        uncounted=tuple(uncounted),
    )


def _recurrent_buffers(graph: Graph, mask) -> tuple[int, int]:
    """(buffered values, edges) over the recurrent edges (``mask``) of the graph and its subgraphs."""
    values = edges = 0
    for i, recurrent in enumerate(mask):
        if recurrent:
            edges += 1
            values += shape_numel(graph.edge_shape(i))
    for node in graph.nodes.values():
        if isinstance(node, Graph):
            v, e = _recurrent_buffers(node, node.recurrent_mask())
            values, edges = values + v, edges + e
    return values, edges
