"""Probes: the nodes whose values and states a step-by-step run records (``simulate(probes=...)``).

A probe is a node path as the CPU backend names nodes once subgraphs are inlined (``"layer_1"``,
``"rnn.lif"``) or the path of a subgraph (``"rnn"``: every node inside it). Only the probed nodes'
outputs and states are kept for every step (``SimulationResult.node_states``), so a long run holds
``T x`` the probed nodes' sizes instead of every layer's; the memory check counts only them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from ...errors import BackendError
from ..lowering.program import Op, Program

_LISTED = 30  # names listed in the error for an unknown probe


def resolve_probes(program: Program, probes: str | Sequence[str] | None) -> list[Op] | None:
    """The operations ``probes`` name, in program order (None: no selection, every node is recorded).

    Raises :class:`BackendError` for a name that is no node or subgraph path, listing the valid ones."""
    if probes is None:
        return None
    names = [probes] if isinstance(probes, str) else probes
    if not isinstance(names, Sequence) or not all(isinstance(name, str) for name in names):
        raise BackendError(f"probes must be a list of node paths (strings), got {probes!r}")
    chosen: set[int] = set()
    for name in names:
        ops = [op for op in program.ops if op.path == name or op.path.startswith(name + ".")]
        if not ops:
            raise BackendError(_unknown(program, name))
        chosen.update(op.index for op in ops)
    return [op for op in program.ops if op.index in chosen]


def probe_values(program: Program, ops: list[Op] | None) -> set[int]:
    """The value ids a step-by-step run keeps for every step: the probed operations' outputs (every
    value when ``ops`` is None)."""
    if ops is None:
        return set(range(len(program.values)))
    return {vid for op in ops for vid in op.outputs}


def _unknown(program: Program, name: str) -> str:
    paths = [op.path for op in program.ops]
    parts = [path.split(".") for path in paths]
    subgraphs = sorted({".".join(p[:k]) for p in parts for k in range(1, len(p))})
    valid = paths + [f"{sub} (subgraph)" for sub in subgraphs]
    close = difflib.get_close_matches(name, paths + subgraphs, n=3, cutoff=0.75)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    listed = ", ".join(valid[:_LISTED]) + (f", ... ({len(valid) - _LISTED} more)" if len(valid) > _LISTED else "")
    return (
        f"probe {name!r} names no node or subgraph of the graph{hint}. Probes are node paths with subgraphs "
        f"inlined as 'subgraph.node', or a subgraph's path for all its nodes: {listed}"
    )
