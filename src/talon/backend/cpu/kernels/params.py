"""Parameter layout helpers shared by the float and fixed-point kernels."""

from __future__ import annotations

import numpy as np

from talon import ir

from . import geometry


def per_neuron(param, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast a neuron parameter (layer-shaped, per-channel ``(C,)`` or scalar) to ``shape``."""
    arr = np.asarray(param)
    if arr.ndim == 1 and len(shape) > 1 and arr.shape[0] == shape[0] and arr.shape != tuple(shape):
        arr = arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
    return np.broadcast_to(arr, shape)


def channel_view(param: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-channel vector ``(C,)`` shaped to broadcast over ``[N, C, *spatial]``."""
    return param.reshape((1, -1) + (1,) * (len(shape) - 1))


def batchnorm_affine(node: ir.Node) -> tuple[np.ndarray, np.ndarray]:
    """Inference BatchNorm as ``y = a x + b`` per channel (float64 vectors)."""
    a = 1.0 / np.sqrt(np.asarray(node.running_var, np.float64) + node.eps)
    b = -np.asarray(node.running_mean, np.float64) * a
    if node.weight is not None:
        w = np.asarray(node.weight, np.float64)
        a, b = a * w, b * w + np.asarray(node.bias, np.float64)
    return a, b


def nearest_indices(node: ir.Upsample) -> list[np.ndarray]:
    """Source index along each spatial axis of a nearest-neighbour Upsample (PyTorch's rule)."""
    spatial_in, spatial_out = node.input_shape[1:], node.output_shape[1:]
    factors = upsample_factors(node)
    return [geometry.nearest_indices(n, m, f) for n, m, f in zip(spatial_in, spatial_out, factors, strict=True)]


def upsample_factors(node: ir.Upsample) -> tuple:
    """Per spatial axis: the scale factor PyTorch uses, or None when the output ``size`` is given."""
    n = len(node.input_shape) - 1
    if node.size is not None:
        return (None,) * n
    factors = node.scale_factor
    return factors if isinstance(factors, tuple) else (factors,) * n
