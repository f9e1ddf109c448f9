"""A ``forward`` that also returns a constant, the same on every export route.

A tensor ``forward`` returns that is not computed from the model's input — a buffer or parameter
(``return y, self.c``), a tensor made from no data (``torch.zeros(3)``), a module's state read as an
attribute — has no TALON IR node: a graph computes its outputs from its inputs. Dropping it would
change what the model returns, so every route (the recording, torch.fx, the execution trace)
refuses with :class:`~talon.ir.ConversionError`, unless the caller asks for a lossy export
(``to_ir(..., lossy=True)``): then the graph is exported without it, with a warning, and
``metadata["constant_outputs_not_exported"]`` lists it. Each is named by its attribute path in the
model (``'c'``, ``'lif.mem'``) or, for a tensor made in ``forward``, as ``'output <i>'`` (its
position among the returned tensors).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from talon.ir.errors import ConversionError

METADATA_KEY = "constant_outputs_not_exported"


def attribute_path(model: nn.Module, tensor: torch.Tensor) -> str | None:
    """The path of ``tensor`` among the model's buffers, parameters and tensor attributes, or None."""
    for name, value in (*model.named_buffers(), *model.named_parameters()):
        if value is tensor:
            return name
    for path, module in model.named_modules():
        for name, value in vars(module).items():
            if value is tensor:
                return f"{path}.{name}" if path else name
    return None


def resolve(names: list[str], metadata: dict[str, Any], lossy: bool, stacklevel: int = 3) -> None:
    """Refuse the constant outputs ``names`` or, with ``lossy``, warn and record them in ``metadata``."""
    if not names:
        return
    listed = ", ".join(map(repr, names))
    if not lossy:
        raise ConversionError(
            f"to_ir: forward also returns {listed}, not computed from the model's input (a buffer, a parameter, "
            "a module's state or a tensor made in forward); a TALON IR graph computes its outputs from its inputs. "
            f"Return only computed values, or pass lossy=True to export the graph without it (listed in "
            f"metadata[{METADATA_KEY!r}])"
        )
    metadata[METADATA_KEY] = list(names)
    warnings.warn(
        f"to_ir: the model also returns {listed}, not computed from its input; not exported (lossy=True), listed "
        f"in metadata[{METADATA_KEY!r}]",
        UserWarning,
        stacklevel=stacklevel,
    )
