"""Stateless nodes in JAX (``docs/semantics.md`` §4), on batched channels-first arrays.

Each node becomes ``(params, fn)``: ``params`` is a dict of numpy arrays in the compute dtype
(the node's weights; empty for weightless nodes) and ``fn(params, x) -> y`` maps a batch
``[N, *shape]`` to ``[N, *out_shape]`` (a list of arrays for ChannelSplit). Geometry follows
PyTorch: cross-correlation with zero padding, floor/ceil pooling, ``nn.Upsample`` index rules.
Matrix products and convolutions ask XLA for full float32 precision.

Convolutions and pools also run channels-last (``build(..., channels_last=True)``: ``[N,
*spatial, C]`` in and out, see :mod:`.channels_last`); the same products and sums, on the
layout XLA's CPU kernels are fastest on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ... import ir
from ...ir.activations import batch_dim_to_axis
from ...ir.pooling import pool_output_size
from .neurons import rounded
from .spike_pools import sliced_window_sum

HIGHEST = lax.Precision.HIGHEST
Op = Callable[[dict, Any], Any]


def _cast(arr, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(arr).astype(dtype))


def _batched_axis(dim: int, shape: tuple[int, ...], where: str) -> int:
    """A PyTorch-style ``dim`` (batch = dim 0) as an axis of the batched array ``[N, *shape]``."""
    return batch_dim_to_axis(dim, len(shape), where) + 1


# --------------------------------------------------------------------------------------------
# dense and convolution


# a product of at most FEW_OUTPUTS outputs on at most FEW_ROWS samples is computed out-major (_dense)
FEW_OUTPUTS = 24
FEW_ROWS = 48


def _dense(p: dict, x):
    """``x @ weight.T``. The executor passes the weight transposed (``weight_t``, ``[in, out]``,
    :func:`with_relayouts`), so every product — per step or on a whole sequence — is the same XLA
    dot on an ``[in, out]`` operand. A layer of at most :data:`FEW_OUTPUTS` outputs reads its
    weight as stored (``[out, in]``, :func:`relayout`) and, on at most :data:`FEW_ROWS` samples,
    computes ``(weight · xᵀ)ᵀ``: XLA's CPU matrix product (YNNPACK, in tiles of 6 rows by 16
    columns) then fills its tiles with the batch rather than with a few outputs — a 10- or
    20-output readout's step is 1.1–1.3× faster on a batch of 16 to 48 (docs/jax.md §8). The
    transpose back is read by the next kernel (no copy); the barrier keeps XLA from turning the
    product back into the other operand order. Both are float32 sums of the same products, which
    XLA may add in another order (the last bit of some results differs), as for another batch."""
    if "weight_t" in p:
        return jnp.matmul(x, p["weight_t"], precision=HIGHEST)
    weight = jnp.asarray(p["weight"])  # as the caller passed it (a nested list is cast, as a relaid weight is)
    if x.ndim == 2 and weight.shape[0] <= FEW_OUTPUTS and x.shape[0] <= FEW_ROWS:
        out_major = lax.dot_general(weight, x, (((1,), (1,)), ((), ())), precision=HIGHEST)
        return lax.optimization_barrier(out_major).T
    return jnp.matmul(x, weight.T, precision=HIGHEST)


def _affine(node: ir.Affine, dtype):
    params = {"weight": _cast(node.weight, dtype), "bias": _cast(node.bias, dtype)}

    def affine(p, x):
        y, bias = _dense(p, x), p["bias"]
        if bias.ndim == 2 and y.shape[0] != bias.shape[0]:  # spread over a step's batch, on T*B samples
            return (y.reshape((-1, *bias.shape)) + bias).reshape(y.shape)
        return y + bias

    return params, affine


def adds_bias(node: ir.Node) -> bool:
    """Whether ``node`` is a dense layer adding a bias ``(out,)``, which :func:`build`'s function
    also takes spread over the batch (``[B, out]``, the same numbers: :mod:`.spread`), on one
    step's batch or on a sequence folded into ``T*B`` samples."""
    return _builder(node) is _affine


def _linear(node: ir.Linear, dtype):
    return {"weight": _cast(node.weight, dtype)}, _dense


def relayout(node: ir.Node) -> tuple[str, tuple[int, ...]] | None:
    """``(name, axes)`` when ``node``'s weight is read in another layout, ``weight.transpose(axes)``
    stored as ``params[name]``: ``weight_t = weight.T`` of a dense node of more than
    :data:`FEW_OUTPUTS` outputs (``[in, out]``: XLA's CPU matrix product is about a quarter faster
    on it than on a transposed operand; see :func:`_dense` for fewer outputs) and the kernel
    of a convolution with the spatial axes first (``HWIO``, the layout XLA's CPU convolution
    reads). Else None."""
    builder = _builder(node)
    if builder in (_affine, _linear):
        return None if np.shape(node.weight)[0] <= FEW_OUTPUTS else ("weight_t", (1, 0))
    if builder is _convnd:
        ndim = 1 if isinstance(node, ir.Conv1d) else 2
        return "weight_spatial_first", (*range(2, 2 + ndim), 1, 0)
    return None


def relayout_on_host(weight, axes: tuple[int, ...]) -> Any:
    """``weight.transpose(axes)`` as a contiguous array on ``weight``'s device, made by numpy.

    XLA's CPU compiler spends tens of milliseconds on each transpose kernel; a concrete weight is
    transposed here instead (microseconds), once per weight array (the executor caches it).
    """
    moved = np.ascontiguousarray(np.transpose(np.asarray(weight), axes))
    if isinstance(weight, jax.Array):
        return jax.device_put(moved, weight.sharding)
    return jnp.asarray(moved)


def with_relayouts(
    plan: Mapping[str, list[tuple[str, str, tuple[int, ...]]]], params: dict, moved: Mapping[str, dict] | None
) -> dict:
    """``params`` with the relaid-out parameters of ``moved`` (``{path: {new name: array}}``, the
    host-made arrays; ``plan[path]`` lists ``(name, new name, axes)``) stored under their new
    names. A None array (``params`` are traced) is transposed in the graph; a weight read under a
    new name (:func:`relayout`) behind an optimization barrier, so that XLA computes the same
    product and does not fold the transpose back into it."""
    if not moved:
        return params
    out = dict(params)
    for path, arrays in moved.items():
        entry = dict(params[path])
        for name, new_name, axes in plan[path]:
            array = arrays[new_name]
            if array is None:
                array = jnp.transpose(params[path][name], axes)
                if new_name != name:
                    array = lax.optimization_barrier(array)
            entry[new_name] = array
        out[path] = entry
    return out


def _scale(node: ir.Scale, dtype):
    return {"scale": _cast(node.scale, dtype)}, lambda p, x: x * p["scale"]


def _conv(x, w, stride, padding, dilation, groups, ndim, kernel: str = "OI", channels_last: bool = False):
    """Cross-correlation of ``x[N, C, *spatial]`` (``x[N, *spatial, C]`` channels-last, the output
    likewise) with ``w[O, I, *spatial]`` (``kernel='OI'``) or the same kernel stored
    ``[*spatial, I, O]`` (``kernel='spatial_first'``)."""
    spatial = "HW" if ndim == 2 else "H"
    rhs = f"OI{spatial}" if kernel == "OI" else f"{spatial}IO"
    data = f"N{spatial}C" if channels_last else f"NC{spatial}"
    return lax.conv_general_dilated(
        x,
        w,
        window_strides=tuple(stride),
        padding=[(p, p) for p in padding],
        rhs_dilation=tuple(dilation),
        feature_group_count=groups,
        dimension_numbers=(data, rhs, data),
        precision=HIGHEST,
    )


def _convnd(node, dtype, channels_last: bool = False):
    ndim = 1 if isinstance(node, ir.Conv1d) else 2

    def tup(v):
        return (v,) if ndim == 1 else tuple(v)

    stride, padding, dilation = tup(node.stride), tup(node.padding), tup(node.dilation)
    groups = node.groups
    bias_shape = (-1,) if channels_last else (-1,) + (1,) * ndim
    geometry = (stride, padding, dilation, groups, ndim)

    def conv(p, x):
        if "weight_spatial_first" in p:
            y = _conv(x, p["weight_spatial_first"], *geometry, kernel="spatial_first", channels_last=channels_last)
        else:
            y = _conv(x, p["weight"], *geometry, channels_last=channels_last)
        return y + p["bias"].reshape(bias_shape)

    return {"weight": _cast(node.weight, dtype), "bias": _cast(node.bias, dtype)}, conv


def _sepconv(node: ir.SepConv2d, dtype):
    stride, padding, dilation = tuple(node.stride), tuple(node.padding), tuple(node.dilation)
    c_in = int(node.depthwise_weight.shape[0])
    params = {
        "depthwise_weight": _cast(node.depthwise_weight, dtype),
        "depthwise_bias": _cast(node.depthwise_bias, dtype),
        "pointwise_weight": _cast(node.pointwise_weight, dtype),
        "pointwise_bias": _cast(node.pointwise_bias, dtype),
    }

    def sepconv(p, x):
        y = _conv(x, p["depthwise_weight"], stride, padding, dilation, c_in, 2)
        y = y + p["depthwise_bias"].reshape(-1, 1, 1)
        y = _conv(y, p["pointwise_weight"], (1, 1), (0, 0), (1, 1), 1, 2)
        return y + p["pointwise_bias"].reshape(-1, 1, 1)

    return params, sepconv


# --------------------------------------------------------------------------------------------
# pooling


def _ceil_extra(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool, where: str) -> int:
    """Extra right padding that makes a floor-mode window reach PyTorch's ceil-mode output size."""
    out = pool_output_size(n, k, s, p, d, ceil_mode, where)
    span = d * (k - 1) + 1
    return max(0, (out - 1) * s + span - (n + 2 * p))


def _pool_geometry(node, shape, channels_last: bool = False):
    """``(window, strides, padding, dilation)`` of ``lax.reduce_window`` on ``[N, C, H, W]`` (or
    ``[N, H, W, C]`` channels-last)."""
    dilation = tuple(getattr(node, "dilation", (1, 1)))
    ceil_mode = bool(getattr(node, "ceil_mode", False))
    pads = []
    for n, k, s, p, d in zip(shape[1:], node.kernel_size, node.stride, node.padding, dilation, strict=True):
        pads.append((p, p + _ceil_extra(n, k, s, p, d, ceil_mode, node._where())))

    def full(spatial, one):  # the spatial entries, with the batch and channel axes around them
        return (one, *spatial, one) if channels_last else (one, one, *spatial)

    return full(node.kernel_size, 1), full(node.stride, 1), list(full(pads, (0, 0))), full(dilation, 1)


def _maxpool(node: ir.MaxPool2d, dtype, channels_last: bool = False):
    window, strides, pads, dilation = _pool_geometry(node, node.input_shape, channels_last)
    return {}, lambda p, x: lax.reduce_window(x, -jnp.inf, lax.max, window, strides, pads, window_dilation=dilation)


def _sumpool(node: ir.SumPool2d, dtype, channels_last: bool = False, sliced: bool = False):
    window, strides, pads, _ = _pool_geometry(node, node.input_shape, channels_last)
    window_sum = sliced_window_sum if sliced else _window_sum
    return {}, lambda p, x: window_sum(x, window, strides, pads)


def _window_sum(x, window, strides, pads):
    """Sums over pooling windows. The zero is a concrete numpy scalar: JAX then recognises the
    ``add`` monoid (``reduce_window_sum``, which ``jax.grad`` differentiates); a traced
    ``jnp.zeros`` under ``jit`` made it a generic ``reduce_window``, which it cannot."""
    return lax.reduce_window(x, np.zeros((), x.dtype), lax.add, window, strides, pads)


def _avg_divisor(node: ir.AvgPool2d, shape) -> np.ndarray:
    """PyTorch's divisor per output cell: padded cells count (count_include_pad), ceil overhang does not."""
    if node.divisor_override is not None:
        return np.asarray(float(node.divisor_override))
    counts = []
    geometry = zip(shape[1:], node.kernel_size, node.stride, node.padding, node.output_shape[1:], strict=True)
    for n, k, s, p, out in geometry:
        start = np.arange(out) * s - p
        end = np.minimum(start + k, n + p)
        if not node.count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, n)
        counts.append(end - start)
    return np.outer(counts[0], counts[1]).astype(np.float64)


def _avgpool(node: ir.AvgPool2d, dtype, channels_last: bool = False, sliced: bool = False):
    window, strides, pads, _ = _pool_geometry(node, node.input_shape, channels_last)
    window_sum = sliced_window_sum if sliced else _window_sum
    divisor = _cast(_avg_divisor(node, node.input_shape), dtype)
    if channels_last and divisor.ndim:
        divisor = divisor[..., None]  # [H, W] -> [H, W, 1]: broadcast over the channels, now last

    def avgpool(p, x):
        return window_sum(x, window, strides, pads) / divisor

    return {}, avgpool


# --------------------------------------------------------------------------------------------
# shape


def _flatten(node: ir.Flatten, dtype):
    out_shape = tuple(node.output_shape)
    return {}, lambda p, x: x.reshape((x.shape[0], *out_shape))


def _nearest_index(n_in: int, n_out: int, scale: float | None) -> np.ndarray:
    """``torch.nn.Upsample(mode='nearest')`` source index per output index (float32 arithmetic)."""
    if n_out == n_in:
        return np.arange(n_out)
    if n_out == 2 * n_in:
        return np.arange(n_out) >> 1
    factor = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * factor).astype(np.int64), n_in - 1)


def _linear_source(n_in: int, n_out: int, scale: float | None, align_corners: bool):
    """``bilinear`` source coordinate per output index: (i0, i1, lambda) as in PyTorch's CPU kernel."""
    o = np.arange(n_out, dtype=np.float32)
    if align_corners:
        ratio = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0)
        src = o * ratio
    else:
        ratio = np.float32(1.0 / scale) if scale else np.float32(n_in) / np.float32(n_out)
        src = np.maximum((o + np.float32(0.5)) * ratio - np.float32(0.5), np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0.astype(np.float32)).astype(np.float32)


def _upsample(node: ir.Upsample, dtype):
    shape, out = node.input_shape, node.output_shape
    spatial = len(shape) - 1
    if node.size is not None or node.scale_factor is None:
        scales = [None] * spatial
    elif isinstance(node.scale_factor, tuple):
        scales = list(node.scale_factor)
    else:
        scales = [node.scale_factor] * spatial
    if node.mode == "nearest":
        index = [_nearest_index(n, m, s) for n, m, s in zip(shape[1:], out[1:], scales, strict=True)]

        def nearest(p, x):
            for axis, idx in enumerate(index, start=2):
                x = jnp.take(x, idx, axis=axis)
            return x

        return {}, nearest
    align = bool(node.align_corners)
    (h0, h1, lh), (w0, w1, lw) = (
        _linear_source(n, m, s, align) for n, m, s in zip(shape[1:], out[1:], scales, strict=True)
    )
    lh, lw = _cast(lh, dtype).reshape(-1, 1), _cast(lw, dtype)

    def bilinear(p, x):
        top, bottom = jnp.take(x, h0, axis=2), jnp.take(x, h1, axis=2)
        row = lambda r: (1 - lw) * jnp.take(r, w0, axis=3) + lw * jnp.take(r, w1, axis=3)  # noqa: E731
        return (1 - lh) * row(top) + lh * row(bottom)

    return {}, bilinear


# --------------------------------------------------------------------------------------------
# activations and normalization


def _relu(node: ir.ReLU, dtype):
    slope = node.negative_slope
    if slope == 0.0:
        return {}, lambda p, x: jnp.maximum(x, jnp.zeros((), x.dtype))
    return {}, lambda p, x: jnp.where(x > 0, x, x * jnp.asarray(slope, x.dtype))


def _prelu(node: ir.PReLU, dtype):
    def prelu(p, x):
        w = p["weight"].reshape((-1,) + (1,) * (x.ndim - 2)) if x.ndim > 2 else p["weight"]
        return jnp.where(x > 0, x, x * w)

    return {"weight": _cast(node.weight, dtype)}, prelu


def _softmax(node: ir.Softmax, dtype):
    axis = _batched_axis(node.dim, node.input_shape, node._where())
    return {}, lambda p, x: jax.nn.softmax(x, axis=axis)


def _gelu(node: ir.GELU, dtype):
    approximate = node.approximate == "tanh"
    return {}, lambda p, x: jax.nn.gelu(x, approximate=approximate)


def _elu(node: ir.ELU, dtype):
    alpha = node.alpha
    return {}, lambda p, x: jnp.where(x > 0, x, jnp.asarray(alpha, x.dtype) * jnp.expm1(x))


def _batchnorm(node, dtype):
    params = {"running_mean": _cast(node.running_mean, dtype), "running_var": _cast(node.running_var, dtype)}
    affine = node.weight is not None
    if affine:
        params.update(weight=_cast(node.weight, dtype), bias=_cast(node.bias, dtype))
    eps = node.eps

    def batchnorm(p, x):
        shape = (-1,) + (1,) * (x.ndim - 2)
        y = (x - p["running_mean"].reshape(shape)) * lax.rsqrt(p["running_var"].reshape(shape) + eps)
        return y * p["weight"].reshape(shape) + p["bias"].reshape(shape) if affine else y

    return params, batchnorm


def _layernorm(node: ir.LayerNorm, dtype):
    axes = tuple(range(-len(node.normalized_shape), 0))
    params = {k: _cast(getattr(node, k), dtype) for k in ("weight", "bias") if getattr(node, k) is not None}
    eps = node.eps

    def layernorm(p, x):
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
        y = (x - mean) * lax.rsqrt(var + eps)
        if "weight" in p:
            y = y * p["weight"]
        return y + p["bias"] if "bias" in p else y

    return params, layernorm


def _identity(node, dtype):
    return {}, lambda p, x: x


def _split(node: ir.ChannelSplit, dtype):
    axis = _batched_axis(node.dim, node.input_shape, node._where())
    bounds = np.cumsum(node.split_sections)[:-1].tolist()
    return {}, lambda p, x: jnp.split(x, bounds, axis=axis)


_ELEMENTWISE = {
    ir.Sigmoid: jax.nn.sigmoid,
    ir.Tanh: jnp.tanh,
}

# most specific first: SpikingAffine is an Affine, SConv/SDConv are Conv2d
_BUILDERS: list[tuple[type, Callable]] = [
    (ir.Affine, _affine),
    (ir.Linear, _linear),
    (ir.Scale, _scale),
    (ir.Conv1d, _convnd),
    (ir.Conv2d, _convnd),
    (ir.SepConv2d, _sepconv),
    (ir.MaxPool2d, _maxpool),
    (ir.AvgPool2d, _avgpool),
    (ir.SumPool2d, _sumpool),
    (ir.Flatten, _flatten),
    (ir.Upsample, _upsample),
    (ir.ReLU, _relu),
    (ir.PReLU, _prelu),
    (ir.Softmax, _softmax),
    (ir.GELU, _gelu),
    (ir.ELU, _elu),
    (ir.BatchNorm1d, _batchnorm),
    (ir.BatchNorm2d, _batchnorm),
    (ir.LayerNorm, _layernorm),
    (ir.Dropout, _identity),
    (ir.HybridRegion, _identity),
    (ir.Skip, _identity),
    (ir.Concat, _identity),
    (ir.ChannelSplit, _split),
]


# the builders that take ``channels_last``, and the nodes that do not care (elementwise, no parameter)
_SPATIAL = (_convnd, _maxpool, _sumpool, _avgpool)
_ANY_LAYOUT = (_relu, _gelu, _elu, _identity)


def build(
    node: ir.Node, dtype, channels_last: bool = False, sliced_sums: bool = False
) -> tuple[dict[str, np.ndarray], Op] | None:
    """``(params, fn)`` for a stateless node, or None when this module does not implement it.

    ``channels_last`` (only for the nodes :func:`runs_channels_last` accepts): ``fn`` maps
    ``[N, *spatial, C]`` to ``[N, *spatial', C']``. ``sliced_sums`` (sum and average pools whose
    input makes every window sum exact in any order, :func:`.spike_pools.spike_fed_pools`):
    the window sums are sums of strided slices (:func:`.spike_pools.sliced_window_sum`).
    """
    for cls, fn in _ELEMENTWISE.items():
        if type(node) is cls:
            return {}, lambda p, x, fn=fn: fn(x)
    builder = _builder(node)
    if builder is None:
        return None
    if channels_last and builder not in _SPATIAL and builder not in _ANY_LAYOUT:
        raise ValueError(f"{node._where()}: {type(node).__name__} does not run channels-last")
    if builder in (_sumpool, _avgpool):
        return builder(node, dtype, channels_last, sliced_sums)
    return builder(node, dtype, channels_last) if builder in _SPATIAL else builder(node, dtype)


def is_convolution(node: ir.Node) -> bool:
    """Whether ``node`` is a Conv1d / Conv2d (the nodes a channels-last chain starts at)."""
    return _builder(node) is _convnd


def runs_channels_last(node: ir.Node) -> bool:
    """Whether ``build(node, dtype, channels_last=True)`` is supported: convolutions, pools, and
    elementwise nodes without parameters (Dropout, pass-through regions, activations)."""
    if type(node) in _ELEMENTWISE:
        return True
    if isinstance(node, ir.Concat) or (isinstance(node, ir.Skip) and node.skip_type == "concatenate"):
        return False  # concatenates along the channel axis of talon's layout
    builder = _builder(node)
    return builder in _SPATIAL or builder in _ANY_LAYOUT


def _builder(node: ir.Node) -> Callable | None:
    for cls, builder in _BUILDERS:
        if isinstance(node, cls):
            return builder
    return None


def merge(node: ir.Node, inputs: list, where: str, zero, plain: list[bool] | None = None):
    """Combine the values arriving on a node's incoming edges (edge order), per ``docs/semantics.md`` §2.

    ``zero`` is :func:`.neurons.exact_zero`: each summed term is rounded on its own first —
    except a term ``plain`` marks as never a multiplication (:mod:`.products`) after the first
    (the first keeps ``-0.0`` from the sum), the same bits.
    """
    if not inputs:
        raise ValueError(f"{where}: no input")
    concat = isinstance(node, ir.Concat) or (isinstance(node, ir.Skip) and node.skip_type == "concatenate")
    if concat:
        dim = node.dim if isinstance(node, ir.Concat) else 1
        shape = node.output_shape
        return jnp.concatenate(inputs, axis=_batched_axis(dim, shape, where))
    if len(inputs) == 1:
        return inputs[0]
    # each term is rounded on its own first (a Scale output would otherwise fuse into the sum)
    x = rounded(inputs[0], zero)
    for i, extra in enumerate(inputs[1:], 1):
        x = x + (extra if plain is not None and plain[i] else rounded(extra, zero))
    return x
