"""ANN activations (rate-based encoder/decoder layers): ReLU, Sigmoid, Tanh, Softmax, GELU, ELU, PReLU.

All are element-wise except Softmax. ``features`` is optional documentation of the layer size
(a total element count, or the channel count); when given it is checked against the input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ShapeError
from .node import Node, as_array, as_int, register_node
from .types import Shape


def batch_dim_to_axis(dim: int, ndim: int, where: str) -> int:
    """Convert a PyTorch-style ``dim`` (the batch is dim 0) to an axis of the batchless shape."""
    axis = dim - 1 if dim > 0 else ndim + dim
    if dim == 0 or not 0 <= axis < ndim:
        raise ShapeError(
            f"{where}: dim={dim} does not select a feature axis of an input of rank {ndim} "
            "(dim counts the batch axis like PyTorch: dim=1 is the first feature axis)"
        )
    return axis


class _Activation(Node):
    def _check_features(self) -> None:
        if self.features is not None:
            self.features = as_int(self.features, "features", self._where(), minimum=1)

    def _param_input_shape(self) -> Shape | None:
        return None if self.features is None else (self.features,)

    def _output_shape(self, shape: Shape) -> Shape:
        if self.features is not None and self.features not in (math.prod(shape), shape[0] if shape else None):
            raise ShapeError(
                f"{self._where()}: features={self.features} matches neither the size nor the "
                f"channels of the input shape {list(shape)}"
            )
        return shape


@register_node
@dataclass(eq=False)
class ReLU(_Activation):
    """``y = max(x, 0) + negative_slope * min(x, 0)`` (LeakyReLU when ``negative_slope != 0``)."""

    features: int | None = None
    negative_slope: float = 0.0

    def _check_params(self) -> None:
        self._check_features()
        self.negative_slope = float(self.negative_slope)


@register_node
@dataclass(eq=False)
class Sigmoid(_Activation):
    """``y = 1 / (1 + exp(-x))``."""

    features: int | None = None

    def _check_params(self) -> None:
        self._check_features()


@register_node
@dataclass(eq=False)
class Tanh(_Activation):
    """``y = tanh(x)``."""

    features: int | None = None

    def _check_params(self) -> None:
        self._check_features()


@register_node
@dataclass(eq=False)
class Softmax(_Activation):
    """``y = exp(x) / sum(exp(x))`` along ``dim`` (PyTorch-style: dim 1 is the first feature axis)."""

    features: int | None = None
    dim: int = -1

    def _check_params(self) -> None:
        self._check_features()
        self.dim = as_int(self.dim, "dim", self._where())

    def _output_shape(self, shape: Shape) -> Shape:
        batch_dim_to_axis(self.dim, len(shape), self._where())
        return super()._output_shape(shape)


@register_node
@dataclass(eq=False)
class GELU(_Activation):
    """``y = x * Phi(x)``; ``approximate='tanh'`` uses the tanh approximation (``False`` = 'none')."""

    features: int | None = None
    approximate: str = "none"

    def _check_params(self) -> None:
        self._check_features()
        if isinstance(self.approximate, (bool, np.bool_)):
            self.approximate = "tanh" if self.approximate else "none"
        if self.approximate not in ("none", "tanh"):
            raise ValueError(f"{self._where()}: approximate must be 'none' or 'tanh', got {self.approximate!r}")


@register_node
@dataclass(eq=False)
class ELU(_Activation):
    """``y = x if x > 0 else alpha * (exp(x) - 1)``."""

    features: int | None = None
    alpha: float = 1.0

    def _check_params(self) -> None:
        self._check_features()
        self.alpha = float(self.alpha)


@register_node
@dataclass(eq=False)
class PReLU(_Activation):
    """``y = max(x, 0) + w * min(x, 0)``; ``weight`` is one value or one per channel (axis 0)."""

    features: int | None = None
    weight: np.ndarray = 0.25

    def _check_params(self) -> None:
        self._check_features()
        self.weight = as_array(self.weight, "weight", self._where())
        if self.weight.ndim == 0:
            self.weight = self.weight.reshape(1)
        if self.weight.ndim != 1:
            raise ShapeError(f"{self._where()}: weight must be 1-d, got shape {self.weight.shape}")

    def _output_shape(self, shape: Shape) -> Shape:
        n = self.weight.shape[0]
        if n != 1 and (not shape or shape[0] != n):
            raise ShapeError(f"{self._where()}: {n} weights do not match the channels of input {list(shape)}")
        return super()._output_shape(shape)
