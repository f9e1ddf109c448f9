"""Spyx (JAX / flax.nnx) models to talon graphs and back, exactly (talon's ``jax`` extra).

>>> from talon.interop import spyx as tspyx
>>> graph = tspyx.to_ir(model, input_shape=(28, 28, 1))   # Spyx shapes are channels-last
>>> model2 = tspyx.from_ir(graph)                          # a spyx.nn.Sequential
>>> x_talon = tspyx.channels_first(x_spyx)                 # [T, B, H, W, C] -> [T, B, C, H, W]

See ``docs/jax.md`` for the layer table and the exactness contract.
"""

from ..jax._deps import require as _require

_require("spyx")

from ._export import to_ir  # noqa: E402
from ._import import ResetGradientWarning, channels_first, channels_last, from_ir  # noqa: E402

__all__ = ["ResetGradientWarning", "channels_first", "channels_last", "from_ir", "to_ir"]
