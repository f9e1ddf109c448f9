"""Leave a model as it was after the exporter's probe runs (tracing and one forward pass).

A forward pass can change a module: snnTorch's ``init_hidden`` neurons store their membrane
(``self.mem = ...``), BatchNorm in training mode updates its running statistics in place, user
code counts calls or appends to lists. ``unchanged(model)`` records, for every submodule, its
attributes (``__dict__``, the parameter/buffer/submodule registries, one level of list/dict/set
contents) and a copy of each buffer and tensor attribute, and puts them back when the block
ends. This replaces a deep copy of the model: no module is rebuilt, parameters are never copied,
and a hidden state that carries autograd history (a membrane after a training step) needs no
deep-copy support — it is only referenced, plus one detached copy.

Parameters themselves are not restored: a forward pass does not change them (lazy modules'
materialisation aside, which a deep copy sharing the parameters did not undo either).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

_REGISTRIES = ("_parameters", "_buffers", "_modules")


class _Saved:
    __slots__ = ("attrs", "cls", "containers", "module", "registries")

    def __init__(self, module: nn.Module):
        self.module, self.cls = module, type(module)
        self.attrs = dict(module.__dict__)
        self.registries = {name: dict(self.attrs[name]) for name in _REGISTRIES if name in self.attrs}
        self.containers = [
            (value, _shallow(value))
            for name, value in self.attrs.items()
            if type(value) in (list, dict, set) and name not in _REGISTRIES
        ]

    def restore(self) -> None:
        module = self.module
        if type(module) is not self.cls:
            module.__class__ = self.cls
        module.__dict__.clear()
        module.__dict__.update(self.attrs)
        for name, content in self.registries.items():
            registry = self.attrs[name]
            registry.clear()
            registry.update(content)
        for container, content in self.containers:
            if isinstance(container, list):
                container[:] = content
            else:
                container.clear()
                container.update(content)


def _shallow(container):
    return list(container) if isinstance(container, list) else type(container)(container)


def _state_tensors(module: nn.Module) -> Iterator[torch.Tensor]:
    yield from (b for b in module._buffers.values() if b is not None)
    for value in module.__dict__.values():
        if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
            yield value


class Snapshot:
    """The recorded state of a model; ``restore()`` puts it back (any number of times)."""

    def __init__(self, model: nn.Module):
        self._saved = [_Saved(m) for m in model.modules()]
        self._tensors: dict[int, tuple[torch.Tensor, int, torch.Tensor]] = {}
        for entry in self._saved:
            for tensor in _state_tensors(entry.module):
                if id(tensor) not in self._tensors:
                    self._tensors[id(tensor)] = (tensor, tensor._version, tensor.detach().clone())

    def restore(self) -> None:
        for entry in self._saved:
            entry.restore()
        for tensor, version, copy in self._tensors.values():
            # changed in place; BatchNorm's kernel updates its running statistics without
            # counting a version, hence the comparison of the values
            if tensor._version != version or not torch.equal(tensor, copy):
                with torch.no_grad():
                    tensor.copy_(copy)


@contextlib.contextmanager
def unchanged(model: nn.Module) -> Iterator[Snapshot]:
    """Run the block, then restore every submodule of ``model`` (see the module docstring)."""
    snapshot = Snapshot(model)
    try:
        yield snapshot
    finally:
        snapshot.restore()
