"""Detection primitives (the YOLOv8 decode): SDDetect, DFLDecode, Dist2BBox, NMS.

Pipeline: backbone → ``SDDetect`` (per scale) → ``DFLDecode`` → ``Dist2BBox`` → (``Concat``
of the scales along rows, ``dim=1``) → ``NMS``. Equations in each class; arithmetic order and the
settled contradictions of the TALON docs are in ``docs/semantics.md`` §4.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .conv import _bias
from .errors import ShapeError
from .node import Node, as_array, as_int, register_node
from .types import Shape

#: NMS output row: box (centre form), score, class (-1 on padding rows)
NMS_ROW = ("cx", "cy", "w", "h", "score", "class")


def _head_weights(node: Node, branch: str) -> list[np.ndarray]:
    where = node._where()
    out = []
    prev = None
    for i in range(3):
        name = f"{branch}_w{i}"
        w = as_array(getattr(node, name), name, where, ndim=4)
        if w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
            raise ShapeError(f"{where}: {name} must have a square odd kernel, got {w.shape}")
        if prev is not None and w.shape[1] != prev:
            raise ShapeError(f"{where}: {name} takes {w.shape[1]} channels but {branch}_w{i - 1} makes {prev}")
        setattr(node, name, w)
        bname = f"{branch}_b{i}"
        setattr(node, bname, _bias(node, getattr(node, bname), int(w.shape[0]), w.dtype))
        prev = int(w.shape[0])
        out.append(w)
    return out


@register_node
@dataclass(eq=False)
class SDDetect(Node):
    """Per-scale detection head, ``[C, H, W] -> [4 reg_max + num_classes, H, W]``.

    Two branches of three convolutions each (stride 1, padding ``k // 2``, each result rounded):
    ``box = c(c(c(x; cv2_w0, cv2_b0); cv2_w1, cv2_b1); cv2_w2, cv2_b2)`` with ``4 reg_max``
    channels (side-major: bins of left, top, right, bottom), ``cls`` likewise from ``cv3_*`` with
    ``num_classes`` channels; ``y = concat(box, cls)``. The head is real-valued (no neuron): in a
    spiking detector its input are the spikes of the backbone and its output is averaged over the
    timesteps (an ``Integrator`` with ``r = 1/T``) before decoding. ``stride`` is the scale's
    stride in pixels (documentation for the decode; ``Dist2BBox`` carries its own).
    """

    cv2_w0: np.ndarray
    cv2_w1: np.ndarray
    cv2_w2: np.ndarray
    cv3_w0: np.ndarray
    cv3_w1: np.ndarray
    cv3_w2: np.ndarray
    num_classes: int = 80
    reg_max: int = 16
    stride: int = 8
    cv2_b0: np.ndarray | None = None
    cv2_b1: np.ndarray | None = None
    cv2_b2: np.ndarray | None = None
    cv3_b0: np.ndarray | None = None
    cv3_b1: np.ndarray | None = None
    cv3_b2: np.ndarray | None = None

    def _check_params(self) -> None:
        where = self._where()
        self.num_classes = as_int(self.num_classes, "num_classes", where, minimum=1)
        self.reg_max = as_int(self.reg_max, "reg_max", where, minimum=1)
        self.stride = as_int(self.stride, "stride", where, minimum=1)
        box, cls = _head_weights(self, "cv2"), _head_weights(self, "cv3")
        if box[2].shape[0] != 4 * self.reg_max:
            raise ShapeError(
                f"{where}: cv2_w2 makes {box[2].shape[0]} channels; the box branch needs 4 * reg_max = "
                f"{4 * self.reg_max}"
            )
        if cls[2].shape[0] != self.num_classes:
            raise ShapeError(f"{where}: cv3_w2 makes {cls[2].shape[0]} channels but num_classes={self.num_classes}")
        if box[0].shape[1] != cls[0].shape[1]:
            raise ShapeError(f"{where}: cv2_w0 and cv3_w0 must take the same input channels")

    def _output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3 or shape[0] != self.cv2_w0.shape[1]:
            raise ShapeError(f"{self._where()}: expects a [{self.cv2_w0.shape[1]}, H, W] input, got {list(shape)}")
        for w in (self.cv2_w0, self.cv2_w1, self.cv2_w2, self.cv3_w0, self.cv3_w1, self.cv3_w2):
            if min(shape[1:]) + 2 * (w.shape[2] // 2) < w.shape[2]:
                raise ShapeError(
                    f"{self._where()}: input {list(shape)} is smaller than a {w.shape[2]}x{w.shape[2]} kernel"
                )
        return (4 * self.reg_max + self.num_classes, *shape[1:])


@register_node
@dataclass(eq=False)
class DFLDecode(Node):
    """Distribution focal loss decode, ``[4 reg_max + nc, H, W] -> [4 + nc, H, W]``.

    For each side ``s`` (left, top, right, bottom) and pixel: ``p_b = softmax_b(x[s reg_max + b])``
    over the ``reg_max`` bins, ``d_s = sum_b p_b * b`` (the expectation with ``arange(reg_max)``,
    in grid units). The ``nc`` class logits that follow become scores ``sigmoid(x)``. ``nc`` is
    whatever the input carries beyond ``4 reg_max`` channels (0 is allowed).
    """

    reg_max: int = 16

    def _check_params(self) -> None:
        self.reg_max = as_int(self.reg_max, "reg_max", self._where(), minimum=1)

    def _output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3 or shape[0] < 4 * self.reg_max:
            raise ShapeError(
                f"{self._where()}: expects a [4 * reg_max + num_classes, H, W] input with reg_max={self.reg_max}, "
                f"got {list(shape)}"
            )
        return (shape[0] - 4 * self.reg_max + 4, *shape[1:])


@register_node
@dataclass(eq=False)
class Dist2BBox(Node):
    """Distances to boxes, ``[4 + nc, H, W] -> [H W, 4 + nc]`` (one row per anchor, row ``i W + j``).

    Anchor of cell ``(i, j)``: ``a = (j + 0.5, i + 0.5)`` (grid units). With ``(l, t, r, b)`` the
    first four channels: ``x1 = a_x - l``, ``y1 = a_y - t``, ``x2 = a_x + r``, ``y2 = a_y + b``;
    ``cx = (x1 + x2) / 2``, ``cy = (y1 + y2) / 2``, ``w = x2 - x1``, ``h = y2 - y1``; each then
    multiplied by ``stride`` (pixels). Columns ``4:`` (the class scores) are copied.
    """

    stride: float = 8.0

    def _check_params(self) -> None:
        try:
            self.stride = float(self.stride)
        except (TypeError, ValueError):
            raise ValueError(f"{self._where()}: stride must be a number, got {self.stride!r}") from None
        if not (math.isfinite(self.stride) and self.stride > 0):
            raise ValueError(f"{self._where()}: stride must be a positive finite number, got {self.stride}")

    def _output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3 or shape[0] < 4:
            raise ShapeError(f"{self._where()}: expects a [4 + num_classes, H, W] input, got {list(shape)}")
        return (shape[1] * shape[2], shape[0])


@register_node
@dataclass(eq=False)
class NMS(Node):
    """Class-aware greedy non-maximum suppression, ``[N, 4 + nc] -> [K, 6]``.

    Input rows ``[cx, cy, w, h, s_0, …, s_{nc-1}]`` (class scores). Per row: ``score = max_c s_c``,
    ``class`` = the first ``c`` reaching it. Candidates: ``score > score_threshold``, visited by
    descending score, equal scores by ascending row index. A candidate is kept unless a kept box of
    the **same class** has ``IoU > iou_threshold`` with it. IoU (float32, ONNX Runtime's order):
    corners ``cx ∓ w/2``, ``cy ∓ h/2``; ``inter = max(x2∧ − x1∨, 0) · max(y2∧ − y1∨, 0)``;
    boxes with ``inter <= 0``, a non-positive area or union never suppress each other;
    ``IoU = inter / (area_a + area_b − inter)``. Visiting stops after ``max_detections`` kept
    boxes (``0`` = unlimited). Output ``K = max_detections`` rows (``N`` when unlimited): the
    kept boxes in visiting order as ``[cx, cy, w, h, score, class]``, then padding rows of zeros
    with ``class = -1``.
    """

    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 300

    def _check_params(self) -> None:
        where = self._where()
        for name in ("score_threshold", "iou_threshold"):
            value = getattr(self, name)
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {name} must be a number, got {value!r}") from None
            if math.isnan(value):
                raise ValueError(f"{where}: {name} must not be NaN")
            setattr(self, name, value)
        self.max_detections = as_int(self.max_detections, "max_detections", where, minimum=0)

    def _output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 2 or shape[1] < 5:
            raise ShapeError(
                f"{self._where()}: expects an [N, 4 + num_classes] input (cx, cy, w, h, class scores), "
                f"got {list(shape)}"
            )
        return (self.max_detections or shape[0], len(NMS_ROW))
