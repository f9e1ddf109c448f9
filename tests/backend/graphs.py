"""Graphs the backend tests share: the package's example graphs (``talon.examples``)."""

from talon.examples import SNNTORCH_BETA, SNNTORCH_TAU, chain, hybrid_graph, leaky, mlp_graph, uniform

__all__ = ["SNNTORCH_BETA", "SNNTORCH_TAU", "chain", "hybrid_graph", "leaky", "mlp_graph", "uniform"]
