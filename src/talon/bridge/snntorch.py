"""snnTorch adapter: exact IR equivalents of snnTorch 0.9.4 – 1.0.0 neurons, and the TALON tutorials' wrappers.

Mapping (``docs/semantics.md`` §3.3; β, α are clamped to [0, 1] as snnTorch does every step)::

    Leaky(beta, threshold)      -> LIF(tau = r = 1/(1-β) in float64, v_leak = 0, comparison '>')
    Synaptic(alpha, beta)       -> CubaLIF(tau_syn = w_in = 1/(1-α), tau_mem = r = 1/(1-β))
    RLeaky / RSynaptic          -> a subgraph {input -> neuron <-> w_rec, neuron -> output}
                                   (w_rec: Affine for all_to_all linear, Conv2d for all_to_all
                                   conv, Scale(V) for one-to-one); the recurrent edge is delayed
    reset_mechanism 'subtract'  -> reset_mode 'subtract'
                    'zero'      -> reset_mode 'value', v_reset 0 (Leaky: before the decay,
                                   β(1-r)m + x; Synaptic/R*: the whole new value, (1-r)(βm + x))
                    'none'      -> reset_mode 'none'
    reset_delay=True            -> reset_timing 'delayed' (from the previous membrane)
    reset_delay=False           -> subtract: reset_timing 'snntorch_immediate' (snnTorch's own
                                   order: the spike test sees the delayed reset, which is then
                                   corrected); zero: 'immediate'

``tau = 1/(1 - β)`` is stored in float64 so that ``1 - 1/tau`` casts back to β and ``r/tau`` to
exactly 1.0: the exported graph computes snnTorch's ``β·m + x`` bit for bit. β = 1 (no leak) in
every neuron becomes an IF node (in an RLeaky with a recurrent bias, a LIF at ``2**30``: the bias
is its constant drive); a per-neuron β (or a Synaptic α) at the clamp 1 next to leaky neurons is
written ``tau = r = 2**30`` (``1 - 2**-30`` rounds to 1.0 in float32, as for Spyx).
Lapicque and Alpha neurons, graded spikes ≠ 1, inhibition and state quantization are refused
with a ConversionError; SLSTM, SConv2dLSTM and LeakyParallel (an LSTM cell, an ``nn.RNN``: no IR
primitive states them) with an UnsupportedModuleError naming the module.

``reset_delay=False`` with subtraction: snnTorch takes the spike from ``β·m + x - r·θ`` (its
delayed reset applied first, then undone), so when the post-reset membrane stays above θ (input >
2θ) it misses spikes an ideal immediate-reset neuron emits (``docs/semantics.md`` §3.1). talon states this
exactly (``reset_timing='snntorch_immediate'``), so the round trip is exact; converting such a
neuron to NIR (whose reset is the ideal one) is refused unless lossy.

``export_to_ir(model, sample)`` and ``import_from_ir(path, return_state=True)`` are the thin
wrappers the TALON snnTorch fork offers as ``snntorch.export_talonir`` /
``snntorch.import_talonir``; with upstream snnTorch, import them from here.
"""

from __future__ import annotations

import inspect
import os
import types
import warnings
import weakref

import numpy as np
import snntorch as snn
import torch
from torch import nn

from talon import ir
from talon.ir.errors import ConversionError, UnsupportedModuleError

from .convert import ConvertContext, array, one_layout, per_neuron, register_converter


def _decay(value, ctx: ConvertContext, name: str) -> np.ndarray:
    """β or α as snnTorch uses them (clamped to [0, 1] at every step)."""
    return per_neuron(torch.as_tensor(value).clamp(0, 1), ctx.input_shape, name, ctx.path)


NO_LEAK_TAU = 2.0**30  # a decay of exactly 1 (docs/jax.md writes Spyx's β = 1 the same way)


def _tau(decay: np.ndarray) -> np.ndarray:
    """``1/(1 - d)`` in float64, and ``2**30`` where ``d = 1``: every engine computes ``1 - 1/tau``
    in float64 and casts it to float32, where ``1 - 2**-30`` rounds to exactly 1.0, and ``r/tau``
    (``r = tau``) is exactly 1 — so a neuron at snnTorch's clamp keeps ``1·m + x`` bit for bit."""
    d = np.asarray(decay, np.float64)
    tau = np.full(d.shape, NO_LEAK_TAU)
    np.divide(1.0, 1.0 - d, out=tau, where=d != 1.0)  # (an errstate block costs more than the division)
    return tau


# x > 0 on either side of 0, the signed zeros and a denormal: the forward every snnTorch surrogate has.
_PROBE = (-1.0, -1e-30, -0.0, 0.0, 1e-45, 1e-30, 1.0, 1e3)
_HEAVISIDE = (0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0)


# Plain functions whose probe gave the step, with their description: a function's forward is
# fixed by its code and closure, so each snnTorch surrogate closure is probed once per process.
_STEP_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _check_spike_function(mod: nn.Module, path: str) -> None:
    """snnTorch spikes with ``spike_grad(mem - threshold)`` in the forward pass too: it must be the
    step ``H(x) = [x > 0]`` of talon's neurons (every ``snntorch.surrogate`` function is), or the
    exported neuron would compute something else."""
    if isinstance(mod.spike_grad, types.FunctionType) and mod.spike_grad in _STEP_FUNCTIONS:
        return
    probe = torch.tensor(_PROBE, dtype=torch.float32, device=torch.as_tensor(mod.threshold).device)
    try:
        with torch.no_grad():
            got = mod.spike_grad(probe)
        values = tuple(torch.as_tensor(got).detach().cpu().to(torch.float64).reshape(-1).tolist())
    except Exception as exc:  # a custom function may fail on the probe
        raise ConversionError(f"module {path!r}: its spike_grad could not be evaluated ({exc})") from None
    if values != _HEAVISIDE:
        raise ConversionError(
            f"module {path!r}: its spike_grad's forward pass is not the step H(x) = [x > 0] (it gives "
            f"{[round(v, 6) for v in values]} on {list(_PROBE)}), and snnTorch spikes with it; TALON IR "
            "neurons emit H(v - threshold). Use an snntorch.surrogate function, or pass custom_map="
            f"{{{type(mod).__name__}: fn}}"
        )
    if isinstance(mod.spike_grad, types.FunctionType):
        _STEP_FUNCTIONS[mod.spike_grad] = surrogate_description(mod.spike_grad)


def surrogate_description(spike_grad) -> str:
    """``'fast_sigmoid(slope=25)'`` for an ``snntorch.surrogate`` closure, else the callable's name."""
    name = getattr(spike_grad, "__qualname__", type(spike_grad).__qualname__)
    if name.endswith(".<locals>.inner"):
        try:
            free = inspect.getclosurevars(spike_grad).nonlocals
        except (TypeError, ValueError):
            free = {}
        args = ", ".join(f"{k}={v!r}" for k, v in free.items() if isinstance(v, (int, float)))
        return f"{name.removesuffix('.<locals>.inner')}({args})"
    return name


# snntorch.surrogate factory -> the TALON IR surrogate it computes (its closure's numbers)
_SNNTORCH_SURROGATES = {
    "atan": lambda p: ir.format_surrogate("atan", alpha=float(p["alpha"])),
    "fast_sigmoid": lambda p: ir.format_surrogate("superspike", k=float(p["slope"])),
    "sigmoid": lambda p: ir.format_surrogate("sigmoid", slope=float(p["slope"])),
    "straight_through_estimator": lambda p: "straight_through",
    "heaviside": lambda p: "heaviside",
    "spike_rate_escape": lambda p: ir.format_surrogate(
        "spike_rate_escape", beta=float(p["beta"]), slope=float(p["slope"])
    ),
    "SFS": lambda p: ir.format_surrogate("sparse_fast_sigmoid", k=float(p["slope"]), b=float(p["B"])),
    "triangular": lambda p: ir.format_surrogate("triangle_slope", threshold=float(p["threshold"])),
}
_IR_SURROGATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # function -> IR text or None


def ir_surrogate(spike_grad) -> str | None:
    """The TALON IR surrogate an ``snntorch.surrogate`` function computes (``fast_sigmoid(slope=25)``
    -> ``'superspike(k=25.0)'``), checked on probe points (:mod:`.surrogate_probe`); None for any
    other (a ``custom_surrogate``, the stochastic ``SSO``; ``LSO`` fails in snnTorch 1.0.0 itself)."""
    if not isinstance(spike_grad, types.FunctionType):
        return None
    if spike_grad in _IR_SURROGATE:
        return _IR_SURROGATE[spike_grad]
    from .surrogate_probe import torch_backward_matches

    text = None
    name = spike_grad.__qualname__.removesuffix(".<locals>.inner")
    if spike_grad.__module__ == "snntorch.surrogate" and name in _SNNTORCH_SURROGATES:
        try:
            params = inspect.getclosurevars(spike_grad).nonlocals
            text = _SNNTORCH_SURROGATES[name](params)
        except (KeyError, TypeError, ValueError):
            text = None
        if text is not None and not torch_backward_matches(spike_grad, text):
            text = None
    _IR_SURROGATE[spike_grad] = text
    return text


def _record_surrogate(node: ir.Node, mod: nn.Module, path: str) -> ir.Node:
    """The node trains with the ``spike_grad`` snnTorch trains with (``node.surrogate``); a
    ``spike_grad`` TALON IR cannot state is recorded in the node's metadata (``snntorch_spike_grad``)
    and warned about, and the node keeps the default ``atan(alpha=2.0)``."""
    text = ir_surrogate(mod.spike_grad)
    if text is not None:
        node.surrogate = text
        return node
    described = _STEP_FUNCTIONS.get(mod.spike_grad) if isinstance(mod.spike_grad, types.FunctionType) else None
    described = described or surrogate_description(mod.spike_grad)
    node.metadata["snntorch_spike_grad"] = described
    warnings.warn(
        f"module {path!r}: its surrogate gradient spike_grad={described} has no TALON IR form: the forward is "
        f"exact, but talon's engines train this neuron with {node.surrogate} (docs/bridge.md §5); recorded in "
        "the node's metadata['snntorch_spike_grad']",
        UserWarning,
        stacklevel=2,
    )
    return node


def _check_supported(mod: nn.Module, path: str) -> None:
    _check_spike_function(mod, path)
    g = torch.as_tensor(mod.graded_spikes_factor).detach()  # learn_graded_spikes_factor: a Parameter
    if g.numel() != 1 or float(g) != 1.0:
        raise ConversionError(f"module {path!r}: graded_spikes_factor != 1 has no TALON IR equivalent")
    if getattr(mod, "inhibition", False):
        raise ConversionError(f"module {path!r}: inhibition=True (winner-take-all) has no TALON IR equivalent")
    if getattr(mod, "state_quant", False):
        raise ConversionError(f"module {path!r}: state_quant is not supported; export the float model")


def _dynamics(mod: nn.Module, path: str, zero_before_decay: bool) -> dict:
    mechanism = mod.reset_mechanism
    delayed = bool(mod.reset_delay)
    if mechanism == "subtract":
        timing = "delayed" if delayed else "snntorch_immediate"
        return {"reset_mode": "subtract", "reset_timing": timing, "comparison": ">"}
    if mechanism == "zero":
        if not delayed and np.any(np.asarray(mod.threshold.detach().cpu()) < 0):
            raise ConversionError(f"module {path!r}: reset_delay=False zero reset with a negative threshold")
        if not delayed:
            # `mem - (spk - reset)*mem`: the spike of this step is not detached, and `reset` (the
            # detached delayed crossing) is 0 after a zero reset with threshold >= 0: talon's immediate
            # value reset differentiated through its spike (docs/semantics.md §3.1)
            return {"reset_mode": "value", "v_reset": 0.0, "reset_timing": "immediate", "comparison": ">",
                    "reset_gradient": "through"}  # fmt: skip
        timing = "delayed_pre_decay" if zero_before_decay else "delayed"
        return {"reset_mode": "value", "v_reset": 0.0, "reset_timing": timing, "comparison": ">"}
    return {"reset_mode": "none", "comparison": ">"}


def _leaky_node(mod: nn.Module, ctx: ConvertContext, zero_before_decay: bool, drive: bool = False) -> ir.Node:
    """The LIF (or, with β = 1 everywhere, IF) node of a Leaky; ``drive``: the node will get a constant
    drive ``v_leak`` (RLeaky's recurrent bias), which an IF cannot hold, so β = 1 stays a LIF at 2**30."""
    _check_supported(mod, ctx.path)
    beta = _decay(mod.beta, ctx, "beta")
    theta = per_neuron(mod.threshold, ctx.input_shape, "threshold", ctx.path)
    dyn = _dynamics(mod, ctx.path, zero_before_decay)
    types = {"input_type": {"input": np.array(ctx.input_shape)}} if ctx.input_shape is not None else {}
    if (beta == 1.0).all() and not drive:
        return ir.IF(v_threshold=theta, r=1.0, **dyn, **types)
    tau = _tau(beta)  # per-neuron β at the clamp 1 (common after learn_beta): tau = r = 2**30
    return ir.LIF(**one_layout(ctx.input_shape, tau=tau, r=tau.copy(), v_leak=0.0, v_threshold=theta), **dyn, **types)


def _synaptic_node(mod: nn.Module, ctx: ConvertContext) -> ir.Node:
    _check_supported(mod, ctx.path)
    alpha, beta = _decay(mod.alpha, ctx, "alpha"), _decay(mod.beta, ctx, "beta")
    tau_syn, tau_mem = _tau(alpha), _tau(beta)  # α or β clamped to 1 (no decay): tau = 2**30
    theta = per_neuron(mod.threshold, ctx.input_shape, "threshold", ctx.path)
    dyn = _dynamics(mod, ctx.path, zero_before_decay=False)
    types = {"input_type": {"input": np.array(ctx.input_shape)}} if ctx.input_shape is not None else {}
    params = one_layout(ctx.input_shape, tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem.copy(), v_threshold=theta,
                        w_in=tau_syn.copy())  # fmt: skip
    return ir.CubaLIF(v_leak=0.0, **params, **dyn, **types)


def _recurrent_weight(mod: nn.Module, ctx: ConvertContext) -> tuple[ir.Node, np.ndarray | None]:
    """The bias-free recurrent weight, and the bias (per neuron or per channel) if any."""
    rec = mod.recurrent
    if isinstance(rec, nn.Linear):
        return ir.Linear(array(rec.weight)), array(rec.bias)
    if isinstance(rec, nn.Conv2d):
        conv = ir.Conv2d(array(rec.weight), None, rec.stride, rec.padding, rec.dilation, rec.groups)
        return conv, array(rec.bias)
    v = np.asarray(rec.V.detach().cpu().numpy() if isinstance(rec.V, torch.Tensor) else rec.V, np.float32)
    return ir.Scale(np.broadcast_to(v, ctx.input_shape).copy() if v.ndim == 0 or v.size == 1 else v), None


def _recurrent_graph(mod: nn.Module, ctx: ConvertContext, synaptic: bool) -> ir.Graph:
    """snnTorch computes ``V(s_prev)`` with ``s_prev = 0`` at t = 0, so the recurrent bias ``b``
    enters at every step, t = 0 included; a recurrent edge carries zero at t = 0. The bias is
    therefore taken out of the cycle: for RLeaky it becomes the constant drive ``v_leak = b·tau``
    (``c = b``; with β = 1 everywhere the neuron is a LIF with ``tau = r = 2**30``, whose float32
    ``β`` and ``g`` are exactly 1, rather than an IF, which has no drive); for RSynaptic, where it
    feeds the synaptic current, a constant branch ``Affine(0, b)`` from the input (convolutional: a
    1×1 ``Conv2d`` with zero weights and bias ``b``)."""
    if ctx.input_shape is None:
        raise ConversionError(f"module {ctx.path!r}: the layer shape is unknown")
    shape = np.array(ctx.input_shape)
    weight, bias = _recurrent_weight(mod, ctx)
    nodes = {"input": ir.Input(shape)}
    edges = [("input", "neuron")]
    if synaptic:
        neuron = _synaptic_node(mod, ctx)
        if bias is not None:  # 0·x + b: b exactly, at every step (Affine, or a 1×1 Conv2d over channels)
            if len(ctx.input_shape) == 1:
                n_in = int(np.prod(ctx.input_shape))
                nodes["bias"] = ir.Affine(np.zeros((bias.shape[0], n_in), bias.dtype), bias)
            else:
                channels = ctx.input_shape[0]
                nodes["bias"] = ir.Conv2d(np.zeros((channels, channels, 1, 1), bias.dtype), bias)
            edges.append(("input", "bias"))
            edges.append(("bias", "neuron"))
    else:
        neuron = _leaky_node(mod, ctx, zero_before_decay=False, drive=bias is not None)
        if bias is not None:  # c = v_leak/tau = b exactly (b·tau and the division are exact for tau = 2**30)
            per_channel = bias.astype(np.float64)
            neuron.v_leak = per_channel * neuron.tau if per_channel.shape == neuron.tau.shape else (
                per_channel.reshape(-1, *([1] * (len(ctx.input_shape) - 1))) * neuron.tau)  # fmt: skip
    nodes.update(neuron=_record_surrogate(neuron, mod, ctx.path), w_rec=weight, output=ir.Output(shape))
    edges += [("neuron", "w_rec"), ("w_rec", "neuron"), ("neuron", "output")]
    return ir.Graph(nodes, edges, metadata={"source": f"snntorch.{type(mod).__name__}"})


@register_converter(snn.Leaky)
def _leaky(mod, ctx):
    return _record_surrogate(_leaky_node(mod, ctx, zero_before_decay=True), mod, ctx.path)


@register_converter(snn.Synaptic)
def _synaptic(mod, ctx):
    return _record_surrogate(_synaptic_node(mod, ctx), mod, ctx.path)


@register_converter(snn.RLeaky)
def _rleaky(mod, ctx):
    return _recurrent_graph(mod, ctx, synaptic=False)


@register_converter(snn.RSynaptic)
def _rsynaptic(mod, ctx):
    if not mod.reset_delay:
        # snnTorch 1.0.0 RSynaptic ignores reset_delay=False: it behaves delayed.
        raise ConversionError(
            f"module {ctx.path!r}: snnTorch's RSynaptic(reset_delay=False) is broken upstream (it errors "
            "or silently keeps the delayed reset); use reset_delay=True"
        )
    return _recurrent_graph(mod, ctx, synaptic=True)


@register_converter(snn.Lapicque, snn.Alpha)
def _refused(mod, ctx):
    update = "RC-circuit gains T/C and 1 - T/RC" if isinstance(mod, snn.Lapicque) else "two opposing currents"
    raise ConversionError(
        f"module {ctx.path!r}: snnTorch {type(mod).__name__} is not exported: its update ({update}) "
        "is not computed in the order of a TALON IR neuron, so the result would not be bit-exact; "
        f"use Leaky/Synaptic, or pass custom_map={{{type(mod).__name__}: fn}}"
    )


_NO_PRIMITIVE = {
    snn.SLSTM: "an LSTM cell (sigmoid and tanh gates multiplying the cell state)",
    snn.SConv2dLSTM: "a convolutional LSTM cell (sigmoid and tanh gates multiplying the cell state)",
    snn.LeakyParallel: "an nn.RNN with a ReLU recurrence run over the whole sequence in one call, without reset",
}


@register_converter(*_NO_PRIMITIVE)
def _no_primitive(mod, ctx):
    """Refuse, naming the user's module, a layer whose update is not a TALON IR neuron (rather than
    the error naming its inner ``lstm_cell`` / ``rnn`` that tracing into it gives)."""
    name = type(mod).__name__
    raise UnsupportedModuleError(
        f"module {ctx.path!r}: snnTorch {name} is not exported: it computes {_NO_PRIMITIVE[type(mod)]}, which no "
        "TALON IR primitive states (the IR's neurons are LIF, IF, LI, CubaLIF and CubaLI). Use the layers that "
        f"export exactly (Leaky, Synaptic, RLeaky, RSynaptic), or pass custom_map={{{name}: fn}} to to_ir, where "
        "fn(module) returns an ir.Node"
    )


# ---- the wrappers of the TALON snnTorch fork -----------------------------------------------------


def export_to_ir(model: nn.Module, sample: torch.Tensor, **kwargs) -> ir.Graph:
    """``snntorch.export_talonir.export_to_ir``: ``talon.bridge.to_ir(model, sample, **kwargs)``."""
    from .to_ir import to_ir

    return to_ir(model, sample, **kwargs)


def import_from_ir(path_or_graph: str | os.PathLike | ir.Graph, return_state: bool = True, **kwargs):
    """``snntorch.import_talonir.import_from_ir``: ``talon.bridge.ir_to_torch(..., return_state)``."""
    from .from_ir import ir_to_torch

    return ir_to_torch(path_or_graph, return_state=return_state, **kwargs)
