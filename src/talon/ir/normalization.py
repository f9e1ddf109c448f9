"""Normalization and regularization: BatchNorm1d, BatchNorm2d, LayerNorm, Dropout (inference semantics).

BatchNorm: ``y = (x - running_mean) / sqrt(running_var + eps) * weight + bias`` per channel
(axis 0 of the batchless shape). LayerNorm normalizes over the trailing ``normalized_shape``
dims. Dropout is the identity at inference; ``p`` is kept for training and fidelity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .errors import ShapeError
from .node import Node, as_int, as_optional_array, as_shape, register_node
from .types import Shape


@dataclass(eq=False)
class _BatchNorm(Node):
    num_features: int
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    running_mean: np.ndarray | None = None
    running_var: np.ndarray | None = None
    eps: float = 1e-5
    momentum: float | None = 0.1

    _ranks: ClassVar[tuple[int, ...]] = ()

    def _check_params(self) -> None:
        where = self._where()
        self.num_features = as_int(self.num_features, "num_features", where, minimum=1)
        n = self.num_features
        defaults = {"weight": None, "bias": None, "running_mean": 0.0, "running_var": 1.0}
        for name, default in defaults.items():
            value = getattr(self, name)
            if value is None and default is not None:
                value = np.full(n, default, dtype=np.float32)
            arr = as_optional_array(value, name, where, ndim=1)
            if arr is not None and arr.shape[0] != n:
                raise ShapeError(f"{where}: {name} has {arr.shape[0]} entries, expected num_features={n}")
            setattr(self, name, arr)
        if (self.weight is None) != (self.bias is None):
            raise ValueError(f"{where}: give both weight and bias (affine) or neither")
        self.eps = float(self.eps)
        self.momentum = None if self.momentum is None else float(self.momentum)
        if not self.eps >= 0:
            raise ValueError(f"{where}: eps must be >= 0")

    def _param_input_shape(self) -> Shape | None:
        return (self.num_features,) if 1 in self._ranks else None

    def _output_shape(self, shape: Shape) -> Shape:
        if len(shape) not in self._ranks or shape[0] != self.num_features:
            ranks = " or ".join(f"rank {r}" for r in self._ranks)
            raise ShapeError(
                f"{self._where()}: expects a {ranks} input with {self.num_features} channels first, "
                f"got shape {list(shape)}"
            )
        return shape


@register_node
@dataclass(eq=False)
class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``[C]`` or ``[C, L]`` inputs with running statistics."""

    _ranks = (1, 2)


@register_node
@dataclass(eq=False)
class BatchNorm2d(_BatchNorm):
    """Batch normalization of ``[C, H, W]`` inputs with running statistics."""

    _ranks = (3,)


@register_node
@dataclass(eq=False)
class LayerNorm(Node):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` over the trailing ``normalized_shape``."""

    normalized_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    eps: float = 1e-5

    def _check_params(self) -> None:
        where = self._where()
        self.normalized_shape = as_shape(self.normalized_shape, where)
        if not self.normalized_shape:
            raise ValueError(f"{where}: normalized_shape must not be empty")
        for name in ("weight", "bias"):
            arr = as_optional_array(getattr(self, name), name, where)
            if arr is not None and arr.shape != self.normalized_shape:
                raise ShapeError(f"{where}: {name} has shape {arr.shape}, expected {self.normalized_shape}")
            setattr(self, name, arr)
        self.eps = float(self.eps)

    def _param_input_shape(self) -> Shape:
        return self.normalized_shape

    def _output_shape(self, shape: Shape) -> Shape:
        k = len(self.normalized_shape)
        if tuple(shape[-k:]) != self.normalized_shape or len(shape) < k:
            raise ShapeError(
                f"{self._where()}: the input shape {list(shape)} does not end with "
                f"normalized_shape {list(self.normalized_shape)}"
            )
        return shape


@register_node
@dataclass(eq=False)
class Dropout(Node):
    """Identity at inference; ``p`` (drop probability during training) is kept."""

    features: int | None = None
    p: float = 0.5

    def _check_params(self) -> None:
        self.p = float(self.p)
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"{self._where()}: p must be in [0, 1], got {self.p}")
        if self.features is not None:
            self.features = as_int(self.features, "features", self._where(), minimum=1)
