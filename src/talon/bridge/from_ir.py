"""IR → PyTorch: one module per node, and the executor that runs the graph.

``node_to_module(node)`` builds the module of one node (``None`` for a node type it does not
know); ``nodes_to_modules(graph)`` / ``from_ir(graph)`` all of them; ``ir_to_torch`` returns a
:class:`~talon.bridge.executor.GraphExecutor`. Every module remembers its source node
(``module.talon_node``) so that exporting it again reproduces the node exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from talon import ir
from talon.ir.coefficients import STATEFUL, check_coefficients_fit, neuron_coefficients
from talon.ir.errors import ConversionError

from . import modules as m

NodeMap = Callable[[ir.Node], nn.Module | None] | Mapping[Any, Callable[[ir.Node], nn.Module | None]]


def _tensor(arr: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).to(dtype).clone()


def _param(arr: np.ndarray, dtype: torch.dtype) -> nn.Parameter:
    return nn.Parameter(_tensor(arr, dtype))


def _linear(node: ir.Affine | ir.Linear, dtype: torch.dtype) -> nn.Linear:
    out_f, in_f = node.weight.shape
    has_bias = isinstance(node, ir.Affine)
    mod = nn.Linear(in_f, out_f, bias=has_bias, dtype=dtype)
    mod.weight = _param(node.weight, dtype)
    if has_bias:
        mod.bias = _param(node.bias, dtype)
    return mod


def _conv(node: ir.Conv1d | ir.Conv2d, dtype: torch.dtype) -> nn.Module:
    cls = nn.Conv1d if isinstance(node, ir.Conv1d) else nn.Conv2d
    mod = cls(node.in_channels, node.out_channels, node.kernel_size, node.stride, node.padding, node.dilation,
              node.groups, dtype=dtype)  # fmt: skip
    mod.weight = _param(node.weight, dtype)
    mod.bias = _param(node.bias, dtype)
    return mod


def _sepconv(node: ir.SepConv2d, dtype: torch.dtype) -> m.SepConv2dModule:
    c_in, c_out = node.depthwise_weight.shape[0], node.pointwise_weight.shape[0]
    mod = m.SepConv2dModule(c_in, c_out, node.depthwise_weight.shape[2:], node.stride, node.padding, node.dilation)
    mod.depthwise.weight, mod.depthwise.bias = _param(node.depthwise_weight, dtype), _param(node.depthwise_bias, dtype)
    mod.pointwise.weight, mod.pointwise.bias = _param(node.pointwise_weight, dtype), _param(node.pointwise_bias, dtype)
    return mod


def _batchnorm(node: ir.BatchNorm1d | ir.BatchNorm2d, dtype: torch.dtype) -> nn.Module:
    cls = nn.BatchNorm1d if isinstance(node, ir.BatchNorm1d) else nn.BatchNorm2d
    mod = cls(node.num_features, eps=node.eps, momentum=node.momentum, affine=node.weight is not None, dtype=dtype)
    if node.weight is not None:
        mod.weight, mod.bias = _param(node.weight, dtype), _param(node.bias, dtype)
    mod.running_mean.copy_(_tensor(node.running_mean, dtype))
    mod.running_var.copy_(_tensor(node.running_var, dtype))
    return mod


def _layernorm(node: ir.LayerNorm, dtype: torch.dtype) -> nn.LayerNorm:
    mod = nn.LayerNorm(list(node.normalized_shape), eps=node.eps, elementwise_affine=node.weight is not None,
                       bias=node.bias is not None, dtype=dtype)  # fmt: skip
    if node.weight is not None:
        mod.weight = _param(node.weight, dtype)
    if node.bias is not None:
        mod.bias = _param(node.bias, dtype)
    return mod


def _prelu(node: ir.PReLU, dtype: torch.dtype) -> nn.PReLU:
    mod = nn.PReLU(num_parameters=node.weight.shape[0], dtype=dtype)
    mod.weight = _param(node.weight, dtype)
    return mod


def _upsample(node: ir.Upsample, dtype: torch.dtype) -> nn.Upsample:
    return nn.Upsample(
        size=node.size, scale_factor=None if node.size is not None else node.scale_factor,
        mode=node.mode.value, align_corners=node.align_corners,
    )  # fmt: skip


_BUILDERS: dict[type[ir.Node], Callable[[ir.Node, torch.dtype], nn.Module]] = {
    ir.Input: lambda n, dt: nn.Identity(),
    ir.Output: lambda n, dt: nn.Identity(),
    ir.HybridRegion: lambda n, dt: nn.Identity(),
    ir.Affine: _linear,
    ir.SpikingAffine: _linear,
    ir.Linear: _linear,
    ir.Scale: lambda n, dt: m.ScaleModule(n.scale, dt),
    ir.Conv1d: _conv,
    ir.Conv2d: _conv,
    ir.SConv: _conv,
    ir.SDConv: _conv,
    ir.SepConv2d: _sepconv,
    ir.MaxPool2d: lambda n, dt: nn.MaxPool2d(n.kernel_size, n.stride, n.padding, n.dilation, ceil_mode=n.ceil_mode),
    ir.AvgPool2d: lambda n, dt: nn.AvgPool2d(
        n.kernel_size, n.stride, n.padding, n.ceil_mode, n.count_include_pad, n.divisor_override
    ),
    ir.SumPool2d: lambda n, dt: m.SumPool2dModule(n.kernel_size, n.stride, n.padding),
    ir.Upsample: _upsample,
    ir.Flatten: lambda n, dt: m.IRFlatten(n.start_dim, n.end_dim),
    ir.ReLU: lambda n, dt: nn.ReLU() if n.negative_slope == 0 else nn.LeakyReLU(n.negative_slope),
    ir.Sigmoid: lambda n, dt: nn.Sigmoid(),
    ir.Tanh: lambda n, dt: nn.Tanh(),
    ir.Softmax: lambda n, dt: nn.Softmax(dim=n.dim),
    ir.GELU: lambda n, dt: nn.GELU(approximate=n.approximate),
    ir.ELU: lambda n, dt: nn.ELU(alpha=n.alpha),
    ir.PReLU: _prelu,
    ir.BatchNorm1d: _batchnorm,
    ir.BatchNorm2d: _batchnorm,
    ir.LayerNorm: _layernorm,
    ir.Dropout: lambda n, dt: nn.Dropout(n.p),
    ir.Skip: lambda n, dt: m.SkipModule(n.skip_type),
    ir.Concat: lambda n, dt: m.ConcatModule(n.dim, n.num_inputs),
    ir.ChannelSplit: lambda n, dt: m.ChannelSplitModule(n.split_sections, n.dim),
    ir.Threshold: lambda n, dt: m.ThresholdModule(n, dt),
}


def executor_dtype(dtype: Any = None) -> torch.dtype:
    """The dtype an executor computes in: ``torch.float32`` by default, as the CPU backend and
    ``JaxGraph`` (whatever the dtype of the graph's arrays: a float64 weight is rounded once), or
    ``dtype`` — a floating ``torch.dtype`` or its name (``torch.float64`` for a model exported in
    double precision, which then round-trips exactly; ``"float16"``, ``torch.bfloat16``).
    """
    if dtype is None:
        return torch.float32
    resolved = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(resolved, torch.dtype):
        try:
            resolved = torch.from_numpy(np.empty(0, np.dtype(dtype))).dtype
        except TypeError:
            resolved = None
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype (torch.float32, torch.float64 ...), got {dtype!r}")
    return resolved


def node_to_module(node: ir.Node, node_map: NodeMap | None = None,
                   dtype: torch.dtype = torch.float32) -> nn.Module | None:  # fmt: skip
    """The PyTorch module computing ``node`` in ``dtype``, or ``None`` when its type has no conversion.

    ``node_map`` overrides the conversion: a callable ``node -> module or None`` (None falls back
    to the default) or a mapping from node class (or class name) to such a callable.
    """
    custom = _custom_builder(node, node_map)
    module = custom(node) if custom is not None else None
    if module is None:
        if isinstance(node, ir.Graph):
            from .executor import GraphExecutor

            module = GraphExecutor.from_graph(node, return_state=True, node_map=node_map, dtype=dtype)
        elif type(node) in m.NEURON_MODULES:
            module = m.NEURON_MODULES[type(node)].from_node(node, dtype)
        elif type(node) in _BUILDERS:
            module = _BUILDERS[type(node)](node, dtype)
        else:
            return None
    if not isinstance(module, nn.Module):
        raise TypeError(f"node_map returned {type(module).__name__} for a {type(node).__name__} node, not an nn.Module")
    module.talon_node = node
    return module


def _custom_builder(node: ir.Node, node_map: NodeMap | None):
    if node_map is None:
        return None
    if callable(node_map) and not isinstance(node_map, Mapping):
        return node_map
    for key in (type(node), type(node).__name__):
        if key in node_map:
            return node_map[key]
    return None


def nodes_to_modules(graph: ir.Graph, node_map: NodeMap | None = None, dtype: Any = None) -> dict[str, nn.Module]:
    """A module for every node of ``graph``, in ``dtype`` (see :func:`executor_dtype`); raises
    ``ConversionError`` naming an unsupported node."""
    dtype = executor_dtype(dtype)
    out = {}
    for name, node in graph.nodes.items():
        if isinstance(node, STATEFUL) and _custom_builder(node, node_map) is None:
            check_coefficients_fit(
                f"node {name!r}",
                neuron_coefficients(node, np.float64),
                dtype,
                cast=lambda value: torch.from_numpy(value).to(dtype).to(torch.float64).numpy(),
            )
        module = node_to_module(node, node_map, dtype)
        if module is None:
            raise ConversionError(
                f"node {name!r} of type {type(node).__name__} has no PyTorch conversion; pass "
                "node_map={NodeType: fn} to ir_to_torch to provide one"
            )
        out[name] = module
    return out


from_ir = nodes_to_modules


def ir_to_torch(graph_or_path: ir.Graph | str | os.PathLike, return_state: bool = False,
                node_map: NodeMap | None = None, dtype: Any = None, reset_gradient: str | None = None,
                surrogate: str | None = None):  # fmt: skip
    """Import a TALON IR graph (or a ``.t1c`` path) as a :class:`GraphExecutor` (an ``nn.Module``).

    The executor is returned in **eval mode**, so that it computes what the graph means
    (docs/semantics.md §4: BatchNorm with its running statistics, Dropout as the identity); call
    ``.train()`` before fine-tuning to get batch statistics and dropout. It computes in float32,
    or in ``dtype`` (``torch.float64`` for a double-precision model: :func:`executor_dtype`).
    Each spiking neuron is differentiated with its node's ``reset_gradient`` (docs/semantics.md
    §3.1); ``reset_gradient='detached'`` or ``'through'`` overrides that for every neuron (the
    recorded graph is unchanged). Likewise each spike is differentiated with its node's
    ``surrogate`` (:mod:`talon.ir.surrogate`), and ``surrogate='superspike(k=25)'`` (any surrogate
    text) overrides that for every neuron.
    """
    from .executor import GraphExecutor
    from .reset_gradient import check_reset_gradient, override_reset_gradient, override_surrogate

    check_reset_gradient(reset_gradient)
    if surrogate is not None:
        surrogate = ir.canonical_surrogate(surrogate, "ir_to_torch")

    if isinstance(graph_or_path, (str, os.PathLike)):
        graph = ir.read(graph_or_path)
    elif isinstance(graph_or_path, ir.Graph):
        graph = graph_or_path
    else:
        raise TypeError(f"ir_to_torch expects an ir.Graph or a .t1c path, got {type(graph_or_path).__name__}")
    ir.warn_non_finite(graph, "ir_to_torch")  # its parameters are the caller's to fix or retrain, as JaxGraph's
    executor = GraphExecutor.from_graph(graph, return_state=return_state, node_map=node_map, dtype=dtype)
    return override_surrogate(override_reset_gradient(executor, reset_gradient), surrogate).eval()


def load(path: str | os.PathLike, return_state: bool = False, node_map: NodeMap | None = None, dtype: Any = None,
         reset_gradient: str | None = None, surrogate: str | None = None):  # fmt: skip
    """Read a ``.t1c`` file and return its executor (``ir_to_torch`` of the path)."""
    return ir_to_torch(path, return_state=return_state, node_map=node_map, dtype=dtype, reset_gradient=reset_gradient,
                       surrogate=surrogate)  # fmt: skip
