"""Validated programs and float engines of the graphs ``simulate`` ran, reused while a graph is unchanged.

Building a run is not free: validation scans every weight (finiteness), lowering inlines the
subgraphs, and the float kernels copy and convert the weights (a 33.6 M-parameter model: ~1 s and
~0.4 GB each call). :func:`lookup` keeps what was built for a graph **by content**: the key is the
graph's full fingerprint (:mod:`talon.ir.fingerprint` with weights and metadata), computed on
every call, so a graph modified in place is built afresh. What is built refers to the graph's own
node objects (the program's operations, kernels holding parameters as they are), so an entry is
served only when the graph still holds the very node and parameter-array objects it was built
from (checked by identity, on top of the content key): a node or array replaced by an equal one,
or a copy of the graph, is built again rather than trusted. The entry keeps the graph it was built
from alive (no copy of the weights is made). Fixed-point engines are not kept (their formats
depend on each call's calibration; their weight quantizations are reused by :mod:`..formats.weight_cache`),
and a fixed-point call does not add the fp32 engine that calibrates it (it uses one an fp32 or fp16
call left): kept, its kernels would stay alive through every integer run, which a fixed-point call
otherwise builds after freeing them.

The cache is a least-recently-used list of at most :data:`MAX_ENTRIES` graphs whose kernels hold at
most :data:`MAX_BYTES` of arrays (and no more than a quarter of ``memory_limit()``); a graph whose
kernels are larger than that is built every time. ``MAX_ENTRIES = 0`` turns the cache off;
:func:`clear` empties it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from talon import ir
from talon.ir.fingerprint import graph_fingerprint

from ...config import CompileConfig
from ...stimulus import memory_limit
from ..lowering.program import Program
from .engine import Engine

MAX_ENTRIES = 4
MAX_BYTES = 2 << 30

_entries: OrderedDict[str, Built] = OrderedDict()
_lock = threading.Lock()
stats = {"hits": 0, "misses": 0}


class Built:
    """What was built for one graph content: its private ``graph`` copy, the validated program per
    precision and the float engine per configuration."""

    def __init__(self, graph: ir.Graph) -> None:
        self.graph = graph
        self.objects = _objects(graph)
        self.programs: dict[str, Program] = {}
        self.engines: dict[str, Engine] = {}
        self.nbytes = 0  # the kernels' (the graph is the caller's)

    def built_from(self, graph: ir.Graph) -> bool:
        """Whether ``graph`` holds the very objects this entry was built from."""
        if graph is not self.graph:
            return False
        objects = _objects(graph)
        return len(objects) == len(self.objects) and all(a is b for a, b in zip(objects, self.objects, strict=True))

    def program(self, config: CompileConfig, validate: Callable[[ir.Graph, CompileConfig], Program]) -> Program:
        """The program of this graph validated at ``config``'s precision (``validate`` raises if invalid)."""
        program = self.programs.get(config.precision)
        if program is None:
            try:
                program = self.programs[config.precision] = validate(self.graph, config)
            except Exception:
                if not self.programs:  # an invalid graph: nothing worth keeping its copy for
                    _discard(self)
                raise
        return program

    def existing(self, config: CompileConfig) -> Engine | None:
        """The float engine at ``config`` if one was built, else None (nothing is built)."""
        return self.engines.get(_config_key(config))

    def engine(self, program: Program, config: CompileConfig) -> Engine:
        """The float engine of ``program`` at ``config`` (built once)."""
        key = _config_key(config)
        engine = self.engines.get(key)
        if engine is None:
            engine = self.engines[key] = Engine(program, config)
            self.nbytes = owned_bytes([e.kernels for e in self.engines.values()])
            _trim()
        return engine


class Uncached(Built):
    """What is built for a graph the cache cannot hold: everything afresh (on the caller's graph)."""

    def __init__(self, graph: ir.Graph) -> None:
        self.graph, self.programs, self.engines, self.nbytes = graph, {}, {}, 0

    def engine(self, program: Program, config: CompileConfig) -> Engine:
        return Engine(program, config)


def _config_key(config: CompileConfig) -> str:
    return json.dumps(config.to_dict(), sort_keys=True, default=str)


def lookup(graph: ir.Graph) -> Built:
    """The built programs and engines of a graph with ``graph``'s content (an empty entry, now kept,
    the first time)."""
    if MAX_ENTRIES <= 0:
        return Uncached(graph)
    try:
        key = graph_fingerprint(graph, include_weights=True, include_metadata=True)
    except (TypeError, ValueError):  # metadata the canonical form cannot encode: not cached
        return Uncached(graph)
    with _lock:
        built = _entries.get(key)
        if built is not None and built.built_from(graph):
            _entries.move_to_end(key)
            stats["hits"] += 1
            return built
    stats["misses"] += 1
    built = Built(graph)
    with _lock:
        _entries[key] = built  # replaces an entry of the same content built from other objects
        _entries.move_to_end(key)
    _trim()
    return built


def clear() -> None:
    """Forget every built program and engine."""
    with _lock:
        _entries.clear()


def _discard(built: Built) -> None:
    with _lock:
        for key, entry in list(_entries.items()):
            if entry is built:
                del _entries[key]


def _budget() -> int:
    return min(MAX_BYTES, memory_limit() // 4)


def _trim() -> None:
    """Drop least recently used entries until at most MAX_ENTRIES holding at most the byte budget
    remain (the newest is kept while it fits alone)."""
    with _lock:
        budget = _budget()
        while len(_entries) > max(MAX_ENTRIES, 0) or (
            len(_entries) > 1 and sum(b.nbytes for b in _entries.values()) > budget
        ):
            _entries.popitem(last=False)
        if _entries and next(reversed(_entries.values())).nbytes > budget:
            _entries.popitem(last=True)


def _objects(graph: ir.Graph) -> list:
    """The graph, its nodes (subgraphs included) and their parameter arrays, in order."""
    out: list = [graph]
    for node in graph.nodes.values():
        out.append(node)
        if isinstance(node, ir.Graph):
            out.extend(_objects(node))
        else:
            out.extend(v for v in node.stored_params().values() if isinstance(v, np.ndarray))
    return out


def owned_bytes(roots) -> int:
    """Bytes of the numpy arrays reachable from ``roots`` through talon objects, containers and
    their attributes (each array's memory counted once, by its base)."""
    seen: set[int] = set()
    bases: dict[int, int] = {}
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = obj
            while isinstance(base.base, np.ndarray):
                base = base.base
            bases[id(base)] = base.nbytes
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack.extend(obj)
        elif type(obj).__module__.startswith("talon"):
            stack.extend(getattr(obj, "__dict__", {}).values())
            slots = getattr(type(obj), "__slots__", ())
            slots = (slots,) if isinstance(slots, str) else slots
            stack.extend(getattr(obj, s) for s in slots if hasattr(obj, s))
    return sum(bases.values())
