"""The spike function: an exact step forward, a surrogate gradient backward.

Forward: ``H(x) = 1 if x > 0 else 0`` (``>=`` with ``inclusive=True``), evaluated on
``x = v - theta``; for IEEE floats with gradual underflow ``v - theta > 0`` exactly when
``v > theta``, so this is the threshold comparison of ``docs/semantics.md`` bit for bit.
Backward: the arc-tangent surrogate snnTorch uses by default,
``dS/dx = (alpha/2) / (1 + (pi/2 * alpha * x)^2)`` with ``alpha = 2``.

The spike is an ``autograd.Function``. ``torch.fx.symbolic_trace`` would inline such a function
and drop its backward, so the modules that call ``spike`` ``fx.wrap`` it (a traced module records a call to it) and
the executor generates its code from the IR instead of tracing.
"""

from __future__ import annotations

import math

import torch


class ATanSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, inclusive: bool, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0 if inclusive else x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        alpha = ctx.alpha
        grad = grad_output * (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)
        return grad, None, None


def spike(x: torch.Tensor, inclusive: bool = False, alpha: float = 2.0) -> torch.Tensor:
    """``H(x)`` with the arc-tangent surrogate gradient (see the module docstring)."""
    return ATanSpike.apply(x, inclusive, alpha)
