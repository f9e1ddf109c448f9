"""The backend interface every backend implements (``validate``, ``compile``, ``simulate``, ``profile``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from talon import ir

from .config import CompileConfig
from .descriptor import HardwareDescriptor
from .errors import BackendError
from .results import BackendCapabilities, ProfileResult, SimulationResult, ValidationResult


class BackendBase(ABC):
    """A target that can check, compile, simulate and profile TALON IR graphs."""

    name: str = ""

    @abstractmethod
    def get_capabilities(self) -> BackendCapabilities:
        """Supported primitives, precisions, cyclic graphs and the largest graph (in neurons)."""

    def validate(self, graph: ir.Graph, config: CompileConfig | dict | None = None) -> ValidationResult:
        """Check that every node of ``graph`` (subgraphs included) is supported by this backend."""
        check_graph(graph)
        caps = self.get_capabilities()
        supported = set(caps.supported_primitives) | {"Input", "Output"}
        unsupported = [
            f"{path} ({type(node).__name__})"
            for path, node in iter_nodes(graph)
            if type(node).__name__ not in supported
        ]
        errors = []
        if not caps.supports_cyclic and not all(g.is_dag for _, g in iter_graphs(graph)):
            errors.append(f"backend {self.name!r} does not run cyclic graphs")
        return ValidationResult(not unsupported and not errors, unsupported, [], errors)

    @abstractmethod
    def compile(self, graph: ir.Graph, config: CompileConfig | dict | None = None, **kwargs: Any) -> HardwareDescriptor:
        """Lower ``graph`` to this backend's execution plan."""

    @abstractmethod
    def simulate(self, graph: ir.Graph, inputs=None, n_steps: int | None = None, step_by_step: bool = False,
                 **kwargs: Any) -> SimulationResult:  # fmt: skip
        """Run ``graph`` for ``n_steps`` timesteps."""

    @abstractmethod
    def profile(self, graph: ir.Graph, inputs=None, n_steps: int | None = None, **kwargs: Any) -> ProfileResult:
        """Latency, operation counts, memory and estimated energy of a run."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def check_graph(graph: Any) -> ir.Graph:
    if not isinstance(graph, ir.Graph):
        raise BackendError(
            f"expected a talon.ir.Graph, got {type(graph).__name__}; read a .t1c file with talon.ir.read(path)"
        )
    return graph


def iter_nodes(graph: ir.Graph, prefix: str = ""):
    """(path, node) of every non-graph node, subgraphs inlined as ``"sub.node"``."""
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            yield from iter_nodes(node, f"{prefix}{name}.")
        else:
            yield prefix + name, node


def iter_graphs(graph: ir.Graph):
    yield "", graph
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Graph):
            for path, sub in iter_graphs(node):
                yield (f"{name}.{path}" if path else name), sub
