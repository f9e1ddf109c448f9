"""Fixed point for the ghost blocks, the detection head and the decode (docs/backend.md §4.6).

**Convolutional parts.** At ``int16`` / ``int8`` / ``int4`` an SGhostConv, SGhostEncoderLite,
GhostBasicBlock1/2 or SDDetect node runs as its *expansion* into ordinary primitives
(:func:`expand`): each convolution a ``Conv2d`` (the cheap one depthwise, ``groups = Cp``), the
ghost halves joined by a ``Concat``, GhostBasicBlock's split a ``ChannelSplit``, its residual join a
``Skip`` (residual sum), SDDetect's two branches three chained ``Conv2d`` each and a ``Concat``.
Every part gets the integer kernel of that primitive (§4.3: quantized weights, rescaling of a
non-integer input to ``activation_bits``, exact saturated accumulators, concatenated scales, the
fan-in rule for the residual sum), calibrated on the fp32 run's values of that part. The integers
are therefore exactly those of the expanded graph run in fixed point. The primitives carry no
BatchNorm (it is folded into their convolution weights and biases), so there is none to fold.

**Decode.** DFLDecode (softmax expectation and sigmoid), Dist2BBox and NMS are not convolutional
and have no integer form: a fixed-point run executes them, and every node after them (Concat,
Skip, Flatten, ChannelSplit, Dropout, Output), in **float32** on the dequantized values
``q · scale`` of their integer inputs (rounded to float32), with the fp32 kernels. This float tail
is reported per node (``SimulationResult.node_precision``, the descriptor's ``precision.dtype``); a
node of any other type after the decode is refused, naming it.
"""

from __future__ import annotations

import numpy as np

from talon import ir

from ...errors import UnsupportedNodeError
from ..formats.calibration import Calibration
from ..formats.fixed_point import QFormat
from ..lowering.program import Op, Program, lower
from . import detection_ops  # noqa: F401  (registers the fp32 kernels of the decode)
from .fixed_kernel import FixedContext, FixedKernel
from .fixed_ops import QIdentity, fixed_stateless_kernel
from .float_ops import float_kernel
from .kernel import StatelessKernel

EXPANDED_TYPES = (ir.SGhostConv, ir.SGhostEncoderLite, ir.GhostBasicBlock1, ir.GhostBasicBlock2, ir.SDDetect)
DECODE_TYPES = (ir.DFLDecode, ir.Dist2BBox, ir.NMS)
#: types that may follow the decode (they run in float32 there)
FLOAT_FOLLOWERS = (ir.Concat, ir.Skip, ir.Flatten, ir.ChannelSplit, ir.Dropout, ir.Output)


# ---- expansion into primitives --------------------------------------------------------------


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[str, ir.Node] = {}
        self.edges: list[tuple[str, str]] = []

    def conv(self, name: str, src: str, weight, bias, stride=(1, 1), padding=None, groups: int = 1) -> str:
        k = int(weight.shape[2])
        pad = (k // 2, k // 2) if padding is None else tuple(padding)
        self.nodes[name] = ir.Conv2d(
            weight=np.asarray(weight), bias=np.asarray(bias), stride=tuple(stride), padding=pad, groups=groups
        )
        self.edges.append((src, name))
        return name

    def ghost(self, node: ir.Node, prefix: str, src: str, stride=(1, 1), padding=None) -> str:
        """``concat(p, depthwise(p))`` with ``p`` the primary convolution."""
        pw, cw = getattr(node, f"{prefix}primary_weight"), getattr(node, f"{prefix}cheap_weight")
        p = self.conv(f"{prefix}primary", src, pw, getattr(node, f"{prefix}primary_bias"), stride, padding)
        c = self.conv(f"{prefix}cheap", p, cw, getattr(node, f"{prefix}cheap_bias"), groups=int(cw.shape[0]))
        name = f"{prefix}concat"
        self.nodes[name] = ir.Concat(dim=1)
        self.edges += [(p, name), (c, name)]
        return name


def expand(node: ir.Node) -> ir.Graph:
    """``node`` (a ghost block or SDDetect with a known input shape) as a graph of primitives.

    The graph computes exactly what the node computes, in every precision (docs/semantics.md
    §4.1); node names: ``<branch>primary`` / ``<branch>cheap`` / ``<branch>concat`` per ghost
    convolution, ``cv0_split``, ``residual``, ``concat``, ``conv1``, ``cv2_0`` … ``cv3_2``.
    """
    if not isinstance(node, EXPANDED_TYPES):
        raise TypeError(f"expand() takes a ghost block or SDDetect, got {type(node).__name__}")
    if node.input_shape is None:
        raise ValueError(f"{node._where()}: the input shape is unknown; put the node in a graph first")
    b = _Builder()
    b.nodes["input"] = ir.Input(np.array(node.input_shape))
    if isinstance(node, ir.SGhostConv):
        last = b.ghost(node, "", "input", node.primary_stride, node.primary_padding)
    elif isinstance(node, ir.SGhostEncoderLite):
        h = b.conv("conv1", "input", node.conv1_weight, node.conv1_bias, (node.stride,) * 2)
        last = b.ghost(node, "ghost_", h)
    elif isinstance(node, ir.SDDetect):
        ends = []
        for branch in ("cv2", "cv3"):
            src = "input"
            for i in range(3):
                src = b.conv(f"{branch}_{i}", src, getattr(node, f"{branch}_w{i}"), getattr(node, f"{branch}_b{i}"))
            ends.append(src)
        last = "concat"
        b.nodes[last] = ir.Concat(dim=1)
        b.edges += [(ends[0], last), (ends[1], last)]
    else:
        stride = (node.stride,) * 2 if isinstance(node, ir.GhostBasicBlock1) else (1, 1)
        main = b.ghost(node, "cv0_", "input", stride)
        half = int(node.cv0_primary_weight.shape[0])
        b.nodes["cv0_split"] = ir.ChannelSplit(split_sections=[half, half], dim=1)
        b.edges.append((main, "cv0_split"))
        last = "concat"
        b.nodes[last] = ir.Concat(dim=1)
        b.edges.append(("cv0_split", last))  # first outgoing edge: the primary half Z1
        mid = b.ghost(node, "cv2_", "cv0_split")  # second outgoing edge: the ghost half Z2
        if isinstance(node, ir.GhostBasicBlock1):
            res = b.ghost(node, "cvres_", "input", stride)
            b.nodes["residual"] = ir.Skip(skip_type="residual")
            b.edges += [(mid, "residual"), (res, "residual")]
            mid = "residual"
        b.edges.append((mid, last))
    b.nodes["output"] = ir.Output(np.array(node.output_shape))
    b.edges.append((last, "output"))
    return ir.Graph(b.nodes, b.edges)


def expanded_program(node: ir.Node) -> Program:
    return lower(expand(node))


# ---- calibration (called by the fp32 kernels during the calibration run) --------------------


def calibrate_expansion(node: ir.Node, x: np.ndarray, calibration: Calibration) -> np.ndarray:
    """Run the fp32 expansion of ``node`` on its merged input ``x`` (``[N, *in_shape]``), widening
    the ranges in ``calibration``; returns the expansion's output (equal to the node's)."""
    from ...config import CompileConfig
    from ..formats.calibration import CalibrationObserver
    from ..run.engine import Engine

    program = expanded_program(node)
    engine = Engine(program, CompileConfig(precision="fp32"))
    (name,) = program.inputs
    trace = engine.run({name: np.asarray(x, np.float32)[None]}, observers=(CalibrationObserver(calibration),))
    (vid,) = program.outputs.values()
    return trace.values[vid][0]


# ---- integer kernel of an expanded node -----------------------------------------------------


class QExpanded(FixedKernel):
    """A ghost block or SDDetect: the fan-in (§4.3), then the integer kernels of its expansion."""

    def setup(self, node):
        fmt = self.setup_sum()
        self.program = expanded_program(node)
        calibration = self.ctx.calibration.inner.get(self.op.index, Calibration())
        sub = FixedContext(self.spec, self.ctx.per_channel, calibration)
        self.parts: list[tuple[Op, FixedKernel]] = []
        self.w_bits, self.acc_bits = self.spec.weight_bits, self.spec.accumulator_bits
        if fmt is None:
            self.out_formats = [None]
            return
        formats: dict[int, QFormat] = {}
        for component in self.program.components:
            (index,) = component.ops
            op = self.program.ops[index]
            if op.external or op.graph_output:
                in_fmt = [fmt] if op.external else [formats[ref.value] for ref in op.inputs]
                kernel = QIdentity(op, sub, in_fmt)
            else:
                kernel = fixed_stateless_kernel(op, sub, [formats[ref.value] for ref in op.inputs])
            for vid, out in zip(op.outputs, kernel.out_formats, strict=True):
                formats[vid] = out
            self.parts.append((op, kernel))
        (out_vid,) = self.program.outputs.values()
        self.out_formats = [formats[out_vid]]

    def compute(self, x):
        values: dict[int, np.ndarray] = {}
        for op, kernel in self.parts:
            xs = [x] if op.external else [values[ref.value] for ref in op.inputs]
            for vid, y in zip(op.outputs, kernel.forward(kernel.merge(xs)), strict=True):
                values[vid] = y
        (out_vid,) = self.program.outputs.values()
        return values[out_vid]

    def part_integers(self, x) -> dict[str, np.ndarray]:
        """The integers of every part of the expansion for a merged input ``x`` (for tests and debugging)."""
        values: dict[int, np.ndarray] = {}
        out: dict[str, np.ndarray] = {}
        for op, kernel in self.parts:
            xs = [x] if op.external else [values[ref.value] for ref in op.inputs]
            ys = kernel.forward(kernel.merge(xs))
            for port, (vid, y) in enumerate(zip(op.outputs, ys, strict=True)):
                values[vid] = y
                out[op.path if len(ys) == 1 else f"{op.path}:{port}"] = y
        return out

    def describe(self):
        out = super().describe()
        out["weight_bits"], out["accumulator_bits"] = self.w_bits, self.acc_bits
        out["weight_scaling"] = "per_channel" if self.ctx.per_channel else "per_tensor"
        out["expansion"] = [
            {"node": op.path, "type": op.kind, **kernel.describe()}
            for op, kernel in self.parts
            if not (op.external or op.graph_output)
        ]
        return out


# ---- the float tail -------------------------------------------------------------------------


def float_tail(program: Program) -> tuple[set[int], list[str]]:
    """The ops a fixed-point run executes in float32 (the decode and everything after it), and the
    problems that forbid it (an op of another type after the decode, or the decode in a cycle)."""
    consumers = program.consumers()
    tail: set[int] = set()
    stack = [op.index for op in program.ops if isinstance(op.node, DECODE_TYPES)]
    while stack:
        i = stack.pop()
        if i in tail:
            continue
        tail.add(i)
        for vid in program.ops[i].outputs:
            stack.extend(consumers[vid])
    problems = []
    cyclic = {i for c in program.components if c.cyclic for i in c.ops}
    for i in sorted(tail):
        op = program.ops[i]
        if not isinstance(op.node, DECODE_TYPES + FLOAT_FOLLOWERS):
            problems.append(
                f"{op.path} ({op.kind}): it follows the detection decode, which runs in float32 at fixed-point "
                "precisions, and has no float tail kernel (only Concat, Skip, Flatten, ChannelSplit, Dropout, "
                "Output may follow DFLDecode / Dist2BBox / NMS)"
            )
        elif i in cyclic:
            problems.append(f"{op.path} ({op.kind}): the float decode cannot sit in a cycle at fixed point")
    return tail, problems


class FloatTail(StatelessKernel):
    """A node of the float tail: integer inputs dequantized to float32, then the fp32 kernel."""

    precision = "float32"
    float_tail = True

    def __init__(self, op: Op, in_formats: list[QFormat | None]) -> None:
        super().__init__(op)
        self.in_formats = in_formats
        self.inner = float_kernel(op, np.float32, True)
        self.out_formats: list[QFormat | None] = [None] * len(op.outputs)
        self.w_bits = self.acc_bits = 32

    def merge(self, xs):
        real = [
            x if f is None else (x * f.scale).astype(np.float32)
            for x, f in zip(xs, self.in_formats, strict=True)
        ]  # fmt: skip
        return self.inner.merge(real)

    def forward(self, x):
        return self.inner.forward(x)

    def describe(self):
        return {
            "dtype": "float32",
            "float_tail": True,
            "in_formats": [f.describe() if f else "float32" for f in self.in_formats],
        }


def check_float_tail(program: Program) -> set[int]:
    tail, problems = float_tail(program)
    if problems:
        raise UnsupportedNodeError("; ".join(f"node {p}" for p in problems))
    return tail
