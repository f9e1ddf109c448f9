"""Stage 3's entry: the kernels of a lowered program at one precision (one kernel per operation).

**Floating point** (fp32, fp16): each operation's kernel from :mod:`.float_ops`,
:mod:`.float_neurons` or :mod:`.detection_ops`, storing its parameters in ``dtype``.

**Fixed point**: formats flow along the schedule: each kernel is built from the formats of its
inputs. Inside a cyclic component a delayed edge may come from an operation built later, so the
component is built repeatedly (unknown formats ignored on the first pass) until every format is
stable.
"""

from __future__ import annotations

import numpy as np

from talon import ir

from ...config import CompileConfig
from ...errors import BackendError
from ..formats.calibration import Calibration
from ..formats.fixed_point import QFormat
from ..lowering.program import Program
from . import detection_ops  # noqa: F401  (registers the ghost and detection kernels)
from .fixed_detection import EXPANDED_TYPES, FloatTail, QExpanded, check_float_tail
from .fixed_kernel import FixedContext
from .fixed_neurons import FixedDelay, FixedNeuron
from .fixed_ops import fixed_stateless_kernel
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


_MAX_PASSES = 32
ZERO_INPUT = QFormat(1.0, 0)


def fixed_kernels(program: Program, config: CompileConfig, calibration: Calibration) -> list[Kernel]:
    ir.check_finite(((op.path, op.node) for op in program.ops), "the fixed-point datapath")
    ctx = FixedContext(config.fixed_point, config.per_channel, calibration)
    formats: dict[int, QFormat | None] = {}
    kernels: list[Kernel | None] = [None] * len(program.ops)
    tail = check_float_tail(program)  # the detection decode and what follows it run in float32
    for component in program.components:
        ops = [program.ops[i] for i in component.ops]
        for _ in range(_MAX_PASSES if component.cyclic else 1):
            changed = False
            for op in ops:
                if op.external:
                    in_formats = []
                elif not op.inputs:
                    in_formats = [ZERO_INPUT]
                else:
                    in_formats = [formats.get(ref.value) for ref in op.inputs]
                kernel = FloatTail(op, in_formats) if op.index in tail else _build(op, ctx, in_formats)
                kernels[op.index] = kernel
                for vid, fmt in zip(op.outputs, kernel.out_formats, strict=True):
                    old = formats.get(vid)
                    if (old is None) != (fmt is None) or (fmt is not None and not fmt.same(old)):
                        changed = True
                    formats[vid] = fmt
            if not changed:
                break
        if component.cyclic and changed:
            raise BackendError(
                f"the fixed-point formats of the cycle through {[op.path for op in ops]} do not settle; "
                "simulate it in fp32 or put a weight layer or neuron in the loop"
            )
        for op in ops:
            if any(f is None for f in kernels[op.index].in_formats) and not (op.external or op.index in tail):
                raise BackendError(f"node {op.path!r}: an input format could not be determined")
    float32_storage(program, kernels)
    return kernels


def float32_storage(program: Program, kernels: list[Kernel]) -> None:
    """Mark the kernels whose outputs may be held in float32: those whose every output is read only
    by kernels that take float32 integers (``reads_exact_float``). A marked producer still uses
    float32 only where its own bound proves every value, and every partial result forming it, an
    integer below ``2**24`` (exact in float32); kernels that do not read floats get int64 inputs
    from the executor. Either way the integers are the same: float32 skips a conversion to int64
    and back before the next BLAS product, and halves the memory traffic."""
    readers = program.consumers()
    for op in program.ops:
        kernel = kernels[op.index]
        kernel.float32_out_ok = all(
            readers[vid] and all(getattr(kernels[r], "reads_exact_float", False) for r in readers[vid])
            for vid in op.outputs
        )


def integer_inputs(program: Program, kernels: list[Kernel]) -> list[tuple[int, ...]]:
    """Per op: the positions of the inputs the executor converts from float32 to int64 before
    running it — the fixed-point values (a producer with a format) read by a kernel that does not
    take float32 integers. Never a top-level Input's (it quantizes the caller's real values), nor
    the real float32 values of a detection decode's tail."""
    out = []
    for op in program.ops:
        kernel = kernels[op.index]
        if op.external or getattr(kernel, "reads_exact_float", False):
            out.append(())
            continue
        positions = []
        for k, ref in enumerate(op.inputs):
            producer = program.ops[program.values[ref.value].producer]
            fmt = kernels[producer.index].out_formats[producer.outputs.index(ref.value)]
            if fmt is not None:
                positions.append(k)
        out.append(tuple(positions))
    return out


def _build(op, ctx, in_formats) -> Kernel:
    if isinstance(op.node, NEURON_NODES):
        return FixedNeuron(op, ctx, in_formats)
    if isinstance(op.node, ir.Delay):
        return FixedDelay(op, ctx, in_formats)
    if isinstance(op.node, EXPANDED_TYPES):
        return QExpanded(op, ctx, in_formats)
    return fixed_stateless_kernel(op, ctx, in_formats)
