"""The test oracle for the ghost and detection primitives: a plain transcription of docs/semantics.md §4.1.

Convolutions reuse the reference's float64 cross-correlation (one rounding per convolution);
NMS is a literal double loop over Python float32 scalars, sharing nothing with the engines.
"""

from __future__ import annotations

import numpy as np

from talon import ir

DTYPE = np.float32


def _conv(x, w, b, stride=1, padding=None, groups=1):
    from .reference import conv2d

    k = w.shape[2]
    pad = (k // 2, k // 2) if padding is None else tuple(padding)
    node = ir.Conv2d(w, b, stride=stride, padding=pad, groups=groups, input_type=x.shape[1:])
    return conv2d(x, node)


def _ghost(x, node, prefix, stride=1, padding=None):
    g = lambda name: getattr(node, prefix + name)  # noqa: E731
    p = _conv(x, g("primary_weight"), g("primary_bias"), stride, padding)
    c = _conv(p, g("cheap_weight"), g("cheap_bias"), groups=p.shape[1])
    return np.concatenate([p, c], axis=1)


def _nms(rows, node):
    n = rows.shape[0]
    k = node.max_detections or n
    out = np.zeros((k, 6), DTYPE)
    out[:, 5] = -1
    info = []
    for idx in range(n):
        scores = [DTYPE(v) for v in rows[idx, 4:]]
        best = max(scores)
        info.append((best, scores.index(best)))
    order = sorted((i for i in range(n) if info[i][0] > DTYPE(node.score_threshold)), key=lambda i: (-info[i][0], i))

    def corners(i):
        cx, cy, w, h = (DTYPE(v) for v in rows[i, :4])
        return cx - w / DTYPE(2), cy - h / DTYPE(2), cx + w / DTYPE(2), cy + h / DTYPE(2)

    def suppresses(a, b):
        ax1, ay1, ax2, ay2 = corners(a)
        bx1, by1, bx2, by2 = corners(b)
        inter = max(min(ax2, bx2) - max(ax1, bx1), DTYPE(0)) * max(min(ay2, by2) - max(ay1, by1), DTYPE(0))
        if inter <= 0:
            return False
        area_a, area_b = (ax2 - ax1) * (ay2 - ay1), (bx2 - bx1) * (by2 - by1)
        union = area_a + area_b - inter
        if area_a <= 0 or area_b <= 0 or union <= 0:
            return False
        return inter / union > DTYPE(node.iou_threshold)

    kept = []
    for i in order:
        if len(kept) == k:
            break
        if not any(info[j][1] == info[i][1] and suppresses(j, i) for j in kept):
            kept.append(i)
    for row, i in enumerate(kept):
        out[row] = [*rows[i, :4], info[i][0], info[i][1]]
    return out


def detection(node: ir.Node, x: np.ndarray):
    """The output of a ghost / detection node for a batch ``x``, or None for other nodes."""
    if isinstance(node, ir.SGhostConv):
        return _ghost(x, node, "", node.primary_stride, node.primary_padding)
    if isinstance(node, ir.SGhostEncoderLite):
        return _ghost(_conv(x, node.conv1_weight, node.conv1_bias, node.stride), node, "ghost_")
    if isinstance(node, (ir.GhostBasicBlock1, ir.GhostBasicBlock2)):
        s = node.stride if isinstance(node, ir.GhostBasicBlock1) else 1
        main = _ghost(x, node, "cv0_", s)
        z1, z2 = np.split(main, 2, axis=1)
        mid = _ghost(z2, node, "cv2_")
        if isinstance(node, ir.GhostBasicBlock1):
            mid = (mid + _ghost(x, node, "cvres_", s)).astype(DTYPE)
        return np.concatenate([z1, mid], axis=1)
    if isinstance(node, ir.SDDetect):
        outs = []
        for b in ("cv2", "cv3"):
            y = x
            for i in range(3):
                y = _conv(y, getattr(node, f"{b}_w{i}"), getattr(node, f"{b}_b{i}"))
            outs.append(y)
        return np.concatenate(outs, axis=1)
    if isinstance(node, ir.DFLDecode):
        r = node.reg_max
        out = np.empty((x.shape[0], x.shape[1] - 4 * r + 4, *x.shape[2:]), DTYPE)
        for s in range(4):
            logits = x[:, s * r : (s + 1) * r].astype(np.float64)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            out[:, s] = sum(p[:, b] * b for b in range(r))
        out[:, 4:] = 1 / (1 + np.exp(-x[:, 4 * r :].astype(np.float64)))
        return out
    if isinstance(node, ir.Dist2BBox):
        batch, c, h, w = x.shape
        out = np.empty((batch, h * w, c), DTYPE)
        s = DTYPE(node.stride)
        for i in range(h):
            for j in range(w):
                ax, ay = DTYPE(j + 0.5), DTYPE(i + 0.5)
                left, top, right, bottom = x[:, 0, i, j], x[:, 1, i, j], x[:, 2, i, j], x[:, 3, i, j]
                x1, y1, x2, y2 = ax - left, ay - top, ax + right, ay + bottom
                row = i * w + j
                out[:, row, 0] = (x1 + x2) / DTYPE(2) * s
                out[:, row, 1] = (y1 + y2) / DTYPE(2) * s
                out[:, row, 2] = (x2 - x1) * s
                out[:, row, 3] = (y2 - y1) * s
                out[:, row, 4:] = x[:, 4:, i, j]
        return out
    if isinstance(node, ir.NMS):
        return np.stack([_nms(rows, node) for rows in x])
    return None
