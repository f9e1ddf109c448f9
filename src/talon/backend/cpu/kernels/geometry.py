"""Vectorised numpy convolution, pooling and upsampling (PyTorch semantics, no loops over pixels).

All functions take channel-first batches ``[N, C, H, W]``. Convolution is im2col (a strided
window view copied into ``[groups, N*Ho*Wo, C/groups*kH*kW]``) followed by one matrix product per
group, in the dtype of the caller's choosing (float64 for exact accumulation, or for exact integer
arithmetic while every partial sum stays below 2**53). Large batches are processed in chunks so
the im2col buffer stays under :data:`IM2COL_BYTES`. :func:`conv2d_exact` lays the windows out
channel-first instead, for sums that are exact in the chosen dtype (then the order of the
products does not matter and the result is the same).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from talon.ir.conv import conv_output_size
from talon.ir.pooling import pool_output_size

IM2COL_BYTES = 64 * 2**20


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    stride=(1, 1),
    padding=(0, 0),
    dilation=(1, 1),
    groups: int = 1,
    *,
    dtype=np.float64,
) -> np.ndarray:
    """Cross-correlation of ``x [N, C, H, W]`` with ``weight [O, C/groups, kH, kW]`` (zero padding).

    Products and sums are computed in ``dtype``; the result ``[N, O, Ho, Wo]`` has that dtype.
    """
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    g = int(groups)
    og = o // g
    ho = conv_output_size(h, kh, sh, ph, dh, "conv2d")
    wo = conv_output_size(w, kw, sw, pw, dw, "conv2d")
    k = cg * kh * kw
    wmat = np.ascontiguousarray(weight.reshape(g, og, k).transpose(0, 2, 1), dtype=dtype)  # [G, K, Og]
    out = np.empty((n, o, ho, wo), dtype)
    per_row = max(1, ho * wo * c * kh * kw * np.dtype(dtype).itemsize)
    chunk = max(1, IM2COL_BYTES // per_row)
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    for n0 in range(0, n, chunk):
        xc = x[n0 : n0 + chunk].astype(dtype, copy=False)
        m = xc.shape[0]
        if ph or pw:
            xc = np.pad(xc, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        # channels-last windows [m, Ho, Wo, C, kH, kW] -> rows of [G, Cg*kH*kW] (the im2col copy)
        win = sliding_window_view(xc.transpose(0, 2, 3, 1), span, axis=(1, 2))[:, ::sh, ::sw, :, ::dh, ::dw]
        cols = win[:, :ho, :wo].reshape(m * ho * wo, g, k)
        if g == 1:
            res = cols[:, 0, :] @ wmat[0]  # [m*Ho*Wo, O]
        else:
            res = np.matmul(cols.transpose(1, 0, 2), wmat).transpose(1, 0, 2).reshape(m * ho * wo, o)
        out[n0 : n0 + m] = res.reshape(m, ho, wo, o).transpose(0, 3, 1, 2)
    return out


def conv2d_exact(
    x: np.ndarray,
    weight: np.ndarray,
    stride=(1, 1),
    padding=(0, 0),
    dilation=(1, 1),
    groups: int = 1,
    *,
    dtype=np.float64,
) -> np.ndarray:
    """:func:`conv2d` for a caller that has proved every partial sum exact in ``dtype`` (integers
    below ``2**24`` in float32, dyadic sums within float64's 53 bits, or int64): the sum is then
    the same in any order, and this layout is faster. The windows are copied channel-first,
    ``[N, G, C/groups*kH*kW, Ho*Wo]``, and one matrix product per sample and group writes the
    output ``[N, O, Ho, Wo]`` in place (no transposing copy of the result)."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    g = int(groups)
    og = o // g
    ho = conv_output_size(h, kh, sh, ph, dh, "conv2d")
    wo = conv_output_size(w, kw, sw, pw, dw, "conv2d")
    k = cg * kh * kw
    wmat = np.ascontiguousarray(weight.reshape(g, og, k), dtype=dtype)  # [G, Og, K]
    out = np.empty((n, o, ho, wo), dtype)
    per_row = max(1, ho * wo * c * kh * kw * np.dtype(dtype).itemsize)
    chunk = max(1, IM2COL_BYTES // per_row)
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    for n0 in range(0, n, chunk):
        xc = x[n0 : n0 + chunk].astype(dtype, copy=False)
        m = xc.shape[0]
        if ph or pw:
            xc = np.pad(xc, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        # windows [m, C, Ho, Wo, kH, kW] -> columns [m, G, Cg*kH*kW, Ho*Wo] (the im2col copy)
        win = sliding_window_view(xc, span, axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw][:, :, :ho, :wo]
        cols = np.ascontiguousarray(win.transpose(0, 1, 4, 5, 2, 3)).reshape(m, g, k, ho * wo)
        np.matmul(wmat, cols, out=out[n0 : n0 + m].reshape(m, g, og, ho * wo))
    return out


def conv1d(
    x: np.ndarray, weight: np.ndarray, stride=1, padding=0, dilation=1, groups=1, *, dtype=np.float64, exact=False
):
    """``x [N, C, L]``, ``weight [O, C/groups, K]`` -> ``[N, O, Lo]`` (as a conv2d of height 1;
    ``exact``: :func:`conv2d_exact`, for sums proved exact)."""
    fn = conv2d_exact if exact else conv2d
    out = fn(x[:, :, None, :], weight[:, :, None, :], (1, stride), (0, padding), (1, dilation), groups, dtype=dtype)
    return out[:, :, 0, :]


def conv_fan_out(in_shape: tuple[int, ...], weight_shape: tuple[int, ...], stride, padding, dilation, groups):
    """For each input element ``[C, *spatial]``, how many multiply-accumulates read it.

    A spike (non-zero input) at that element costs this many synaptic operations in an
    event-driven convolution; ``sum(fan_out)`` is the dense MAC count.
    """
    one_d = len(in_shape) == 2
    if one_d:
        in_shape = (in_shape[0], 1, in_shape[1])
        weight_shape = (weight_shape[0], weight_shape[1], 1, weight_shape[2])
        stride, padding, dilation = (1, stride), (0, padding), (1, dilation)
    c, h, w = in_shape
    o, _, kh, kw = weight_shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    ho = conv_output_size(h, kh, sh, ph, dh, "conv")
    wo = conv_output_size(w, kw, sw, pw, dw, "conv")
    # how many (output position, kernel offset) pairs land on each padded row / column
    rows = np.zeros(h + 2 * ph, np.int64)
    cols = np.zeros(w + 2 * pw, np.int64)
    for i in range(kh):
        np.add.at(rows, np.arange(ho) * sh + i * dh, 1)
    for j in range(kw):
        np.add.at(cols, np.arange(wo) * sw + j * dw, 1)
    spatial = np.outer(rows[ph : ph + h], cols[pw : pw + w])
    per_channel = o // groups  # every input channel feeds the O/groups outputs of its group
    fan = np.broadcast_to(spatial * per_channel, (c, h, w)).copy()
    return fan.reshape(in_shape[0], in_shape[2]) if one_d else fan


def _pool_padded(x: np.ndarray, kernel, stride, padding, dilation, ceil_mode: bool, pad_value):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = _pair(kernel), _pair(stride), _pair(padding), _pair(dilation)
    h, w = x.shape[2:]
    ho = pool_output_size(h, kh, sh, ph, dh, ceil_mode, "pool")
    wo = pool_output_size(w, kw, sw, pw, dw, ceil_mode, "pool")
    span_h, span_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    extra_h = max(0, (ho - 1) * sh + span_h - (h + 2 * ph))
    extra_w = max(0, (wo - 1) * sw + span_w - (w + 2 * pw))
    if ph or pw or extra_h or extra_w:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)), constant_values=pad_value)
    return x, (kh, kw), (sh, sw), (dh, dw), (ho, wo)


def pool_reduce(x: np.ndarray, kernel, stride, padding, dilation, ceil_mode: bool, pad_value, op) -> np.ndarray:
    """``op`` (``np.maximum`` or ``np.add``) over every pooling window: one elementwise pass per
    kernel tap over strided views (no Python loop over pixels)."""
    x, (kh, kw), (sh, sw), (dh, dw), (ho, wo) = _pool_padded(x, kernel, stride, padding, dilation, ceil_mode, pad_value)
    out = None
    for i in range(kh):
        for j in range(kw):
            tap = x[:, :, i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw]
            out = tap.copy() if out is None else op(out, tap, out=out)
    return out


def avg_pool_divisor(in_hw, out_hw, kernel, stride, padding, count_include_pad, divisor_override) -> np.ndarray:
    """PyTorch's avg_pool2d divisor for every output position ``[Ho, Wo]`` (float64)."""
    (h, w), (ho, wo) = in_hw, out_hw
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel), _pair(stride), _pair(padding)
    if divisor_override:
        return np.full((ho, wo), float(divisor_override))

    def axis(n_in, n_out, k, s, p):
        start = np.arange(n_out) * s - p
        end = np.minimum(start + k, n_in + p)
        size = end - start
        clipped = np.minimum(end, n_in) - np.maximum(start, 0)
        return size, clipped

    size_h, clip_h = axis(h, ho, kh, sh, ph)
    size_w, clip_w = axis(w, wo, kw, sw, pw)
    if count_include_pad:
        return np.outer(size_h, size_w).astype(np.float64)
    return np.outer(clip_h, clip_w).astype(np.float64)


def nearest_indices(n_in: int, n_out: int, scale_factor: float | None) -> np.ndarray:
    """Source index of each output position of PyTorch's ``nearest`` upsampling (float32 arithmetic)."""
    if n_out == n_in:
        return np.arange(n_out)
    if n_out == 2 * n_in:
        return np.arange(n_out) >> 1
    scale = np.float32(1.0 / scale_factor) if scale_factor else np.float32(n_in) / np.float32(n_out)
    idx = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    return np.minimum(idx, n_in - 1)


def bilinear_weights(n_in: int, n_out: int, scale_factor: float | None, align_corners: bool):
    """Lower index, upper index and upper weight of PyTorch's bilinear (``upsample_bilinear2d``) per output."""
    o = np.arange(n_out, dtype=np.float64)
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = scale * o
    else:
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
        src = np.maximum(scale * (o + 0.5) - 0.5, 0.0)
    lo = np.minimum(src.astype(np.int64), n_in - 1)
    hi = np.where(lo < n_in - 1, lo + 1, lo)
    lam = src - lo
    return lo, hi, lam
