"""Golden cases of the ghost and detection primitives (docs/semantics.md §4.1).

Weights are multiples of 1/8 (exact in float32), so ghost blocks, the detection head, Dist2BBox
and NMS are bit-exact in every engine; the DFL softmax and the sigmoid are transcendental, so
the full-decode case is compared within 1e-5. NMS inputs are multiples of 1/8 in a small range:
many equal scores (ties), zero- and negative-size boxes.
"""

from __future__ import annotations

import numpy as np

from talon import ir

from .cases import Case, chain


def _w(seed: int, *shape: int, low: int = -4, high: int = 5) -> np.ndarray:
    return (np.random.default_rng(seed).integers(low, high, shape) / 8).astype(np.float32)


def _if() -> ir.IF:
    return ir.IF(v_threshold=np.float32(1.0))


def _ghost_conv():
    node = ir.SGhostConv(primary_weight=_w(1, 3, 2, 3, 3), cheap_weight=_w(2, 3, 1, 3, 3),
                         primary_bias=_w(3, 3), cheap_bias=_w(4, 3), primary_stride=2)  # fmt: skip
    return chain([2, 6, 6], ("ghost", node), ("if", _if()), out_shape=[6, 3, 3])


def _backbone():
    enc = ir.SGhostEncoderLite(conv1_weight=_w(5, 4, 2, 3, 3), ghost_primary_weight=_w(6, 3, 4, 1, 1),
                               ghost_cheap_weight=_w(7, 3, 1, 3, 3), conv1_bias=_w(8, 4), stride=2)  # fmt: skip
    b1 = ir.GhostBasicBlock1(
        cv0_primary_weight=_w(9, 4, 6, 3, 3), cv0_cheap_weight=_w(10, 4, 1, 3, 3),
        cv2_primary_weight=_w(11, 2, 4, 1, 1), cv2_cheap_weight=_w(12, 2, 1, 3, 3),
        cvres_primary_weight=_w(13, 2, 6, 1, 1), cvres_cheap_weight=_w(14, 2, 1, 3, 3), cv0_primary_bias=_w(15, 4),
    )  # fmt: skip
    b2 = ir.GhostBasicBlock2(cv0_primary_weight=_w(16, 4, 8, 3, 3), cv0_cheap_weight=_w(17, 4, 1, 3, 3),
                             cv2_primary_weight=_w(18, 2, 4, 1, 1), cv2_cheap_weight=_w(19, 2, 1, 3, 3))  # fmt: skip
    return chain([2, 8, 8], ("enc", enc), ("if0", _if()), ("b1", b1), ("if1", _if()), ("b2", b2), ("if2", _if()),
                 out_shape=[8, 2, 2])  # fmt: skip


def _head(reg_max: int, nc: int, seed: int) -> ir.SDDetect:
    return ir.SDDetect(
        num_classes=nc, reg_max=reg_max, stride=4,
        cv2_w0=_w(seed, 4, 3, 3, 3), cv2_w1=_w(seed + 1, 4, 4, 3, 3), cv2_w2=_w(seed + 2, 4 * reg_max, 4, 1, 1),
        cv3_w0=_w(seed + 3, 4, 3, 3, 3), cv3_w1=_w(seed + 4, 4, 4, 3, 3), cv3_w2=_w(seed + 5, nc, 4, 1, 1),
        cv2_b2=_w(seed + 6, 4 * reg_max, low=0, high=16), cv3_b0=_w(seed + 7, 4),
    )  # fmt: skip


def _head_boxes_nms():
    # reg_max = 1: the head's box channels are the distances themselves (no softmax), exact
    return chain([3, 4, 4], ("if", _if()), ("head", _head(1, 3, 20)), ("boxes", ir.Dist2BBox(stride=4)),
                 ("nms", ir.NMS(score_threshold=0.0, iou_threshold=0.5, max_detections=6)),
                 out_shape=[6, 6])  # fmt: skip


def _full_decode():
    return chain([3, 4, 4], ("if", _if()), ("head", _head(4, 2, 40)),
                 ("avg", ir.Integrator(r=np.float32(0.25))), ("dfl", ir.DFLDecode(reg_max=4)),
                 ("boxes", ir.Dist2BBox(stride=8)), ("nms", ir.NMS(0.5, 0.45, 0)), out_shape=[16, 6])  # fmt: skip


def _nms_ties(max_detections: int, iou: float):
    def build():
        return chain([12, 6], ("nms", ir.NMS(0.25, iou, max_detections)),
                     out_shape=[max_detections or 12, 6])  # fmt: skip

    return build


DETECTION_CASES = [
    Case("ghost[sghostconv-if]", _ghost_conv, (2, 6, 6), low=0, high=12),
    Case("ghost[encoder-block1-block2]", _backbone, (2, 8, 8), low=0, high=16),
    Case("detect[head-dist2bbox-nms]", _head_boxes_nms, (3, 4, 4), low=0, high=16),
    Case("detect[dfl-full-decode]", _full_decode, (3, 4, 4), low=0, high=16, exact=False),
    Case("nms[ties-degenerate-max5]", _nms_ties(5, 0.3), (12, 6), low=-2, high=12),
    Case("nms[ties-degenerate-unlimited]", _nms_ties(0, 0.0), (12, 6), low=-2, high=12),
]
