"""Helpers shared by the SDK modules: loading, resolving names in nested graphs, copying, JSON conversion."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from talon import ir
from talon.ir import Graph, Node, TalonError
from talon.ir.graph import SEP

GraphLike = Graph | str | os.PathLike
"""What every SDK function accepts: a graph, or the path of a ``.t1c`` file."""


class UnknownNodeError(TalonError, KeyError):
    """A node name that the graph does not have (a ``KeyError`` whose message names the graph's nodes)."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


def load_graph(source: GraphLike, what: str = "graph") -> Graph:
    """Return ``source`` if it is a Graph, else read the ``.t1c`` file it names.

    Raises ``FileNotFoundError`` / :class:`talon.ir.T1CFormatError` for a missing or bad file and
    ``TypeError`` for anything that is neither a Graph nor a path.
    """
    if isinstance(source, Graph):
        return source
    if isinstance(source, (str, os.PathLike)):
        return ir.read(Path(source))
    raise TypeError(f"{what} must be a talon.ir.Graph or the path of a .t1c file, got {type(source).__name__}")


def resolve_node(graph: Graph, name: str, where: str = "the graph") -> Node:
    """The node called ``name``; ``outer.inner`` reaches into a subgraph node.

    Raises :class:`UnknownNodeError` naming the graph's nodes and the closest matches.
    """
    if not isinstance(name, str):
        raise TypeError(f"a node name must be a string, got {type(name).__name__}")
    if name in graph.nodes:
        return graph.nodes[name]
    head, sep, rest = name.partition(SEP)
    if sep and isinstance(graph.nodes.get(head), Graph):
        return resolve_node(graph.nodes[head], rest, f"subgraph {head!r}")
    raise unknown_node(graph, name, where)


def require_node(graph: Graph, name: str, where: str = "the graph") -> None:
    """Raise TypeError for a non-string name and UnknownNodeError for a name ``graph`` lacks."""
    if not isinstance(name, str):
        raise TypeError(f"a node name must be a string, got {type(name).__name__}")
    if name not in graph.nodes:
        raise unknown_node(graph, name, where)


def unknown_node(graph: Graph, name: str, where: str = "the graph") -> UnknownNodeError:
    names = list(graph.nodes)
    close = difflib.get_close_matches(name, names, n=3)
    hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    shown = ", ".join(names[:30]) + (", ..." if len(names) > 30 else "")
    return UnknownNodeError(f"no node {name!r} in {where}{hint}; nodes are: {shown}")


def rebuild(
    graph: Graph,
    replace: Callable[[str, Node], Node | None] | None = None,
    prefix: str = "",
    *,
    validate: bool = True,
) -> Graph:
    """A new Graph with new node objects (arrays are shared, metadata is copied).

    ``replace(qualified_name, node)`` may return a substitute node for any non-Graph node (or None
    to keep a copy of it). Subgraphs are rebuilt recursively and validated; the result is validated
    too unless ``validate=False`` (for a caller that puts its nodes into a graph it validates).
    """
    nodes: dict[str, Node] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            nodes[name] = rebuild(node, replace, f"{prefix}{name}{SEP}")
            continue
        new = replace(f"{prefix}{name}", node) if replace is not None else None
        nodes[name] = new if new is not None else shallow_copy_node(node)
    return Graph(nodes, list(graph.edges), copy.deepcopy(graph.metadata), validate=validate)


def shallow_copy_node(node: Node) -> Node:
    """A new node object with the same arrays and a deep copy of the metadata."""
    new = copy.copy(node)
    new.metadata = copy.deepcopy(node.metadata)
    return new


def shallow_copy_graph(graph: Graph) -> Graph:
    """A copy of ``graph`` (not validated) whose nodes can be re-typed without touching the original
    (new node objects sharing the arrays and the metadata, which shape inference does not change)."""
    nodes = {
        name: shallow_copy_graph(node) if isinstance(node, Graph) else copy.copy(node)
        for name, node in graph.nodes.items()
    }
    return Graph(nodes, list(graph.edges), graph.metadata, validate=False)


def enum_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def jsonable(value: Any, *, max_list: int = 64) -> Any:
    """Convert ``value`` to plain JSON types.

    Tuples become lists, enums their value, non-string dict keys strings, non-finite floats the
    strings ``"nan"``, ``"inf"``, ``"-inf"`` (so the output is strict JSON). Arrays of at most
    ``max_list`` elements become lists; larger ones ``{"dtype", "shape"}`` summaries. Dataclass
    instances become dicts of their fields, objects with ``to_dict()`` that dict. Anything else
    raises ``TypeError``: a Python ``repr`` is not data a JSON reader can use.
    """
    if isinstance(value, Enum):
        value = value.value
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, np.generic):
        return jsonable(value.item(), max_list=max_list)
    if isinstance(value, np.ndarray):
        if value.size <= max_list:
            return jsonable(value.tolist(), max_list=max_list)
        return {"dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, dict):
        return {str(enum_value(k)): jsonable(v, max_list=max_list) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, max_list=max_list) for v in value]
    if isinstance(value, Path):
        return str(value)
    if callable(getattr(value, "to_dict", None)):
        return jsonable(value.to_dict(), max_list=max_list)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return jsonable(fields, max_list=max_list)
    raise TypeError(f"{type(value).__module__}.{type(value).__qualname__} has no JSON form")
