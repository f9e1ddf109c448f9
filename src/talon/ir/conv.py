"""Convolutions: Conv1d, Conv2d, SepConv2d, SConv, SDConv (PyTorch semantics, zero padding).

Output size per spatial axis: ``floor((n + 2 p - d (k - 1) - 1) / s) + 1``. Weights are
``(C_out, C_in / groups, *kernel)``; the input has ``C_in = weight.shape[1] * groups`` channels.
Defaults follow PyTorch (stride 1, padding 0, dilation 1, groups 1): the TALON docs show
``padding=(1, 1)`` in a signature, but their examples rely on PyTorch's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ShapeError
from .node import Node, as_array, as_int, as_tuple, register_node
from .types import Shape


def conv_output_size(n: int, k: int, s: int, p: int, d: int, where: str) -> int:
    """Output length of a convolution or pooling window along one axis (floor mode)."""
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise ShapeError(f"{where}: input size {n} (+2*{p} padding) is smaller than the kernel span {span}")
    return (n + 2 * p - span) // s + 1


def _conv_shape(node: Node, shape: Shape, c_in: int, c_out: int, ndim: int, geometry) -> Shape:
    kernel, stride, padding, dilation = geometry
    if len(shape) != ndim + 1:
        raise ShapeError(
            f"{node._where()}: expects a [C, {', '.join('HW'[-ndim:] if ndim == 2 else 'N')}] "
            f"input, got shape {list(shape)}"
        )
    if shape[0] != c_in:
        raise ShapeError(f"{node._where()}: expects {c_in} input channels, got shape {list(shape)}")
    spatial = tuple(
        conv_output_size(n, k, s, p, d, node._where())
        for n, k, s, p, d in zip(shape[1:], kernel, stride, padding, dilation, strict=True)
    )
    return (c_out, *spatial)


def _bias(node: Node, bias, c_out: int, dtype) -> np.ndarray:
    if bias is None:
        return np.zeros(c_out, dtype=dtype)
    bias = as_array(bias, "bias", node._where(), ndim=1)
    if bias.shape[0] != c_out:
        raise ShapeError(f"{node._where()}: bias has {bias.shape[0]} entries, expected {c_out}")
    return bias


class _ConvBase(Node):
    """Shared checks of Conv1d / Conv2d (weight, bias, geometry, groups)."""

    _ndim = 2

    def _check_params(self) -> None:
        where, n = self._where(), self._ndim
        self.weight = as_array(self.weight, "weight", where, ndim=n + 2)
        self.stride = as_tuple(self.stride, n, "stride", where, minimum=1)
        self.padding = as_tuple(self.padding, n, "padding", where, minimum=0)
        self.dilation = as_tuple(self.dilation, n, "dilation", where, minimum=1)
        self.groups = as_int(self.groups, "groups", where, minimum=1)
        if self.weight.shape[0] % self.groups:
            raise ShapeError(
                f"{where}: {self.weight.shape[0]} output channels are not divisible by groups={self.groups}"
            )
        self.bias = _bias(self, self.bias, self.weight.shape[0], self.weight.dtype)
        if n == 1:
            self.stride, self.padding, self.dilation = self.stride[0], self.padding[0], self.dilation[0]

    @property
    def in_channels(self) -> int:
        return int(self.weight.shape[1] * self.groups)

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return tuple(int(k) for k in self.weight.shape[2:])

    def _geometry(self):
        as_t = (lambda v: (v,)) if self._ndim == 1 else tuple
        return self.kernel_size, as_t(self.stride), as_t(self.padding), as_t(self.dilation)

    def _output_shape(self, shape: Shape) -> Shape:
        return _conv_shape(self, shape, self.in_channels, self.out_channels, self._ndim, self._geometry())


@register_node
@dataclass(eq=False)
class Conv1d(_ConvBase):
    """1-d convolution over ``[C_in, N]``; weight ``(C_out, C_in/groups, K)``."""

    _batch_check = "shapes"

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    groups: int = 1

    _ndim = 1


@register_node
@dataclass(eq=False)
class Conv2d(_ConvBase):
    """2-d convolution over ``[C_in, H, W]``; weight ``(C_out, C_in/groups, kH, kW)``."""

    _batch_check = "shapes"

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1


@register_node
@dataclass(eq=False)
class SConv(Conv2d):
    """A Conv2d marked as operating on spikes; computes exactly what Conv2d computes."""

    _batch_check = "shapes"


@register_node
@dataclass(eq=False)
class SDConv(Conv2d):
    """Depthwise Conv2d: ``groups = in_channels``, weight ``(C * m, 1, kH, kW)``.

    ``groups`` defaults to ``weight.shape[0]`` (depth multiplier 1); when given it must divide
    the output channels.
    """

    groups: int | None = None

    def _check_params(self) -> None:
        self.weight = as_array(self.weight, "weight", self._where(), ndim=4)
        if self.weight.shape[1] != 1:
            raise ShapeError(f"{self._where()}: a depthwise weight has shape (C, 1, kH, kW), got {self.weight.shape}")
        if self.groups is None:
            self.groups = int(self.weight.shape[0])
        super()._check_params()


@register_node
@dataclass(eq=False)
class SepConv2d(Node):
    """Depthwise-separable convolution: ``pointwise(depthwise(x))``.

    ``depthwise_weight`` ``(C_in, 1, kH, kW)`` (groups = C_in; stride, padding and dilation
    apply to it), ``pointwise_weight`` ``(C_out, C_in, 1, 1)``; biases default to zeros.
    """

    depthwise_weight: np.ndarray
    pointwise_weight: np.ndarray
    depthwise_bias: np.ndarray | None = None
    pointwise_bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)

    def _check_params(self) -> None:
        where = self._where()
        self.depthwise_weight = as_array(self.depthwise_weight, "depthwise_weight", where, ndim=4)
        self.pointwise_weight = as_array(self.pointwise_weight, "pointwise_weight", where, ndim=4)
        c_in = self.depthwise_weight.shape[0]
        if self.depthwise_weight.shape[1] != 1:
            raise ShapeError(f"{where}: depthwise_weight must be (C_in, 1, kH, kW), got {self.depthwise_weight.shape}")
        if self.pointwise_weight.shape[1:] != (c_in, 1, 1):
            raise ShapeError(
                f"{where}: pointwise_weight must be (C_out, {c_in}, 1, 1), got {self.pointwise_weight.shape}"
            )
        self.stride = as_tuple(self.stride, 2, "stride", where, minimum=1)
        self.padding = as_tuple(self.padding, 2, "padding", where, minimum=0)
        self.dilation = as_tuple(self.dilation, 2, "dilation", where, minimum=1)
        self.depthwise_bias = _bias(self, self.depthwise_bias, c_in, self.depthwise_weight.dtype)
        self.pointwise_bias = _bias(
            self, self.pointwise_bias, self.pointwise_weight.shape[0], self.pointwise_weight.dtype
        )

    def _output_shape(self, shape: Shape) -> Shape:
        c_in = int(self.depthwise_weight.shape[0])
        kernel = tuple(int(k) for k in self.depthwise_weight.shape[2:])
        geometry = (kernel, self.stride, self.padding, self.dilation)
        out = _conv_shape(self, shape, c_in, c_in, 2, geometry)
        return (int(self.pointwise_weight.shape[0]), *out[1:])
