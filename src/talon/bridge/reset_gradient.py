"""How the PyTorch executor differentiates the spike in a reset: ``reset_gradient`` (docs/semantics.md §3.1),
and the override of the spikes' ``surrogate`` (:func:`override_surrogate`).

The forward is the same either way; only the derivative of ``R(v, z)`` with respect to the spike
``z`` that drives it changes:

* ``'detached'`` (snnTorch's): ``z`` is a constant (snnTorch's detached ``reset``);
* ``'through'`` (Spyx's, Norse's): ``z`` is the surrogate spike ``spike(v - theta)`` and ``R`` is
  differentiated as ``v - z*theta`` (subtract) or ``(1 - z)*v + z*v_reset`` (value), whose
  derivative in ``z`` is ``v_reset - v``. The value reset's forward stays
  ``where(z > 0, v_reset, v)`` (:class:`ValueResetThrough`).

``ir_to_torch(graph, reset_gradient=...)`` overrides the nodes' own conventions for one executor
(:func:`override_reset_gradient`); the graph it records is left as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from talon import ir
from talon.ir.types import coerce_enum


class ValueResetThrough(torch.autograd.Function):
    """``where(z > 0, v_reset, v)`` differentiated as ``(1 - z)*v + z*v_reset``."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, z: torch.Tensor, v_reset: torch.Tensor) -> torch.Tensor:
        fired = z > 0
        ctx.save_for_backward(fired, v, v_reset)
        return torch.where(fired, v_reset, v)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        fired, v, v_reset = ctx.saved_tensors
        zero = torch.zeros((), dtype=grad.dtype, device=grad.device)
        grad_v = torch.where(fired, zero, grad).sum_to_size(v.shape) if ctx.needs_input_grad[0] else None
        grad_z = (grad * (v_reset - v)).sum_to_size(fired.shape) if ctx.needs_input_grad[1] else None
        grad_reset = torch.where(fired, grad, zero).sum_to_size(v_reset.shape) if ctx.needs_input_grad[2] else None
        return grad_v, grad_z, grad_reset


def value_reset_through(v: torch.Tensor, z: torch.Tensor, v_reset: torch.Tensor) -> torch.Tensor:
    """The value reset with the gradient of ``'through'`` (see the module docstring)."""
    return ValueResetThrough.apply(v, z, v_reset)


def check_reset_gradient(value, where: str = "ir_to_torch") -> ir.ResetGradient | None:
    """None (each node's own convention) or one of ``'detached'``, ``'through'``."""
    return None if value is None else coerce_enum(ir.ResetGradient, value, "reset_gradient", where)


def override_reset_gradient(module: nn.Module, value) -> nn.Module:
    """Differentiate every talon spiking neuron module inside ``module`` with ``value``
    (``'detached'`` or ``'through'``; None leaves each with its node's own). Returns ``module``."""
    convention = check_reset_gradient(value)
    if convention is None:
        return module
    from .modules import _Spiking

    for child in module.modules():
        if isinstance(child, _Spiking):
            child.reset_through = convention is ir.ResetGradient.THROUGH
    return module


def override_surrogate(module: nn.Module, surrogate: str | None) -> nn.Module:
    """Differentiate the spikes of every talon spiking neuron module inside ``module`` with
    ``surrogate`` (a surrogate text, :mod:`talon.ir.surrogate`; None leaves each with its node's
    own). The graph the modules record is unchanged. Returns ``module``."""
    if surrogate is None:
        return module
    text = ir.canonical_surrogate(surrogate, "surrogate override")
    from .spike import surrogate_backward

    surrogate_backward(text)  # made now, not inside a torch.compile trace
    from .modules import ThresholdModule, _Spiking

    for child in module.modules():
        if isinstance(child, (_Spiking, ThresholdModule)):
            child.surrogate = text
    return module
