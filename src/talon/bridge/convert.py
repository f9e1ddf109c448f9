"""Module → IR node converters: the registry, and the converters of ``torch.nn`` and talon modules.

A converter is ``fn(module, ctx) -> ir.Node`` where ``ctx`` (:class:`ConvertContext`) carries the
export options and the shapes observed for this call. Framework adapters (snnTorch, Norse) register
theirs in ``talon.bridge.snntorch`` / ``talon.bridge.norse``, imported on first sight of a module
of that framework. ``custom_map={ModuleType: fn(module) -> ir.Node}`` given to ``to_ir``
overrides everything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from talon import ir
from talon.ir.errors import ConversionError, UnsupportedModuleError

from . import modules as m


@dataclass
class ConvertContext:
    """What a converter may need besides the module."""

    path: str
    input_shape: tuple[int, ...] | None = None  # without batch
    output_shape: tuple[int, ...] | None = None
    spiking: bool = False
    spike_mode: str = "binary"
    weight_bits: int = 8
    accumulator_bits: int = 16
    notes: dict[str, Any] = field(default_factory=dict)


Converter = Callable[[nn.Module, ConvertContext], ir.Node]
_CONVERTERS: dict[type, Converter] = {}
_FRAMEWORK_ADAPTERS = {"snntorch": "talon.bridge.snntorch", "norse": "talon.bridge.norse"}


def register_converter(*types: type) -> Callable[[Converter], Converter]:
    def deco(fn: Converter) -> Converter:
        for t in types:
            _CONVERTERS[t] = fn
        return fn

    return deco


def find_converter(module: nn.Module, custom_map: Mapping[type, Callable] | None = None) -> Converter | None:
    """The converter for ``module``: ``custom_map`` first, then the registry (most derived type first)."""
    if custom_map:
        for cls in type(module).__mro__:
            if cls in custom_map:
                fn = custom_map[cls]
                return lambda mod, ctx, fn=fn: fn(mod)
    _load_adapter(module)
    for cls in type(module).__mro__:
        if cls in _CONVERTERS:
            if overridden_forward(type(module), cls) is not None:
                return None  # a subclass computing something else: traced into, or refused
            return _checking_dtypes(_CONVERTERS[cls])
    return None


def overriding_subclass(module: nn.Module) -> str | None:
    """Why a module whose class derives from a convertible one has no conversion (it overrides how the
    output is computed), for error messages; None when no registered base class is overridden."""
    _load_adapter(module)
    for cls in type(module).__mro__:
        if cls in _CONVERTERS:
            method = overridden_forward(type(module), cls)
            if method is None:
                return None
            return (
                f"it subclasses {cls.__module__}.{cls.__qualname__} but overrides {method}, so the "
                f"{cls.__qualname__} conversion would drop what it computes"
            )
    return None


# The methods through which a module computes its output. An overridden ``__call__`` that calls
# ``super().__call__`` is not one: both tracers see its extra work around the leaf call.
_COMPUTING_METHODS = ("forward", "_conv_forward")


def overridden_forward(module_type: type, registered: type) -> str | None:
    """``"Class.method"`` when a class of ``module_type``'s MRO before ``registered`` redefines how the
    output is computed (``forward``, or the ``_conv_forward`` a convolution's ``forward`` calls), else None.

    A registered converter reads the module's parameters and assumes the registered class's
    ``forward``; a subclass that only changes ``__init__`` (custom initialisation) computes the same,
    one that overrides ``forward`` (a scaled output, clipped weights, ``torch.ao.nn.qat``'s
    fake-quantized weight) does not. talon's own module classes are trusted: their ``forward``
    computes their node by construction.
    """
    for cls in module_type.__mro__:
        if cls is registered:
            return None
        if cls.__module__ == "talon" or cls.__module__.startswith("talon."):
            continue
        for name in _COMPUTING_METHODS:
            if name in vars(cls):
                return f"{cls.__qualname__}.{name}"
    return None


# Frameworks whose neurons talon does not convert from PyTorch, but whose own NIR exporter writes a file
# talon reads as that framework runs it (docs/nir.md, "Framework profiles"): name, exporter call, producer.
_NIR_EXPORTERS = {
    "sinabs": ("Sinabs", "sinabs.nir.to_nir(model, sample)"),
    "spikingjelly": ("SpikingJelly", "spikingjelly.activation_based.nir_exchange.export_to_nir(model, sample, dt)"),
    "rockpool": ("Rockpool", "rockpool.nn.modules.torch.nir.to_nir(model)"),
}


def nir_route_hint(module_type: type) -> str:
    """For a module of a framework with its own NIR exporter, the route that does convert it (an
    empty string otherwise), to end a refusal with."""
    top = module_type.__module__.split(".")[0]
    if top not in _NIR_EXPORTERS:
        return ""
    name, call = _NIR_EXPORTERS[top]
    return (
        f"; or, for a {name} model, write it with {name}'s own NIR exporter (nir.write(path, {call})) and read "
        f"the file with talon.interop.nir.read_nir(path, producer={top!r}), which runs it as {name}'s NIR importer "
        "does (docs/nir.md, Framework profiles: what each exporter keeps)"
    )


def unconvertible(path: str, kind: type, why: str = "") -> UnsupportedModuleError:
    """The refusal of module ``path`` of class ``kind``, which has no conversion: names both, says why
    (``why`` continues the sentence: ``" (reason)"`` or ``": its forward ..."``) and what to pass."""
    return UnsupportedModuleError(
        f"module {path!r} of type {kind.__module__}.{kind.__qualname__} has no TALON IR conversion{why}; pass "
        f"custom_map={{{kind.__name__}: fn}} to to_ir, where fn(module) returns an ir.Node{nir_route_hint(kind)}"
    )


def _checking_dtypes(converter: Converter) -> Converter:
    """``converter`` refusing first a module with a tensor TALON IR cannot hold (bfloat16), naming it."""

    def convert(module: nn.Module, ctx: ConvertContext) -> ir.Node:
        if _has_bfloat16(module):  # one walk over the modules; the named walks only to name the tensor
            for kind, named in (("parameter", module.named_parameters()), ("buffer", module.named_buffers())):
                for name, tensor in named:
                    if tensor.dtype == torch.bfloat16:
                        m.numpy_values(tensor, f"module {ctx.path!r}, {kind} {name!r}")
        return converter(module, ctx)

    return convert


def _has_bfloat16(module: nn.Module) -> bool:
    """Whether a parameter or buffer of ``module`` or of a submodule is bfloat16."""
    for sub in module.modules():
        for registry in (sub._parameters, sub._buffers):
            for tensor in registry.values():
                if tensor is not None and tensor.dtype == torch.bfloat16:
                    return True
    return False


def _load_adapter(module: nn.Module) -> None:
    root = type(module).__module__.split(".")[0]
    if root in _FRAMEWORK_ADAPTERS:
        importlib.import_module(_FRAMEWORK_ADAPTERS.pop(root))


def array(t: torch.Tensor | None, where: str = "a tensor") -> np.ndarray | None:
    """A tensor's values as a numpy array of the same dtype (detached, on the CPU); a bfloat16
    tensor raises ``ConversionError`` naming ``where``."""
    return None if t is None else m.numpy_values(t, where)


def per_neuron(value: Any, shape: tuple[int, ...] | None, name: str, path: str) -> np.ndarray:
    """A neuron parameter as a float64 array the IR accepts: a scalar, the layer's shape, or one
    value per channel (``(C,)``; a PyTorch-broadcast ``(C, 1, 1)`` becomes that).

    The frameworks apply the parameter with PyTorch broadcasting, which aligns trailing axes: on a
    ``(C, H, W)`` layer a 1-D parameter is one value per *column* (``(W,)``), even when ``W == C``."""
    arr = np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value, np.float64)
    if arr.ndim == 0 or arr.size == 1:
        return arr.reshape(())
    if shape is None or arr.shape == tuple(shape):
        return arr
    try:
        full = np.broadcast_to(arr, shape)
    except ValueError:
        raise ConversionError(
            f"module {path!r}: {name} of shape {tuple(arr.shape)} does not fit the layer {shape}"
        ) from None
    per_channel = full.reshape(shape[0], -1)
    if len(shape) > 1 and np.all(per_channel == per_channel[:, :1]):
        return per_channel[:, 0].copy()
    return np.ascontiguousarray(full)


def one_layout(shape: tuple[int, ...] | None, **params: Any) -> dict[str, Any]:
    """A neuron's keyword arguments with its arrays in one layout: where :func:`per_neuron` made one
    parameter per channel (``(C,)``) and another per neuron (the layer's shape) — β ``(C, 1, 1)`` with
    a threshold of the layer's shape — the per-channel ones are expanded to the layer's shape, since a
    TALON IR node holds its parameters in one shape. Other arguments pass through unchanged."""
    if shape is None or len(shape) < 2:
        return params
    shape = tuple(shape)
    shapes = {np.shape(v) for v in params.values() if isinstance(v, np.ndarray) and v.ndim > 0}
    if shape not in shapes or (shape[0],) not in shapes:
        return params
    per_channel = {k for k, v in params.items() if isinstance(v, np.ndarray) and v.shape == (shape[0],)}
    return {k: np.broadcast_to(v.reshape(-1, *[1] * (len(shape) - 1)), shape).copy() if k in per_channel else v
            for k, v in params.items()}  # fmt: skip


# ---- torch.nn ---------------------------------------------------------------------------------


@register_converter(nn.Linear)
def _linear(mod: nn.Linear, ctx: ConvertContext) -> ir.Node:
    w, b = array(mod.weight), array(mod.bias)
    if ctx.spiking:
        return ir.SpikingAffine(w, b, spike_mode=ctx.spike_mode, weight_bits=ctx.weight_bits,
                                accumulator_bits=ctx.accumulator_bits)  # fmt: skip
    return ir.Affine(w, b) if b is not None else ir.Linear(w)


def _conv_padding(mod: nn.Module, ctx: ConvertContext):
    if mod.padding_mode != "zeros":
        raise ConversionError(f"module {ctx.path!r}: padding_mode={mod.padding_mode!r} is not supported (zeros only)")
    if isinstance(mod.padding, str):
        if mod.padding == "valid":
            return 0
        pads = []
        for k, d in zip(mod.kernel_size, mod.dilation, strict=True):
            total = d * (k - 1)
            if total % 2:
                raise ConversionError(f"module {ctx.path!r}: padding='same' is asymmetric for kernel {k}, dilation {d}")
            pads.append(total // 2)
        return tuple(pads)
    return mod.padding


@register_converter(nn.Conv1d)
def _conv1d(mod: nn.Conv1d, ctx: ConvertContext) -> ir.Node:
    pad = _conv_padding(mod, ctx)
    return ir.Conv1d(array(mod.weight), array(mod.bias), mod.stride[0], pad[0] if isinstance(pad, tuple) else pad,
                     mod.dilation[0], mod.groups)  # fmt: skip


@register_converter(nn.Conv2d)
def _conv2d(mod: nn.Conv2d, ctx: ConvertContext) -> ir.Node:
    return ir.Conv2d(array(mod.weight), array(mod.bias), mod.stride, _conv_padding(mod, ctx), mod.dilation, mod.groups)


@register_converter(nn.MaxPool2d)
def _maxpool(mod: nn.MaxPool2d, ctx: ConvertContext) -> ir.Node:
    if mod.return_indices:
        raise ConversionError(f"module {ctx.path!r}: MaxPool2d(return_indices=True) is not supported")
    return ir.MaxPool2d(mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode)


@register_converter(nn.AvgPool2d)
def _avgpool(mod: nn.AvgPool2d, ctx: ConvertContext) -> ir.Node:
    return ir.AvgPool2d(mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode, mod.count_include_pad,
                        mod.divisor_override)  # fmt: skip


@register_converter(nn.Upsample)
def _upsample(mod: nn.Upsample, ctx: ConvertContext) -> ir.Node:
    if getattr(mod, "recompute_scale_factor", None):
        raise ConversionError(f"module {ctx.path!r}: Upsample(recompute_scale_factor=True) is not supported")
    if mod.mode not in ("nearest", "bilinear"):
        raise ConversionError(f"module {ctx.path!r}: Upsample mode {mod.mode!r} is not supported (nearest, bilinear)")
    return ir.Upsample(scale_factor=mod.scale_factor, size=mod.size, mode=mod.mode, align_corners=mod.align_corners)


@register_converter(nn.Flatten)
def _flatten(mod: nn.Flatten, ctx: ConvertContext) -> ir.Node:
    return flatten_node(mod.start_dim, mod.end_dim, ctx.path)


def flatten_node(start: int, end: int, path: str) -> ir.Flatten:
    """``torch.flatten`` dims (batch = 0) as an IR Flatten (batchless dims)."""
    if start == 0 or end == 0:
        raise ConversionError(f"{path!r}: flattening the batch dimension (dim 0) has no IR equivalent")
    return ir.Flatten(start - 1 if start > 0 else start, end - 1 if end > 0 else end)


@register_converter(nn.Identity)
def _identity(mod: nn.Identity, ctx: ConvertContext) -> ir.Node:
    return ir.Skip(skip_type="passthrough")


@register_converter(nn.ReLU)
def _relu(mod, ctx):
    return ir.ReLU()


@register_converter(nn.LeakyReLU)
def _leaky_relu(mod: nn.LeakyReLU, ctx):
    return ir.ReLU(negative_slope=mod.negative_slope)


@register_converter(nn.Sigmoid)
def _sigmoid(mod, ctx):
    return ir.Sigmoid()


@register_converter(nn.Tanh)
def _tanh(mod, ctx):
    return ir.Tanh()


@register_converter(nn.Softmax)
def _softmax(mod: nn.Softmax, ctx: ConvertContext):
    if mod.dim is None:
        raise ConversionError(f"module {ctx.path!r}: Softmax(dim=None) is ambiguous; give dim explicitly")
    return ir.Softmax(dim=mod.dim)


@register_converter(nn.GELU)
def _gelu(mod: nn.GELU, ctx):
    return ir.GELU(approximate=mod.approximate)


@register_converter(nn.ELU)
def _elu(mod: nn.ELU, ctx):
    return ir.ELU(alpha=mod.alpha)


@register_converter(nn.PReLU)
def _prelu(mod: nn.PReLU, ctx):
    return ir.PReLU(weight=array(mod.weight))


@register_converter(nn.BatchNorm1d, nn.BatchNorm2d)
def _batchnorm(mod: nn.modules.batchnorm._BatchNorm, ctx: ConvertContext):
    if not mod.track_running_stats or mod.running_mean is None:
        raise ConversionError(
            f"module {ctx.path!r}: BatchNorm without running statistics has no inference semantics; "
            "use track_running_stats=True"
        )
    cls = ir.BatchNorm1d if isinstance(mod, nn.BatchNorm1d) else ir.BatchNorm2d
    return cls(mod.num_features, array(mod.weight), array(mod.bias), array(mod.running_mean),
               array(mod.running_var), mod.eps, mod.momentum)  # fmt: skip


@register_converter(nn.LayerNorm)
def _layernorm(mod: nn.LayerNorm, ctx):
    return ir.LayerNorm(tuple(mod.normalized_shape), array(mod.weight), array(mod.bias), mod.eps)


@register_converter(nn.Dropout)
def _dropout(mod: nn.Dropout, ctx):
    return ir.Dropout(p=mod.p)


# ---- talon's own modules (round trips) ----------------------------------------------------------


@register_converter(m.NeuronModule, m.ThresholdModule)
def _talon_node(mod, ctx):
    return mod.to_node(f"module {ctx.path!r}")


@register_converter(m.SkipModule)
def _skip(mod: m.SkipModule, ctx):
    return ir.Skip(skip_type=mod.skip_type)


@register_converter(m.ConcatModule)
def _concat(mod: m.ConcatModule, ctx):
    return ir.Concat(num_inputs=mod.num_inputs, dim=mod.dim)


@register_converter(m.ChannelSplitModule)
def _split(mod: m.ChannelSplitModule, ctx):
    return ir.ChannelSplit(split_sections=mod.split_sections, dim=mod.dim)


@register_converter(m.SepConv2dModule)
def _sepconv(mod: m.SepConv2dModule, ctx):
    dw, pw = mod.depthwise, mod.pointwise
    return ir.SepConv2d(array(dw.weight), array(pw.weight), array(dw.bias), array(pw.bias), dw.stride, dw.padding,
                        dw.dilation)  # fmt: skip


@register_converter(m.ScaleModule)
def _scale(mod: m.ScaleModule, ctx):
    return ir.Scale(array(mod.scale))


@register_converter(m.SumPool2dModule)
def _sumpool(mod: m.SumPool2dModule, ctx):
    return ir.SumPool2d(mod.kernel_size, mod.stride, mod.padding)


@register_converter(m.IRFlatten)
def _irflatten(mod: m.IRFlatten, ctx):
    return flatten_node(mod.start_dim, mod.end_dim, ctx.path)


def is_stateful_node(node: ir.Node) -> bool:
    """Whether a module converted to ``node`` returns ``(output, state)`` per call."""
    return isinstance(node, (ir.LIF, ir.IF, ir.CubaLIF, ir.LI, ir.CubaLI, ir.Integrator, ir.Delay, ir.Graph))
