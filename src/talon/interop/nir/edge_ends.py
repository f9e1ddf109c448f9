"""Dangling edges: an edge of a NIR graph that names a node the graph does not have.

NIR requires both ends of every edge to be nodes of the graph the edge belongs to (nir >= 1.0.8
checks it in ``NIRGraph.validate_structure`` and ``nir.read`` refuses such files, with or without
type checks). Such a file cannot be read exactly: which node was meant is not in the file. The
error says which edges dangle, which nodes no edge touches, the renaming that most likely repairs
the file, and where the repair is shown (``docs/nir.md``, "Malformed files").
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ._common import NIRFormatError


def check_edge_ends(edges: list[tuple[str, str]], nodes: Iterable[str], where: str) -> None:
    """Raise :class:`NIRFormatError` if an edge names a node missing from ``nodes``.

    ``where`` names the file and the subgraph ("f.nir: subgraph 'lif1'"). The message lists every
    dangling edge, grouped by the missing name, and, when it is unambiguous, the existing node that
    was probably meant: the only node no edge touches, or the one closest in spelling among those.
    """
    names = list(nodes)
    known = set(names)
    missing: dict[str, list[tuple[str, str]]] = {}
    for edge in edges:
        for end in dict.fromkeys(edge):  # a self-loop on a missing node is listed once
            if end not in known:
                missing.setdefault(end, []).append(edge)
    if not missing:
        return
    touched = {end for edge in edges for end in edge}
    untouched = [name for name in names if name not in touched]
    problems = []
    for name, dangling in missing.items():
        listed = ", ".join(f"({src!r}, {dst!r})" for src, dst in dangling)
        count = "1 edge names" if len(dangling) == 1 else f"{len(dangling)} edges name"
        problems.append(f"{count} a node {name!r} that does not exist: {listed}")
    message = (
        f"{where} is malformed: {'; '.join(problems)} (its nodes: {', '.join(names)}). NIR requires both ends of "
        "every edge to be nodes of the same graph, so which node was meant is not in the file; talon refuses it, "
        "with or without type checks, as nir.read does."
    )
    guesses = _guesses(list(missing), untouched)
    if untouched:
        message += f" No edge touches {_quoted(untouched, 'node')}."
    if guesses:
        meant = "; ".join(f"{name!r} most likely means node {have!r}" for name, have in guesses.items())
        renames = ", ".join(f"node {have!r} to {name!r}" for name, have in guesses.items())
        edges_renamed = ", ".join(f"{name!r} to {have!r}" for name, have in guesses.items())
        message += (
            f" {meant[0].upper()}{meant[1:]}: repair a copy of the file by renaming {renames} (or the edges' "
            f'{edges_renamed}) and read the copy (docs/nir.md, "Malformed files", shows how with h5py).'
        )
    else:
        message += (
            " Repair a copy of the file so that every edge names one of the graph's nodes (docs/nir.md, "
            '"Malformed files", shows how with h5py), or ask its writer for a corrected file.'
        )
    raise NIRFormatError(message)


def _guesses(missing: list[str], untouched: list[str]) -> dict[str, str]:
    """Missing name -> the untouched node probably meant, for the names where that is unambiguous."""
    if len(missing) == 1 and len(untouched) == 1:
        return {missing[0]: untouched[0]}
    guesses: dict[str, str] = {}
    for name in missing:  # the most similar untouched name (case-insensitive), if it is clearly the most similar
        scored = sorted(((_similarity(name, have), have) for have in untouched), reverse=True)
        if scored and scored[0][0] >= 0.6 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
            guesses[name] = scored[0][1]
    if len(set(guesses.values())) != len(guesses):  # two missing names point at one node: no guess is safe
        return {}
    return guesses


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()


def _quoted(names: list[str], noun: str) -> str:
    quoted = ", ".join(repr(name) for name in names)
    return f"{noun} {quoted}" if len(names) == 1 else f"{noun}s {quoted}"
