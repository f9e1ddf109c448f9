"""The state a caller hands back to a :class:`~talon.bridge.executor.GraphExecutor`, checked before a step.

A state is what a call returned: ``{node name: value}`` for the stateful nodes (an
:class:`~talon.bridge.executor.ExecutorState`, whose ``edges`` hold the recurrent edges' last values),
where a value is

* a tensor ``[B, *shape]`` — the membrane of a LIF, IF, LI or Integrator;
* a pair of tensors ``(v, i)`` — a CubaLIF or CubaLI (membrane and synaptic current);
* a tensor ``[max_delay, B, *shape]`` — the history of a Delay;
* a state of the same form — a subgraph; or None (the node starts from rest).

A tensor must be of the executor's dtype and broadcast to its node's shape for this batch (a
``[1, *shape]`` or ``[*shape]`` membrane is the same state for every batch entry). Anything else —
a key that names no stateful node (the state of another model would otherwise be ignored and the
run start from rest), a tensor where a pair belongs (it would be unpacked along its first axis), a
tensor of another dtype (it would silently promote the whole run), a shape that does not broadcast —
raises ``TypeError`` / ``ValueError`` naming the node, instead of an error from inside torch or a
silently different run. Modules that are not talon's (custom ``node_map`` modules) are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .modules import CubaLIFModule, CubaLIModule, DelayModule, NeuronModule

_HINT = "pass the state returned by a call of this executor (or None to start from rest)"


def check_state(executor: Any, state: Any, batch: int, dtype: torch.dtype | None, where: str = "state") -> None:
    """Raise naming the node when ``state`` is not a state of ``executor`` for a batch of ``batch``."""
    if state is None:
        return
    if not isinstance(state, Mapping):
        raise TypeError(f"{where} must be a dict by node name (or None), got {type(state).__name__}; {_HINT}")
    holders = _holders(executor)
    unknown = [name for name in state if name not in holders]
    if unknown:
        raise ValueError(
            f"{where} names {unknown[:8]!r}, which hold no state in this executor (its stateful nodes are "
            f"{list(holders)[:20]}); {_HINT}"
        )
    for name, value in state.items():
        if value is not None:
            _check_value(holders[name], value, batch, dtype, f"{where}[{name!r}]")
    edges = getattr(state, "edges", None)
    if edges:
        _check_edges(executor, edges, batch, dtype, f"{where}.edges")


def _holders(executor: Any) -> dict[str, tuple[str, Any, tuple[int, ...] | None]]:
    """``{name: (form, module, node shape)}`` of the nodes that keep a state, ``form`` one of
    ``"graph"``, ``"pair"``, ``"history"``, ``"tensor"``, ``"custom"`` (cached on the executor)."""
    holders = executor.__dict__.get("_state_holders")
    if holders is None:
        from .executor import GraphExecutor, _is_stateful

        holders = {}
        for name in executor.node_names:
            module = executor.module_of(name)
            if not _is_stateful(module):
                continue
            shape = getattr(module, "_layer_shape", None) if isinstance(module, NeuronModule) else None
            shape = None if shape is None else tuple(int(d) for d in shape)
            if isinstance(module, GraphExecutor):
                form = "graph"
            elif not isinstance(module, NeuronModule):
                form = "custom"  # a custom module's state is its own business
            elif isinstance(module, (CubaLIFModule, CubaLIModule)):
                form = "pair"
            else:
                form = "history" if isinstance(module, DelayModule) else "tensor"
            holders[name] = (form, module, shape)
        executor.__dict__["_state_holders"] = holders
    return holders


def _check_value(holder: tuple, value: Any, batch: int, dtype, where: str) -> None:
    form, module, shape = holder
    if form == "graph":
        check_state(module, value, batch, dtype, where)
    elif form == "pair":
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(
                f"{where} must be the pair (v, i) of a {module.node_type.__name__} (membrane and synaptic current), "
                f"got {_describe(value)}; {_HINT}"
            )
        for part, tensor in zip("vi", value, strict=True):
            _check_tensor(tensor, (batch, *shape) if shape else None, dtype, f"{where} {part}")
    elif form == "history":
        want = (module.max_delay, batch, *shape) if shape else None
        _check_tensor(value, want, dtype, where, exact=True)
    elif form == "tensor":
        _check_tensor(value, (batch, *shape) if shape else None, dtype, where)


def _check_tensor(value: Any, want: tuple[int, ...] | None, dtype, where: str, exact: bool = False) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{where} must be a torch.Tensor, got {_describe(value)}; {_HINT}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{where} is {value.dtype} but the executor computes in {dtype}: pass it .to({dtype}); {_HINT}")
    if want is None:
        return
    got = tuple(value.shape)
    if got == want:
        return
    # broadcasting to want (torch.broadcast_shapes costs ~100x more than these comparisons)
    fits = (
        not exact
        and len(got) <= len(want)
        and all(g in (1, w) for g, w in zip(reversed(got), reversed(want), strict=False))
    )
    if not fits:
        shown = "exactly " if exact else "a shape that broadcasts to "
        raise ValueError(f"{where} has shape {list(got)}; this batch needs {shown}{list(want)}; {_HINT}")


def _check_edges(executor: Any, edges: Mapping, batch: int, dtype, where: str) -> None:
    recurrent, shapes = executor._recurrent, executor._edge_shapes
    for key, value in edges.items():
        if not (type(key) is int and 0 <= key < len(recurrent) and recurrent[key]):
            raise ValueError(f"{where} has edge {key!r}, which is not a recurrent edge of this executor; {_HINT}")
        if value is not None:
            shape = shapes.get(key)
            _check_tensor(value, None if shape is None else (batch, *shape), dtype, f"{where}[{key!r}]")


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {list(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"
