"""Checking a framework's surrogate against talon's formula for it, on probe points.

An importer recognises a framework's surrogate by its name and parameters (``snntorch.surrogate.
fast_sigmoid(slope=25)``, Norse's ``method='super'``) and proposes the TALON IR surrogate text that
states it (``'superspike(k=25.0)'``). :func:`torch_backward_matches` then runs the framework's own
backward on probe points around the threshold and compares it with talon's
(:func:`talon.bridge.spike.surrogate_backward`): a proposal that does not reproduce the framework's
derivative (another version of the framework, a parameter read wrongly) is not recorded, and the
importer warns instead, as for a surrogate that has no TALON IR form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .spike import surrogate_backward

# around the threshold (x = v - theta), its signed zeros, and far from it
PROBE = (-40.0, -3.0, -1.5, -1.0, -0.7, -0.3, -0.1, -0.02, -0.0, 0.0, 0.02, 0.1, 0.3, 0.7, 1.0, 1.5, 3.0, 40.0)
RTOL, ATOL = 1e-5, 1e-6  # float32 rounding of formulas written in another order


def torch_backward(function: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor | None:
    """``d function(x) / dx`` on the probe points (zeros when the output carries no gradient), or
    None when the function fails on them."""
    x = torch.tensor(PROBE, dtype=torch.float32, requires_grad=True)
    try:
        with torch.enable_grad():
            y = function(x)
            if not isinstance(y, torch.Tensor) or y.shape != x.shape:
                return None
            if not y.requires_grad:  # e.g. Norse's plain heaviside: no gradient at all
                return torch.zeros_like(x.detach())
            (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    except Exception:  # a custom function may fail on the probe
        return None
    return torch.zeros_like(x.detach()) if grad is None else grad.detach()


def torch_backward_matches(
    function: Callable[[torch.Tensor], torch.Tensor], surrogate: str, theta: torch.Tensor | None = None
) -> bool:
    """Whether ``function``'s backward is talon's ``surrogate`` on the probe points (float32 rounding);
    ``theta``: the thresholds (one per probe point) a kind of ``talon.ir.THRESHOLD_KINDS`` reads."""
    got = torch_backward(function)
    if got is None:
        return False
    x = torch.tensor(PROBE, dtype=torch.float32)
    backward = surrogate_backward(surrogate)
    want = backward(torch.ones_like(x), x) if theta is None else backward(torch.ones_like(x), x, theta)
    return bool(torch.allclose(got, want, rtol=RTOL, atol=ATOL, equal_nan=True))  # snnTorch sigmoid: inf/inf
