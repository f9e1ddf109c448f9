"""Norse adapter: Norse 1.1 cells as TALON IR neurons.

Norse integrates with forward Euler, ``v' = v + dt·τ⁻¹·((v_leak - v) + x)``, which is talon's
``integration='euler'`` order (LIF, LI: bit for bit) and ``β·v + g·x + c`` in value
(``dt`` and ``τ⁻¹`` from the cell)::

    LIFBoxCell -> LIF(tau = 1/(dt·tau_mem_inv), r = 1, v_leak, v_threshold = v_th, v_reset)
    LIFCell    -> CubaLIF(tau_mem as above, tau_syn = 1/(dt·tau_syn_inv), r = 1, w_in = tau_syn)
                  (Norse's "current jump": i_t = α·i_{t-1} + x_t feeds the membrane)
    LIBoxCell  -> LI(tau = 1/(dt·tau_mem_inv), r = 1, v_leak)

where ``dt·τ⁻¹`` is Norse's product, rounded in the parameter's dtype (float32 for float32 cells;
:func:`_steps`).
    IAFCell    -> IF(r = 1, v_threshold = v_th, v_reset)

all with ``comparison='>'`` (Norse's Heaviside is strict) and an immediate reset to ``v_reset``
(``reset_method=reset_subtract`` maps to ``reset_mode='subtract'``), differentiated through the
spike as Norse does (``reset_gradient='through'``, docs/semantics.md §3.1), and each cell's spike
function ``method``/``alpha`` becomes the node's ``surrogate`` (``'super'`` -> ``superspike(k=1.0)``:
Norse 1.1's SuperSpike ignores its alpha; ``'heaviside'`` -> ``none``; ``'triangle'``, ``'tanh'``,
``'heavi_erfc'``; ``'circ'`` has no IR form and is warned about and recorded). LIFBoxCell and LIBoxCell are
exported with ``integration='euler'`` and match Norse bit for bit; LIFCell's synaptic "current jump"
keeps a state IR's CubaLIF does not, so its membranes agree to float32 rounding (~1e-7).

Norse starts the membrane at ``v_leak`` (IAFCell: at ``v_reset``). IAFCell's ``v = v + x`` is
talon's IF step exactly, so ``v_reset ≠ 0`` is exported as ``v_init = v_reset``. Cells with
``v_leak ≠ 0`` are refused, each for its own reason: LIFBoxCell's Euler step adds
``(x + v_leak) - v`` (talon: ``(v_leak - v) + x``, which rounds differently), LIBoxCell's start
has no IR form (an LI starts at 0), and LIFCell's is not checked against Norse.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from norse.torch.functional.reset import reset_subtract, reset_value
from norse.torch.functional.threshold import threshold
from norse.torch.module.iaf import IAFCell
from norse.torch.module.leaky_integrator_box import LIBoxCell
from norse.torch.module.lif import LIFCell
from norse.torch.module.lif_box import LIFBoxCell

from talon import ir
from talon.ir.errors import ConversionError

from .convert import ConvertContext, one_layout, per_neuron, register_converter
from .surrogate_probe import torch_backward_matches


def _p(mod, ctx: ConvertContext, name: str) -> np.ndarray:
    return per_neuron(getattr(mod.p, name), ctx.input_shape, name, ctx.path)


def _steps(mod, ctx: ConvertContext, inv_name: str) -> np.ndarray:
    """``tau = 1/k`` (float64) with ``k = dt·τ⁻¹`` as Norse computes it: a Python float times a
    tensor is one multiplication in the tensor's dtype, the scalar rounded to it first (float32:
    ``fl32(fl32(dt)·τ⁻¹)``, which differs from ``fl32(dt·τ⁻¹)`` rounded once from float64 for about
    half of all τ⁻¹). The engines' ``k = 1/tau``, computed in float64 and cast, is then Norse's
    ``k`` exactly (``1/(1/k)`` is within a float64 rounding of ``k``, far inside half a float32 ulp)."""
    raw = getattr(mod.p, inv_name)
    inv = _p(mod, ctx, inv_name)
    if np.any(inv <= 0):
        raise ConversionError(f"module {ctx.path!r}: {inv_name} must be > 0")
    dtype = np.float64
    if isinstance(raw, torch.Tensor) and raw.dtype.is_floating_point:
        dtype = np.dtype(str(raw.dtype).removeprefix("torch."))
    with np.errstate(under="ignore"):
        k = np.asarray(float(mod.dt), dtype) * inv.astype(dtype)  # one rounding in the tensor's dtype
    with np.errstate(divide="ignore"):
        return 1.0 / k.astype(np.float64)


def _reset(mod, ctx: ConvertContext) -> dict:
    method = getattr(mod.p, "reset_method", reset_value)
    if method is reset_value:
        mode = "value"
    elif method is reset_subtract:
        mode = "subtract"
    else:
        raise ConversionError(f"module {ctx.path!r}: unknown Norse reset_method {method!r}")
    # Norse's reset `(1 - z)·v + z·v_reset` (or `z·(v - v_th)`) is differentiated through the spike z
    return {"reset_mode": mode, "v_reset": _p(mod, ctx, "v_reset"), "reset_timing": "immediate", "comparison": ">",
            "reset_gradient": "through"}  # fmt: skip


# Norse's threshold method -> the TALON IR surrogate it computes (alpha a float); each is checked
# against Norse's own backward on probe points before it is recorded (.surrogate_probe)
_NORSE_SURROGATES = {
    "super": lambda alpha: "superspike(k=1.0)",  # Norse 1.1's SuperSpike ignores alpha: 1/(|x| + 1)^2
    "heaviside": lambda alpha: "none",  # a plain comparison: no gradient through the spike
    "triangle": lambda alpha: ir.format_surrogate("triangle", alpha=alpha, k=1.0),
    "tanh": lambda alpha: ir.format_surrogate("tanh", k=alpha),
    "heavi_erfc": lambda alpha: ir.format_surrogate("erfc", k=alpha),
}


def _surrogate(mod, ctx: ConvertContext) -> dict:
    """``{"surrogate": text}`` for the spike function Norse trains the cell with, or — for one TALON IR
    cannot state (``'circ'``, a per-neuron alpha) — a warning and ``metadata['norse_surrogate']``
    (the node then keeps the default ``atan(alpha=2.0)``)."""
    method, alpha = getattr(mod.p, "method", "super"), getattr(mod.p, "alpha", 100.0)
    value = torch.as_tensor(alpha).detach()
    text = None
    if method in _NORSE_SURROGATES and value.numel() == 1:
        text = _NORSE_SURROGATES[method](float(value))
        if not torch_backward_matches(lambda x: threshold(x, method, alpha), text):
            text = None
    if text is not None:
        return {"surrogate": text}
    described = f"method={method!r}, alpha={value.tolist()!r}"
    warnings.warn(
        f"module {ctx.path!r}: its surrogate gradient ({described}) has no TALON IR form: the forward is exact, "
        f"but talon's engines train this neuron with {ir.DEFAULT_SURROGATE} (docs/bridge.md §5); recorded in the "
        "node's metadata['norse_surrogate']",
        UserWarning,
        stacklevel=2,
    )
    return {"metadata": {"norse_surrogate": described}}


_LEAK_REFUSAL = {
    # LIFBoxCell: the start at v_leak is v_init, but the step is not talon's Euler order
    "LIFBoxCell": "its Euler step adds (input + v_leak) - v where talon's adds (v_leak - v) + input; with "
    "v_leak != 0 the two round differently in float32 (membranes differ by an ulp), so it would not be exact",
    "LIFCell": "it starts the membrane at v_leak, and its current-jump form is checked against talon's CubaLIF "
    "(with v_init = v_leak) only for v_leak = 0",
    "LIBoxCell": "it starts the membrane at v_leak, and a TALON IR LI starts at 0 (only spiking neurons have v_init)",
}


def _no_leak_offset(mod, ctx: ConvertContext) -> np.ndarray:
    v_leak = _p(mod, ctx, "v_leak")
    if np.any(v_leak != 0):
        why = _LEAK_REFUSAL[type(mod).__name__]
        raise ConversionError(f"module {ctx.path!r}: Norse {type(mod).__name__} with v_leak != 0 is not converted: "
                              f"{why}; only v_leak = 0 converts exactly")  # fmt: skip
    return v_leak


def _types(ctx: ConvertContext) -> dict:
    return {"input_type": {"input": np.array(ctx.input_shape)}} if ctx.input_shape is not None else {}


@register_converter(LIFBoxCell)
def _lif_box(mod: LIFBoxCell, ctx: ConvertContext) -> ir.Node:
    params = one_layout(ctx.input_shape, tau=_steps(mod, ctx, "tau_mem_inv"), v_leak=_no_leak_offset(mod, ctx),
                        v_threshold=_p(mod, ctx, "v_th"), **_reset(mod, ctx))  # fmt: skip
    return ir.LIF(r=1.0, integration="euler", **params, **_surrogate(mod, ctx), **_types(ctx))


@register_converter(LIFCell)
def _lif(mod: LIFCell, ctx: ConvertContext) -> ir.Node:
    tau_mem, tau_syn = _steps(mod, ctx, "tau_mem_inv"), _steps(mod, ctx, "tau_syn_inv")
    params = one_layout(ctx.input_shape, tau_syn=tau_syn, tau_mem=tau_mem, v_leak=_no_leak_offset(mod, ctx),
                        v_threshold=_p(mod, ctx, "v_th"), w_in=tau_syn.copy(), **_reset(mod, ctx))  # fmt: skip
    return ir.CubaLIF(r=1.0, **params, **_surrogate(mod, ctx), **_types(ctx))


@register_converter(LIBoxCell)
def _li_box(mod: LIBoxCell, ctx: ConvertContext) -> ir.Node:
    params = one_layout(ctx.input_shape, tau=_steps(mod, ctx, "tau_mem_inv"), v_leak=_no_leak_offset(mod, ctx))
    return ir.LI(r=1.0, integration="euler", **params, **_types(ctx))


@register_converter(IAFCell)
def _iaf(mod: IAFCell, ctx: ConvertContext) -> ir.Node:
    v_reset = _p(mod, ctx, "v_reset")  # Norse starts the membrane at v_reset: the IF's v_init
    v_init = v_reset.copy() if np.any(v_reset != 0) else None
    params = one_layout(ctx.input_shape, v_threshold=_p(mod, ctx, "v_th"), v_init=v_init, **_reset(mod, ctx))
    return ir.IF(r=1.0, **params, **_surrogate(mod, ctx), **_types(ctx))
