"""The exporter's last route: one forward pass watched by forward hooks, for a ``forward`` that
``torch.fx`` cannot trace (data-dependent control flow, Norse's cells). It exports exactly what
that pass computed, or refuses.

Hooks on the convertible modules (fx's leaves with no leaf ancestor) see each call with its
tensors; every other module is hooked only to know which one is running. A
``TorchFunctionMode``, switched off inside the leaves, sees every torch function and tensor
method called between them. A tensor is *data* when it is a sample or a leaf's output; a torch
operation outside the leaves that reads data makes *derived* tensors (and marks every tensor it
changes in place as derived). The graph is accepted only if:

1. every tensor a leaf takes as data, and every tensor ``forward`` returns, is data (a derived
   tensor means an operation the graph has no node for: refused, naming the operation, or the
   unconvertible module whose ``forward`` ran it — UnsupportedModuleError);
2. a neuron's state arguments are not computed by the network, and a constant one is all zero
   (``state_args.py``); a stateful module runs once per forward (one state per IR node);
3. no leaf changes a tensor it was given in place unless it returns that very tensor (then later
   users read the leaf's output, which is what the tensor now holds), and no leaf holds data it
   did not compute in its attributes (a value handed over by assignment).

Derived tensors that only steer Python (``if h.sum() > 0``) are fine: the graph follows the
branches this sample took, which the exporter's warning says.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from talon import ir
from talon.ir.errors import ConversionError

from . import constant_outputs
from .convert import find_converter, is_stateful_node, overriding_subclass, unconvertible
from .executor import GraphExecutor
from .fx_trace import Tracer
from .graph_builder import GraphBuilder
from .recording import _under
from .state_args import check_state_arguments, no_output_error, stateful_call_refused

# Tensor methods that return their input's values unchanged (fx's route treats them as identity too).
_IDENTITY = {torch.Tensor.contiguous, torch.Tensor.clone, torch.Tensor.detach}


class _Call:
    __slots__ = ("args", "kwargs", "module", "output", "path", "versions")

    def __init__(self, path: str, module: nn.Module, args: tuple, kwargs: dict):
        self.path, self.module, self.args, self.kwargs = path, module, args, kwargs
        self.versions = [(t, t._version) for t in _tensors((args, kwargs))]
        self.output: Any = None


class _Watcher(TorchFunctionMode):
    """Sees the torch operations run outside the leaves and the leaf calls (see the module docstring)."""

    def __init__(self, model: nn.Module, samples: tuple, tracer: Tracer):
        super().__init__()
        self.model = model
        self.leaf_depth = 0
        self.stack: list[str] = []  # the non-leaf modules running, innermost last
        self.origin: dict[int, str] = {}  # id(tensor) -> "sample k" / "module 'path'" (data)
        self.derived: dict[int, tuple[str, str | None]] = {}  # id -> (operation, module path running it)
        self.returned_by: dict[int, str] = {}  # id -> the innermost non-leaf module that returned it (not data)
        self.keep: list[Any] = list(samples)
        self.calls: list[_Call] = []
        self.paths = {id(m): p for p, m in reversed(list(model.named_modules()))}
        self.tracer = tracer
        for k, s in enumerate(samples):
            self.origin[id(s)] = f"sample {k}"

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.leaf_depth:
            return func(*args, **kwargs)
        inputs = _tensors((args, kwargs))
        versions = [(t, t._version) for t in inputs]
        result = func(*args, **kwargs)
        reads_data = any(id(t) in self.origin or id(t) in self.derived for t in inputs)
        if not reads_data:
            return result
        name = getattr(func, "__name__", str(func))
        if func in _IDENTITY and len(inputs) == 1 and id(inputs[0]) in self.origin:
            for t in _tensors(result):
                self.origin[id(t)] = self.origin[id(inputs[0])]
                self.keep.append(t)
            return result
        changed = [t for t, v in versions if t._version != v]
        # blame the first operation on the way, and an unconvertible module that ran one first
        # (a value derived in 'gain', then negated: 'gain')
        inherited = sorted((self.derived[id(t)] for t in inputs if id(t) in self.derived), key=lambda b: b[1] is None)
        blame = inherited[0] if inherited else (name, self.stack[-1] if self.stack else None)
        for t in (*_tensors(result), *changed):
            self.origin.pop(id(t), None)
            self.derived[id(t)] = blame
            self.keep.append(t)
        return result

    # -- hooks
    def hook(self) -> list:
        handles, leaves = [], set()
        for path, module in self.model.named_modules():
            if not path or _under(path, leaves):
                continue
            if self.tracer.is_leaf_module(module, path):
                leaves.add(path)
                handles.append(module.register_forward_pre_hook(self._enter_leaf, with_kwargs=True))
                handles.append(module.register_forward_hook(self._leave_leaf, with_kwargs=True))
            else:
                handles.append(module.register_forward_pre_hook(self._enter_inner(path)))
                handles.append(module.register_forward_hook(self._leave_inner))
        return handles

    def _enter_inner(self, path: str):
        def enter(module, args) -> None:
            if not self.leaf_depth:
                self.stack.append(path)

        return enter

    def _leave_inner(self, module, args, output) -> None:  # a hook returning a value would replace the output
        if not self.leaf_depth:
            self.stack.pop()
            for t in _tensors(output):  # a value no data reaches: which module made it, for the refusal
                if id(t) not in self.origin and id(t) not in self.derived and id(t) not in self.returned_by:
                    self.returned_by[id(t)] = self.paths[id(module)]
                    self.keep.append(t)

    def _enter_leaf(self, module, args, kwargs):
        if self.leaf_depth == 0:
            path = self.paths[id(module)]
            self._check_attributes(module, path)
            self.calls.append(_Call(path, module, args, kwargs))
        self.leaf_depth += 1

    def _leave_leaf(self, module, args, kwargs, output):
        self.leaf_depth -= 1
        if self.leaf_depth:
            return
        call = self.calls[-1]
        call.output = output
        returned = {id(t) for t in _tensors(output)}
        for t, version in call.versions:
            if t._version != version and id(t) not in returned:
                raise ConversionError(
                    f"module {call.path!r} changes a tensor it was given in place but returns another one: the "
                    "graph cannot say which value later users read; use an out-of-place module (inplace=False)"
                )
        for k, t in enumerate(_tensors(output) if isinstance(output, (tuple, list)) else [output]):
            if isinstance(t, torch.Tensor):
                self.derived.pop(id(t), None)
                self.origin[id(t)] = f"module {call.path!r}" + (f" (element {k})" if k else "")
                self.keep.append(t)

    def _check_attributes(self, module: nn.Module, path: str) -> None:
        """A leaf whose attributes hold data it did not compute got it by assignment, unseen."""
        for sub in module.modules():
            for value in (*sub._buffers.values(), *sub.__dict__.values()):
                key, own = id(value), f"module {path!r}"
                if key in self.derived or (key in self.origin and self.origin[key].split(" (")[0] != own):
                    raise ConversionError(
                        f"module {path!r} holds a tensor computed by the network in its attributes (data handed "
                        "over by assignment, which no exporter sees); pass it as an argument instead"
                    )


class ExecutionTraceExport:
    """Build the graph of one watched forward pass (see the module docstring)."""

    def __init__(self, exporter, model: nn.Module, samples: tuple, custom_map, reason: str):
        self.exporter, self.model, self.samples, self.custom_map = exporter, model, samples, custom_map
        self.reason = reason  # why fx could not trace forward (for the messages)
        self.tracer = Tracer(custom_map)

    def run(self) -> ir.Graph:
        watcher = _Watcher(self.model, self.samples, self.tracer)
        handles = watcher.hook()
        try:
            with torch.no_grad(), watcher:
                result = self.model(*self.samples)
        finally:
            for h in handles:
                h.remove()
        b = GraphBuilder()
        node_of: dict[int, str] = {}  # id(tensor) -> IR node, for data tensors
        states: dict[int, str] = {}  # id(tensor) -> the module whose state it is
        for k, s in enumerate(self.samples):
            node_of[id(s)] = b.add("input" if k == 0 else f"input_{k}", ir.Input(np.array(s.shape[1:])))
        stateful_paths: set[str] = set()
        for call in watcher.calls:
            self._convert_call(call, b, node_of, states, stateful_paths, watcher)
        outputs, state_outputs, constants = 0, [], []
        returned = _tensors(result) if isinstance(result, (tuple, list, dict)) else [result]
        for position, t in enumerate(returned):
            if not isinstance(t, torch.Tensor):
                continue
            if id(t) in states:
                state_outputs.append(states[id(t)])
                continue
            key = id(t)
            if key not in node_of and key not in watcher.derived and key not in watcher.returned_by:
                # not computed from the input at all: a constant (constant_outputs, as on the fx route)
                constants.append(constant_outputs.attribute_path(self.model, t) or f"output {position}")
                continue
            source = self._source(t, node_of, watcher, "the value forward returns")
            b.add("output" if outputs == 0 else f"output_{outputs}", ir.Output(np.array(t.shape[1:])), [source])
            outputs += 1
        if outputs == 0:
            raise no_output_error(state_outputs)
        meta: dict[str, Any] = {"exporter": "talon.bridge.to_ir (execution hooks)"}
        if state_outputs:
            meta["state_outputs_not_exported"] = state_outputs
        constant_outputs.resolve(constants, meta, self.exporter.lossy, stacklevel=5)
        return b.graph(meta)

    def _convert_call(self, call: _Call, b: GraphBuilder, node_of, states, stateful_paths, watcher) -> None:
        path, module = call.path, call.module
        tensors = _tensors((call.args, call.kwargs))
        first = tensors[0] if tensors else None
        ctx = self.exporter._context(
            path,
            tuple(first.shape[1:]) if first is not None else None,
            _first_shape(call.output),
        )
        if isinstance(module, GraphExecutor):
            from .to_ir import executor_to_graph

            ir_node = executor_to_graph(module)
        else:
            converter = find_converter(module, self.custom_map)
            if converter is None:  # a leaf fx knows (torch.nn) that talon does not convert
                reason = overriding_subclass(module)
                raise unconvertible(path, type(module), f" ({reason})" if reason else "")
            ir_node = converter(module, ctx)
        where = f"module {path!r}"
        if is_stateful_node(ir_node):
            if path in stateful_paths:
                raise stateful_call_refused(path)
            stateful_paths.add(path)
            if first is None:
                raise ConversionError(f"{where} was called without a tensor input")
            sources = [self._source(first, node_of, watcher, f"the input of {where}")]
            state_args = [  # every other tensor argument (a Norse state tuple part by part) is state
                (name, t, id(t) in watcher.origin or id(t) in watcher.derived)
                for name, value in _argument_names(module, call.args, call.kwargs)
                for t in _tensors(value)
                if t is not first
            ]
            check_state_arguments(module, path, state_args, ctx.input_shape)
        else:
            merges = isinstance(ir_node, ir.Concat) or (
                isinstance(ir_node, ir.Skip) and ir_node.skip_type != "passthrough"
            )
            if not merges and len(tensors) != 1:
                raise ConversionError(f"{where} takes {len(tensors)} tensors; IR nodes of this type take 1")
            sources = [self._source(t, node_of, watcher, f"an input of {where}") for t in tensors]
        output = call.output
        if ir_node.is_multi_output:
            parts = b.add_multi_output(path, ir_node, sources[0], len(ir_node.split_sections))
            for part, t in zip(parts, output, strict=True):
                node_of[id(t)] = part
            return
        name = b.add(path, ir_node, sources)
        if isinstance(output, (tuple, list)):
            if not is_stateful_node(ir_node):
                raise ConversionError(f"{where} returns {len(output)} values; its IR node has one output")
            node_of[id(output[0])] = name
            for t in _tensors(list(output[1:])):
                states[id(t)] = path
        else:
            node_of[id(output)] = name

    def _source(self, t: torch.Tensor, node_of: dict, watcher: _Watcher, what: str) -> str:
        key = id(t)
        if key in node_of:
            return node_of[key]
        if key in watcher.derived:
            op, module_path = watcher.derived[key]
            if module_path is not None:
                module = self.model.get_submodule(module_path)
                raise unconvertible(
                    module_path,
                    type(module),
                    f": its forward computes {what} with torch operations ({op!r} among them) that no IR node stands "
                    f"for (torch.fx could not trace the model: {self.reason})",
                )
            raise ConversionError(
                f"operation {op!r} in {type(self.model).__name__}.forward computes {what}, but torch.fx could not "
                f"trace forward ({self.reason}) and the execution trace that replaces it sees only modules; make "
                "forward traceable (no data-dependent control flow) or wrap the operation in a module and pass "
                "custom_map={ModuleType: fn} to to_ir"
            )
        if key in watcher.returned_by:  # made by a module talon does not convert, from no data
            module_path = watcher.returned_by[key]
            module = self.model.get_submodule(module_path)
            raise unconvertible(
                module_path,
                type(module),
                f", and {what} is its output, which this forward pass did not compute from the model's input (it "
                "depends only on constants, parameters or the module's own state — e.g. a neuron whose input reaches "
                "its output a step later)",
            )
        raise ConversionError(
            f"{what} is not computed from the model's input (a constant, a parameter or another module's state): "
            "TALON IR has no node for it"
        )


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in ``value`` and its tuples, lists and dicts, in argument order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _argument_names(module: nn.Module, args: tuple, kwargs: dict) -> list[tuple[str, Any]]:
    """``(parameter name, value)`` of a call, positional arguments named after ``forward``'s parameters."""
    from .state_args import parameter_names

    names = parameter_names(module)
    named = [(names[k] if k < len(names) else f"argument {k}", v) for k, v in enumerate(args)]
    return named + list(kwargs.items())


def _first_shape(output: Any) -> tuple[int, ...] | None:
    first = output[0] if isinstance(output, (tuple, list)) and output else output
    return tuple(first.shape[1:]) if isinstance(first, torch.Tensor) else None
