"""The exporter's fast path: one recorded forward pass instead of symbolic tracing, used only when
the recording proves that it saw the whole dataflow.

``torch.fx`` tracing costs more than the forward pass that follows it (it patches
``nn.Module.__call__``/``__getattr__`` on every trace, builds proxies and their arguments). For a
``forward`` whose only work outside the leaf modules is wiring — calling leaves, unpacking their
tuples, passing values on, returning them (``nn.Sequential``, the tutorials' ``spk, mem =
self.lif(self.fc(x), mem)``) — the graph fx would build is known from one real forward pass, which
the exporter runs anyway to record the shapes. :func:`record_graph` runs that pass and builds the
same ``torch.fx`` graph (placeholders, ``call_module`` nodes named by module path, ``getitem`` for
tuple elements, ``get_attr`` constants, the output) with the shapes in ``node.meta["tensor_meta"]``,
so the exporter converts it with the very code it uses for fx graphs.

**Proof of completeness.** The leaf modules are fx's (the tracer's ``is_leaf_module``) that have
no leaf ancestor; a ``TorchFunctionMode`` sees every torch function and tensor method called
outside them (it is switched off inside a leaf call). The recording is accepted only if

1. ``forward`` is the class's plain function taking the samples, its other parameters defaulting
   to ``None`` (fx's concrete arguments); the samples are distinct tensors; no module (nor the
   global registry) has forward or backward hooks;
2. outside the leaves, no torch operation touches a sample or an ``nn.Parameter`` (fx would trace
   it as a graph operation), and none runs after the first leaf call (afterwards the modules'
   state differs from what fx's trace sees, which runs no leaf); operations before it compute
   constants, as they do during fx's trace;
3. every tensor a leaf receives (in its arguments, tuples and lists included) and every tensor
   ``forward`` returns is, by identity, a sample, a leaf's output or an element of a leaf's tuple
   output, or one of those constants — anything else (a tensor made by an operation the mode does
   not see, a parameter passed as is, a module's attribute) means unseen dataflow;
4. every leaf output is a new object (``nn.Identity``, an in-place ReLU or eval-mode dropout
   return their input: which of the two a later use means is then unknown), a tensor a leaf changes
   in place (its version counter moved) is not used afterwards (fx's route follows such mutations,
   ``inplace.py``), and no leaf holds a sample or another leaf's output in its state when it is
   called (data handed over by attribute assignment, invisible to both tracers).

Otherwise the recording stops (at the first violation) and the exporter traces with fx as before;
it also does so when converting the recorded graph raises, so errors keep fx's messages.
Given 1–4, the only code between the leaves is Python glue that does no tensor work, which fx
traces into the same nodes in the same order. (Glue that inspects a tensor without a torch call —
``isinstance(x, torch.Tensor)`` — sees a real tensor here where fx sees a proxy: the recording
then follows the branch the model really takes.)
"""

from __future__ import annotations

import inspect
import operator
import types
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as _module_globals
from torch.overrides import TorchFunctionMode, _get_current_function_mode

from .fx_trace import CustomMap, Traced, Tracer, shape_meta

_LITERALS = (int, float, bool, str, type(None))
_VARIADIC = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
_GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks")  # fmt: skip


class RecordedNode:
    """A node of a recorded graph: what the exporter reads of an ``RecordedNode`` (``op``, ``target``,
    ``args``, ``kwargs``, ``meta``, ``name``), without the bookkeeping of ``fx.Graph.create_node``
    (name uniquing, users, argument trees) that costs as much as the leaves' forward passes."""

    __slots__ = ("args", "kwargs", "meta", "name", "op", "target")

    def __init__(self, op: str, target: Any, args: tuple = (), kwargs: dict | None = None, meta: Any = None):
        self.op, self.target, self.args, self.kwargs = op, target, args, {} if kwargs is None else kwargs
        self.name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
        self.meta = {} if meta is None else {"tensor_meta": meta}

    def __repr__(self) -> str:
        return f"RecordedNode({self.op}, {self.name})"


class RecordedGraph:
    """The nodes of a recorded forward pass, in execution order (``fx.Graph.nodes`` for the exporter)."""

    __slots__ = ("nodes",)

    def __init__(self):
        self.nodes: list[RecordedNode] = []

    def add(self, op: str, target: Any, args: tuple = (), kwargs: dict | None = None, meta: Any = None) -> RecordedNode:
        node = RecordedNode(op, target, args, kwargs, meta)
        self.nodes.append(node)
        return node


class _Incomplete(Exception):
    """The recording cannot prove its graph complete (raised inside the forward pass to stop it)."""


def record_graph(model: nn.Module, samples: tuple, custom_map: CustomMap | None,
                 shapes: tuple[dict, dict]) -> Traced | None:  # fmt: skip
    """The fx graph of ``model.forward`` from one recorded forward pass on ``samples``, with the
    shapes recorded, or None when the recording cannot prove it complete (see the module
    docstring). ``shapes`` are the exporter's ``(input_shapes, output_shapes)`` dicts, filled as
    its shape hooks fill them during fx's shape pass. The caller restores the model afterwards."""
    if not _plain_forward(model, len(samples)) or len({id(s) for s in samples}) != len(samples):
        return None
    modules = list(model.named_modules())
    if _hooked(m for _, m in modules):
        return None
    recorder = _Recorder(samples, shapes)
    handles = recorder.hook(modules, Tracer(custom_map))
    try:
        with torch.no_grad():
            recorder.push()
            try:
                result = type(model).forward(model, *samples)
            finally:
                recorder.pop_if_active()
            recorder.finish(result)
    except _Incomplete:
        return None
    finally:
        for h in handles:
            h.remove()
    return Traced(model, recorder.graph)


def sequential_graph(model: nn.Module, samples: tuple, custom_map: CustomMap | None, record) -> Traced | None:
    """The graph of an ``nn.Sequential`` of leaves (nested plain Sequentials flattened), or None
    (also when a module in it has its own ``__call__``).

    Its dataflow is known without tracing or recording: ``Sequential.forward`` feeds each module
    the previous one's output, and fx traces exactly that chain (a plain Sequential is traced
    through, its leaves become ``call_module`` nodes named by their first path). The chain is run
    once, leaf by leaf as fx's shape pass runs it (``record(model)`` wraps it: the exporter's shape
    hooks), to record the shapes. Identity of values plays no part, so leaves that return their
    input (``nn.Identity``, eval-mode dropout) are fine here."""
    if len(samples) != 1 or not _plain_sequential(model):
        return None
    tracer = Tracer(custom_map)
    paths: dict[int, str] = {}
    for path, module in model.named_modules():
        paths.setdefault(id(module), path)
    chain: list[tuple[str, nn.Module]] = []
    if not _chain(model, tracer, paths, chain):
        return None
    graph = RecordedGraph()
    value = samples[0]
    node = graph.add("placeholder", "input", meta=shape_meta(value))
    with record(model), torch.no_grad():
        for path, module in chain:
            value = module(value)
            node = graph.add("call_module", path, (node,), meta=shape_meta(value))
    graph.add("output", "output", (node,))
    return Traced(model, graph)


def _hooked(modules) -> bool:
    """Whether a hook (global, or on one of ``modules``) could add to or change what they compute."""
    return any(getattr(_module_globals, name) for name in _GLOBAL_HOOKS) or any(
        getattr(m, name) for m in modules for name in _HOOKS
    )


def _plain_call(module: nn.Module) -> bool:
    """Calling ``module`` runs ``nn.Module.__call__``: a subclass's own ``__call__`` may compute more
    than its ``forward`` (fx records that work; running the module would hide it)."""
    return type(module).__call__ is nn.Module.__call__


def _plain_sequential(module: nn.Module) -> bool:
    cls = type(module)
    return (
        isinstance(module, nn.Sequential)
        and cls.forward is nn.Sequential.forward
        and cls.__iter__ is nn.Sequential.__iter__
        and "forward" not in module.__dict__
        and _plain_call(module)
    )


def _chain(seq: nn.Module, tracer: Tracer, paths: dict[int, str], chain: list) -> bool:
    """Append the leaves ``seq.forward`` calls, in order; False if one of its modules is neither a
    leaf nor a plain Sequential (its own forward is then recorded instead)."""
    for module in seq._modules.values():
        if module is None:
            return False
        path = paths[id(module)]
        if not _plain_call(module):
            return False
        if tracer.is_leaf_module(module, path):
            chain.append((path, module))
        elif not (_plain_sequential(module) and _chain(module, tracer, paths, chain)):
            return False
    return True


def _plain_forward(model: nn.Module, n_samples: int) -> bool:
    """``forward`` is the class's plain function (a method of the model, not wrapped); the samples
    fill its first parameters and the others default to ``None`` (what fx's trace, given those as
    concrete ``None``, sees). Read from the code object: ``inspect.signature`` costs more."""
    forward = getattr(type(model), "forward", None)
    if type(forward) is not types.FunctionType or getattr(model.forward, "__func__", None) is not forward:
        return False
    if hasattr(forward, "__wrapped__") or hasattr(forward, "__signature__"):
        return False
    code = forward.__code__
    if code.co_flags & _VARIADIC or code.co_kwonlyargcount:
        return False
    n_rest = code.co_argcount - 1 - n_samples  # the parameters after self and the samples
    defaults = forward.__defaults__ or ()
    if n_rest < 0 or n_rest > len(defaults):
        return False
    return all(d is None for d in defaults[len(defaults) - n_rest :])


class _Recorder(TorchFunctionMode):
    """Builds the fx graph while the model runs; raises :class:`_Incomplete` at a violation."""

    def __init__(self, samples: tuple, shapes: tuple[dict, dict]):
        super().__init__()
        self.graph = RecordedGraph()
        self.input_shapes, self.output_shapes = shapes
        self.keep: list[Any] = []  # every object whose id is recorded stays alive (ids are not reused)
        self.data: dict[int, RecordedNode] = {}  # a sample or a leaf's output -> its node
        self.owner: dict[int, nn.Module] = {}  # a leaf's output -> that leaf
        self.elements: dict[int, tuple[RecordedNode, int, Any]] = {}  # an element of a leaf's tuple output
        self.element_nodes: dict[int, RecordedNode] = {}
        self.constants: dict[int, Any] = {}  # tensors computed outside the leaves before the first leaf
        self.constant_nodes: dict[int, RecordedNode] = {}
        self.lists: dict[int, list[int]] = {}  # a list a leaf returned -> the ids of its elements then
        self.paths: dict[int, str] = {}  # id(module) -> its path (the first, as fx names it)
        self.frontier: set[int] = set()  # the leaves fx's trace reaches: leaves with no leaf ancestor
        self.failure: str | None = None  # set as well as raised: a forward may swallow the exception
        self.depth = 0
        self.leaf_called = False
        self.active = False
        self.pending: list[tuple[tuple, dict]] = []
        for k, s in enumerate(samples):
            node = self.graph.add("placeholder", "x" if k == 0 else f"x_{k}", meta=shape_meta(s))
            self._remember_data(s, node, None)

    # -- the mode: torch operations outside the leaves
    def push(self) -> None:
        self.__enter__()
        self.active = True

    def pop_if_active(self) -> None:
        if self.active:
            self.active = False
            if _get_current_function_mode() is self:
                self.__exit__(None, None, None)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.leaf_called:
            self._fail(f"{getattr(func, '__name__', func)} runs between the modules")
        for t in _tensors((args, kwargs)):
            if id(t) in self.data or id(t) in self.elements or isinstance(t, nn.Parameter):
                self._fail(f"{getattr(func, '__name__', func)} applied to the input or a parameter")
        result = func(*args, **kwargs)
        for t in _tensors(result):
            if id(t) not in self.constants:
                self.constants[id(t)] = t
                self.keep.append(t)
        return result

    # -- hooks on the leaves
    def hook(self, modules: list[tuple[str, nn.Module]], tracer: Tracer) -> list:
        """Hook the leaves (the recording) and every other module below the root (the shapes of
        the modules a leaf calls, which fx's shape pass records too)."""
        leaf_paths: set[str] = set()
        handles = []
        for path, module in modules:
            if not path:
                continue
            self.paths[id(module)] = path
            if not _under(path, leaf_paths) and tracer.is_leaf_module(module, path):
                leaf_paths.add(path)
                self.frontier.add(id(module))
                handles.append(module.register_forward_pre_hook(self._enter_leaf, with_kwargs=True))
                handles.append(module.register_forward_hook(self._leave_leaf, with_kwargs=True))
            else:
                handles.append(module.register_forward_hook(self._inner_shapes))
        return handles

    def _enter_leaf(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if self.depth == 0:
            if not self.active or _get_current_function_mode() is not self:
                self._fail("forward changed the torch function mode stack")
            self.__exit__(None, None, None)  # the leaf runs without the mode (and its cost)
            self.active = False
            self._check_state(module)
            versions = [(t, t._version) for t in _tensors((args, kwargs))]
            self.pending.append((self._arg(args), self._arg(kwargs), versions))
        self.depth += 1

    def _leave_leaf(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        self.depth -= 1
        path = self.paths[id(module)]
        self._record_shapes(path, args, output)
        if self.depth:
            return
        self.leaf_called = True
        node_args, node_kwargs, versions = self.pending.pop()
        for t, version in versions:  # a tensor the leaf changed in place: a later use would read the new value
            if t._version != version:
                ptr = t.untyped_storage().data_ptr()
                if any(isinstance(o, torch.Tensor) and o is not t and o.untyped_storage().data_ptr() == ptr
                       for o in self.keep):  # fmt: skip
                    self._fail(f"module {path!r} changes a tensor in place that another value is a view of")
                for table in (self.data, self.elements, self.constants):
                    table.pop(id(t), None)  # any later use now fails as unseen dataflow (fx follows it)
        node = self.graph.add("call_module", path, node_args, node_kwargs, shape_meta(output))
        if isinstance(output, (tuple, list)):
            self._remember_data(output, node, module)
            for i, element in enumerate(output):
                if not isinstance(element, _LITERALS):
                    if self._known(element):
                        self._fail(f"module {path!r} returns a value it was given")
                    self.elements[id(element)] = (node, i, element)
                    self._watch_list(element)
                    self.owner[id(element)] = module
                    self.keep.append(element)
        elif isinstance(output, torch.Tensor):
            self._remember_data(output, node, module)
        else:
            self._fail(f"module {path!r} returns a {type(output).__name__}")
        self.push()  # last: the work above must not meet the mode

    def _inner_shapes(self, module: nn.Module, args: tuple, output: Any) -> None:
        if self.depth:  # a module a leaf calls (fx's shape pass runs these too)
            self._record_shapes(self.paths[id(module)], args, output)

    def _record_shapes(self, path: str, args: tuple, output: Any) -> None:
        first_in = next((a for a in args if isinstance(a, torch.Tensor)), None)
        first_out = output[0] if isinstance(output, (tuple, list)) else output
        if first_in is not None:
            self.input_shapes.setdefault(path, tuple(first_in.shape[1:]))
        if isinstance(first_out, torch.Tensor):
            self.output_shapes.setdefault(path, tuple(first_out.shape[1:]))

    def _fail(self, why: str) -> None:
        self.failure = why
        raise _Incomplete(why)

    def _check_state(self, module: nn.Module) -> None:
        for sub in module.modules() if module._modules else (module,):
            values = (*sub._buffers.values(), *sub._parameters.values(), *sub.__dict__.values())
            keys = [id(v) for v in values]
            if self.data.keys().isdisjoint(keys) and self.elements.keys().isdisjoint(keys):
                continue
            for key in keys:
                if (key in self.data or key in self.elements) and self.owner.get(key) is not module:
                    self._fail(f"a leaf holds data it did not compute: {type(module).__name__}")

    # -- values
    def _remember_data(self, value: Any, node: RecordedNode, module: nn.Module | None) -> None:
        if self._known(value):
            self._fail("a value is known twice")
        self.data[id(value)] = node
        self.keep.append(value)
        if module is not None:
            self.owner[id(value)] = module
        self._watch_list(value)

    def _watch_list(self, value: Any) -> None:
        """A list a leaf returns can be changed in place before it is used (``outs.append(y)``,
        which fx would trace as an operation): remember its contents, checked at every use."""
        if isinstance(value, list):
            self.lists[id(value)] = [id(v) for v in value]

    def _known(self, value: Any) -> bool:
        key = id(value)
        return key in self.data or key in self.elements or key in self.constants

    def _arg(self, value: Any) -> Any:
        """``value`` with every recorded object replaced by its node (fx's ``create_arg``)."""
        key = id(value)
        if key in self.lists and self.lists[key] != [id(v) for v in value]:
            self._fail("a list a module returned was changed before its use")
        if key in self.data:
            return self.data[key]
        if key in self.elements:
            node = self.element_nodes.get(key)
            if node is None:
                base, index, element = self.elements[key]
                node = self.graph.add("call_function", operator.getitem, (base, index), meta=shape_meta(element))
                self.element_nodes[key] = node
            return node
        if key in self.constants:
            node = self.constant_nodes.get(key)
            if node is None:
                target = f"_tensor_constant{len(self.constant_nodes)}"
                node = self.graph.add("get_attr", target, meta=shape_meta(self.constants[key]))
                node.meta["value"] = self.constants[key]  # a neuron's initial state is checked against it
                self.constant_nodes[key] = node
            return node
        if isinstance(value, _LITERALS):
            return value
        if type(value) is tuple:
            return tuple([self._arg(v) for v in value])
        if type(value) is list:
            return [self._arg(v) for v in value]
        if type(value) is dict:
            return {k: self._arg(v) for k, v in value.items()}
        self._fail(f"a {type(value).__name__} that no recorded module produced")

    def finish(self, result: Any) -> None:
        if self.failure is not None or self.depth or self.pending:
            self._fail(self.failure or "a module call did not finish")
        self.graph.add("output", "output", (self._output(result),))

    def _output(self, value: Any) -> Any:
        if type(value) not in (tuple, list, dict) or id(value) in self.data:
            return self._arg(value)
        if isinstance(value, dict):
            return {k: self._output(v) for k, v in value.items()}
        return type(value)(self._output(v) for v in value)


def _under(path: str, leaf_paths: set[str]) -> bool:
    """Whether a proper ancestor of ``path`` is one of ``leaf_paths``."""
    end = path.rfind(".")
    while end > 0:
        if path[:end] in leaf_paths:
            return True
        end = path.rfind(".", 0, end)
    return False


def _tensors(value: Any) -> list[torch.Tensor]:
    """The tensors in ``value`` and its tuples, lists and dicts."""
    found, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, torch.Tensor):
            found.append(v)
        elif isinstance(v, (tuple, list)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
    return found
