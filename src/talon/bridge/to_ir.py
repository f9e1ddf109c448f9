"""PyTorch → TALON IR export.

``to_ir(model, sample)`` captures the **real topology** of ``model.forward`` with ``torch.fx``:
modules talon can convert are leaves (their calls become nodes named after the module path), and
the functions between them become nodes too — ``x + y`` a residual Skip, ``torch.cat`` a Concat,
``torch.split``/``chunk`` a ChannelSplit, ``F.relu``/``sigmoid``/``softmax``… activations,
``flatten``/``view(B, -1)`` a Flatten, ``x * c`` a Scale. Neuron calls return ``(spike, state…)``;
the spike is data, the states are not (a model that returns its membranes gets one Output per
spike/data value only). Forward arguments that default to ``None`` (snnTorch's ``mem=None``) are
specialised to ``None``.

When ``forward`` cannot be traced symbolically (data-dependent control flow), the exporter falls
back to an execution trace with forward hooks and **warns**: operations that are not modules are
invisible to hooks, so branches built with them may be lost.

Exporting a :class:`GraphExecutor` reproduces its graph exactly (edges, node types, hints), with
the current weights.
"""

from __future__ import annotations

import contextlib
import copy
import math
import operator
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from talon import ir
from talon.ir.errors import ConversionError, UnsupportedModuleError

from .convert import ConvertContext, find_converter, flatten_node, is_stateful_node
from .executor import GraphExecutor
from .fx_trace import CustomMap, Traced, Tracer, is_tuple_meta, recorded_shape, trace_with_shapes
from .probe_state import Snapshot, unchanged
from .recording import RecordedNode, record_graph, sequential_graph
from .transforms import fold_batchnorm


class TALONExporter:
    """Export PyTorch / snnTorch / Norse models to TALON IR (see the module docstring).

    ``spiking=True`` exports ``nn.Linear`` as ``SpikingAffine`` carrying ``spike_mode``,
    ``weight_bits`` and ``accumulator_bits``. After ``export``, ``_input_shapes`` and
    ``_output_shapes`` map each module path to the shapes (without batch) seen in the forward pass.
    """

    def __init__(self, spiking: bool = False, spike_mode: str = "binary", weight_bits: int = 8,
                 accumulator_bits: int = 16, fold_batchnorm: bool = False):  # fmt: skip
        _check_hints(spike_mode, weight_bits, accumulator_bits)
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
        if isinstance(model, GraphExecutor):
            self._route = "executor"
            return executor_to_graph(model)
        source = f"{type(model).__module__}.{type(model).__qualname__}"
        _warn_about_hooks(model)
        if find_converter(model, custom_map) is not None:
            # A convertible module exported on its own (to_ir(nn.Linear(4, 3), x)): tracing would look
            # inside it (F.linear has no node; snnTorch's forward does not trace and hooks would see
            # nothing), so it is exported as the one-module chain it is, its node named after its type.
            model = nn.Sequential(OrderedDict([(type(model).__name__.lower(), model)]))
        # Tracing and the probe's forward pass may change the model (snnTorch init_hidden membranes,
        # BatchNorm statistics): it is put back as it was afterwards, without copying it.
        with unchanged(model) as snapshot:
            graph = self._export(model, samples, custom_map, snapshot)
        graph.metadata["source"] = source
        ir.warn_non_finite(graph, f"to_ir({type(model).__name__})", stacklevel=4)
        return fold_batchnorm(graph) if self.fold_batchnorm else graph

    def _export(self, model: nn.Module, samples: tuple, custom_map, snapshot: Snapshot) -> ir.Graph:
        """The graph by the first route that applies: a plain ``nn.Sequential`` chain, one recorded
        forward pass (both in ``recording.py``; they give fx's graph and fall through whenever they
        cannot prove it), fx tracing, and the execution trace when fx fails. ``self._route`` says
        which one made the graph."""
        if self._record_first and not _needs_fx(model):
            graph = self._export_recorded(model, samples, custom_map)
            if graph is not None:
                return graph
            _mark_needs_fx(model)
            snapshot.restore()
        self._route = "fx"
        try:
            gm = trace_with_shapes(model, samples, custom_map, record=self._shape_hooks)
        except Exception as exc:  # anything that stops symbolic tracing: fall back to hooks
            gm = None
            snapshot.restore()  # what the failed trace assigned (proxies) must not reach the forward pass
            warnings.warn(
                f"torch.fx could not trace {type(model).__name__}.forward ({type(exc).__name__}: {exc}); "
                "exporting from an execution trace (forward hooks). Operations that are not modules "
                "(+, torch.cat, ...) are invisible to hooks: check that no branch was lost.",
                stacklevel=4,
            )
        if gm is not None:
            return _FxExport(self, gm, samples, custom_map).run()
        self._route = "hooks"
        with self._shape_hooks(model), torch.no_grad():
            model(*samples)
        return _HookExport(self, model, samples, custom_map).run()

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

_VALID_HINTS: set[tuple] = set()


def _check_hints(spike_mode: Any, weight_bits: Any, accumulator_bits: Any) -> None:
    """Validate the SpikingAffine hints with the IR's own rules; a combination that passed is
    remembered by value *and* type (``8`` and ``8.0`` are checked apart)."""
    key: tuple | None = tuple((type(v), v) for v in (spike_mode, weight_bits, accumulator_bits))
    try:
        if key in _VALID_HINTS:
            return
    except TypeError:  # unhashable: checked every time
        key = None
    ir.SpikingAffine(np.zeros((1, 1), np.float32), spike_mode=spike_mode, weight_bits=weight_bits,
                     accumulator_bits=accumulator_bits)  # fmt: skip
    if key is not None:
        _VALID_HINTS.add(key)


# Models whose recording could not prove its graph complete: exporting them again goes straight to
# fx. Only a speed hint (the fx export is the reference the recording equals), kept per instance.
_NEEDS_FX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _needs_fx(model: nn.Module) -> bool:
    try:
        return model in _NEEDS_FX
    except TypeError:  # a module that is not hashable or not weak-referenceable
        return False


def _mark_needs_fx(model: nn.Module) -> None:
    with contextlib.suppress(TypeError):
        _NEEDS_FX[model] = True


def _warn_about_hooks(model: nn.Module) -> None:
    """Forward hooks can change what a module returns; no route exports what they do."""
    hooked = [path or "the model" for path, m in model.named_modules() if m._forward_hooks or m._forward_pre_hooks]
    if hooked:
        warnings.warn(
            f"to_ir: forward hooks on {', '.join(map(repr, hooked))}: the graph holds what the modules compute, "
            "not what their hooks change; remove the hooks that change values before exporting",
            stacklevel=4,
        )


def to_ir(model: nn.Module, sample: torch.Tensor | Sequence[torch.Tensor], *, spiking: bool = False,
          spike_mode: str = "binary", weight_bits: int = 8, accumulator_bits: int = 16,
          custom_map: CustomMap | None = None, fold_batchnorm: bool = False) -> ir.Graph:  # fmt: skip
    """Export ``model`` to a TALON IR graph, tracing it with ``sample`` (batch dimension included).

    BatchNorm layers are kept as nodes; ``fold_batchnorm=True`` folds those that follow a
    Linear/Conv into its weights (see ``talon.bridge.transforms.fold_batchnorm``).
    """
    exporter = TALONExporter(spiking, spike_mode, weight_bits, accumulator_bits, fold_batchnorm)
    return exporter.export(model, sample, custom_map=custom_map)


torch_to_ir = to_ir


# ---- building the IR graph ---------------------------------------------------------------------------


class _Builder:
    """Nodes and edges under construction, with the multi-output routing rule of the IR."""

    def __init__(self):
        self.nodes: dict[str, ir.Node] = {}
        self.edges: list[tuple[str, str]] = []

    def name(self, wanted: str) -> str:
        out, k = wanted, 1
        while out in self.nodes:
            out, k = f"{wanted}_{k}", k + 1
        return out

    def add(self, wanted: str, node: ir.Node, sources: Sequence[str] = ()) -> str:
        name = self.name(wanted)
        self.nodes[name] = node
        self.edges.extend((s, name) for s in sources)
        return name

    def add_multi_output(self, wanted: str, node: ir.Node, source: str, n: int) -> list[str]:
        """A multi-output node followed by one passthrough Skip per output (removed later where
        the consumer has a single input), so edge order never depends on consumer order."""
        name = self.add(wanted, node, [source])
        return [self.add(f"{name}_out{k}", ir.Skip("passthrough"), [name]) for k in range(n)]

    def graph(self, metadata: dict) -> ir.Graph:
        self._drop_section_skips()
        return ir.Graph(self.nodes, self.edges, metadata)

    def _drop_section_skips(self) -> None:
        for name in [n for n, node in self.nodes.items() if node.is_multi_output]:
            for k in range(len(self.nodes[name].split_sections)):
                skip = f"{name}_out{k}"
                outs = [i for i, (s, _) in enumerate(self.edges) if s == skip]
                if len(outs) != 1:
                    continue
                dst = self.edges[outs[0]][1]
                if sum(1 for _, d in self.edges if d == dst) != 1:
                    continue
                into = self.edges.index((name, skip))
                self.edges[into] = (name, dst)
                del self.edges[outs[0]]
                del self.nodes[skip]


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
_METHOD_ACTIVATIONS: dict[str, Callable[..., ir.Node]] = {
    "relu": lambda *a, **k: ir.ReLU(),
    "sigmoid": lambda *a, **k: ir.Sigmoid(),
    "tanh": lambda *a, **k: ir.Tanh(),
    "softmax": lambda x, dim, *a, **k: ir.Softmax(dim=dim),
}
_IDENTITY_METHODS = {"contiguous", "clone", "detach", "float"}


def _need_dim(dim):
    if dim is None:
        raise ConversionError("softmax without dim is ambiguous; give dim explicitly")
    return dim


class _FxExport:
    def __init__(self, exporter: TALONExporter, gm: Traced, samples: tuple, custom_map):
        self.exporter, self.gm, self.samples, self.custom_map = exporter, gm, samples, custom_map
        self.b = _Builder()
        self.values: dict[fx.Node, _Val] = {}
        self.modules = dict(gm.root.named_modules())
        self.state_outputs: list[str] = []
        self.constant_outputs: list[str] = []

    def run(self) -> ir.Graph:
        inputs = 0
        for node in self.gm.graph.nodes:
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
                self.values[node] = self._function(node)
            elif node.op == "output":
                self._outputs(node)
        meta = {"exporter": "talon.bridge.to_ir (torch.fx)"}
        if self.state_outputs:
            meta["state_outputs_not_exported"] = self.state_outputs
        if self.constant_outputs:
            meta["constant_outputs_not_exported"] = self.constant_outputs
            warnings.warn(
                f"to_ir: the model also returns {', '.join(map(repr, self.constant_outputs))}, traced by torch.fx as "
                "constant (not computed from the input: a module's state read as an attribute?); not exported, "
                "listed in metadata['constant_outputs_not_exported']",
                stacklevel=5,
            )
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
                raise UnsupportedModuleError(
                    f"module {path!r} of type {type(module).__module__}.{type(module).__qualname__} has no TALON IR "
                    f"conversion; pass custom_map={{{type(module).__name__}: fn}} to to_ir, where fn(module) "
                    "returns an ir.Node"
                )
            ir_node = converter(module, ctx)
            if not isinstance(ir_node, ir.Node):
                raise TypeError(f"the converter of module {path!r} returned {type(ir_node).__name__}, not an ir.Node")
        stateful = is_stateful_node(ir_node)
        merges = isinstance(ir_node, (ir.Concat,)) or (
            isinstance(ir_node, ir.Skip) and ir_node.skip_type != "passthrough"
        )
        if stateful:
            sources = [self._data(first, f"module {path!r}")]
            for extra in tensor_args[1:]:
                val = self.values.get(extra)
                if val is not None and val.kind == "data":
                    raise ConversionError(
                        f"module {path!r}: its state argument is computed by the network; TALON IR neurons "
                        "start from zero state"
                    )
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

    def _function(self, node: fx.Node) -> _Val:
        target, args, kwargs = node.target, node.args, node.kwargs
        where = f"operation {node.name!r} ({getattr(target, '__name__', target)})"
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
            if not all(isinstance(a, _NODES) and self.values[a].kind == "data" for a in args[:2]):
                raise ConversionError(f"{where}: adding a constant has no TALON IR equivalent (only tensor + tensor)")
            return _Val("data", self.b.add(node.name, ir.Skip("residual"), [self._data(a, where) for a in args[:2]]))
        if target in _MUL or (node.op == "call_method" and target in ("mul", "mul_", "__mul__")):
            tensors = [a for a in args if isinstance(a, _NODES) and self.values[a].kind == "data"]
            scalars = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
            if len(tensors) != 1 or len(scalars) != 1:
                raise ConversionError(f"{where}: only tensor * number converts (to a Scale node)")
            shape = self._meta_shape(node)[1:]
            scale = ir.Scale(np.full(shape, scalars[0], dtype=np.float32))
            return _Val("data", self.b.add(node.name, scale, [self._data(tensors[0], where)]))
        if target in _CAT:
            tensors = args[0]
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
            literal_args = [None if isinstance(a, _NODES) else a for a in args]
            ir_node = factory(*literal_args, **kwargs)
            return _Val("data", self.b.add(node.name, ir_node, [self._data(args[0], where)]))
        raise ConversionError(
            f"{where} in {type(self.gm.root).__name__}.forward has no TALON IR equivalent; wrap it in a module and "
            "pass custom_map={ModuleType: fn} to to_ir"
        )

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
            val = self.values[arg]
            vals += [(part, arg) for part in val.parts] if val.kind == "tuple" else [(val, arg)]
        for val, arg in vals:
            if val.kind == "state":  # a returned membrane: state, not a network output
                self.state_outputs.append(val.ir_name)
                continue
            if val.kind == "const":  # fx's trace saw a tensor that does not depend on the input
                self.constant_outputs.append(str(arg.target))
                continue
            if val.kind != "data":
                continue
            shape = self.b.nodes[val.ir_name].output_shape or self._meta_shape(arg)[1:]
            self.b.add("output" if outputs == 0 else f"output_{outputs}", ir.Output(np.array(shape)), [val.ir_name])
            outputs += 1
        if outputs == 0:
            raise ConversionError("the model returns no tensor computed from its input")


# ---- execution-trace fallback ------------------------------------------------------------------------


class _HookExport:
    """Rebuild the graph from the order in which leaf modules run and the tensors they exchange."""

    def __init__(self, exporter: TALONExporter, model: nn.Module, samples: tuple, custom_map):
        self.exporter, self.model, self.samples, self.custom_map = exporter, model, samples, custom_map
        self.tracer = Tracer(custom_map)

    def run(self) -> ir.Graph:
        calls: list[tuple[str, nn.Module, tuple, Any]] = []
        handles = []
        for path, module in self.model.named_modules():
            if (
                path
                and self.tracer.is_leaf_module(module, path)
                and not _has_leaf_ancestor(self.model, path, self.tracer)
            ):
                handles.append(module.register_forward_hook(lambda m, a, o, p=path: calls.append((p, m, a, o))))
        try:
            with torch.no_grad():
                result = self.model(*self.samples)
        finally:
            for h in handles:
                h.remove()
        b = _Builder()
        producer: dict[int, str] = {}
        for k, s in enumerate(self.samples):
            producer[id(s)] = b.add("input" if k == 0 else f"input_{k}", ir.Input(np.array(s.shape[1:])))
        names: dict[str, str] = {}
        lost: list[str] = []
        previous = next(iter(b.nodes))
        for path, module, args, output in calls:
            source_tensor = next((a for a in args if isinstance(a, torch.Tensor)), None)
            src = producer.get(id(source_tensor))
            if src is None:
                lost.append(path)
                src = previous
            if path not in names:
                ctx = self.exporter._context(
                    path, self.exporter._input_shapes.get(path), self.exporter._output_shapes.get(path)
                )
                converter = find_converter(module, self.custom_map)
                if converter is None:
                    raise UnsupportedModuleError(
                        f"module {path!r} of type {type(module).__qualname__} has no TALON IR conversion; pass "
                        f"custom_map={{{type(module).__name__}: fn}}"
                    )
                names[path] = b.add(path, converter(module, ctx), [src])
            elif (src, names[path]) not in b.edges:
                b.edges.append((src, names[path]))
            out = output[0] if isinstance(output, (tuple, list)) else output
            producer[id(out)] = names[path]
            previous = names[path]
        final = result[0] if isinstance(result, (tuple, list)) else result
        last = producer.get(id(final), previous)
        b.add("output", ir.Output(np.array(tuple(final.shape[1:]) if isinstance(final, torch.Tensor) else ())), [last])
        if lost:
            warnings.warn(
                f"execution trace: the inputs of {lost} were not produced by a module (a functional operation "
                "or a time loop); they were connected to the module that ran before them",
                stacklevel=4,
            )
        return b.graph({"exporter": "talon.bridge.to_ir (execution hooks)", "hook_inferred_inputs": lost})


def _has_leaf_ancestor(model: nn.Module, path: str, tracer: Tracer) -> bool:
    parts = path.split(".")
    for k in range(1, len(parts)):
        ancestor = ".".join(parts[:k])
        if tracer.is_leaf_module(model.get_submodule(ancestor), ancestor):
            return True
    return False


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


def _current_node(node: ir.Node, module: nn.Module) -> ir.Node:
    """``node`` with its arrays replaced by the module's current tensors (unchanged arrays are kept
    as they were, so an untouched executor re-exports bit for bit, in the original dtypes)."""
    if isinstance(module, GraphExecutor):
        return executor_to_graph(module)
    fields = next((f for types, f in _TENSOR_FIELDS.items() if type(node) in types), None)
    params = node.params()
    if fields:
        for field_name, attr in fields.items():
            original = params.get(field_name)
            if original is None:
                continue
            tensor = module.get_parameter(attr) if attr in dict(module.named_parameters()) else module.get_buffer(attr)
            current = tensor.detach().cpu().numpy().reshape(original.shape)
            if not np.array_equal(current, original.astype(current.dtype)):
                params[field_name] = current.astype(original.dtype)
    return type(node)(**params, input_type=node.input_type, metadata=copy.deepcopy(node.metadata))


def executor_to_graph(executor: GraphExecutor) -> ir.Graph:
    """The IR graph of an executor: its recorded graph, edges and node types, with current weights."""
    if executor.graph is None:
        raise ConversionError(
            "this GraphExecutor was built from raw modules and records no IR graph; build it with "
            "bridge.ir_to_torch(graph) to re-export it exactly"
        )
    graph = executor.graph
    nodes = {name: _current_node(node, executor.module_of(name)) for name, node in graph.nodes.items()}
    return ir.Graph(nodes, list(graph.edges), copy.deepcopy(graph.metadata))


__all__ = ["T1CExporter", "TALONExporter", "executor_to_graph", "to_ir", "torch_to_ir"]
