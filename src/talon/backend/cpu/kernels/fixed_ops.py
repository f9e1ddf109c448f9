"""Integer kernels of the stateless primitives (the fixed-point precisions int16 / int8 / int4).

Each kernel is built from the formats of its incoming edges and computes the format of its
outputs (docs/backend.md, "Fixed point"):

* **weight layers** (Affine, SpikingAffine, Linear, convolutions, SepConv2d) take a per-tensor
  integer input of at most ``activation_bits``: an input already in that form (spikes, spike
  counts, a quantized Input) is used as it is, anything else is rescaled to the calibrated scale
  ``amax / qmax(activation_bits)``. Weights are quantized symmetrically (per output channel or per
  tensor) to ``weight_bits``; the bias to the accumulator scale. The accumulator is the exact
  integer sum, saturated to ``accumulator_bits``; its scale is ``weight_scale * input_scale``.
* **format-preserving layers** work on the integers directly: ReLU, MaxPool, Flatten, Concat,
  ChannelSplit, Upsample(nearest), Dropout, Skip; Scale and BatchNorm fold their factor into the
  scale (sign applied to the integers); AvgPool sums and folds ``1/divisor`` into the scale.
* fan-in of different formats is rescaled to the finest of their scales (the smallest per
  element, so no edge loses resolution) unless the worst-case sum would then exceed
  ``accumulator_bits`` (the scale is raised until it fits), and summed, saturating; in a feedback
  sum (an incoming edge is delayed) only the same-step edges choose the scale.
"""

from __future__ import annotations

import numpy as np

from talon import ir
from talon._compiled import numba_available
from talon.ir.activations import batch_dim_to_axis

from ...errors import UnsupportedNodeError
from ..formats.fixed_point import (
    FLOAT32_EXACT,
    FLOAT_EXACT,
    INT,
    SPIKES,
    Multiplier,
    QFormat,
    check_int,
    qmax,
    quantize_dyadic,
    quantize_symmetric,
    round_shift,
    saturate,
)
from ..formats.weight_cache import reuse
from ..lowering.program import Op
from . import geometry
from .events import EventWeights, exact_dtype, synaptic_product
from .fixed_kernel import FixedContext, FixedKernel
from .params import batchnorm_affine, nearest_indices, per_neuron

INT_MIN = -(2**62)


class QIdentity(FixedKernel):
    """Inner Input / Output, Dropout, HybridRegion, Skip residual / passthrough."""

    @property
    def reads_exact_float(self) -> bool:
        return len(self.in_formats) == 1  # passed through as it is; a sum of several edges is int64


class QInput(FixedKernel):
    """A top-level Input: ``q = clip(rint(x / s), -bound, bound)`` with a calibrated ``s``.

    Inputs that are exactly representable in ``activation_bits`` — every value ``x = n / 2**k``
    with ``|n| <= qmax`` (spikes, counts, multiples of 1/8 ...) — get ``s = 2**-k`` and are
    represented without error, with ``bound`` the calibrated ``max |n|``; other inputs get
    ``s = amax / qmax`` and ``bound = qmax``. Inputs beyond the calibrated range (a compiled program
    run on new data) saturate at ``bound``, so the static bounds downstream hold for any input.
    """

    def setup(self, node):
        cal = self.ctx.calibration
        vid = self.op.outputs[0]
        amax, exponent = cal.value_amax.get(vid, 0.0), cal.value_exponent.get(vid)
        top = qmax(self.spec.activation_bits)
        self.power_of_two = None  # k when s = 2**-k
        if exponent is not None and amax * 2.0**exponent <= top:
            self.scale, bound = 2.0**-exponent, int(amax * 2.0**exponent)
            self.power_of_two = exponent
        else:
            self.scale, bound = self.ctx.activation_scale(amax, self.op.path, "its input's max |x|"), top
        self.top = bound
        self.out_formats = [QFormat(np.float64(self.scale), bound)]
        self.outside = (0, 0)  # (saturated, rounded) elements since the last reset

    def merge(self, xs):
        return xs[0]

    def compute(self, x):
        x = np.asarray(x)
        dtype = np.float32 if self.float32_out_ok and self.top < FLOAT32_EXACT else INT
        if self.power_of_two is not None and x.dtype == np.float32:
            q, saturated, rounded = quantize_dyadic(x, self.power_of_two, self.top, dtype)
        else:
            n = np.asarray(x, np.float64) / self.scale
            over = np.abs(n) > self.top
            saturated = int(np.count_nonzero(over))
            rounded = int(np.count_nonzero(~over & (n != np.rint(n)))) if self.power_of_two is not None else 0
            q = np.clip(np.rint(n), -self.top, self.top).astype(dtype)
        # inputs beyond the calibrated bound, or between exact steps: a compiled program reports them
        self.outside = (self.outside[0] + saturated, self.outside[1] + rounded)
        return q


class QOutput(FixedKernel):
    """A top-level Output: the real value ``sum_e q_e * s_e`` rounded to float32."""

    reads_exact_float = True  # q * s in float64 is the same for an int64 q and its exact float32

    def setup(self, node):
        self.out_formats = [None]

    def merge(self, xs):
        total = None
        for x, f in zip(xs, self.in_formats, strict=True):
            real = x * f.scale
            total = real if total is None else total + real
        # + 0.0: a float32-stored integer can be rint's -0.0; as in the int64 datapath, zero is +0.0
        return (total + 0.0).astype(np.float32)


class QWeighted(FixedKernel):
    """Common part of the weight layers: the input rescaling to ``activation_bits``."""

    @property
    def reads_exact_float(self) -> bool:
        # without a rescale the input is summed (at most qmax(activation_bits)) and converted to the
        # product's exact dtype; a rescale multiplies and shifts in int64
        return getattr(self, "act_multipliers", None) is None

    def setup_input(self) -> QFormat | None:
        fmts = self.in_formats
        self.input_format = None
        top = qmax(self.spec.activation_bits)
        self.act_multipliers = None
        self.act_clip = None
        known = [f for f in fmts if f is not None]
        if not known:
            return None
        if all(f.scalar and f.same(known[0]) for f in known) and sum(f.bound for f in known) <= top:
            self.input_rescaled = False
            self.input_format = QFormat(known[0].scale, sum(f.bound for f in known))
            return self.input_format
        amax = self.ctx.calibration.merged_amax.get(self.op.index, 0.0)
        target = self.ctx.activation_scale(amax, self.op.path, "its summed input's max |x|")
        self.act_multipliers = [
            None if f is None else Multiplier.of(f.full_scale(self.in_shape) / target, self.spec.coefficient_bits)
            for f in fmts
        ]
        for f, m in zip(fmts, self.act_multipliers, strict=True):
            if f is not None:
                check_int(float(f.bound) * m.max_abs, self.op.path, "rescaling the input")
        self.act_clip = top
        self.input_rescaled = True
        self.input_format = QFormat(np.float64(target), top)
        return self.input_format

    def merge(self, xs):
        if self.act_multipliers is None:
            total = xs[0]
            for x in xs[1:]:
                total = total + x
            return total
        total = self.act_multipliers[0].apply(xs[0])
        for m, x in zip(self.act_multipliers[1:], xs[1:], strict=True):
            total = total + m.apply(x)
        return np.clip(total, -self.act_clip, self.act_clip)

    def weight_bits(self, node) -> tuple[int, int]:
        if isinstance(node, ir.SpikingAffine):
            return node.weight_bits, node.accumulator_bits
        return self.spec.weight_bits, self.spec.accumulator_bits

    def quantize(self, weight: np.ndarray, bits: int, axis: int, derive=None, field: str = "weight"):
        """``(q, scale)`` of ``weight`` (per channel along ``axis`` or per tensor), or
        ``derive(q, scale)``; static results come from :mod:`..formats.weight_cache` when the weights are
        unchanged since an earlier build. Non-finite weights are refused naming the node and ``field``."""
        if bits < 2:
            raise UnsupportedNodeError(
                f"node {self.op.path!r}: {bits}-bit symmetric weights cannot represent zero and one sign; "
                "use weight_bits >= 2"
            )
        pooled = self.ctx.calibration.weight_amax.get(self.op.index)
        if pooled is not None and not self.ctx.per_channel:  # a slice of a split layer: the layer's scale
            ir.check_finite_param(weight, self.op.path, field, "the fixed-point quantiser")
            top = qmax(bits)
            scale = np.asarray(pooled / top if pooled > 0 else 1.0)
            q = np.clip(np.rint(np.asarray(weight, np.float64) / scale), -top, top).astype(INT)
            return (q, scale) if derive is None else derive(q, scale)
        axis = axis if self.ctx.per_channel else None
        where = (self.op.path, field)
        if derive is None:
            return reuse(weight, ("symmetric", bits, axis), lambda: quantize_symmetric(weight, bits, axis, where))
        return reuse(
            weight,
            ("symmetric", bits, axis, derive.__name__),
            lambda: derive(*quantize_symmetric(weight, bits, axis, where)),
        )

    def finish(self, wq_abs_rowsum: np.ndarray, bias_q: np.ndarray, in_fmt: QFormat, acc_bits: int) -> int:
        """Static bound of the accumulator; decides between float64-exact and int64 products."""
        worst = float(wq_abs_rowsum.max(initial=0)) * in_fmt.bound
        self.worst = worst
        self.exact_in_float = worst < FLOAT_EXACT
        check_int(worst + float(np.abs(bias_q).max(initial=0)), self.op.path, "the accumulator")
        self.acc_bits = acc_bits
        total = worst + float(np.abs(bias_q).max(initial=0))
        self.total = total  # |acc + bias| before saturation
        self.saturating_acc = total > qmax(acc_bits)  # else saturation is the identity: skipped
        return int(min(total, qmax(acc_bits) + 1))

    def add_bias(self, acc: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """``sat(acc + bias)`` for an exact accumulator ``acc`` (any dtype, a fresh array): kept in
        float32 when every reader takes it and ``|acc + bias| <= total < 2**24`` (each partial result
        an exact float32 integer), else in int64."""
        if self.float32_out_ok and self.total < FLOAT32_EXACT:
            acc = acc.astype(np.float32, copy=False)
            acc += bias.astype(np.float32)
            if self.saturating_acc:
                top = qmax(self.acc_bits)
                np.clip(acc, -top - 1, top, out=acc)
            return acc
        acc = acc.astype(INT, copy=False)
        acc += bias
        return saturate(acc, self.acc_bits) if self.saturating_acc else acc

    def describe(self):
        out = super().describe()
        out.update(
            weight_bits=self.w_bits,
            accumulator_bits=self.acc_bits,
            weight_scaling="per_channel" if self.ctx.per_channel else "per_tensor",
            input_rescaled=self.input_rescaled,
        )
        return out


class QDense(QWeighted):
    """Affine / SpikingAffine / Linear: ``acc = sat(Wq x + bq)`` on the last axis."""

    def setup(self, node):
        in_fmt = self.setup_input()
        self.w_bits, acc_bits = self.weight_bits(node)
        # w_scale (out, 1) or (); the transposed integers and their row sums of |wq|
        wq, w_scale, self.weight_t, wq_abs_rowsum = self.quantize(node.weight, self.w_bits, 0, _dense_layout)
        w_scale = np.asarray(w_scale).reshape(-1)
        self.acc_bits = acc_bits
        if in_fmt is None:
            self.out_formats = [None]
            return
        acc_scale = w_scale * in_fmt.scale  # (out,) or scalar
        bias = getattr(node, "bias", None)
        bias = np.zeros(wq.shape[0]) if bias is None else np.asarray(bias, np.float64)
        self.bias_q = saturate(np.rint(bias / acc_scale).astype(INT), acc_bits)
        bound = self.finish(wq_abs_rowsum, self.bias_q, in_fmt, acc_bits)
        self.weight_t_exact = self.weight_t.astype(exact_dtype(self.worst))
        self._events: EventWeights | None = None
        lead = len(node.output_shape) - 1
        scale = np.asarray(acc_scale).reshape((1,) * lead + (-1,)) if np.ndim(acc_scale) else acc_scale
        self.out_formats = [QFormat(scale, bound)]

    def compute(self, x):
        acc = synaptic_product(x, self.weight_t_exact, self.event_weights(), native=True)
        return self.add_bias(acc, self.bias_q)

    def event_weights(self) -> EventWeights | None:
        """The weights laid out for the compiled event kernel (made on first use; None without numba).
        Does not import numba: whether a product uses them is :func:`synaptic_product`'s choice."""
        if self._events is None and numba_available():
            self._events = EventWeights(self.weight_t, self.worst)
        return self._events


def _dense_layout(wq: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, ...]:
    """What QDense derives from its quantized weights: ``(wq, scale, wq.T contiguous, sum_j |wq[:, j]|)``."""
    return wq, scale, np.ascontiguousarray(wq.T), np.abs(wq).sum(axis=1)


class QConv(QWeighted):
    """Conv1d / Conv2d / SConv / SDConv in integers."""

    def setup(self, node):
        in_fmt = self.setup_input()
        self.one_d = isinstance(node, ir.Conv1d)
        self.w_bits, acc_bits = self.weight_bits(node)
        wq, w_scale = self.quantize(node.weight, self.w_bits, axis=0)
        self.wq = wq
        self.acc_bits = acc_bits
        self.geometry = (node.stride, node.padding, node.dilation, node.groups)
        if in_fmt is None:
            self.out_formats = [None]
            return
        acc_scale = np.asarray(w_scale).reshape(-1) * in_fmt.scale
        self.bias_q = saturate(np.rint(np.asarray(node.bias, np.float64) / acc_scale).astype(INT), acc_bits)
        bound = self.finish(np.abs(wq).reshape(wq.shape[0], -1).sum(axis=1), self.bias_q, in_fmt, acc_bits)
        spatial = len(node.output_shape) - 1
        scale = np.asarray(acc_scale).reshape((-1,) + (1,) * spatial) if np.ndim(acc_scale) else acc_scale
        self.out_formats = [QFormat(scale, bound)]
        self.bias_view = self.bias_q.reshape((1, -1) + (1,) * spatial)

    def compute(self, x):
        dtype = exact_dtype(self.worst)  # exact for every partial sum: the float result is an integer
        if self.one_d:
            acc = geometry.conv1d(x, self.wq, *self.geometry, dtype=dtype, exact=True)
        else:
            acc = geometry.conv2d_exact(x, self.wq, *self.geometry, dtype=dtype)
        return self.add_bias(acc, self.bias_view)


class QSepConv(QWeighted):
    """Depthwise (integer) -> rescale to ``activation_bits`` (calibrated) -> pointwise (integer)."""

    def setup(self, node):
        in_fmt = self.setup_input()
        self.w_bits, acc_bits = self.spec.weight_bits, self.spec.accumulator_bits
        self.acc_bits = acc_bits
        dwq, dw_scale = self.quantize(node.depthwise_weight, self.w_bits, axis=0, field="depthwise_weight")
        pwq, pw_scale = self.quantize(node.pointwise_weight, self.w_bits, axis=0, field="pointwise_weight")
        self.dwq, self.pwq = dwq, pwq
        self.geometry = (node.stride, node.padding, node.dilation)
        if in_fmt is None:
            self.out_formats = [None]
            return
        dw_acc = np.asarray(dw_scale).reshape(-1) * in_fmt.scale
        self.dw_bias = saturate(np.rint(np.asarray(node.depthwise_bias, np.float64) / dw_acc).astype(INT), acc_bits)
        dw_bound = self.finish(np.abs(dwq).reshape(dwq.shape[0], -1).sum(axis=1), self.dw_bias, in_fmt, acc_bits)
        self.dw_worst = self.worst
        amax_mid = self.ctx.calibration.intermediate_amax.get(self.op.index, 0.0)
        mid_scale = self.ctx.activation_scale(amax_mid, self.op.path, "its depthwise output's max |x|")
        self.mid = Multiplier.of(np.broadcast_to(dw_acc, (dwq.shape[0],)) / mid_scale, self.spec.coefficient_bits)
        check_int(float(dw_bound) * self.mid.max_abs, self.op.path, "rescaling the depthwise output")
        self.mid_m = self.mid.m.reshape(1, -1, 1, 1) if self.mid.m.ndim else self.mid.m
        self.mid_shift = self.mid.shift.reshape(1, -1, 1, 1) if np.ndim(self.mid.shift) else self.mid.shift
        self.mid_top = qmax(self.spec.activation_bits)
        mid_fmt = QFormat(np.float64(mid_scale), self.mid_top)
        pw_acc = np.asarray(pw_scale).reshape(-1) * mid_scale
        self.pw_bias = saturate(np.rint(np.asarray(node.pointwise_bias, np.float64) / pw_acc).astype(INT), acc_bits)
        bound = self.finish(np.abs(pwq).reshape(pwq.shape[0], -1).sum(axis=1), self.pw_bias, mid_fmt, acc_bits)
        scale = pw_acc.reshape(-1, 1, 1) if pw_acc.size > 1 else pw_acc.reshape(())
        self.out_formats = [QFormat(scale, bound)]

    def compute(self, x):
        dtype = exact_dtype(self.dw_worst)  # exact for every partial sum: the float results are integers
        acc = geometry.conv2d_exact(x, self.dwq, *self.geometry, groups=self.dwq.shape[0], dtype=dtype)
        acc = saturate(acc.astype(INT) + self.dw_bias.reshape(1, -1, 1, 1), self.acc_bits)
        mid = np.clip(round_shift(acc * self.mid_m, self.mid_shift), -self.mid_top, self.mid_top)
        dtype = exact_dtype(self.worst)
        out = geometry.conv2d_exact(mid, self.pwq, dtype=dtype)
        return saturate(out.astype(INT) + self.pw_bias.reshape(1, -1, 1, 1), self.acc_bits)


def _sign_fold(kernel: FixedKernel, factor: np.ndarray, fmt: QFormat, shape) -> tuple[np.ndarray, np.ndarray]:
    """``y = factor * x``: integers times ``sign(factor)``, ``|factor|`` folded into the scale."""
    sign = np.sign(factor).astype(INT)
    magnitude = np.where(factor == 0, 1.0, np.abs(factor))
    return sign, np.broadcast_to(fmt.scale, shape) * np.broadcast_to(magnitude, shape)


class QScale(FixedKernel):
    """``y = s * x`` exactly: the integers are multiplied by ``sign(s)``, ``|s|`` joins the scale."""

    def setup(self, node):
        fmt = self.setup_sum()
        if fmt is None:
            self.out_formats = [None]
            return
        self.sign, scale = _sign_fold(self, np.asarray(node.scale, np.float64), fmt, self.in_shape)
        self.out_formats = [QFormat(scale, fmt.bound)]

    def compute(self, x):
        return x * self.sign


class QBatchNorm(FixedKernel):
    """Inference BatchNorm as a per-channel ``a x + b``: the integers are multiplied by
    ``sign(a) * 2**k`` (``k`` fraction bits for the bias, as many as ``accumulator_bits`` leave
    room for, at most ``coefficient_bits``), ``|a| / 2**k`` joins the scale and ``b`` is added as
    ``rint(b / scale)``, saturating at ``accumulator_bits``."""

    def setup(self, node):
        fmt = self.setup_sum()
        if fmt is None:
            self.out_formats = [None]
            return
        a, b = batchnorm_affine(node)
        shape = self.in_shape
        ch = (-1,) + (1,) * (len(shape) - 1)
        acc = self.spec.accumulator_bits
        self.frac = max(0, min(self.spec.coefficient_bits, acc - 2 - int(fmt.bound).bit_length()))
        sign, scale = _sign_fold(self, a.reshape(ch), fmt, shape)
        self.sign = sign * (1 << self.frac)
        scale = scale / 2.0**self.frac
        self.bias = saturate(np.rint(b.reshape(ch) / scale).astype(INT), acc)
        bound = (fmt.bound << self.frac) + int(np.abs(self.bias).max(initial=0))
        self.out_formats = [QFormat(scale, min(bound, qmax(acc) + 1))]

    def compute(self, x):
        return saturate(x * self.sign + self.bias, self.spec.accumulator_bits)


class QReLU(FixedKernel):
    """``max(x, 0)``; a negative slope multiplies the negative integers by a fixed-point multiplier."""

    def setup(self, node):
        fmt = self.setup_sum()
        slope = np.asarray(getattr(node, "negative_slope", None) if isinstance(node, ir.ReLU) else node.weight)
        if isinstance(node, ir.PReLU) and slope.size > 1:
            slope = slope.reshape((-1,) + (1,) * (len(self.in_shape) - 1))
        self.slope = None if np.all(slope == 0) else Multiplier.of(slope, self.spec.coefficient_bits)
        if fmt is None:
            self.out_formats = [None]
            return
        bound = fmt.bound
        if self.slope is not None:
            check_int(float(fmt.bound) * self.slope.max_abs, self.op.path, "the negative slope")
            bound = max(bound, self.slope.bound(fmt.bound))
        self.out_formats = [QFormat(fmt.scale, bound)]

    @property
    def reads_exact_float(self) -> bool:
        return self.slope is None and len(self.in_formats) == 1  # max(x, 0) is exact in float32

    def compute(self, x):
        if self.slope is None:
            return np.maximum(x, 0)
        return np.where(x > 0, x, self.slope.apply(x))


def _spatially_uniform(kernel: FixedKernel, fmt: QFormat) -> QFormat:
    """Pooling needs one scale per channel: rescale to the per-channel maximum when it varies."""
    shape = kernel.in_shape
    full = fmt.full_scale(shape)
    per_channel = full.reshape(shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (len(shape) - 1))
    kernel.pool_rescale = None
    if np.array_equal(np.broadcast_to(per_channel, shape), full):
        return QFormat(per_channel, fmt.bound)  # (C, 1, 1): it must broadcast to the pooled output too
    kernel.pool_rescale = Multiplier.of(full / per_channel, kernel.spec.coefficient_bits)
    return QFormat(per_channel, kernel.pool_rescale.bound(fmt.bound))


class QPool(FixedKernel):
    """MaxPool2d (exact max), SumPool2d (exact sum), AvgPool2d (sum; 1/divisor folded into the scale)."""

    def setup(self, node):
        fmt = self.setup_sum()
        self.kind = type(node).__name__
        if fmt is None:
            self.out_formats = [None]
            return
        fmt = _spatially_uniform(self, fmt)
        k = node.kernel_size[0] * node.kernel_size[1]
        acc = self.spec.accumulator_bits
        if self.kind == "MaxPool2d":
            self.args = (node.kernel_size, node.stride, node.padding, node.dilation, node.ceil_mode)
            self.out_formats = [fmt]
            return
        ceil = getattr(node, "ceil_mode", False)
        self.args = (node.kernel_size, node.stride, node.padding, (1, 1), ceil)
        bound = min(fmt.bound * k, qmax(acc) + 1)
        scale = fmt.scale
        if self.kind == "AvgPool2d":
            _, h, w = self.in_shape
            _, ho, wo = node.output_shape
            divisor = geometry.avg_pool_divisor(
                (h, w), (ho, wo), node.kernel_size, node.stride, node.padding, node.count_include_pad,
                node.divisor_override,
            )  # fmt: skip
            scale = np.broadcast_to(scale, (self.in_shape[0], 1, 1)) / divisor[None]
        self.out_formats = [QFormat(scale, bound)]

    @property
    def reads_exact_float(self) -> bool:
        # a maximum is exact in float32 (the padding -2**62 too: a power of two); sums stay int64
        return self.kind == "MaxPool2d" and getattr(self, "pool_rescale", None) is None and len(self.in_formats) == 1

    def compute(self, x):
        if self.pool_rescale is not None:
            x = self.pool_rescale.apply(x)
        if self.kind == "MaxPool2d":
            return geometry.pool_reduce(x, *self.args, pad_value=INT_MIN, op=np.maximum)
        total = geometry.pool_reduce(x, *self.args, pad_value=0, op=np.add)
        return saturate(total, self.spec.accumulator_bits)


class QFlatten(FixedKernel):
    @property
    def reads_exact_float(self) -> bool:
        return len(self.in_formats) == 1  # a reshape

    def setup(self, node):
        fmt = self.setup_sum()
        if fmt is None:
            self.out_formats = [None]
            return
        scale = fmt.scale if fmt.scalar else fmt.full_scale(self.in_shape).reshape(node.output_shape)
        self.out_formats = [QFormat(scale, fmt.bound)]

    def compute(self, x):
        return x.reshape((x.shape[0], *self.op.node.output_shape))


class QUpsample(FixedKernel):
    """Nearest-neighbour upsampling of the integers (and of a per-element scale)."""

    def setup(self, node):
        fmt = self.setup_sum()
        self.index = nearest_indices(node)
        if fmt is None:
            self.out_formats = [None]
            return
        scale = fmt.scale
        if not fmt.scalar:
            scale = np.array(fmt.full_scale(self.in_shape))[None]
            for axis, idx in enumerate(self.index):
                scale = np.take(scale, idx, axis=axis + 2)
            scale = scale[0]
        self.out_formats = [QFormat(scale, fmt.bound)]

    def compute(self, x):
        for axis, idx in enumerate(self.index):
            x = np.take(x, idx, axis=axis + 2)
        return x


class QConcat(FixedKernel):
    def setup(self, node):
        dim = node.dim if isinstance(node, ir.Concat) else 1
        self.axis = batch_dim_to_axis(dim, len(node.output_shape), "Concat")
        if any(f is None for f in self.in_formats):
            self.out_formats = [None]
            return
        shapes = [tuple(int(d) for d in s) for s in node.input_type.values()]
        scales = [f.full_scale(s) for f, s in zip(self.in_formats, shapes, strict=True)]
        scale = np.concatenate(scales, axis=self.axis)
        bounds = np.concatenate([f.element_bounds(s) for f, s in zip(self.in_formats, shapes, strict=True)], self.axis)
        self.out_formats = [QFormat(scale, max(f.bound for f in self.in_formats), bounds)]

    def merge(self, xs):
        return np.concatenate(xs, axis=self.axis + 1)


class QChannelSplit(FixedKernel):
    def setup(self, node):
        fmt = self.setup_sum()
        self.axis = batch_dim_to_axis(node.dim, len(self.in_shape), "ChannelSplit")
        self.bounds = np.cumsum(node.split_sections)[:-1]
        if fmt is None:
            self.out_formats = [None] * len(node.split_sections)
            return
        parts = np.split(np.asarray(fmt.full_scale(self.in_shape)), self.bounds, axis=self.axis)
        if fmt.bounds is None:
            self.out_formats = [QFormat(p, fmt.bound) for p in parts]
            return
        limits = np.split(np.asarray(fmt.element_bounds(self.in_shape)), self.bounds, axis=self.axis)
        self.out_formats = [QFormat(p, int(b.max(initial=0)), b) for p, b in zip(parts, limits, strict=True)]

    def forward(self, x):
        return np.split(x, self.bounds, axis=self.axis + 1)


class QThreshold(FixedKernel):
    """``x > theta`` as an integer comparison: ``q > floor(theta/s)`` ('>') or ``q >= ceil(theta/s)`` ('>=')."""

    spiking = True

    def setup(self, node):
        fmt = self.setup_sum()
        self.ge = node.comparison == ir.Comparison.GE
        self.out_formats = [SPIKES]
        if fmt is None:
            return
        ratio = per_neuron(np.asarray(node.threshold, np.float64), self.in_shape) / fmt.full_scale(self.in_shape)
        self.theta = (np.ceil(ratio) if self.ge else np.floor(ratio)).astype(np.float64)

    def compute(self, x):
        return (x >= self.theta if self.ge else x > self.theta).astype(INT)


_KERNELS = {
    ir.Dropout: QIdentity,
    ir.HybridRegion: QIdentity,
    ir.Affine: QDense,
    ir.SpikingAffine: QDense,
    ir.Linear: QDense,
    ir.Conv1d: QConv,
    ir.Conv2d: QConv,
    ir.SConv: QConv,
    ir.SDConv: QConv,
    ir.SepConv2d: QSepConv,
    ir.Scale: QScale,
    ir.BatchNorm1d: QBatchNorm,
    ir.BatchNorm2d: QBatchNorm,
    ir.ReLU: QReLU,
    ir.PReLU: QReLU,
    ir.MaxPool2d: QPool,
    ir.AvgPool2d: QPool,
    ir.SumPool2d: QPool,
    ir.Flatten: QFlatten,
    ir.Upsample: QUpsample,
    ir.Concat: QConcat,
    ir.ChannelSplit: QChannelSplit,
    ir.Threshold: QThreshold,
}

NO_INTEGER_FORM = {
    "Sigmoid": "a transcendental function",
    "Tanh": "a transcendental function",
    "GELU": "a transcendental function",
    "ELU": "a transcendental function",
    "Softmax": "a normalised exponential",
    "LayerNorm": "a data-dependent normalisation (division by a standard deviation)",
}


def integer_support_problem(node: ir.Node) -> str | None:
    """Why ``node`` has no integer kernel, or None."""
    name = type(node).__name__
    if name in NO_INTEGER_FORM:
        return f"{name} is {NO_INTEGER_FORM[name]} with no integer kernel"
    if isinstance(node, ir.Upsample) and node.mode == ir.UpsampleMode.BILINEAR:
        return "bilinear Upsample interpolates with fractional weights and has no integer kernel (nearest has)"
    return None


def fixed_stateless_kernel(op: Op, ctx: FixedContext, in_formats) -> FixedKernel:
    node = op.node
    if op.external:
        return QInput(op, ctx, in_formats)
    if op.graph_output:
        return QOutput(op, ctx, in_formats)
    if isinstance(node, (ir.Input, ir.Output)):
        return QIdentity(op, ctx, in_formats)
    if isinstance(node, ir.Skip):
        cls = QConcat if node.skip_type == ir.SkipType.CONCATENATE else QIdentity
        return cls(op, ctx, in_formats)
    problem = integer_support_problem(node)
    if problem:
        raise UnsupportedNodeError(f"node {op.path!r}: {problem}; simulate this graph in fp32 or fp16")
    cls = _KERNELS.get(type(node))
    if cls is None:
        raise UnsupportedNodeError(f"node {op.path!r}: no integer kernel for {type(node).__name__}")
    return cls(op, ctx, in_formats)
