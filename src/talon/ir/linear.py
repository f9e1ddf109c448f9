"""Dense layers: Affine, SpikingAffine, Linear, Scale."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ShapeError
from .node import Node, as_array, as_int, register_node
from .types import Shape, SpikeMode, coerce_enum


class _Dense(Node):
    """Shapes of a ``(out, in)`` weight applied to the last axis of the input."""

    def _param_input_shape(self) -> Shape:
        return (self.weight.shape[1],)

    def _output_shape(self, shape: Shape) -> Shape:
        n_in = self.weight.shape[1]
        if len(shape) < 1 or shape[-1] != n_in:
            raise ShapeError(f"{self._where()}: expects inputs of {n_in} features, got shape {list(shape)}")
        return (*shape[:-1], self.weight.shape[0])


@register_node
@dataclass(eq=False)
class Affine(_Dense):
    """Dense layer ``y = W x + b``.

    ``weight``: ``(out, in)``; ``bias``: ``(out,)`` (None means zeros of the weight's dtype).
    The input is ``[..., in]``; leading dimensions pass through (applied to the last axis).
    """

    _batch_check = "shapes"

    weight: np.ndarray
    bias: np.ndarray | None = None

    def _check_params(self) -> None:
        self.weight = as_array(self.weight, "weight", self._where(), ndim=2)
        if self.bias is None:
            self.bias = np.zeros(self.weight.shape[0], dtype=self.weight.dtype)
        self.bias = as_array(self.bias, "bias", self._where(), ndim=1)
        if self.bias.shape[0] != self.weight.shape[0]:
            raise ShapeError(
                f"{self._where()}: bias has {self.bias.shape[0]} entries but weight has "
                f"{self.weight.shape[0]} output rows"
            )


@register_node
@dataclass(eq=False)
class SpikingAffine(Affine):
    """Affine layer with hardware compilation hints; computes exactly ``y = W x + b``.

    * ``spike_mode``: what the inputs carry: ``binary`` (0/1 spikes), ``graded`` (multi-level
      spikes), ``rate`` (rate-coded activations) or ``temporal`` (spike times); the TALON docs
      list both {binary, graded, rate} and {binary, rate, temporal}, so all four are accepted.
    * ``weight_bits`` in [1, 32], ``accumulator_bits`` in [1, 64], ``accumulator_bits >=
      weight_bits``: the intended fixed-point precision (used by the fixed-point backend).
    """

    _batch_check = "shapes"

    spike_mode: SpikeMode = SpikeMode.BINARY
    weight_bits: int = 8
    accumulator_bits: int = 16

    def _check_params(self) -> None:
        super()._check_params()
        where = self._where()
        self.spike_mode = coerce_enum(SpikeMode, self.spike_mode, "spike_mode", where)
        self.weight_bits = as_int(self.weight_bits, "weight_bits", where, minimum=1)
        self.accumulator_bits = as_int(self.accumulator_bits, "accumulator_bits", where, minimum=1)
        if self.weight_bits > 32:
            raise ValueError(f"{where}: weight_bits must be in [1, 32], got {self.weight_bits}")
        if self.accumulator_bits > 64:
            raise ValueError(f"{where}: accumulator_bits must be in [1, 64], got {self.accumulator_bits}")
        if self.accumulator_bits < self.weight_bits:
            raise ValueError(
                f"{where}: accumulator_bits ({self.accumulator_bits}) must be >= weight_bits ({self.weight_bits})"
            )


@register_node
@dataclass(eq=False)
class Linear(_Dense):
    """Dense layer without bias ``y = W x``; ``weight``: ``(out, in)``."""

    _batch_check = "shapes"

    weight: np.ndarray

    def _check_params(self) -> None:
        self.weight = as_array(self.weight, "weight", self._where(), ndim=2)


@register_node
@dataclass(eq=False)
class Scale(Node):
    """Element-wise scaling ``y = s * x``; ``scale`` has the layer's shape (or broadcasts to it)."""

    _batch_check = "shapes"

    scale: np.ndarray

    def _check_params(self) -> None:
        self.scale = as_array(self.scale, "scale", self._where())

    def _param_input_shape(self) -> Shape | None:
        return self.scale.shape if self.scale.ndim else None

    def _output_shape(self, shape: Shape) -> Shape:
        try:
            out = np.broadcast_shapes(shape, self.scale.shape)
        except ValueError:
            out = None
        if out != tuple(shape):
            raise ShapeError(
                f"{self._where()}: scale of shape {list(self.scale.shape)} does not broadcast "
                f"to the input shape {list(shape)}"
            )
        return shape
