"""Stateless layers of ``GraphExecutor.run_sequence``: the products of all ``T`` timesteps.

``run_stateless_sequence(module, inputs, products)`` applies a stateless module to time-major
inputs ``[T, B, ...]`` and returns ``[T, B, ...]`` outputs (a tuple for a multi-output module).

``products="per_step"`` (the default) gives, bit for bit, the values of calling the module on
each timestep's ``[B, ...]`` slice — what stepping the executor (and snnTorch's own loop)
computes. That is not what one call on all ``T·B`` rows gives: a BLAS GEMM (MKL/oneDNN in
torch's CPU build) sums a row's products in an order that depends on the number of rows and of
threads, and even elementwise kernels (``sigmoid``, ``elu``, ``gelu(approximate='tanh')``, a
softmax over channels) and every convolution tested round some elements differently over more
rows. So, per module kind:

* ``nn.Linear`` on ``[B, K]`` rows without a gradient: the values of one ``addmm(bias, x[t],
  W.t())`` (``mm`` without a bias) per step — exactly the call ``F.linear`` makes. Where the
  per-step call's summation tree has been measured and a plan verified bit for bit
  (``sequence_gemm_plan``), chunks of up to ``_CHUNK_ROWS`` rows (whole steps) are computed
  with one GEMM per chain of that tree; otherwise (and for the steps a chunk does not cover)
  one call per step, written straight into the preallocated output (``out=``);
* modules whose every output element is a copy, a comparison, a maximum or one correctly rounded
  operation of the same sample's elements (``_ROW_INDEPENDENT``: ReLU, LeakyReLU, Scale,
  Threshold, Flatten, residual/concatenating merges, MaxPool2d, Dropout in eval mode): once on all
  ``T·B`` rows — IEEE rounding of one operation does not depend on the batch;
* any other module (convolutions, normalisation, pooling by sums, transcendental activations, a
  caller's ``node_map`` module, anything needing a gradient): its own ``forward`` per step.

``products="time_batched"`` runs every stateless module once on all ``T·B`` rows (the former
behaviour): faster on large layers, but a product may differ from the per-step one in the last
bit, and a membrane within rounding of its threshold may then spike differently.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from . import sequence_workspace
from .modules import ChannelSplitModule, ConcatModule, IRFlatten, ScaleModule, SkipModule, ThresholdModule

Products = Literal["per_step", "time_batched"]
PRODUCTS: tuple[str, ...] = ("per_step", "time_batched")

_ROW_INDEPENDENT: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.ReLU, nn.LeakyReLU, nn.Flatten, IRFlatten, ScaleModule, ThresholdModule, SkipModule,
    ConcatModule, ChannelSplitModule, nn.MaxPool2d,
)  # fmt: skip


def check_products(products: str) -> None:
    """Raise a ``ValueError`` naming the choices unless ``products`` is one of them."""
    if products not in PRODUCTS:
        raise ValueError(f"run_sequence: products must be one of {', '.join(map(repr, PRODUCTS))}, got {products!r}")


def run_stateless_sequence(module: nn.Module, inputs: list[torch.Tensor], products: Products = "per_step"):
    """``module`` over time-major ``inputs[k][T, B, ...]``; see the module docstring for the contract."""
    T, B = inputs[0].shape[:2]
    if products == "time_batched" or _is_row_independent(module):
        return _time_batched(module, inputs, T, B)
    if linear_fits(module, inputs):
        return _linear_per_step(module, inputs[0])
    return _per_step(module, inputs, T)


def _is_row_independent(module: nn.Module) -> bool:
    if type(module) is nn.Dropout:
        return not module.training
    return type(module) in _ROW_INDEPENDENT


def _time_batched(module: nn.Module, inputs: list[torch.Tensor], T: int, B: int):
    out = module(*(x.flatten(0, 1) for x in inputs))
    if isinstance(out, tuple):
        return tuple(o.unflatten(0, (T, B)) for o in out)
    return out.unflatten(0, (T, B))


def _per_step(module: nn.Module, inputs: list[torch.Tensor], T: int):
    steps = [module(*(x[t] for x in inputs)) for t in range(T)]
    if isinstance(steps[0], tuple):
        return tuple(torch.stack([s[k] for s in steps]) for k in range(len(steps[0])))
    return torch.stack(steps)


def linear_fits(module: nn.Module, inputs: list[torch.Tensor]) -> bool:
    """A plain ``nn.Linear`` on ``[T, B, K]`` input of its own dtype and device, without a gradient
    (``out=`` does not record autograd), where ``F.linear`` on a ``[B, K]`` step calls ``addmm``/``mm``."""
    if type(module) is not nn.Linear or len(inputs) != 1:
        return False
    x, weight = inputs[0], module.weight
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (module.bias is not None and module.bias.requires_grad)
    )
    return (
        not needs_grad
        and x.ndim == 3
        and x.shape[-1] == module.in_features
        and x.dtype == weight.dtype
        and x.device == weight.device
        and (module.bias is None or module.bias.dtype == weight.dtype)
    )


_CHUNK_ROWS = 4096  # rows per planned GEMM: the weight is streamed once per chunk of steps


def _linear_per_step(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``F.linear(x[t], W, b)`` for every step, each written into its slice of one output: with a
    verified plan (``sequence_gemm_plan``) many steps per GEMM, else one ``addmm`` per step."""
    T, B = x.shape[:2]
    if x.device.type == "cpu":
        out = sequence_workspace.empty((T, B, module.out_features), x.dtype)
    else:
        out = x.new_empty((T, B, module.out_features))
    weight_t, bias = module.weight.t(), module.bias
    start = _planned_steps(module, x, out) if _plannable(module, x) else 0
    for t in range(start, T):
        if bias is None:
            torch.mm(x[t], weight_t, out=out[t])
        else:
            torch.addmm(bias, x[t], weight_t, out=out[t])
    return out


def _plannable(module: nn.Linear, x: torch.Tensor) -> bool:
    return (
        x.device.type == "cpu"
        and x.shape[0] > 1
        and x.shape[1] > 0
        and x.is_contiguous()
        and module.weight.is_contiguous()
        and (module.bias is None or module.bias.is_contiguous())
    )


def _planned_steps(module: nn.Linear, x: torch.Tensor, out: torch.Tensor) -> int:
    """Run the steps a verified plan covers, in chunks of at most ``_CHUNK_ROWS`` rows; returns
    the first step left to the per-step calls (all of them when no plan verifies)."""
    from . import sequence_gemm_plan

    T, B, K = x.shape
    weight, bias = module.weight.detach(), None if module.bias is None else module.bias.detach()
    per_chunk = max(2, _CHUNK_ROWS // B)
    t = 0
    while T - t >= 2:
        steps = min(per_chunk, T - t)
        plan = sequence_gemm_plan.plan_for(B, weight, bias, steps, x[t].data_ptr())
        if plan is None:
            return t
        rows = slice(t, t + steps)
        sequence_gemm_plan.evaluate(plan, x[rows].view(steps * B, K), weight.t(), bias, out[rows].view(steps * B, -1))
        t += steps
    return t
