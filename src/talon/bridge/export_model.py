"""What an export does to the model before tracing it: unwrap wrappers, validate the layer hints,
warn about forward hooks, put every module in eval mode (naming the BatchNorm/Dropout that were
training), and remember the models whose recorded export must go to torch.fx."""

from __future__ import annotations

import contextlib
import warnings
import weakref
from typing import Any

import numpy as np
from torch import nn

from talon import ir

_VALID_HINTS: set[tuple] = set()


def unwrapped(model: nn.Module) -> nn.Module:
    """The model a wrapper runs: ``torch.compile``'s ``OptimizedModule`` (``_orig_mod``),
    ``DataParallel`` and ``DistributedDataParallel`` (``module``) compute what it computes, so the
    graph is the wrapped model's, with its names (not ``_orig_mod.0`` / ``module.0``)."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif type(model).__module__.startswith("torch._dynamo") and isinstance(
            getattr(model, "_orig_mod", None), nn.Module
        ):
            model = model._orig_mod
        else:
            return model


def check_hints(spike_mode: Any, weight_bits: Any, accumulator_bits: Any) -> None:
    """Validate the SpikingAffine hints with the IR's own rules; a combination that passed is
    remembered by value *and* type (``8`` and ``8.0`` are checked apart)."""
    key: tuple | None = tuple((type(v), v) for v in (spike_mode, weight_bits, accumulator_bits))
    try:
        if key in _VALID_HINTS:
            return
    except TypeError:  # unhashable: checked every time
        key = None
    ir.SpikingAffine(np.zeros((1, 1), np.float32), spike_mode=spike_mode, weight_bits=weight_bits,
                     accumulator_bits=accumulator_bits)  # fmt: skip
    if key is not None:
        _VALID_HINTS.add(key)


# Models whose recording could not prove its graph complete: exporting them again goes straight to
# fx. Only a speed hint (the fx export is the reference the recording equals), kept per instance.
_NEEDS_FX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def needs_fx(model: nn.Module) -> bool:
    try:
        return model in _NEEDS_FX
    except TypeError:  # a module that is not hashable or not weak-referenceable
        return False


def mark_needs_fx(model: nn.Module) -> None:
    with contextlib.suppress(TypeError):
        _NEEDS_FX[model] = True


def warn_about_hooks(model: nn.Module) -> None:
    """Forward hooks can change what a module returns; no route exports what they do."""
    hooked = [path or "the model" for path, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]
    if hooked:
        warnings.warn(
            f"to_ir: forward hooks on {', '.join(map(repr, hooked))}: the graph holds what the modules compute, "
            "not what their hooks change; remove the hooks that change values before exporting",
            stacklevel=4,
        )


_MODE_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd)


def to_eval_mode(model: nn.Module) -> list[nn.Module]:
    """Put every module in eval mode; return those that were training. BatchNorm and Dropout in
    training mode compute something else than the graph, which holds their ``eval()`` behaviour
    (running statistics, no dropping): the export warns, naming them."""
    training, changed = [], []
    for path, m in model.named_modules():
        if m.training:
            training.append(m)
            if isinstance(m, _MODE_DEPENDENT) and getattr(m, "p", 1) > 0:
                changed.append(f"{path or 'the model'!r} ({type(m).__name__})")
    if changed:
        warnings.warn(
            f"to_ir: {', '.join(changed)} in training mode: the graph computes their eval() behaviour "
            "(BatchNorm with its running statistics, Dropout as the identity); call model.eval() before "
            "exporting to compare the model with the graph",
            stacklevel=4,
        )
    for module in training:
        module.training = False
    return training
