"""Ghost primitives (SU-YOLO's spiking GhostNet): SGhostConv, SGhostEncoderLite, GhostBasicBlock1/2.

A ghost convolution makes half of its output channels with an ordinary ("primary") convolution
and the other half with a cheap depthwise convolution of that primary output, then concatenates
the two halves (GhostNet). Every convolution here is PyTorch's cross-correlation with zero
padding ``k // 2`` ("same" for odd kernels), bias added, and its result rounded to the compute
dtype before the next operation uses it.

These primitives are the *synaptic* part of SU-YOLO's blocks and are stateless: the spiking
neurons between blocks are ordinary ``IF`` nodes of the graph, so their state, reset and threshold
follow the neuron semantics of every engine (``docs/semantics.md`` §3, §4.1). A model that wants
a neuron *inside* a block writes the block out of SGhostConv, IF, ChannelSplit and Concat nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv import _bias, conv_output_size
from .errors import ShapeError
from .node import Node, as_array, as_int, as_tuple, register_node
from .types import Shape


def _weight(node: Node, value, name: str) -> np.ndarray:
    arr = as_array(value, name, node._where(), ndim=4)
    if arr.shape[2] != arr.shape[3] or arr.shape[2] % 2 == 0:
        raise ShapeError(f"{node._where()}: {name} must have a square odd kernel (C_out, C_in, k, k), got {arr.shape}")
    return arr


def _depthwise(node: Node, value, name: str, channels: int) -> np.ndarray:
    arr = _weight(node, value, name)
    if arr.shape[:2] != (channels, 1):
        raise ShapeError(
            f"{node._where()}: {name} must be a depthwise weight ({channels}, 1, k, k) matching the primary's "
            f"{channels} output channels, got {arr.shape}"
        )
    return arr


def _spatial(node: Node, shape: Shape, c_in: int, k: int, stride: tuple[int, int], padding: tuple[int, int]):
    if len(shape) != 3:
        raise ShapeError(f"{node._where()}: expects a [C, H, W] input, got shape {list(shape)}")
    if shape[0] != c_in:
        raise ShapeError(f"{node._where()}: expects {c_in} input channels, got shape {list(shape)}")
    return tuple(
        conv_output_size(n, k, s, p, 1, node._where()) for n, s, p in zip(shape[1:], stride, padding, strict=True)
    )


class _GhostParts:
    """Checks one ghost convolution given as ``<prefix>primary_weight/bias, <prefix>cheap_weight/bias``."""

    @staticmethod
    def check(node: Node, prefix: str) -> int:
        pw = _weight(node, getattr(node, f"{prefix}primary_weight"), f"{prefix}primary_weight")
        setattr(node, f"{prefix}primary_weight", pw)
        cp = int(pw.shape[0])
        setattr(node, f"{prefix}primary_bias", _bias(node, getattr(node, f"{prefix}primary_bias"), cp, pw.dtype))
        cw = _depthwise(node, getattr(node, f"{prefix}cheap_weight"), f"{prefix}cheap_weight", cp)
        setattr(node, f"{prefix}cheap_weight", cw)
        setattr(node, f"{prefix}cheap_bias", _bias(node, getattr(node, f"{prefix}cheap_bias"), cp, cw.dtype))
        return cp


@register_node
@dataclass(eq=False)
class SGhostConv(Node):
    """Ghost convolution ``[C_in, H, W] -> [2 Cp, H', W']``.

    ``p = conv(x, primary_weight (Cp, C_in, k, k), primary_bias; stride, padding)``,
    ``g = depthwise_conv(p, cheap_weight (Cp, 1, kc, kc), cheap_bias; stride 1, padding kc // 2)``,
    ``y = concat(p, g)`` (primary channels first). ``primary_padding`` defaults to ``k // 2``.
    """

    primary_weight: np.ndarray
    cheap_weight: np.ndarray
    primary_bias: np.ndarray | None = None
    cheap_bias: np.ndarray | None = None
    primary_stride: tuple[int, int] = (1, 1)
    primary_padding: tuple[int, int] | None = None

    def _check_params(self) -> None:
        where = self._where()
        _GhostParts.check(self, "")
        self.primary_stride = as_tuple(self.primary_stride, 2, "primary_stride", where, minimum=1)
        k = int(self.primary_weight.shape[2])
        self.primary_padding = as_tuple(
            k // 2 if self.primary_padding is None else self.primary_padding, 2, "primary_padding", where
        )

    def _param_input_shape(self) -> Shape | None:
        return None

    def _output_shape(self, shape: Shape) -> Shape:
        c_in, k = int(self.primary_weight.shape[1]), int(self.primary_weight.shape[2])
        hw = _spatial(self, shape, c_in, k, self.primary_stride, self.primary_padding)
        return (2 * int(self.primary_weight.shape[0]), *hw)


@register_node
@dataclass(eq=False)
class SGhostEncoderLite(Node):
    """Stem: a strided convolution followed by a ghost convolution, ``[C_in, H, W] -> [2 Cp, H', W']``.

    ``h = conv(x, conv1_weight (C0, C_in, k, k), conv1_bias; stride, padding k // 2)``,
    ``y = SGhostConv(h; ghost_primary_weight (Cp, C0, kp, kp), ghost_primary_bias,
    ghost_cheap_weight (Cp, 1, kc, kc), ghost_cheap_bias; stride 1)``.
    Direct encoding: the real-valued image enters ``conv1``; the spikes are made by the IF node
    that follows the encoder in the graph.
    """

    conv1_weight: np.ndarray
    ghost_primary_weight: np.ndarray
    ghost_cheap_weight: np.ndarray
    conv1_bias: np.ndarray | None = None
    ghost_primary_bias: np.ndarray | None = None
    ghost_cheap_bias: np.ndarray | None = None
    stride: int = 2

    def _check_params(self) -> None:
        where = self._where()
        self.conv1_weight = _weight(self, self.conv1_weight, "conv1_weight")
        c0 = int(self.conv1_weight.shape[0])
        self.conv1_bias = _bias(self, self.conv1_bias, c0, self.conv1_weight.dtype)
        _GhostParts.check(self, "ghost_")
        if self.ghost_primary_weight.shape[1] != c0:
            raise ShapeError(
                f"{where}: ghost_primary_weight takes {self.ghost_primary_weight.shape[1]} input channels but conv1 "
                f"makes {c0}"
            )
        self.stride = as_int(self.stride, "stride", where, minimum=1)

    def _output_shape(self, shape: Shape) -> Shape:
        k = int(self.conv1_weight.shape[2])
        hw = _spatial(self, shape, int(self.conv1_weight.shape[1]), k, (self.stride,) * 2, (k // 2,) * 2)
        kp = int(self.ghost_primary_weight.shape[2])
        hw = _spatial(self, (int(self.conv1_weight.shape[0]), *hw), int(self.conv1_weight.shape[0]), kp, (1, 1),
                      (kp // 2,) * 2)  # fmt: skip
        return (2 * int(self.ghost_primary_weight.shape[0]), *hw)


def _ghost_out(node: Node, prefix: str, shape: Shape, stride: int) -> Shape:
    w = getattr(node, f"{prefix}primary_weight")
    k = int(w.shape[2])
    hw = _spatial(node, shape, int(w.shape[1]), k, (stride, stride), (k // 2, k // 2))
    return (2 * int(w.shape[0]), *hw)


@register_node
@dataclass(eq=False)
class GhostBasicBlock1(Node):
    """Backbone block with a strided residual branch, ``[C1, H, W] -> [cp0 + 2 cp2, H/s, W/s]``.

    With ``G(x; name, stride)`` the ghost convolution of :class:`SGhostConv`:

    * ``[Z1, Z2] = G(x; cv0, stride)``, split into its primary half ``Z1`` and ghost half ``Z2``
      (``cp0`` channels each);
    * ``R = G(x; cvres, stride)`` — the residual (downsampling) branch, ``2 cp2`` channels;
    * ``y = concat(Z1, G(Z2; cv2, 1) + R)``.

    ``cv2`` and ``cvres`` must make the same number of channels (SU-YOLO: ``cp2 = cp0 / 2``, so
    the block doubles ``cp0`` to ``C2 = 2 cp0``). Biases are optional (zeros).
    """

    cv0_primary_weight: np.ndarray
    cv0_cheap_weight: np.ndarray
    cv2_primary_weight: np.ndarray
    cv2_cheap_weight: np.ndarray
    cvres_primary_weight: np.ndarray
    cvres_cheap_weight: np.ndarray
    cv0_primary_bias: np.ndarray | None = None
    cv0_cheap_bias: np.ndarray | None = None
    cv2_primary_bias: np.ndarray | None = None
    cv2_cheap_bias: np.ndarray | None = None
    cvres_primary_bias: np.ndarray | None = None
    cvres_cheap_bias: np.ndarray | None = None
    stride: int = 2

    _branches = ("cv0_", "cv2_", "cvres_")

    def _check_params(self) -> None:
        where = self._where()
        cp = {p: _GhostParts.check(self, p) for p in self._branches}
        if self.cv2_primary_weight.shape[1] != cp["cv0_"]:
            raise ShapeError(
                f"{where}: cv2 takes {self.cv2_primary_weight.shape[1]} input channels but cv0's ghost half has "
                f"{cp['cv0_']}"
            )
        if cp["cvres_"] != cp["cv2_"]:
            raise ShapeError(
                f"{where}: the residual branch cvres makes {2 * cp['cvres_']} channels but cv2 makes "
                f"{2 * cp['cv2_']}; they are summed, so they must match"
            )
        if self.cvres_primary_weight.shape[1] != self.cv0_primary_weight.shape[1]:
            raise ShapeError(f"{where}: cv0 and cvres must take the same input channels")
        self.stride = as_int(self.stride, "stride", where, minimum=1)

    def _output_shape(self, shape: Shape) -> Shape:
        main = _ghost_out(self, "cv0_", shape, self.stride)
        res = _ghost_out(self, "cvres_", shape, self.stride)
        half = (main[0] // 2, *main[1:])
        mid = _ghost_out(self, "cv2_", half, 1)
        if mid[1:] != res[1:]:
            raise ShapeError(
                f"{self._where()}: the main branch gives {list(mid[1:])} pixels but the residual branch "
                f"{list(res[1:])}; use kernels and a stride that agree"
            )
        return (half[0] + mid[0], *mid[1:])


@register_node
@dataclass(eq=False)
class GhostBasicBlock2(Node):
    """Neck/head block without residual branch, ``[C1, H, W] -> [cp0 + 2 cp2, H, W]``.

    ``[Z1, Z2] = G(x; cv0, 1)``; ``y = concat(Z1, G(Z2; cv2, 1))`` (see :class:`GhostBasicBlock1`).
    """

    cv0_primary_weight: np.ndarray
    cv0_cheap_weight: np.ndarray
    cv2_primary_weight: np.ndarray
    cv2_cheap_weight: np.ndarray
    cv0_primary_bias: np.ndarray | None = None
    cv0_cheap_bias: np.ndarray | None = None
    cv2_primary_bias: np.ndarray | None = None
    cv2_cheap_bias: np.ndarray | None = None

    _branches = ("cv0_", "cv2_")

    def _check_params(self) -> None:
        cp = {p: _GhostParts.check(self, p) for p in self._branches}
        if self.cv2_primary_weight.shape[1] != cp["cv0_"]:
            raise ShapeError(
                f"{self._where()}: cv2 takes {self.cv2_primary_weight.shape[1]} input channels but cv0's ghost "
                f"half has {cp['cv0_']}"
            )

    def _output_shape(self, shape: Shape) -> Shape:
        main = _ghost_out(self, "cv0_", shape, 1)
        mid = _ghost_out(self, "cv2_", (main[0] // 2, *main[1:]), 1)
        return (main[0] // 2 + mid[0], *mid[1:])


GHOST_BRANCHES: dict[type[Node], tuple[str, ...]] = {
    SGhostConv: ("",),
    SGhostEncoderLite: ("ghost_",),
    GhostBasicBlock1: GhostBasicBlock1._branches,
    GhostBasicBlock2: GhostBasicBlock2._branches,
}
