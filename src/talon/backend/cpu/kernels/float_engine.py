"""Kernels of the floating-point precisions (fp32, fp16) for a lowered program."""

from __future__ import annotations

import numpy as np

from talon import ir

from ..lowering.program import Program
from . import detection_ops  # noqa: F401  (registers the ghost and detection kernels)
from .float_neurons import FloatDelay, FloatNeuron
from .float_ops import float_kernel
from .kernel import Kernel

FLOAT_DTYPES = {"fp32": np.float32, "fp16": np.float16}
NEURON_NODES = (ir.LIF, ir.IF, ir.CubaLIF, ir.LI, ir.CubaLI, ir.Integrator)


def float_kernels(program: Program, precision: str, exact: bool = True) -> list[Kernel]:
    dtype = FLOAT_DTYPES[precision]
    kernels: list[Kernel] = []
    for op in program.ops:
        if isinstance(op.node, NEURON_NODES):
            kernels.append(FloatNeuron(op, dtype))
        elif isinstance(op.node, ir.Delay):
            kernels.append(FloatDelay(op, dtype))
        else:
            kernels.append(float_kernel(op, dtype, exact))
    return kernels
