"""Graph utilities of the TALON bridge API (thin, documented wrappers over ``talon.ir.Graph``)."""

from __future__ import annotations

from talon import ir
from talon.ir.graph import reachable


def validate_graph(graph: ir.Graph) -> None:
    """Re-run the structural and shape validation of ``graph`` (raises GraphValidationError)."""
    graph.validate()


def has_cycles(graph: ir.Graph) -> bool:
    """Whether the graph has a recurrent edge (docs/semantics.md §2)."""
    return not graph.is_dag


def get_topological_order(graph: ir.Graph) -> list[str]:
    return graph.topological_order()


def get_input_nodes(graph: ir.Graph) -> list[str]:
    return graph.input_nodes


def get_output_nodes(graph: ir.Graph) -> list[str]:
    return graph.output_nodes


def get_disconnected_nodes(graph: ir.Graph) -> list[str]:
    """Nodes not reachable from any Input node along the edges (in node order)."""
    reached = reachable(graph.edges, graph.input_nodes)
    return [n for n in graph.nodes if n not in reached]
