"""Floating-point kernels of the stateless primitives (docs/semantics.md §2, §4).

Arithmetic contract (``dtype`` is float32 for ``fp32``, float16 for ``fp16``):

* fan-in: incoming edges are summed left to right in ``dtype`` (Concat / Skip concatenate:
  concatenated in edge order);
* weights and elementwise parameters are stored in ``dtype``;
* Affine / Linear / convolutions: with ``exact`` accumulation every product and sum (and the bias)
  is computed in float64 and rounded once to ``dtype``; otherwise in float32 BLAS (fp16 always
  accumulates in float32);
* ReLU, PReLU, Scale, MaxPool, Threshold: computed in ``dtype`` (bit-exact like PyTorch's);
* transcendental and normalising layers (Sigmoid, Tanh, GELU, ELU, Softmax, BatchNorm, LayerNorm),
  AvgPool, SumPool and bilinear Upsample: computed in float64 and rounded once to ``dtype``.
"""

from __future__ import annotations

import math

import numpy as np

from talon import ir
from talon.ir.activations import batch_dim_to_axis

from ...errors import UnsupportedNodeError
from ..formats.exact_sums import ExactSums
from ..lowering.program import Op
from . import geometry
from .events import exact_event_product
from .kernel import StatelessKernel
from .params import channel_view, nearest_indices, per_neuron, upsample_factors

F64 = np.float64


def sum_edges(xs: list[np.ndarray]) -> np.ndarray:
    """Fan-in: the incoming edges summed left to right (in their common dtype)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


class FloatKernel(StatelessKernel):
    """Base: sums the fan-in in ``dtype``; ``forward`` returns one output."""

    def __init__(self, op: Op, dtype, exact: bool = True) -> None:
        super().__init__(op)
        self.dtype = np.dtype(dtype)
        self.exact = exact
        self.setup(op.node)

    def setup(self, node: ir.Node) -> None:
        pass

    @property
    def acc_dtype(self):
        """Accumulation dtype of matmuls and convolutions."""
        return F64 if (self.exact and self.dtype == np.float32) else np.float32

    def merge(self, xs: list[np.ndarray]) -> np.ndarray:
        return sum_edges(xs)

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        return [self.compute(x)]

    def compute(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def cast(self, y: np.ndarray) -> np.ndarray:
        return y.astype(self.dtype, copy=False)

    def store(self, param: np.ndarray) -> np.ndarray:
        """A parameter as stored by this precision (rounded to ``dtype``)."""
        return np.asarray(param).astype(self.dtype)


class Identity(FloatKernel):
    """Input, Output, Dropout (inference), HybridRegion, Skip residual / passthrough."""

    def compute(self, x):
        return x if x.dtype == self.dtype else x.astype(self.dtype)


class Dense(FloatKernel):
    """Affine / SpikingAffine ``W x + b`` and Linear ``W x`` on the last axis."""

    def setup(self, node):
        w = self.store(node.weight)
        self.weight_t = np.ascontiguousarray(w.T, dtype=self.acc_dtype)
        bias = getattr(node, "bias", None)
        self.bias = None if bias is None else self.store(bias).astype(self.acc_dtype)
        # float64 accumulation: a spike input may add weight rows instead (events.exact_event_product, same bits)
        self.exact_sums = ExactSums(w, self.bias) if self.acc_dtype == F64 else None

    def compute(self, x):
        y = None
        if self.exact_sums is not None:
            y = exact_event_product(x, self.weight_t, self.exact_sums)
        if y is None:
            y = np.matmul(x.astype(self.acc_dtype, copy=False), self.weight_t)
        if self.bias is not None:
            y += self.bias
        return self.cast(y)


class Scale(FloatKernel):
    def setup(self, node):
        self.scale = self.store(node.scale)

    def compute(self, x):
        return x * self.scale


class Conv(FloatKernel):
    """Conv1d, Conv2d, SConv, SDConv (cross-correlation, zero padding)."""

    def setup(self, node):
        self.one_d = isinstance(node, ir.Conv1d)
        self.weight = self.store(node.weight)
        self.bias = self.store(node.bias).astype(self.acc_dtype)
        self.geometry = (node.stride, node.padding, node.dilation, node.groups)
        # float64 accumulation of float32 products: exact sums may take the faster layout (exact_sums.py)
        self.exact_sums = ExactSums(self.weight, self.bias) if self.acc_dtype == F64 else None

    def compute(self, x):
        exact = self.exact_sums is not None and x.dtype == np.float32 and self.exact_sums.holds(x)
        if self.one_d:
            y = geometry.conv1d(x, self.weight, *self.geometry, dtype=self.acc_dtype, exact=exact)
        else:
            conv = geometry.conv2d_exact if exact else geometry.conv2d
            y = conv(x, self.weight, *self.geometry, dtype=self.acc_dtype)
        # y + bias in acc_dtype, rounded once to dtype (one pass instead of an add and a cast)
        out = np.empty(y.shape, self.dtype)
        np.add(y, self.bias.reshape((1, -1) + (1,) * (y.ndim - 2)), out=out, casting="unsafe")
        return out


class SepConv(FloatKernel):
    """Depthwise convolution (rounded to ``dtype``) followed by the 1x1 pointwise convolution."""

    def setup(self, node):
        self.dw = self.store(node.depthwise_weight)
        self.pw = self.store(node.pointwise_weight)
        self.dw_bias = self.store(node.depthwise_bias).astype(self.acc_dtype)
        self.pw_bias = self.store(node.pointwise_bias).astype(self.acc_dtype)
        self.geometry = (node.stride, node.padding, node.dilation)
        self.intermediate_amax = 0.0  # calibration of the fixed-point datapath

    def depthwise(self, x):
        y = geometry.conv2d(x, self.dw, *self.geometry, groups=self.dw.shape[0], dtype=self.acc_dtype)
        y += self.dw_bias.reshape(1, -1, 1, 1)
        return self.cast(y)

    def compute(self, x):
        mid = self.depthwise(x)
        if mid.size:
            self.intermediate_amax = max(self.intermediate_amax, float(np.abs(mid).max()))
        y = geometry.conv2d(mid, self.pw, dtype=self.acc_dtype)
        y += self.pw_bias.reshape(1, -1, 1, 1)
        return self.cast(y)


class MaxPool(FloatKernel):
    def setup(self, node):
        self.args = (node.kernel_size, node.stride, node.padding, node.dilation, node.ceil_mode)

    def compute(self, x):
        return geometry.pool_reduce(x, *self.args, pad_value=-np.inf, op=np.maximum)


class AvgPool(FloatKernel):
    def setup(self, node):
        self.node = node
        _, h, w = node.input_shape
        _, ho, wo = node.output_shape
        self.divisor = geometry.avg_pool_divisor(
            (h, w), (ho, wo), node.kernel_size, node.stride, node.padding, node.count_include_pad, node.divisor_override
        )

    def compute(self, x):
        n = self.node
        total = geometry.pool_reduce(
            x.astype(F64), n.kernel_size, n.stride, n.padding, (1, 1), n.ceil_mode, 0.0, op=np.add
        )
        return self.cast(total / self.divisor)


class SumPool(FloatKernel):
    def setup(self, node):
        self.args = (node.kernel_size, node.stride, node.padding, (1, 1), False)

    def compute(self, x):
        return self.cast(geometry.pool_reduce(x.astype(F64), *self.args, pad_value=0.0, op=np.add))


class Upsample(FloatKernel):
    def setup(self, node):
        self.bilinear = node.mode == ir.UpsampleMode.BILINEAR
        if self.bilinear:
            align = bool(node.align_corners)
            self.axes = [
                geometry.bilinear_weights(n, m, f, align)
                for n, m, f in zip(node.input_shape[1:], node.output_shape[1:], upsample_factors(node), strict=True)
            ]
        else:
            self.index = nearest_indices(node)

    def compute(self, x):
        if not self.bilinear:
            for axis, idx in enumerate(self.index):
                x = np.take(x, idx, axis=axis + 2)
            return x
        (h_lo, h_hi, h_lam), (w_lo, w_hi, w_lam) = self.axes
        x = x.astype(F64)
        top = x[:, :, h_lo, :]
        bottom = x[:, :, h_hi, :]
        hl = h_lam[:, None]
        rows = (1.0 - hl) * top + hl * bottom
        return self.cast((1.0 - w_lam) * rows[..., w_lo] + w_lam * rows[..., w_hi])


class Flatten(FloatKernel):
    def compute(self, x):
        return x.reshape((x.shape[0], *self.op.node.output_shape))


class ReLU(FloatKernel):
    def setup(self, node):
        self.slope = self.dtype.type(node.negative_slope)

    def compute(self, x):
        if self.slope == 0:
            return np.maximum(x, self.dtype.type(0))
        return np.where(x > 0, x, x * self.slope)


class PReLU(FloatKernel):
    def setup(self, node):
        w = self.store(node.weight)
        self.weight = w.reshape(()) if w.size == 1 else channel_view(w, node.input_shape)

    def compute(self, x):
        return np.where(x > 0, x, x * self.weight)


class Sigmoid(FloatKernel):
    def compute(self, x):
        x = x.astype(F64)
        e = np.exp(-np.abs(x))
        return self.cast(np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)))


class Tanh(FloatKernel):
    def compute(self, x):
        return self.cast(np.tanh(x.astype(F64)))


class GELU(FloatKernel):
    def compute(self, x):
        x = x.astype(F64)
        if self.op.node.approximate == "tanh":
            inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
            return self.cast(0.5 * x * (1.0 + np.tanh(inner)))
        return self.cast(0.5 * x * (1.0 + erf(x / math.sqrt(2.0))))


_SERIES_TERMS = 48
_CF_LEVELS = 80
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised float64 ``erf`` (numpy has none; GELU's exact form), accurate to ~1e-15 absolute.

    * ``|x| < 2``: the Maclaurin series ``erf x = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))``
      (48 terms; the largest term is < 25, so cancellation costs under 3 digits);
    * ``|x| >= 2``: ``1 - erfc |x|`` (with the sign of ``x``) from the continued fraction
      ``erfc x = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))``,
      evaluated bottom-up with 80 levels.
    """
    x = np.asarray(x, np.float64)
    out = np.empty_like(x)
    small = np.abs(x) < 2.0
    out[small] = _erf_series(x[small])
    big = ~small
    out[big] = np.sign(x[big]) * (1.0 - _erfc_cf(np.abs(x[big])))
    return out


def _erf_series(x: np.ndarray) -> np.ndarray:
    x2 = x * x
    term = x.copy()  # x^(2n+1) (-1)^n / n!
    total = x.copy()
    for n in range(1, _SERIES_TERMS):
        term = term * (-x2) / n
        total = total + term / (2 * n + 1)
    return _TWO_OVER_SQRT_PI * total


def _erfc_cf(x: np.ndarray) -> np.ndarray:
    """erfc for x >= 2."""
    tail = x.copy()
    for k in range(_CF_LEVELS, 0, -1):
        tail = x + (k / 2.0) / tail
    return np.exp(-x * x) / math.sqrt(math.pi) / tail


class ELU(FloatKernel):
    def compute(self, x):
        x = x.astype(F64)
        return self.cast(np.where(x > 0, x, self.op.node.alpha * np.expm1(np.minimum(x, 0.0))))


class Softmax(FloatKernel):
    def setup(self, node):
        self.axis = batch_dim_to_axis(node.dim, len(node.input_shape), "Softmax") + 1

    def compute(self, x):
        x = x.astype(F64)
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return self.cast(e / e.sum(axis=self.axis, keepdims=True))


class BatchNorm(FloatKernel):
    """Inference: ``(x - running_mean) / sqrt(running_var + eps) * weight + bias`` per channel."""

    def setup(self, node):
        shape = node.input_shape
        self.mean = channel_view(np.asarray(node.running_mean, F64), shape)
        self.inv_std = channel_view(1.0 / np.sqrt(np.asarray(node.running_var, F64) + node.eps), shape)
        self.weight = None if node.weight is None else channel_view(np.asarray(node.weight, F64), shape)
        self.bias = None if node.bias is None else channel_view(np.asarray(node.bias, F64), shape)

    def compute(self, x):
        y = (x.astype(F64) - self.mean) * self.inv_std
        if self.weight is not None:
            y = y * self.weight + self.bias
        return self.cast(y)


class LayerNorm(FloatKernel):
    def setup(self, node):
        self.axes = tuple(range(-len(node.normalized_shape), 0))
        self.weight = None if node.weight is None else np.asarray(node.weight, F64)
        self.bias = None if node.bias is None else np.asarray(node.bias, F64)

    def compute(self, x):
        x = x.astype(F64)
        mean = x.mean(axis=self.axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=self.axes, keepdims=True)
        y = (x - mean) / np.sqrt(var + self.op.node.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return self.cast(y)


class Threshold(FloatKernel):
    """``cmp(x, threshold)`` -> 0/1 in ``dtype`` (stateless spike function)."""

    spiking = True

    def setup(self, node):
        self.theta = per_neuron(np.asarray(node.threshold), node.input_shape).astype(self.dtype)
        self.ge = node.comparison == ir.Comparison.GE

    def compute(self, x):
        return (x >= self.theta if self.ge else x > self.theta).astype(self.dtype)


class Concat(FloatKernel):
    """Concat and Skip(concatenate): the incoming edges concatenated in edge order."""

    def setup(self, node):
        dim = node.dim if isinstance(node, ir.Concat) else 1
        self.axis = batch_dim_to_axis(dim, len(node.output_shape), "Concat") + 1

    def merge(self, xs):
        return np.concatenate(xs, axis=self.axis)

    def compute(self, x):
        return x


class ChannelSplit(FloatKernel):
    def setup(self, node):
        self.axis = batch_dim_to_axis(node.dim, len(node.input_shape), "ChannelSplit") + 1
        self.bounds = np.cumsum(node.split_sections)[:-1]

    def forward(self, x):
        return np.split(x, self.bounds, axis=self.axis)


FLOAT_KERNELS: dict[type, type[FloatKernel]] = {
    ir.Input: Identity,
    ir.Output: Identity,
    ir.Dropout: Identity,
    ir.HybridRegion: Identity,
    ir.Affine: Dense,
    ir.SpikingAffine: Dense,
    ir.Linear: Dense,
    ir.Scale: Scale,
    ir.Conv1d: Conv,
    ir.Conv2d: Conv,
    ir.SConv: Conv,
    ir.SDConv: Conv,
    ir.SepConv2d: SepConv,
    ir.MaxPool2d: MaxPool,
    ir.AvgPool2d: AvgPool,
    ir.SumPool2d: SumPool,
    ir.Upsample: Upsample,
    ir.Flatten: Flatten,
    ir.ReLU: ReLU,
    ir.PReLU: PReLU,
    ir.Sigmoid: Sigmoid,
    ir.Tanh: Tanh,
    ir.GELU: GELU,
    ir.ELU: ELU,
    ir.Softmax: Softmax,
    ir.BatchNorm1d: BatchNorm,
    ir.BatchNorm2d: BatchNorm,
    ir.LayerNorm: LayerNorm,
    ir.Threshold: Threshold,
    ir.Concat: Concat,
    ir.ChannelSplit: ChannelSplit,
}


def float_kernel(op: Op, dtype, exact: bool) -> FloatKernel:
    node = op.node
    if isinstance(node, ir.Skip):
        cls = Concat if node.skip_type == ir.SkipType.CONCATENATE else Identity
        return cls(op, dtype, exact)
    cls = FLOAT_KERNELS.get(type(node))
    if cls is None:
        raise UnsupportedNodeError(
            f"node {op.path!r}: the CPU backend has no kernel for {type(node).__name__} "
            f"(supported: {', '.join(sorted(t.__name__ for t in FLOAT_KERNELS))}, Skip, and the neurons)"
        )
    return cls(op, dtype, exact)
