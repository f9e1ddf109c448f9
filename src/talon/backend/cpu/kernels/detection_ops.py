"""Floating-point kernels of the ghost and detection primitives (docs/semantics.md §4.1).

Arithmetic contract (as :mod:`.float_ops`): every convolution accumulates in float64 (``exact``)
and is rounded once to ``dtype`` with its bias; ghost halves are concatenated, the
GhostBasicBlock1 residual sum is one ``dtype`` addition; the DFL softmax-expectation and the
class sigmoid are computed in float64 and rounded once; Dist2BBox and NMS are ``dtype``
arithmetic in the documented order.
"""

from __future__ import annotations

import numpy as np

from talon import ir
from talon._nms import nms_rows
from talon.ir.ghost import GHOST_BRANCHES

from . import geometry
from .float_ops import F64, FLOAT_KERNELS, FloatKernel


class _ConvChain(FloatKernel):
    """Helpers: a rounded convolution and a ghost convolution on stored weights."""

    def calibrate_inner(self, x, calibration) -> None:
        """Widen ``calibration`` with the ranges of this node's parts on input ``x`` (fixed point)."""
        from .fixed_detection import calibrate_expansion

        calibrate_expansion(self.op.node, x, calibration)

    def conv(self, x, weight, bias, stride=1, groups=1):
        k = weight.shape[2]
        y = geometry.conv2d(x, weight, (stride, stride), (k // 2, k // 2), (1, 1), groups, dtype=self.acc_dtype)
        y += bias.astype(self.acc_dtype).reshape(1, -1, 1, 1)
        return self.cast(y)

    def ghost(self, x, prefix: str, stride: int = 1, padding=None):
        p = self.params[prefix]
        k = p["pw"].shape[2]
        pad = (k // 2, k // 2) if padding is None else padding
        y = geometry.conv2d(x, p["pw"], (stride, stride) if np.isscalar(stride) else stride, pad, (1, 1), 1,
                            dtype=self.acc_dtype)  # fmt: skip
        y += p["pb"].astype(self.acc_dtype).reshape(1, -1, 1, 1)
        primary = self.cast(y)
        cheap = self.conv(primary, p["cw"], p["cb"], 1, groups=p["cw"].shape[0])
        return np.concatenate([primary, cheap], axis=1)

    def load_ghost(self, node, prefix: str) -> None:
        self.params = getattr(self, "params", {})
        self.params[prefix] = {
            "pw": self.store(getattr(node, f"{prefix}primary_weight")),
            "pb": self.store(getattr(node, f"{prefix}primary_bias")),
            "cw": self.store(getattr(node, f"{prefix}cheap_weight")),
            "cb": self.store(getattr(node, f"{prefix}cheap_bias")),
        }


class GhostConv(_ConvChain):
    def setup(self, node: ir.SGhostConv):
        self.load_ghost(node, "")
        self.stride, self.padding = node.primary_stride, node.primary_padding

    def compute(self, x):
        return self.ghost(x, "", self.stride, self.padding)


class GhostEncoder(_ConvChain):
    def setup(self, node: ir.SGhostEncoderLite):
        self.load_ghost(node, "ghost_")
        self.w1, self.b1 = self.store(node.conv1_weight), self.store(node.conv1_bias)
        self.stride = node.stride

    def compute(self, x):
        return self.ghost(self.conv(x, self.w1, self.b1, self.stride), "ghost_")


class GhostBlock(_ConvChain):
    """GhostBasicBlock1 (with the residual branch) and GhostBasicBlock2."""

    def setup(self, node):
        for prefix in GHOST_BRANCHES[type(node)]:
            self.load_ghost(node, prefix)
        self.residual = isinstance(node, ir.GhostBasicBlock1)
        self.stride = node.stride if self.residual else 1

    def compute(self, x):
        main = self.ghost(x, "cv0_", self.stride)
        half = main.shape[1] // 2
        mid = self.ghost(main[:, half:], "cv2_")
        if self.residual:
            mid = mid + self.ghost(x, "cvres_", self.stride)
        return np.concatenate([main[:, :half], mid], axis=1)


class DetectHead(_ConvChain):
    def setup(self, node: ir.SDDetect):
        self.branches = [
            [(self.store(getattr(node, f"{b}_w{i}")), self.store(getattr(node, f"{b}_b{i}"))) for i in range(3)]
            for b in ("cv2", "cv3")
        ]

    def compute(self, x):
        outs = []
        for layers in self.branches:
            y = x
            for w, b in layers:
                y = self.conv(y, w, b)
            outs.append(y)
        return np.concatenate(outs, axis=1)


class DFL(FloatKernel):
    def setup(self, node: ir.DFLDecode):
        self.reg_max = node.reg_max

    def compute(self, x):
        n, _, h, w = x.shape
        r = self.reg_max
        logits = x[:, : 4 * r].astype(F64).reshape(n, 4, r, h, w)
        e = np.exp(logits - logits.max(axis=2, keepdims=True))
        p = e / e.sum(axis=2, keepdims=True)
        dist = (p * np.arange(r, dtype=F64).reshape(1, 1, r, 1, 1)).sum(axis=2)
        scores = 1.0 / (1.0 + np.exp(-x[:, 4 * r :].astype(F64)))
        return self.cast(np.concatenate([dist, scores], axis=1))


class Dist2BBoxKernel(FloatKernel):
    def setup(self, node: ir.Dist2BBox):
        _, h, w = node.input_shape
        ay, ax = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
        self.ax, self.ay = ax.astype(self.dtype)[None], ay.astype(self.dtype)[None]
        self.stride = self.dtype.type(node.stride)

    def compute(self, x):
        left, top, right, bottom = x[:, 0], x[:, 1], x[:, 2], x[:, 3]
        x1, y1, x2, y2 = self.ax - left, self.ay - top, self.ax + right, self.ay + bottom
        two = self.dtype.type(2)
        box = np.stack([(x1 + x2) / two, (y1 + y2) / two, x2 - x1, y2 - y1], axis=1) * self.stride
        y = np.concatenate([box.astype(self.dtype), x[:, 4:]], axis=1)
        return np.ascontiguousarray(y.reshape(y.shape[0], y.shape[1], -1).transpose(0, 2, 1))


class NMSKernel(FloatKernel):
    def setup(self, node: ir.NMS):
        self.args = (node.score_threshold, node.iou_threshold, node.max_detections)

    def compute(self, x):
        return np.stack([nms_rows(rows, *self.args) for rows in x]) if len(x) else x[:, :0, :6]


FLOAT_KERNELS.update(
    {
        ir.SGhostConv: GhostConv,
        ir.SGhostEncoderLite: GhostEncoder,
        ir.GhostBasicBlock1: GhostBlock,
        ir.GhostBasicBlock2: GhostBlock,
        ir.SDDetect: DetectHead,
        ir.DFLDecode: DFL,
        ir.Dist2BBox: Dist2BBoxKernel,
        ir.NMS: NMSKernel,
    }
)
