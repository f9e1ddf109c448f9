"""In-place operations in a traced ``forward``: follow the mutation exactly, or refuse.

``torch.fx`` records ``relu_(h)``, ``h.mul_(2)``, ``h += r`` and ``nn.ReLU(inplace=True)(h)`` as
calls whose result is a new value, but in PyTorch the tensor ``h`` itself now holds the result:
every later use of ``h`` reads it. The shape pass (``fx_trace._run_recording_shapes``) notes which
inputs a call changed (their version counter moved) and whether the call returned that very
tensor. Then, for a call at position ``i`` that changed the value of node ``a``:

* if the call returned ``a``'s tensor (an in-place op, an in-place module) and ``a`` is data, then
  ``a`` *is* the call's output from here on: the exporter's value of ``a`` — and of every other
  node alive past ``i`` that is the same tensor object — becomes the call's node;
* a changed tensor nothing reads afterwards (nor a view of it) needs nothing;
* it refuses, naming the operation, when the call changed a tensor it did not return (the graph
  could not say which value later users read), a module's constant or a neuron's state (hidden
  state across calls), or a tensor another live value is a *view* of (same storage, another
  object: a reshape, a split part, ``detach()``) — that view changes too, and TALON IR has no
  aliasing.
"""

from __future__ import annotations

from typing import Any

from talon.ir.errors import ConversionError


def arg_nodes(value: Any, kinds: tuple) -> list:
    """The graph nodes in a node's (nested) arguments."""
    if isinstance(value, kinds):
        return [value]
    if isinstance(value, (tuple, list)):
        return [n for v in value for n in arg_nodes(v, kinds)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in arg_nodes(v, kinds)]
    return []


def last_uses(nodes: list, kinds: tuple) -> dict:
    """For each node, the position of the last node that uses it."""
    last: dict = {}
    for i, node in enumerate(nodes):
        for used in arg_nodes((node.args, node.kwargs), kinds):
            last[used] = i
    return last


def storage_of(node: Any) -> frozenset:
    return node.meta.get("storage", frozenset())


def follow_mutations(node: Any, position: int, nodes: list, last_use: dict, values: dict, where: str) -> None:
    """Rebind the values a call changed in place to the call's own value, or refuse (module docstring)."""
    mutated = node.meta.get("mutated", ())
    if not mutated:
        return
    val = values[node]
    returned = node.meta.get("returns_mutated", ())
    for changed in mutated:
        kind = values[changed].kind
        name = getattr(changed, "target", changed.name) if kind == "const" else changed.name
        if kind == "const":
            raise ConversionError(
                f"{where} changes the module attribute {str(name)!r} in place: a state kept across calls that "
                "TALON IR cannot state; compute a new tensor instead"
            )
        alive = last_use.get(changed, -1) > position or any(
            other is not changed and last_use.get(other, -1) > position and storage_of(other) & storage_of(changed)
            for other in nodes[:position]
        )
        if not alive:
            continue  # nothing reads the changed tensor afterwards
        if changed not in returned or kind != "data" or val.kind != "data":
            raise ConversionError(
                f"{where} changes {name!r} in place without returning it as its result: the graph cannot say "
                "which value later uses read; use the out-of-place form (inplace=False, mul instead of mul_)"
            )
        identity, storage = changed.meta.get("identity"), storage_of(changed)
        for other in nodes[:position]:
            if other is changed or last_use.get(other, -1) <= position:
                continue
            if other.meta.get("identity") == identity:
                values[other] = val  # the same tensor under another node: it changed too
            elif storage & storage_of(other):
                raise ConversionError(
                    f"{where} changes {name!r} in place, and {other.name!r}, used later, is a view of the same "
                    "memory (it changes too); TALON IR has no aliasing: use the out-of-place form"
                )
        values[changed] = val
