"""PyTorch → TALON IR export.

``to_ir(model, sample)`` captures the **real topology** of ``model.forward`` with ``torch.fx``:
modules talon can convert are leaves (their calls become nodes named after the module path), and
the functions between them become nodes too — ``x + y`` a residual Skip, ``torch.cat`` a Concat,
``torch.split``/``chunk`` a ChannelSplit, ``F.relu``/``sigmoid``/``softmax``… activations,
``flatten``/``view(B, -1)`` a Flatten, ``x * c`` a Scale. Neuron calls return ``(spike, state…)``;
the spike is data, the states are not (a model that returns its membranes gets one Output per
spike/data value only). Forward arguments that default to ``None`` (snnTorch's ``mem=None``) are
specialised to ``None``.

When ``forward`` cannot be traced symbolically (data-dependent control flow, Norse's cells), the
exporter falls back to an execution trace of one forward pass (``execution_trace.py``) and warns
that the graph follows the branches the sample took; it refuses whatever that trace cannot prove
it saw (an operation between modules on the data path, an unconvertible module's own work).

Exporting a :class:`GraphExecutor` reproduces its graph exactly (edges, node types, hints), with
the current weights.
"""

from __future__ import annotations

import contextlib
import copy
import math
import operator
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from talon import ir
from talon.ir.coefficients import keep_dtype
from talon.ir.errors import ConversionError, UnsupportedModuleError

from . import constant_outputs
from .convert import (
    ConvertContext,
    find_converter,
    flatten_node,
    is_stateful_node,
    overriding_subclass,
    unconvertible,
)
from .execution_trace import ExecutionTraceExport
from .executor import GraphExecutor
from .export_model import check_hints, mark_needs_fx, needs_fx, to_eval_mode, unwrapped, warn_about_hooks
from .fx_trace import CustomMap, Traced, is_tuple_meta, recorded_shape, trace_with_shapes
from .graph_builder import GraphBuilder
from .inplace import arg_nodes, follow_mutations, last_uses
from .modules import NeuronModule, ThresholdModule, numpy_values
from .probe_state import Snapshot, unchanged
from .recording import RecordedNode, record_graph, sequential_graph
from .state_args import check_state_arguments, no_output_error, parameter_names, stateful_call_refused
from .transforms import fold_batchnorm


def _fresh(samples: tuple) -> tuple:
    """Copies of the sample tensors for one forward pass: an in-place first module (``ReLU(inplace=True)``)
    must change neither the caller's sample nor the next route's."""
    return tuple(s.clone() for s in samples)


class TALONExporter:
    """Export PyTorch / snnTorch / Norse models to TALON IR (see the module docstring).

    ``spiking=True`` exports ``nn.Linear`` as ``SpikingAffine`` carrying ``spike_mode``,
    ``weight_bits`` and ``accumulator_bits``. After ``export``, ``_input_shapes`` and
    ``_output_shapes`` map each module path to the shapes (without batch) seen in the forward pass.
    """

    def __init__(self, spiking: bool = False, spike_mode: str = "binary", weight_bits: int = 8,
                 accumulator_bits: int = 16, fold_batchnorm: bool = False, lossy: bool = False):  # fmt: skip
        check_hints(spike_mode, weight_bits, accumulator_bits)
        if not isinstance(lossy, bool):
            raise TypeError(f"lossy must be a bool, got {type(lossy).__name__}")
        self.lossy = lossy  # export without what has no IR node (a constant output), warned and recorded
        self.spiking, self.spike_mode = bool(spiking), spike_mode
        self.weight_bits, self.accumulator_bits = weight_bits, accumulator_bits
        self.fold_batchnorm = bool(fold_batchnorm)
        self._record_first = True  # False: always trace with torch.fx (the reference the recording must equal)
        self._route: str | None = None  # after export: "sequential", "recorded", "fx", "hooks" or "executor"
        self._input_shapes: dict[str, tuple[int, ...]] = {}
        self._output_shapes: dict[str, tuple[int, ...]] = {}

    def export(self, model: nn.Module, sample: torch.Tensor | Sequence[torch.Tensor],
               custom_map: CustomMap | None = None) -> ir.Graph:  # fmt: skip
        if not isinstance(model, nn.Module):
            raise TypeError(f"to_ir expects a torch.nn.Module, got {type(model).__name__}")
        samples = tuple(sample) if isinstance(sample, (tuple, list)) else (sample,)
        for s in samples:
            if not isinstance(s, torch.Tensor) or s.ndim < 1:
                raise TypeError(
                    "the sample must be a tensor (or tuple of tensors) with a batch dimension, e.g. torch.randn(1, 784)"
                )
        if custom_map is not None and not isinstance(custom_map, Mapping):
            raise TypeError("custom_map must be a dict {ModuleType: fn(module) -> ir.Node}")
        model = unwrapped(model)
        if isinstance(model, GraphExecutor):
            self._route = "executor"
            return executor_to_graph(model)
        source = f"{type(model).__module__}.{type(model).__qualname__}"
        warn_about_hooks(model)
        if find_converter(model, custom_map) is not None:
            # A convertible module exported on its own (to_ir(nn.Linear(4, 3), x)): tracing would look
            # inside it (F.linear has no node; snnTorch's forward does not trace and hooks would see
            # nothing), so it is exported as the one-module chain it is, its node named after its type.
            model = nn.Sequential(OrderedDict([(type(model).__name__.lower(), model)]))
        # Tracing and the probe's forward pass may change the model (snnTorch init_hidden membranes,
        # BatchNorm statistics): it is put back as it was afterwards, without copying it. They run
        # in eval mode, the behaviour the graph holds (a training-mode pass would update the
        # running statistics the BatchNorm nodes are then made from).
        training = to_eval_mode(model)
        try:
            with unchanged(model) as snapshot:
                graph = self._export(model, samples, custom_map, snapshot)
        finally:
            for module in training:
                module.training = True
        graph.metadata["source"] = source
        ir.warn_non_finite(graph, f"to_ir({type(model).__name__})", stacklevel=4)
        return fold_batchnorm(graph) if self.fold_batchnorm else graph

    def _export(self, model: nn.Module, samples: tuple, custom_map, snapshot: Snapshot) -> ir.Graph:
        """The graph by the first route that applies: a plain ``nn.Sequential`` chain, one recorded
        forward pass (both in ``recording.py``; they give fx's graph and fall through whenever they
        cannot prove it), fx tracing, and the execution trace when fx fails. ``self._route`` says
        which one made the graph."""
        if self._record_first and not needs_fx(model):
            graph = self._export_recorded(model, _fresh(samples), custom_map)
            if graph is not None:
                return graph
            mark_needs_fx(model)
            snapshot.restore()
        self._route = "fx"
        traced = _fresh(samples)
        try:
            gm = trace_with_shapes(model, traced, custom_map, record=self._shape_hooks)
        except Exception as exc:  # anything that stops symbolic tracing: the execution trace
            gm = None
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
            snapshot.restore()  # what the failed trace assigned (proxies) must not reach the forward pass
        if gm is not None:
            return _FxExport(self, gm, traced, custom_map).run()
        self._route = "hooks"
        with self._shape_hooks(model), torch.no_grad():
            model(*_fresh(samples))
        snapshot.restore()  # the watched pass starts from the model's own state, as fx's would
        graph = ExecutionTraceExport(self, model, _fresh(samples), custom_map, reason).run()
        warnings.warn(
            f"torch.fx could not trace {type(model).__name__}.forward ({reason}); exported from an execution "
            "trace (one forward pass): the graph follows the branches this sample took",
            stacklevel=4,
        )
        return graph

    def _export_recorded(self, model: nn.Module, samples: tuple, custom_map) -> ir.Graph | None:
        """The graph of a plain Sequential chain or of one recorded forward pass, or None when
        neither applies or converting it fails (fx then reproduces the error with its message)."""
        self._input_shapes, self._output_shapes = {}, {}
        try:
            self._route = "sequential"
            gm = sequential_graph(model, samples, custom_map, self._shape_hooks)
            if gm is None:
                self._route = "recorded"
                self._input_shapes, self._output_shapes = {}, {}
                gm = record_graph(model, samples, custom_map, (self._input_shapes, self._output_shapes))
            return None if gm is None else _FxExport(self, gm, samples, custom_map).run()
        except Exception:
            return None

    def _context(self, path: str, in_shape=None, out_shape=None) -> ConvertContext:
        return ConvertContext(path, in_shape, out_shape, self.spiking, self.spike_mode, self.weight_bits,
                              self.accumulator_bits)  # fmt: skip

    @contextlib.contextmanager
    def _shape_hooks(self, model: nn.Module):
        """Record each module's first input and output shapes (without batch) while a forward
        pass runs inside the block (the fx path: the shape propagation pass; no extra forward)."""
        self._input_shapes, self._output_shapes = {}, {}
        handles = []
        for path, module in model.named_modules():
            if not path:
                continue

            def hook(mod, args, output, path=path):
                first_in = next((a for a in args if isinstance(a, torch.Tensor)), None)
                first_out = output[0] if isinstance(output, (tuple, list)) else output
                if first_in is not None:
                    self._input_shapes.setdefault(path, tuple(first_in.shape[1:]))
                if isinstance(first_out, torch.Tensor):
                    self._output_shapes.setdefault(path, tuple(first_out.shape[1:]))

            handles.append(module.register_forward_hook(hook))
        try:
            yield
        finally:
            for h in handles:
                h.remove()


T1CExporter = TALONExporter


def to_ir(model: nn.Module, sample: torch.Tensor | Sequence[torch.Tensor], *, spiking: bool = False,
          spike_mode: str = "binary", weight_bits: int = 8, accumulator_bits: int = 16,
          custom_map: CustomMap | None = None, fold_batchnorm: bool = False,
          lossy: bool = False) -> ir.Graph:  # fmt: skip
    """Export ``model`` to a TALON IR graph, tracing it with ``sample`` (batch dimension included).

    BatchNorm layers are kept as nodes; ``fold_batchnorm=True`` folds those that follow a
    Linear/Conv into its weights (see ``talon.bridge.transforms.fold_batchnorm``).
    A tensor ``forward`` returns that is not computed from the input (``return y, self.c``) is
    refused with a ConversionError; ``lossy=True`` exports the graph without it, with a warning and
    ``metadata["constant_outputs_not_exported"]`` (:mod:`talon.bridge.constant_outputs`).
    """
    exporter = TALONExporter(spiking, spike_mode, weight_bits, accumulator_bits, fold_batchnorm, lossy)
    return exporter.export(model, sample, custom_map=custom_map)


torch_to_ir = to_ir


# ---- building the IR graph ---------------------------------------------------------------------------


_NODES = (fx.Node, RecordedNode)  # a traced graph's nodes, or a recorded one's (recording.py)


class _Val:
    """What an fx value is: data from an IR node, a tuple to index, a neuron state, or nothing."""

    def __init__(self, kind: str, ir_name: str | None = None, parts: list | None = None):
        self.kind, self.ir_name, self.parts = kind, ir_name, parts


_ADD = {operator.add, operator.iadd, torch.add}
_MUL = {operator.mul, operator.imul, torch.mul}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_ACTIVATIONS: dict[Any, Callable[..., ir.Node]] = {
    torch.relu: lambda *a, **k: ir.ReLU(),
    nn.functional.relu: lambda *a, **k: ir.ReLU(),
    nn.functional.leaky_relu: lambda x, negative_slope=0.01, *a, **k: ir.ReLU(negative_slope=negative_slope),
    torch.sigmoid: lambda *a, **k: ir.Sigmoid(),
    nn.functional.sigmoid: lambda *a, **k: ir.Sigmoid(),
    torch.tanh: lambda *a, **k: ir.Tanh(),
    nn.functional.tanh: lambda *a, **k: ir.Tanh(),
    torch.softmax: lambda x, dim, *a, **k: ir.Softmax(dim=dim),
    nn.functional.softmax: lambda x, dim=None, *a, **k: ir.Softmax(dim=_need_dim(dim)),
    nn.functional.gelu: lambda x, approximate="none", **k: ir.GELU(approximate=approximate),
    nn.functional.elu: lambda x, alpha=1.0, *a, **k: ir.ELU(alpha=alpha),
    nn.functional.max_pool2d: lambda x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, **k: (
        ir.MaxPool2d(kernel_size, stride or None, padding, dilation, ceil_mode)
    ),
    nn.functional.avg_pool2d: lambda x, kernel_size, stride=None, *a, **k: ir.AvgPool2d(
        kernel_size, stride or None, *a, **k
    ),
    nn.functional.dropout: lambda x, p=0.5, *a, **k: ir.Dropout(p=p),
}
_ACTIVATIONS[torch.relu_] = _ACTIVATIONS[nn.functional.relu_] = _ACTIVATIONS[torch.relu]  # in place: inplace.py
_METHOD_ACTIVATIONS: dict[str, Callable[..., ir.Node]] = {
    "relu": lambda *a, **k: ir.ReLU(),
    "relu_": lambda *a, **k: ir.ReLU(),
    "sigmoid_": lambda *a, **k: ir.Sigmoid(),
    "tanh_": lambda *a, **k: ir.Tanh(),
    "sigmoid": lambda *a, **k: ir.Sigmoid(),
    "tanh": lambda *a, **k: ir.Tanh(),
    "softmax": lambda x, dim, *a, **k: ir.Softmax(dim=dim),
}
_IDENTITY_METHODS = {"contiguous", "clone", "detach", "float"}


def _running_module(node: Any) -> tuple[str, type] | None:
    """The innermost submodule whose ``forward`` fx traced ``node`` in (its path and class), or None
    for an operation of the root's own ``forward`` (or a recorded node, which has no module stack)."""
    stack = node.meta.get("nn_module_stack") if isinstance(node, fx.Node) else None
    if not stack:
        return None
    path, kind = next(reversed(stack.values()))
    return (path, kind) if isinstance(kind, type) else None


def _need_dim(dim):
    if dim is None:
        raise ConversionError("softmax without dim is ambiguous; give dim explicitly")
    return dim


class _FxExport:
    def __init__(self, exporter: TALONExporter, gm: Traced, samples: tuple, custom_map):
        self.exporter, self.gm, self.samples, self.custom_map = exporter, gm, samples, custom_map
        self.b = GraphBuilder()
        self.values: dict[fx.Node, _Val] = {}
        self.modules = dict(gm.root.named_modules())
        self.state_outputs: list[str] = []
        self.constant_outputs: list[str] = []
        self.stateful_paths: set[str] = set()  # stateful modules already called (one state per IR node)

    def run(self) -> ir.Graph:
        inputs = 0
        nodes = list(self.gm.graph.nodes)
        last_use = last_uses(nodes, _NODES)
        for position, node in enumerate(nodes):
            if node.op == "placeholder":
                shape = recorded_shape(node.meta.get("tensor_meta"))
                if shape is None:
                    self.values[node] = _Val("none")
                    continue
                name = self.b.add("input" if inputs == 0 else f"input_{inputs}", ir.Input(np.array(shape[1:])))
                inputs += 1
                self.values[node] = _Val("data", name)
            elif node.op == "get_attr":
                self.values[node] = _Val("const")
            elif node.op == "call_module":
                self.values[node] = self._module(node)
            elif node.op in ("call_function", "call_method"):
                self.values[node] = self._function_in_module(node)
            if "mutated" in node.meta:  # an in-place operation: later uses read its result
                where = f"operation {node.name!r} ({getattr(node.target, '__name__', node.target)})"
                follow_mutations(node, position, nodes, last_use, self.values, where)
            if node.op == "output":
                self._outputs(node)
        meta = {"exporter": "talon.bridge.to_ir (torch.fx)"}
        if self.state_outputs:
            meta["state_outputs_not_exported"] = self.state_outputs
        constant_outputs.resolve(self.constant_outputs, meta, self.exporter.lossy, stacklevel=5)
        return self.b.graph(meta)

    # -- helpers
    def _data(self, arg: Any, where: str) -> str:
        val = self.values.get(arg) if isinstance(arg, _NODES) else None
        if val is None or val.kind != "data":
            kind = "a neuron state" if val is not None and val.kind == "state" else repr(arg)
            raise ConversionError(f"{where}: expected a tensor computed by the network, got {kind}")
        return val.ir_name

    def _meta_shape(self, node: fx.Node) -> tuple[int, ...] | None:
        return recorded_shape(node.meta.get("tensor_meta"))

    def _module(self, node: fx.Node) -> _Val:
        path = node.target
        module = self.modules[path]
        passed = (*node.args, *node.kwargs.values())  # a tensor passed by keyword is an input too
        tensor_args = [a for a in passed if isinstance(a, _NODES)]
        first = tensor_args[0] if tensor_args else None
        in_shape = self._meta_shape(first) if first is not None else None
        out_shape = self._meta_shape(node)
        ctx = self.exporter._context(path, in_shape[1:] if in_shape else None, out_shape[1:] if out_shape else None)
        if isinstance(module, GraphExecutor):
            ir_node = executor_to_graph(module)
        else:
            converter = find_converter(module, self.custom_map)
            if converter is None:
                reason = overriding_subclass(module)
                raise unconvertible(path, type(module), f" ({reason})" if reason else "")
            ir_node = converter(module, ctx)
            if not isinstance(ir_node, ir.Node):
                raise TypeError(f"the converter of module {path!r} returned {type(ir_node).__name__}, not an ir.Node")
        stateful = is_stateful_node(ir_node)
        merges = isinstance(ir_node, (ir.Concat,)) or (
            isinstance(ir_node, ir.Skip) and ir_node.skip_type != "passthrough"
        )
        if stateful:
            if path in self.stateful_paths:
                raise stateful_call_refused(path)
            self.stateful_paths.add(path)
            sources = [self._data(first, f"module {path!r}")]
            check_state_arguments(module, path, self._state_arguments(module, node, first), ctx.input_shape)
        elif merges:
            flat = [a for arg in passed for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
            sources = [self._data(a, f"module {path!r}") for a in flat if isinstance(a, _NODES)]
        else:
            if len(tensor_args) != 1:
                raise ConversionError(f"module {path!r} takes {len(tensor_args)} tensors; IR nodes of this type take 1")
            sources = [self._data(first, f"module {path!r}")]
        if ir_node.is_multi_output:
            parts = self.b.add_multi_output(path, ir_node, sources[0], len(ir_node.split_sections))
            return _Val("tuple", parts=[_Val("data", p) for p in parts])
        name = self.b.add(path, ir_node, sources)
        if stateful and is_tuple_meta(node.meta.get("tensor_meta")):
            n = len(node.meta["tensor_meta"])
            return _Val("tuple", name, parts=[_Val("data", name)] + [_Val("state", name)] * (n - 1))
        return _Val("data", name)

    def _state_arguments(self, module: nn.Module, node: fx.Node, data: Any) -> list[tuple[str, Any, bool]]:
        """``(name, constant value or None, computed by the network)`` of a neuron call's state arguments."""
        names = parameter_names(module)
        named = [(names[k] if k < len(names) else f"argument {k}", a) for k, a in enumerate(node.args)]
        states = []
        for name, arg in [*named, *node.kwargs.items()]:
            for part in arg_nodes(arg, _NODES):  # a state tuple (Norse) is checked part by part
                if part is data:
                    continue
                val = self.values.get(part)
                computed = val is not None and val.kind in ("data", "state", "tuple")
                states.append((name, part.meta.get("value"), computed))
        return states

    def _function_in_module(self, node: fx.Node) -> _Val:
        """``_function``; a refused operation of a submodule fx traced into also names that module,
        which has no conversion of its own (a framework's neuron talon does not convert, say)."""
        try:
            return self._function(node)
        except UnsupportedModuleError:
            raise
        except ConversionError as exc:
            inside = _running_module(node)
            if inside is None:
                raise
            raise unconvertible(*inside, f": {exc}") from None

    def _function(self, node: fx.Node) -> _Val:
        target, args, kwargs = node.target, node.args, node.kwargs
        inside = _running_module(node)
        where = f"operation {node.name!r} ({getattr(target, '__name__', target)})" + (
            f" in module {inside[0]!r} ({inside[1].__name__})" if inside else ""
        )
        if target is operator.getitem:
            base = self.values[args[0]]
            if base.kind == "tuple":
                part = base.parts[args[1]]
                return _Val("tuple", parts=part) if isinstance(args[1], slice) else part
            if base.kind in ("size", "const", "none"):
                return _Val(base.kind)
            raise ConversionError(f"{where}: indexing a tensor has no TALON IR equivalent")
        if (node.op == "call_method" and target in ("size", "dim")) or target in (getattr, len):
            return _Val("size")
        if getattr(target, "__name__", "") == "_assert_is_none":
            return _Val("none")
        if (node.op == "call_method" and target in _IDENTITY_METHODS) or (node.op == "call_method" and target == "to"):
            return self.values[args[0]]
        if target in _ADD or (node.op == "call_method" and target in ("add", "add_", "__add__")):
            operands = self._sum_operands(node, where)
            return _Val("data", self.b.add(node.name, ir.Skip("residual"), [self._data(a, where) for a in operands]))
        if target in _MUL or (node.op == "call_method" and target in ("mul", "mul_", "__mul__")):
            tensors = [a for a in args if isinstance(a, _NODES) and self.values[a].kind == "data"]
            scalars = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
            if len(tensors) != 1 or len(scalars) != 1:
                raise ConversionError(f"{where}: only tensor * number converts (to a Scale node)")
            shape = self._meta_shape(node)[1:]
            scale = ir.Scale(np.full(shape, scalars[0], dtype=np.float32))
            return _Val("data", self.b.add(node.name, scale, [self._data(tensors[0], where)]))
        if target in _CAT:
            tensors = kwargs["tensors"] if "tensors" in kwargs else args[0]
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            concat = ir.Concat(num_inputs=len(tensors), dim=dim)
            return _Val("data", self.b.add(node.name, concat, [self._data(t, where) for t in tensors]))
        if target in (torch.split, torch.chunk) or (node.op == "call_method" and target in ("split", "chunk")):
            return self._split(node, where)
        if target in (torch.flatten,) or (node.op == "call_method" and target == "flatten"):
            start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
            return _Val("data", self.b.add(node.name, flatten_node(start, end, where), [self._data(args[0], where)]))
        if target in (torch.reshape,) or (node.op == "call_method" and target in ("view", "reshape")):
            return self._reshape(node, where)
        if target in _ACTIVATIONS or (node.op == "call_method" and target in _METHOD_ACTIVATIONS):
            factory = _ACTIVATIONS.get(target) if node.op == "call_function" else _METHOD_ACTIVATIONS[target]
            self._check_functional_arguments(node, where)
            literal_args = [None if isinstance(a, _NODES) else a for a in args]
            ir_node = factory(*literal_args, **kwargs)
            return _Val("data", self.b.add(node.name, ir_node, [self._data(args[0], where)]))
        if inside:  # an operation of a submodule fx traced into: that module has no conversion
            op = f"{node.name!r} ({getattr(target, '__name__', target)})"
            raise unconvertible(*inside, f": its forward runs operation {op}, which has no TALON IR equivalent")
        raise ConversionError(
            f"{where} in {type(self.gm.root).__name__}.forward has no TALON IR equivalent; wrap it in a module and "
            "pass custom_map={ModuleType: fn} to to_ir"
        )

    def _check_functional_arguments(self, node: fx.Node, where: str) -> None:
        """Arguments a functional call's IR node cannot state are refused, not dropped: a ``dtype``
        (``F.softmax(x, 1, dtype=torch.float64)`` computes in another precision), and an
        ``F.dropout`` that drops in eval mode, where the export runs (``training`` defaults to True:
        the model is random at inference; ``training=self.training`` is the exportable form)."""
        if node.kwargs.get("dtype") is not None:
            raise ConversionError(f"{where}: dtype={node.kwargs['dtype']} has no TALON IR equivalent; remove it")
        if node.target is nn.functional.dropout:
            args, kwargs = node.args, node.kwargs
            p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
            training = kwargs.get("training", args[2] if len(args) > 2 else True)
            if training is True and p != 0:
                raise ConversionError(
                    f"{where}: F.dropout with training=True (its default) drops at inference too, so the model in "
                    "eval mode is random and no graph states it; call F.dropout(x, p, training=self.training) "
                    "or use nn.Dropout"
                )

    def _sum_operands(self, node: fx.Node, where: str) -> list:
        """The two tensors of ``x + y`` / ``torch.add(x, other=y)`` / ``x.add(y)``; a scaled sum
        (``alpha`` ≠ 1), other arguments or a constant operand are refused, never dropped."""
        kwargs = dict(node.kwargs)
        alpha = kwargs.pop("alpha", 1)
        operands = [*node.args, *(kwargs.pop(k) for k in ("input", "other") if k in kwargs)]
        if kwargs:
            raise ConversionError(f"{where}: argument(s) {sorted(kwargs)} have no TALON IR equivalent")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha != 1:
            raise ConversionError(
                f"{where}: a sum scaled by alpha={alpha!r} has no TALON IR equivalent; write it as x + {alpha!r} * y "
                "(a Scale and a Skip)"
            )
        if len(operands) != 2 or not all(isinstance(a, _NODES) and self.values[a].kind == "data" for a in operands):
            raise ConversionError(f"{where}: adding a constant has no TALON IR equivalent (only tensor + tensor)")
        return operands

    def _split(self, node: fx.Node, where: str) -> _Val:
        args, kwargs = node.args, node.kwargs
        source = args[0]
        shape = self._meta_shape(source)
        dim = kwargs.get("dim", args[2] if len(args) > 2 else 0)
        size = shape[dim]
        how = args[1] if len(args) > 1 else kwargs.get("split_size_or_sections", kwargs.get("chunks"))
        if getattr(node.target, "__name__", node.target) == "chunk":
            step = math.ceil(size / how)
            sections = [min(step, size - i) for i in range(0, size, step)]
        elif isinstance(how, int):
            sections = [min(how, size - i) for i in range(0, size, how)]
        else:
            sections = list(how)
        split = ir.ChannelSplit(split_sections=tuple(sections), dim=dim)
        parts = self.b.add_multi_output(node.name, split, self._data(source, where), len(sections))
        return _Val("tuple", parts=[_Val("data", p) for p in parts])

    def _reshape(self, node: fx.Node, where: str) -> _Val:
        source = node.args[0]
        in_shape, out_shape = self._meta_shape(source), self._meta_shape(node)
        if in_shape is None or out_shape is None or in_shape[0] != out_shape[0]:
            raise ConversionError(f"{where}: a reshape that changes the batch dimension has no TALON IR equivalent")
        src = self._data(source, where)
        if in_shape == out_shape:
            return _Val("data", src)
        inner, target = in_shape[1:], out_shape[1:]
        for start in range(len(inner)):
            for end in range(start, len(inner)):
                if (*inner[:start], math.prod(inner[start : end + 1]), *inner[end + 1 :]) == target:
                    return _Val("data", self.b.add(node.name, ir.Flatten(start, end), [src]))
        raise ConversionError(f"{where}: reshape {list(in_shape[1:])} -> {list(target)} is not a flatten; no IR node")

    def _outputs(self, node: fx.Node) -> None:
        flat: list = []

        def collect(arg):
            if isinstance(arg, (tuple, list)):
                for a in arg:
                    collect(a)
            elif isinstance(arg, dict):
                for a in arg.values():
                    collect(a)
            elif isinstance(arg, _NODES):
                flat.append(arg)

        collect(node.args[0])
        outputs = 0
        vals = []
        for arg in flat:  # a tuple returned whole or sliced (a neuron's spike and state): its parts
            val, meta = self.values[arg], arg.meta.get("tensor_meta")
            if val.kind == "tuple":
                metas = list(meta) if is_tuple_meta(meta) and len(meta) == len(val.parts) else [None] * len(val.parts)
                vals += list(zip(val.parts, metas, [arg] * len(val.parts), strict=True))
            else:
                vals.append((val, meta, arg))
        for position, (val, meta, arg) in enumerate(vals):
            if val.kind == "state":  # a returned membrane: state, not a network output
                self.state_outputs.append(val.ir_name)
                continue
            if val.kind == "const":  # the trace saw a tensor that does not depend on the input
                target = str(arg.target)  # an attribute path, or a tensor fx / the recording made in forward
                self.constant_outputs.append(f"output {position}" if target.startswith("_tensor_constant") else target)
                continue
            if val.kind != "data":
                continue
            # The shape the model really returned: a node's own output_shape may be partial (an Affine
            # states only its last axis, [out_features], and acts on a [B, 3, 12] input too).
            recorded = recorded_shape(meta)
            shape = recorded[1:] if recorded is not None else self.b.nodes[val.ir_name].output_shape
            self.b.add("output" if outputs == 0 else f"output_{outputs}", ir.Output(np.array(shape)), [val.ir_name])
            outputs += 1
        if outputs == 0:
            raise no_output_error(self.state_outputs)


# ---- GraphExecutor → graph ---------------------------------------------------------------------------

_TENSOR_FIELDS: dict[tuple[type, ...], dict[str, str]] = {
    (ir.Affine, ir.SpikingAffine): {"weight": "weight", "bias": "bias"},
    (ir.Linear,): {"weight": "weight"},
    (ir.Conv1d, ir.Conv2d, ir.SConv, ir.SDConv): {"weight": "weight", "bias": "bias"},
    (ir.SepConv2d,): {
        "depthwise_weight": "depthwise.weight", "depthwise_bias": "depthwise.bias",
        "pointwise_weight": "pointwise.weight", "pointwise_bias": "pointwise.bias",
    },
    (ir.Scale,): {"scale": "scale"},
    (ir.PReLU,): {"weight": "weight"},
    (ir.BatchNorm1d, ir.BatchNorm2d): {
        "weight": "weight", "bias": "bias", "running_mean": "running_mean", "running_var": "running_var",
    },
    (ir.LayerNorm,): {"weight": "weight", "bias": "bias"},
}  # fmt: skip


def _current_node(node: ir.Node, module: nn.Module, name: str) -> ir.Node:
    """``node`` with its arrays replaced by the module's current tensors (unchanged arrays are kept
    as they were, so an untouched executor re-exports bit for bit, in the original dtypes)."""
    if isinstance(module, GraphExecutor):
        return executor_to_graph(module)
    if isinstance(module, (NeuronModule, ThresholdModule)) and module.node is node:  # edited buffers: exact or refused
        return module.to_node(f"node {name!r}")
    fields = next((f for types, f in _TENSOR_FIELDS.items() if type(node) in types), None)
    params = node.params()
    if fields:
        for field_name, attr in fields.items():
            original = params.get(field_name)
            if original is None:
                continue
            tensor = module.get_parameter(attr) if attr in dict(module.named_parameters()) else module.get_buffer(attr)
            current = numpy_values(tensor, f"node {name!r} ({field_name})").reshape(original.shape)
            if not np.array_equal(current, original.astype(current.dtype)):
                params[field_name] = keep_dtype(original, current)  # the IR dtype when lossless
    return type(node)(**params, input_type=node.input_type, metadata=copy.deepcopy(node.metadata))


def executor_to_graph(executor: GraphExecutor) -> ir.Graph:
    """The IR graph of an executor: its recorded graph, edges and node types, with current weights."""
    if executor.graph is None:
        raise ConversionError(
            "this GraphExecutor was built from raw modules and records no IR graph; build it with "
            "bridge.ir_to_torch(graph) to re-export it exactly"
        )
    graph = executor.graph
    nodes = {name: _current_node(node, executor.module_of(name), name) for name, node in graph.nodes.items()}
    return ir.Graph(nodes, list(graph.edges), copy.deepcopy(graph.metadata))


__all__ = ["T1CExporter", "TALONExporter", "executor_to_graph", "to_ir", "torch_to_ir"]
