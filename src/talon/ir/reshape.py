"""Shape-changing nodes without weights: Flatten, Upsample."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ShapeError
from .node import Node, as_int, as_shape, register_node
from .types import Shape, UpsampleMode, coerce_enum


@register_node
@dataclass(eq=False)
class Flatten(Node):
    """Merge the dims ``start_dim .. end_dim`` (inclusive) into one.

    Dims count **without** the batch dimension: IR ``start_dim=0`` is ``torch.nn.Flatten()``'s
    ``start_dim=1``. Negative dims count from the end. ``[32, 8, 8] -> [2048]``.
    """

    _batch_check = "shapes"

    start_dim: int = 0
    end_dim: int = -1

    def _check_params(self) -> None:
        self.start_dim = as_int(self.start_dim, "start_dim", self._where())
        self.end_dim = as_int(self.end_dim, "end_dim", self._where())

    def _output_shape(self, shape: Shape) -> Shape:
        n = len(shape)
        start = self.start_dim + n if self.start_dim < 0 else self.start_dim
        end = self.end_dim + n if self.end_dim < 0 else self.end_dim
        if not (0 <= start < n and 0 <= end < n) or start > end:
            self._bad(shape)
        return (*shape[:start], math.prod(shape[start : end + 1]), *shape[end + 1 :])

    def _bad(self, shape: Shape):
        raise ShapeError(
            f"{self._where()}: start_dim={self.start_dim}, end_dim={self.end_dim} do not fit an "
            f"input of shape {list(shape)} (IR dims exclude the batch dimension)"
        )


@register_node
@dataclass(eq=False)
class Upsample(Node):
    """Spatial upsampling of ``[C, *spatial]`` (PyTorch ``nn.Upsample`` semantics).

    ``size`` takes precedence over ``scale_factor``; with neither, ``scale_factor = 2``. Output
    size per axis: ``size`` or ``floor(n * scale_factor)``. ``align_corners`` only applies to
    ``mode='bilinear'``.
    """

    scale_factor: float | tuple[float, ...] | None = None
    size: tuple[int, ...] | None = None
    mode: UpsampleMode = UpsampleMode.NEAREST
    align_corners: bool | None = None

    def _check_params(self) -> None:
        where = self._where()
        self.mode = coerce_enum(UpsampleMode, self.mode, "mode", where)
        if self.size is not None:
            self.size = as_shape(self.size, where)
            if not self.size or min(self.size) < 1:
                raise ValueError(f"{where}: size must be positive, got {self.size}")
        if self.scale_factor is None and self.size is None:
            self.scale_factor = 2.0
        if self.scale_factor is not None:
            factors = np.asarray(self.scale_factor, dtype=np.float64)
            if factors.ndim > 1 or not np.all(factors > 0) or not np.all(np.isfinite(factors)):
                raise ValueError(f"{where}: scale_factor must be positive, got {self.scale_factor!r}")
            self.scale_factor = float(factors) if factors.ndim == 0 else tuple(float(f) for f in factors)
        if self.align_corners is not None:
            if self.mode is not UpsampleMode.BILINEAR and self.align_corners:
                raise ValueError(f"{where}: align_corners only applies to mode='bilinear'")
            self.align_corners = bool(self.align_corners)

    def _output_shape(self, shape: Shape) -> Shape:
        spatial = shape[1:]
        if not spatial:
            raise ShapeError(f"{self._where()}: expects a [C, *spatial] input, got shape {list(shape)}")
        if self.mode is UpsampleMode.BILINEAR and len(spatial) != 2:
            raise ShapeError(f"{self._where()}: bilinear mode needs a [C, H, W] input, got {list(shape)}")
        if self.size is not None:
            if len(self.size) != len(spatial):
                raise ShapeError(f"{self._where()}: size {self.size} does not match input {list(shape)}")
            return (shape[0], *self.size)
        factors = self.scale_factor if isinstance(self.scale_factor, tuple) else (self.scale_factor,) * len(spatial)
        if len(factors) != len(spatial):
            raise ShapeError(f"{self._where()}: scale_factor {self.scale_factor} does not match input {list(shape)}")
        return (shape[0], *(math.floor(n * f) for n, f in zip(spatial, factors, strict=True)))
