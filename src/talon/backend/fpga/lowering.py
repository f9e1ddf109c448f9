"""Stage 1: the CPU backend's fixed-point lowering, reused as it is.

The FPGA backend does not quantize anything itself. It lowers the graph with the CPU backend
(``cpu.lowering.program.lower``), calibrates on the same inputs (``cpu.run.engine.calibrate``) and builds the
CPU backend's integer kernels (``cpu.kernels.build``); the HLS code generator then prints those
kernels' integers — weights, biases, rescaling multipliers, neuron coefficients, thresholds —
into C++. "Exact against the CPU backend" therefore means the same integers computed by the same
operations, and any change to the CPU backend's formats reaches the FPGA project automatically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talon import ir
from talon._compiled import planned_work

from ..config import CompileConfig
from ..cpu.backend import spiking_paths
from ..cpu.lowering.program import Program, lower
from ..cpu.run.engine import Engine, calibrate
from ..cpu.run.work_plan import run_share
from ..errors import BackendError, UnsupportedNodeError
from ..stimulus import prepare_inputs

#: IR node types the HLS code generator implements (Input / Output included).
SUPPORTED = (
    "Input", "Output", "Affine", "SpikingAffine", "Linear", "Conv1d", "Conv2d", "SConv", "SDConv",
    "MaxPool2d", "AvgPool2d", "SumPool2d", "Flatten", "Skip", "Concat", "ChannelSplit", "Scale", "ReLU",
    "PReLU", "BatchNorm1d", "BatchNorm2d", "Dropout", "HybridRegion", "Threshold",
    "LIF", "IF", "CubaLIF", "LI", "CubaLI", "Integrator", "Delay",
)  # fmt: skip

#: Fixed-point precisions the FPGA backend compiles (the CPU backend's integer datapaths).
FPGA_PRECISIONS = ("int16", "int8", "int4")


@dataclass
class FixedPlan:
    """A graph lowered and quantized by the CPU backend, ready for code generation."""

    graph: ir.Graph
    program: Program
    engine: Engine  # the CPU backend's fixed-point engine (kernels hold every integer)
    config: CompileConfig
    calibration_steps: int
    calibration_batch: int

    @property
    def kernels(self):
        return self.engine.kernels

    def spiking_paths(self) -> list[str]:
        return spiking_paths(self.engine)


def unsupported_nodes(graph: ir.Graph) -> list[str]:
    """``"path (Type): reason"`` for every node the HLS backend cannot generate."""
    from ..base import iter_nodes
    from ..cpu.kernels.fixed_ops import integer_support_problem

    out = []
    for path, node in iter_nodes(graph):
        kind = type(node).__name__
        if kind not in SUPPORTED:
            out.append(f"{path} ({kind}): no HLS implementation in the FPGA backend")
        elif (problem := integer_support_problem(node)) or (problem := _neuron_problem(node)):
            out.append(f"{path} ({kind}): {problem}")
    return out


def _neuron_problem(node: ir.Node) -> str | None:
    """The HLS neuron kernel emits one spike bit per step and has no membrane floor."""
    checks = (
        ("spike_mode='multi'", getattr(node, "multi_spike", False)),
        ("v_min", getattr(node, "v_min", None) is not None),
        ("synapse='input_first'", getattr(node, "synapse", "decay") == "input_first"),
    )
    used = [field for field, on in checks if on]
    if not used:
        return None
    return (
        f"{' and '.join(used)} (spike counts, membrane floor, input-first synapse) are not in the HLS neuron "
        "kernel, which emits one spike bit per step; simulate it with the CPU backend (its fixed point runs them)"
    )


def check_precision(config: CompileConfig) -> None:
    if config.precision not in FPGA_PRECISIONS:
        raise BackendError(
            f"the FPGA backend generates integer datapaths only: precision {config.precision!r} is not one of "
            f"{', '.join(FPGA_PRECISIONS)} (floating point has no bit-exact HLS counterpart of the CPU backend)"
        )


def plan_fixed(
    graph: ir.Graph, config: CompileConfig, calibration_inputs=None, n_steps: int | None = None
) -> FixedPlan:
    """Lower, calibrate (an fp32 run of ``calibration_inputs``; the default stimulus when None) and
    build the CPU backend's integer kernels for ``graph``."""
    check_precision(config)
    problems = unsupported_nodes(graph)
    if problems:
        raise UnsupportedNodeError("the FPGA backend cannot generate these nodes: " + "; ".join(problems))
    program = lower(graph)
    arrays, steps, batch, _ = prepare_inputs(graph, calibration_inputs, n_steps)
    with planned_work(run_share(program, "fp32", steps, batch)):  # a long calibration starts numba at once
        calibration, _ = calibrate(program, arrays)
    engine = Engine(program, config, calibration)
    return FixedPlan(graph, program, engine, config, steps, batch)


def flat_param(a, shape: tuple[int, ...]) -> np.ndarray:
    """A parameter broadcast to ``shape`` and flattened (C order), or one value if uniform."""
    a = np.asarray(a)
    if a.size == 0:
        raise BackendError("empty parameter array")
    flat = a.reshape(-1)
    if np.all(flat == flat[0]):
        return flat[:1]
    return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(-1)
