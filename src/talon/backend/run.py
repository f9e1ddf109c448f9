"""``run_graph``: compile and simulate in one call (the TALON docs' ``run()`` convenience)."""

from __future__ import annotations

from dataclasses import dataclass

from talon import ir

from .config import CompileConfig
from .descriptor import HardwareDescriptor
from .registry import get_backend
from .results import SimulationResult


@dataclass
class RunResult:
    descriptor: HardwareDescriptor
    simulation: SimulationResult


def run_graph(
    graph: ir.Graph,
    inputs=None,
    n_steps: int | None = None,
    *,
    backend: str = "cpu",
    config: CompileConfig | dict | None = None,
    precision: str | None = None,
) -> RunResult:
    """Compile ``graph`` for ``backend`` and simulate it (fixed point calibrates on ``inputs``)."""
    target = get_backend(backend)
    config = CompileConfig.coerce(config, precision)
    descriptor = target.compile(graph, config, calibration_inputs=inputs, n_steps=n_steps)
    return RunResult(descriptor, target.simulate(graph, inputs, n_steps, config=config))
