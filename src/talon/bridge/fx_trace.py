"""torch.fx tracing for the exporter: talon's leaf modules, and one forward pass that records
every value's shape (``node.meta["tensor_meta"]``, as ``torch.fx.passes.shape_prop`` would)."""

from __future__ import annotations

import bisect
import contextlib
import dis
import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import TensorMetadata

from talon import ir

from .convert import find_converter, overriding_subclass
from .executor import GraphExecutor

CustomMap = Mapping[type, Callable[[nn.Module], ir.Node]]


class Tracer(fx.Tracer):
    """fx's tracer with talon's leaves, made cheaper where it costs and records nothing we use:

    * no ``math`` auto-wrapping (fx patches every function of ``math`` on each trace): a math
      call has no IR equivalent, and a forward that applies one to a traced value now fails to
      trace and falls back to the execution trace (with its warning) instead of a ConversionError;
    * tuple unpacking of a traced value (``spk, mem = self.lif(x, mem)``) reads the caller's
      bytecode once per code object instead of disassembling it at every unpacking.
    """

    def __init__(self, custom_map: CustomMap | None):
        super().__init__(autowrap_modules=())
        self.custom_map = custom_map

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _Proxy(node, self)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, GraphExecutor) or find_converter(m, self.custom_map) is not None:
            return True
        if overriding_subclass(m) is not None:  # a leaf without a conversion: refused, naming the override
            return True
        return super().is_leaf_module(m, qualname)


class _Proxy(fx.Proxy):
    def __iter__(self):
        caller = inspect.currentframe().f_back
        count = _unpacked_at(caller.f_code, caller.f_lasti)
        if count is not None:
            return (self[i] for i in range(count))
        return self.tracer.iter(self)


@functools.lru_cache(maxsize=512)
def _instructions(code) -> tuple[list[int], list[int | None]]:
    """The offsets of ``code``'s instructions and, for each, the count of an ``UNPACK_SEQUENCE``."""
    instructions = list(dis.get_instructions(code))
    counts = [i.argval if i.opname == "UNPACK_SEQUENCE" else None for i in instructions]
    return [i.offset for i in instructions], counts


def _unpacked_at(code, last_instruction: int) -> int | None:
    """How many values the instruction running at ``last_instruction`` unpacks (None: it does not
    unpack); the instruction is the first at or after that offset, as fx's ``Proxy.__iter__`` reads it."""
    offsets, counts = _instructions(code)
    k = bisect.bisect_left(offsets, last_instruction)
    return counts[k] if k < len(counts) else None


@dataclass
class Traced:
    """The fx graph of ``root.forward``, its nodes' ``meta["tensor_meta"]`` filled by one run (or
    the same nodes recorded from one forward pass: ``recording.RecordedGraph``)."""

    root: nn.Module
    graph: Any  # fx.Graph | recording.RecordedGraph


class _ShapeMeta:
    """The shape of one tensor value (what the exporter reads of ShapeProp's TensorMetadata)."""

    __slots__ = ("shape",)

    def __init__(self, shape: torch.Size):
        self.shape = shape


def _run_recording_shapes(root: nn.Module, graph: fx.Graph, samples: tuple) -> None:
    """Run the traced graph once on the real module, recording each value's shape(s) in
    ``node.meta["tensor_meta"]`` (the shape propagation of ``torch.fx.passes.shape_prop``). A plain
    loop over the nodes: ``fx.Interpreter`` enters several context managers per node, which cost
    more than the model's own forward; values are dropped after their last use.

    It also records what the exporter needs to follow in-place operations: ``meta["mutated"]``,
    the input nodes whose tensors a call changed (their version counter moved),
    ``meta["returns_mutated"]`` those the call returned as its result (``relu_(h)`` returns
    ``h``), and for every value ``meta["identity"]`` (the ids of its tensors) and
    ``meta["storage"]`` (their storages' addresses): two values alive at once with the same
    storage alias each other."""
    last_use: dict[fx.Node, fx.Node] = {}
    for node in graph.nodes:
        for used in node.all_input_nodes:
            last_use[used] = node
    dropped_after: dict[fx.Node, list[fx.Node]] = {}
    for used, user in last_use.items():
        dropped_after.setdefault(user, []).append(used)
    env: dict[fx.Node, Any] = {}
    given = iter(samples)

    def value(arg):
        return fx.node.map_arg(arg, env.__getitem__)

    for node in graph.nodes:
        op = node.op
        if op == "placeholder":
            result = _placeholder(node, given)
        elif op == "get_attr":
            result = root
            for part in node.target.split("."):
                result = getattr(result, part)
        elif op == "output":
            return
        else:
            before = [(used, [(t, t._version) for t in _tensors(env[used])]) for used in node.all_input_nodes]
            if op == "call_module":
                result = root.get_submodule(node.target)(*value(node.args), **value(node.kwargs))
            elif op == "call_function":
                result = node.target(*value(node.args), **value(node.kwargs))
            else:  # call_method
                receiver, *rest = value(node.args)
                result = getattr(receiver, node.target)(*rest, **value(node.kwargs))
            mutated = [used for used, versions in before if any(t._version != v for t, v in versions)]
            if mutated:  # an in-place operation (see ``mutation_meta``)
                node.meta["mutated"] = mutated
                node.meta["returns_mutated"] = [used for used in mutated if result is env[used]]
        meta = shape_meta(result)
        if meta is not None:
            node.meta["tensor_meta"] = meta
        tensors = _tensors(result)
        node.meta["identity"] = tuple(id(t) for t in tensors)
        node.meta["storage"] = frozenset(t.untyped_storage().data_ptr() for t in tensors)
        if op == "get_attr" and isinstance(result, torch.Tensor):
            node.meta["value"] = result  # a constant (a neuron's initial state is checked against it)
        env[node] = result
        for used in dropped_after.get(node, ()):
            del env[used]


def _placeholder(node: fx.Node, given) -> Any:
    if str(node.target).startswith("*"):
        return list(given)
    try:
        return next(given)
    except StopIteration:
        if node.args:  # the parameter's default
            return node.args[0]
        raise TypeError(f"forward needs an argument for its parameter {node.target!r}; pass it in the sample") from None


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of a value (a tensor, or a tuple/list of them: a neuron's outputs)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def shape_meta(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return _ShapeMeta(value.shape)
    if isinstance(value, (tuple, list)):
        return tuple(shape_meta(v) for v in value)
    return None


def trace_with_shapes(model: nn.Module, samples: tuple, custom_map, record=contextlib.nullcontext) -> Traced:
    """Trace ``model`` symbolically, then run it once on ``samples`` to record the shapes
    (``record(model)`` wraps that one forward pass: the exporter's shape hooks)."""
    params = list(inspect.signature(model.forward).parameters.values())[len(samples) :]
    concrete = {p.name: None for p in params if p.default is None}
    graph = Tracer(custom_map).trace(model, concrete_args=concrete or None)
    with record(model), torch.no_grad():
        _run_recording_shapes(model, graph, samples)
    return Traced(model, graph)


def recorded_shape(meta: Any) -> tuple[int, ...] | None:
    """The recorded shape (of the first element when the value is a tuple)."""
    if isinstance(meta, (_ShapeMeta, TensorMetadata)):
        return tuple(meta.shape)
    if isinstance(meta, (tuple, list)) and meta:
        return recorded_shape(meta[0])
    return None


def is_tuple_meta(meta: Any) -> bool:
    return isinstance(meta, (tuple, list)) and not isinstance(meta, TensorMetadata)
