"""Multiply-accumulates of the ghost and detection primitives (one sample, one step, biases excluded).

With ``G(prefix)`` one ghost convolution producing ``Cp`` channels on an ``Ho x Wo`` grid from
``C_in`` channels with a ``k x k`` primary and a ``kc x kc`` cheap kernel: ``Cp Ho Wo (C_in k² + kc²)``.

==================  ====================================================================
SGhostConv          ``G``
SGhostEncoderLite   conv1 ``C0 Ho Wo C_in k²`` + ``G(ghost_)`` on conv1's grid
GhostBasicBlock1    ``G(cv0_) + G(cv2_) + G(cvres_)`` + the residual sum ``2 cp2 Ho Wo``
GhostBasicBlock2    ``G(cv0_) + G(cv2_)``
SDDetect            the six convolutions, each ``C_out H W C_in k²``
DFLDecode           ``4 reg_max H W`` (the expectation over the bins; softmax and sigmoid: 0)
Dist2BBox, NMS      0 (element-wise decode and post-processing, no weights)
==================  ====================================================================

Used by the counting rules (:mod:`talon.ir.counting.rules`) and the CPU backend's profiler, which
counts these layers densely (every MAC, whether its input is a spike or not).
"""

from __future__ import annotations

import math

from talon import ir
from talon.ir import Node

DETECTION_TYPES: tuple[type[Node], ...] = (
    ir.SGhostConv, ir.SGhostEncoderLite, ir.GhostBasicBlock1, ir.GhostBasicBlock2,
    ir.SDDetect, ir.DFLDecode, ir.Dist2BBox, ir.NMS,
)  # fmt: skip
CONV_LIKE_TYPES: tuple[type[Node], ...] = DETECTION_TYPES[:5]


def _ghost_macs(node: Node, prefix: str, grid: tuple[int, int]) -> int:
    pw, cw = getattr(node, f"{prefix}primary_weight"), getattr(node, f"{prefix}cheap_weight")
    cp, c_in, k = int(pw.shape[0]), int(pw.shape[1]), int(pw.shape[2])
    return cp * grid[0] * grid[1] * (c_in * k * k + int(cw.shape[2]) ** 2)


def _conv_macs(weight, grid: tuple[int, int]) -> int:
    o, i, k = int(weight.shape[0]), int(weight.shape[1]), int(weight.shape[2])
    return o * grid[0] * grid[1] * i * k * k


def detection_macs(node: Node, in_shape: tuple[int, ...]) -> int | None:
    """MACs of a ghost / detection node (None for other nodes)."""
    if not isinstance(node, DETECTION_TYPES):
        return None
    out = node.output_shape
    if isinstance(node, ir.SGhostConv):
        return _ghost_macs(node, "", out[1:])
    if isinstance(node, ir.SGhostEncoderLite):
        return _conv_macs(node.conv1_weight, out[1:]) + _ghost_macs(node, "ghost_", out[1:])
    if isinstance(node, ir.GhostBasicBlock1):
        macs = sum(_ghost_macs(node, p, out[1:]) for p in ("cv0_", "cv2_", "cvres_"))
        return macs + 2 * int(node.cv2_primary_weight.shape[0]) * math.prod(out[1:])
    if isinstance(node, ir.GhostBasicBlock2):
        return sum(_ghost_macs(node, p, out[1:]) for p in ("cv0_", "cv2_"))
    if isinstance(node, ir.SDDetect):
        return sum(_conv_macs(getattr(node, f"{b}_w{i}"), in_shape[1:]) for b in ("cv2", "cv3") for i in range(3))
    if isinstance(node, ir.DFLDecode):
        return 4 * node.reg_max * math.prod(in_shape[1:])
    return 0
