"""Validated programs and float engines of the graphs ``simulate`` ran, reused while a graph is unchanged.

Building a run is not free: validation scans every weight (finiteness), lowering inlines the
subgraphs, and the float kernels copy and convert the weights (a 33.6 M-parameter model: ~1 s and
~0.4 GB each call). :func:`lookup` keeps what was built for a graph **by content**, and builds it on
a private copy of the graph whose arrays are frozen (read-only), so nothing the caller does to
their graph afterwards reaches what was built. A call is served when its graph has the content of
an entry:

* the same structure, hyperparameters and metadata: the graph's fingerprint without the parameter
  values (``talon.ir.fingerprint.graph_fingerprint``, ``include_weights=False``, metadata included), which
  reads every array's dtype and shape but no array's values;
* the same parameter values: every parameter array (and numpy scalar) of every node, compared byte
  for byte with the copy's — one pass over the weights, stopping at the first difference.

So a graph modified in place (a weight scaled, a hyperparameter set) is built afresh, while a copy of
the graph, or an array replaced by an equal one, is served. Comparing bytes instead of hashing them
costs about a quarter of the SHA-256 full fingerprint this cache computed before (``bench/
bench_simulate_memory.py``), and is exact; the price is the frozen copy of the parameters an entry
keeps (the caller's graph is no longer kept alive). Fixed-point engines are not kept (their formats
depend on each call's calibration; their weight quantizations are reused by :mod:`..formats.weight_cache`),
and a fixed-point call adds no entry at all (``lookup(keep=False)``): it uses an entry an fp32 or
fp16 call left, with its fp32 engine to calibrate, and otherwise builds everything on the caller's
graph — kept, the fp32 kernels would stay alive through every integer run, which a fixed-point call
otherwise builds after freeing them, and so would the copy of the parameters.

The cache is a least-recently-used list of at most :data:`MAX_ENTRIES` graphs whose copies and
kernels hold at most :data:`MAX_BYTES` of arrays (and no more than a quarter of ``memory_limit()``);
a graph larger than that is built every time, on the caller's graph. ``MAX_ENTRIES = 0`` turns the
cache off; :func:`clear` empties it.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from talon import ir
from talon.ir.fingerprint import graph_fingerprint

from ...config import CompileConfig
from ...stimulus import memory_limit
from ..formats.weight_cache import same_bytes
from ..lowering.program import Program
from .engine import Engine

MAX_ENTRIES = 4
MAX_BYTES = 2 << 30

_entries: OrderedDict[int, Built] = OrderedDict()
_lock = threading.Lock()
_ids = itertools.count()
stats = {"hits": 0, "misses": 0}


class Built:
    """What was built for one graph content: its frozen private ``graph`` copy (``key``: its structure
    fingerprint, ``arrays``: its parameter arrays), the validated program per precision and the float
    engine per configuration."""

    def __init__(self, graph: ir.Graph, key: str) -> None:
        self.graph = copy.deepcopy(graph)
        self.key = key
        self.arrays = list(parameter_arrays(self.graph))
        for array in self.arrays:
            array.flags.writeable = False
        self.copy_bytes = sum(a.nbytes for a in self.arrays)
        self.programs: dict[str, Program] = {}
        self.engines: dict[str, Engine] = {}
        self.nbytes = self.copy_bytes  # the copy's and the kernels'

    def holds(self, graph: ir.Graph, key: str) -> bool:
        """Whether ``graph`` (of structure fingerprint ``key``) has this entry's content."""
        if key != self.key:
            return False
        arrays = parameter_arrays(graph)
        mine = iter(self.arrays)
        return all(same_bytes(a, next(mine, None)) for a in arrays) and next(mine, None) is None

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
            self.nbytes = self.copy_bytes + owned_bytes([e.kernels for e in self.engines.values()])
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


def lookup(graph: ir.Graph, keep: bool = True) -> Built:
    """The built programs and engines of a graph with ``graph``'s content (an empty entry, now kept,
    the first time; with ``keep=False`` — a fixed-point call, which keeps no engine — nothing is
    kept: what it builds is built on ``graph``, and no copy of its parameters outlives the call)."""
    if MAX_ENTRIES <= 0:
        return Uncached(graph)
    try:
        key = graph_fingerprint(graph, include_weights=False, include_metadata=True)
    except (TypeError, ValueError):  # metadata the canonical form cannot encode: not cached
        return Uncached(graph)
    with _lock:
        candidates = [(n, built) for n, built in _entries.items() if built.key == key]
    for n, built in candidates:
        if built.holds(graph, key):
            with _lock:
                if n in _entries:
                    _entries.move_to_end(n)
            stats["hits"] += 1
            return built
    stats["misses"] += 1
    if not keep or sum(a.nbytes for a in parameter_arrays(graph)) > _budget():  # its copy alone would not fit
        return Uncached(graph)
    built = Built(graph, key)
    with _lock:
        _entries[next(_ids)] = built
    _trim()
    return built


def clear() -> None:
    """Forget every built program and engine."""
    with _lock:
        _entries.clear()


def _discard(built: Built) -> None:
    with _lock:
        for n, entry in list(_entries.items()):
            if entry is built:
                del _entries[n]


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


def parameter_arrays(graph: ir.Graph) -> Iterator[np.ndarray]:
    """Every parameter array and numpy scalar of ``graph``'s nodes (subgraphs included) in node order,
    parameters by name, nested lists and dicts walked: the values the structure fingerprint leaves out."""
    for node in graph.nodes.values():
        if isinstance(node, ir.Graph):
            yield from parameter_arrays(node)
        else:
            params = node.stored_params()
            for name in sorted(params):
                yield from _leaves(params[name])


def _leaves(value) -> Iterator[np.ndarray]:
    if isinstance(value, np.ndarray):
        yield value
    elif isinstance(value, np.generic):
        yield np.asarray(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)


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
