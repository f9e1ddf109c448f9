"""The ghost and detection primitives in JAX (``docs/semantics.md`` §4.1), registered in :mod:`.layers`.

Parameters keep their IR field names (so ``JaxGraph.to_graph`` writes trained weights back).
Convolutions ask XLA for full float32 precision; the DFL softmax and the class sigmoid are float32
(the float64 engines agree to rounding); Dist2BBox and NMS are float32 arithmetic in the
documented order. NMS is jit-friendly: a sort, a pairwise suppression matrix and a scan over the
visiting order, with a fixed output of ``K`` rows.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from ... import ir
from ...ir.ghost import GHOST_BRANCHES
from . import layers
from .layers import _cast, _conv


def _same(p, x, w: str, b: str, stride=(1, 1), groups: int = 1, padding=None):
    k = p[w].shape[2]
    pad = (k // 2, k // 2) if padding is None else tuple(padding)
    return _conv(x, p[w], tuple(stride), pad, (1, 1), groups, 2) + p[b].reshape(-1, 1, 1)


def _ghost(p, x, prefix: str, stride=(1, 1), padding=None):
    primary = _same(p, x, f"{prefix}primary_weight", f"{prefix}primary_bias", stride, padding=padding)
    cheap = _same(p, primary, f"{prefix}cheap_weight", f"{prefix}cheap_bias", groups=primary.shape[1])
    return jnp.concatenate([primary, cheap], axis=1)


def _arrays(node: ir.Node, dtype) -> dict[str, np.ndarray]:
    return {k: _cast(v, dtype) for k, v in node.arrays().items()}


def _ghost_conv(node: ir.SGhostConv, dtype):
    stride, padding = tuple(node.primary_stride), tuple(node.primary_padding)
    return _arrays(node, dtype), lambda p, x: _ghost(p, x, "", stride, padding)


def _encoder(node: ir.SGhostEncoderLite, dtype):
    s = (node.stride, node.stride)
    return _arrays(node, dtype), lambda p, x: _ghost(p, _same(p, x, "conv1_weight", "conv1_bias", s), "ghost_")


def _block(node, dtype):
    residual = isinstance(node, ir.GhostBasicBlock1)
    s = (node.stride, node.stride) if residual else (1, 1)

    def block(p, x):
        main = _ghost(p, x, "cv0_", s)
        half = main.shape[1] // 2
        mid = _ghost(p, main[:, half:], "cv2_")
        if residual:
            mid = mid + _ghost(p, x, "cvres_", s)
        return jnp.concatenate([main[:, :half], mid], axis=1)

    return _arrays(node, dtype), block


def _detect(node: ir.SDDetect, dtype):
    def head(p, x):
        outs = []
        for b in ("cv2", "cv3"):
            y = x
            for i in range(3):
                y = _same(p, y, f"{b}_w{i}", f"{b}_b{i}")
            outs.append(y)
        return jnp.concatenate(outs, axis=1)

    return _arrays(node, dtype), head


def _dfl(node: ir.DFLDecode, dtype):
    r = node.reg_max

    def dfl(p, x):
        n, _, h, w = x.shape
        logits = x[:, : 4 * r].reshape(n, 4, r, h, w)
        e = jnp.exp(logits - logits.max(axis=2, keepdims=True))
        prob = e / e.sum(axis=2, keepdims=True)
        dist = (prob * jnp.arange(r, dtype=x.dtype).reshape(1, 1, r, 1, 1)).sum(axis=2)
        return jnp.concatenate([dist, 1 / (1 + jnp.exp(-x[:, 4 * r :]))], axis=1)

    return {}, dfl


def _dist2bbox(node: ir.Dist2BBox, dtype):
    _, h, w = node.input_shape
    ay, ax = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    ax, ay, stride = ax.astype(dtype), ay.astype(dtype), np.asarray(node.stride, dtype)

    def decode(p, x):
        x1, y1, x2, y2 = ax - x[:, 0], ay - x[:, 1], ax + x[:, 2], ay + x[:, 3]
        box = jnp.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=1) * stride
        y = jnp.concatenate([box, x[:, 4:]], axis=1)
        return jnp.swapaxes(y.reshape(y.shape[0], y.shape[1], -1), 1, 2)

    return {}, decode


def _nms(node: ir.NMS, dtype):
    score_thr, iou_thr = np.asarray(node.score_threshold, dtype), np.asarray(node.iou_threshold, dtype)

    def one(rows):
        n = rows.shape[0]
        k = node.max_detections or n
        scores = rows[:, 4:]
        score = scores.max(axis=1)
        cls = jnp.argmax(scores, axis=1)  # the first maximum
        cand = score > score_thr
        order = jnp.argsort(jnp.where(cand, -score, jnp.inf), stable=True)
        r, c, ok = rows[order], cls[order], cand[order]
        hw, hh = r[:, 2] / 2, r[:, 3] / 2
        x1, x2, y1, y2 = r[:, 0] - hw, r[:, 0] + hw, r[:, 1] - hh, r[:, 1] + hh
        area = (x2 - x1) * (y2 - y1)
        iw = jnp.maximum(jnp.minimum(x2[:, None], x2[None]) - jnp.maximum(x1[:, None], x1[None]), 0)
        ih = jnp.maximum(jnp.minimum(y2[:, None], y2[None]) - jnp.maximum(y1[:, None], y1[None]), 0)
        inter = iw * ih
        union = (area[:, None] + area[None]) - inter
        valid = (inter > 0) & (area[:, None] > 0) & (area[None] > 0) & (union > 0)
        suppress = valid & (inter / jnp.where(valid, union, 1) > iou_thr) & (c[:, None] == c[None])

        def visit(i, carry):
            keep, count = carry
            take = ok[i] & ~jnp.any(keep & suppress[:, i]) & (count < k)
            return keep.at[i].set(take), count + take.astype(count.dtype)

        keep, count = lax.fori_loop(0, n, visit, (jnp.zeros(n, bool), jnp.zeros((), jnp.int32)))
        pos = jnp.argsort(~keep, stable=True)[:k]
        mask = jnp.arange(k) < count
        found = jnp.concatenate([r[pos, :4], score[order][pos, None], c[pos, None].astype(rows.dtype)], axis=1)
        pad = jnp.zeros((k, 6), rows.dtype).at[:, 5].set(-1)
        return jnp.where(mask[:, None], found, pad)

    def nms(p, x):
        return lax.map(one, x) if x.shape[0] else jnp.zeros((0, node.output_shape[0], 6), x.dtype)

    return {}, nms


layers._BUILDERS.extend(
    [
        (ir.SGhostConv, _ghost_conv),
        (ir.SGhostEncoderLite, _encoder),
        (ir.GhostBasicBlock1, _block),
        (ir.GhostBasicBlock2, _block),
        (ir.SDDetect, _detect),
        (ir.DFLDecode, _dfl),
        (ir.Dist2BBox, _dist2bbox),
        (ir.NMS, _nms),
    ]
)
assert set(GHOST_BRANCHES) <= {cls for cls, _ in layers._BUILDERS}
