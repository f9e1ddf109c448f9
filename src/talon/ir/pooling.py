"""2-d pooling over ``[C, H, W]``: MaxPool2d, AvgPool2d, SumPool2d (PyTorch semantics).

Output size per axis: ``floor((n + 2 p - d (k - 1) - 1) / s) + 1``; with ``ceil_mode`` the
division rounds up, but a last window that would start inside the right padding is dropped
(PyTorch's rule). ``stride=None`` means ``stride = kernel_size``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ShapeError
from .node import Node, as_int, as_tuple, register_node
from .types import Shape


def pool_output_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool, where: str) -> int:
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise ShapeError(f"{where}: input size {n} (+2*{p} padding) is smaller than the window {span}")
    if not ceil_mode:
        return (n + 2 * p - span) // s + 1
    out = -(-(n + 2 * p - span) // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return out


class _Pool2dBase(Node):
    def _check_pool(self, with_dilation: bool, torch_padding_rule: bool = True) -> None:
        where = self._where()
        self.kernel_size = as_tuple(self.kernel_size, 2, "kernel_size", where, minimum=1)
        self.stride = self.kernel_size if self.stride is None else as_tuple(self.stride, 2, "stride", where, minimum=1)
        self.padding = as_tuple(self.padding, 2, "padding", where, minimum=0)
        if with_dilation:
            self.dilation = as_tuple(self.dilation, 2, "dilation", where, minimum=1)
        for p, k in zip(self.padding, self.kernel_size, strict=True):
            if torch_padding_rule and p > k // 2:
                raise ValueError(f"{where}: padding {self.padding} must be at most half the kernel {self.kernel_size}")

    def _output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 3:
            raise ShapeError(f"{self._where()}: expects a [C, H, W] input, got shape {list(shape)}")
        dilation = getattr(self, "dilation", (1, 1))
        ceil_mode = getattr(self, "ceil_mode", False)
        spatial = tuple(
            pool_output_size(n, k, s, p, d, ceil_mode, self._where())
            for n, k, s, p, d in zip(shape[1:], self.kernel_size, self.stride, self.padding, dilation, strict=True)
        )
        return (shape[0], *spatial)


@register_node
@dataclass(eq=False)
class MaxPool2d(_Pool2dBase):
    """Maximum over each window (padding counts as -inf)."""

    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    ceil_mode: bool = False

    def _check_params(self) -> None:
        self._check_pool(with_dilation=True)
        self.ceil_mode = bool(self.ceil_mode)


@register_node
@dataclass(eq=False)
class AvgPool2d(_Pool2dBase):
    """Mean over each window.

    The divisor is ``divisor_override`` if set, else the window size, counting padded cells when
    ``count_include_pad`` (PyTorch's rule).
    """

    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True
    divisor_override: int | None = None

    def _check_params(self) -> None:
        self._check_pool(with_dilation=False)
        self.ceil_mode = bool(self.ceil_mode)
        self.count_include_pad = bool(self.count_include_pad)
        if self.divisor_override is not None:
            self.divisor_override = as_int(self.divisor_override, "divisor_override", self._where(), minimum=1)


@register_node
@dataclass(eq=False)
class SumPool2d(_Pool2dBase):
    """Sum over each window (NIR's SumPool2d; zero padding)."""

    kernel_size: tuple[int, int] = (2, 2)
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def _check_params(self) -> None:
        self._check_pool(with_dilation=False, torch_padding_rule=False)
