"""Node names: what the IR allows, what the linter accepts, how importers make module attributes.

The IR accepts any non-empty string as a node name (docs/format.md). ``to_ir`` names a node after
its module's path in the model (``model.named_modules()``): ``fc1``, ``0`` (a layer of an
``nn.Sequential``), ``block.0`` (a layer inside a submodule); NIR names layers the same way. Those
*module paths* — dot-separated parts, each a Python identifier or a layer index (ASCII digits) — are
what the linter accepts; ``INVALID_NAME`` flags any other name (``conv-1``, ``1st layer``, ``a..b``).

Importers that make one attribute per node (the PyTorch executor) derive it with
:func:`attribute_base`: every non-word character (``.``, ``-``, space) becomes ``_``, and a result
that starts with a digit or is a keyword gets the prefix ``n_``: ``fc1`` stays ``fc1``, ``0``
becomes ``n_0``, ``block.0`` becomes ``block_0``, ``class`` becomes ``n_class``.
"""

from __future__ import annotations

import keyword
import re

#: Attribute names a ``torch.nn.Module`` subclass already uses for itself.
RESERVED = frozenset({"forward", "training", "graph"})


def is_layer_index(part: str) -> bool:
    """True for ``'0'``, ``'12'`` …: a layer index (ASCII digits), as ``nn.Sequential`` and NIR name layers."""
    return part.isascii() and part.isdigit()


def is_module_path(name: str) -> bool:
    """True for ``fc1``, ``0``, ``block.0``, ``encoder.layers.3.fc``: dot-separated identifiers and
    layer indices, the names ``to_ir`` gives (see the module docstring)."""
    return all(part.isidentifier() or is_layer_index(part) for part in name.split("."))


def attribute_base(name: str) -> str:
    """The module attribute an importer gives node ``name`` (before making it unique): see the module docstring."""
    base = re.sub(r"\W", "_", name) or "node"
    if base[0].isdigit() or keyword.iskeyword(base) or base in RESERVED:
        base = f"n_{base}"
    return base
