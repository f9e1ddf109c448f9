"""Time loops of the neuron modules for ``GraphExecutor.run_sequence``.

``run_neuron_sequence(module, xs, state)`` steps one neuron module through time-major input
``xs[T, B, ...]`` and returns ``(outputs[T, B, ...], final state)`` — the same values, bit for bit,
as calling ``module(xs[t], state)`` ``T`` times (docs/semantics.md). When no gradient is needed
(``torch.no_grad()`` or inputs and state that do not require grad), the built-in neuron types use a
loop that does only the arithmetic of the step:

* the input terms that do not depend on the membrane (``g·x``, ``r·x``, and for current-based
  neurons the whole synaptic current ``i[t] = alpha·i[t-1] + g_s·x[t]``) are computed for all
  ``T`` steps in one operation each, with the same elementwise roundings as the step;
* the membrane is updated in place in one buffer and each spike is written by the comparison
  ``v > theta`` (``>=`` when inclusive) straight into the preallocated output — the value of the
  surrogate ``spike(v - theta)`` forward, without the autograd node and dtype copies;
* a delayed reset reuses the previous step's spike as its crossing ``z_prev``.

A subtractive reset ``v - z·theta`` is applied as ``addcmul`` with ``z`` in {-1, 0, 1}: the
product is exact, so fused or not the result is the rounding of the one subtraction.

With numba (the ``fast`` extra) the spiking recurrence and the synaptic current of float32/64 CPU
tensors run as one compiled call per layer (``talon.bridge.sequence_kernels``) doing the same
operations in the same order; the PyTorch loops below are their twins (``TALON_DISABLE_NUMBA=1``).
The kernels run only for nodes whose fields are ones they implement or at their defaults
(``_node_fits_kernel``), so a neuron feature added to the IR later goes to the PyTorch loops
until the kernels learn it; and only when the run is worth starting numba for
(``SEQUENCE_LOOP_COST`` and ``VALUE_RESET_LOOP_COST``, ``talon._compiled.LoopCost``: what the kernel
saves over the loop, 12-19 µs per step and, with a value reset only, ~4 ns per element, against
~0.6 s of numba start-up): a short run in a fresh process keeps the loops, and a step of more than
~24,000 elements with a subtractive reset keeps them even with numba started.

Any other module (and any call that needs a gradient) runs its own ``forward`` per step.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from talon import _compiled
from talon._compiled import LoopCost, compiled
from talon.ir.types import ResetMode, ResetTiming

from . import sequence_workspace
from .modules import CubaLIFModule, CubaLIModule, IFModule, IntegratorModule, LIFModule, LIModule


def run_neuron_sequence(module: torch.nn.Module, xs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    """Step a stateful module through ``xs[T, ...]``; returns (outputs ``[T, ...]``, final state)."""
    fast = _FAST_LOOPS.get(type(module))
    if fast is not None and xs.shape[0] > 0 and not _needs_grad(xs, state) and _updates_in_place(module, xs):
        return fast(module, xs, state)
    outs = []
    for t in range(xs.shape[0]):
        out, state = module(xs[t], state)
        outs.append(out)
    return torch.stack(outs), state


def releases_input(module: torch.nn.Module, xs: torch.Tensor, state: Any = None) -> bool:
    """Whether running ``module`` over ``xs`` keeps no reference to ``xs`` (nor a view of it) once
    it returns: an ``nn.Linear`` computing exact products into its own output, or a neuron
    running its in-place loop (``GraphExecutor.run_sequence`` may then reuse ``xs``'s buffer)."""
    if type(module) is torch.nn.Linear:
        from .sequence_products import linear_fits

        return linear_fits(module, [xs])
    return (
        type(module) in _FAST_LOOPS and xs.shape[0] > 0 and not _needs_grad(xs, state) and _updates_in_place(module, xs)
    )


def _needs_grad(xs: torch.Tensor, state: Any) -> bool:
    if not torch.is_grad_enabled():
        return False
    tensors = [xs, *(state if isinstance(state, tuple) else () if state is None else (state,))]
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def _updates_in_place(module: torch.nn.Module, xs: torch.Tensor) -> bool:
    return updates_in_place(module, tuple(xs.shape[1:]), xs.dtype)


def updates_in_place(module: torch.nn.Module, layer: tuple[int, ...], dtype: torch.dtype) -> bool:
    """The in-place loop computes what the step computes only when no coefficient widens the
    state: same dtype as the input (no type promotion) and broadcasting to the input's shape
    ``layer`` (a step's ``[B, ...]``)."""
    for b in module.buffers():
        if b.is_floating_point() and b.dtype != dtype:
            return False
        shape = tuple(b.shape)
        if len(shape) > len(layer) or any(d not in (1, n) for d, n in zip(shape[::-1], layer[::-1], strict=False)):
            return False
    return True


# ---- spiking neurons (LIF, IF, CubaLIF) ------------------------------------------------------


def _drive_terms(module, xs: torch.Tensor) -> Callable[[torch.Tensor, int], None]:
    """The in-place membrane update ``v <- _membrane(v, x[t])`` of ``module`` with its
    membrane-independent input term precomputed for all steps."""
    if isinstance(module, IFModule):
        gx = xs if module._unit_gain else module.gain * xs

        def update(v: torch.Tensor, t: int) -> None:
            v.add_(gx[t])

        return update
    if isinstance(module, LIFModule) and module.node.integration == "euler":
        rx = module.r_in * xs

        def update(v: torch.Tensor, t: int) -> None:  # v + k*((v_leak - v) + r*x)
            step = torch.sub(module.v_leak_e, v)
            step.add_(rx[t])
            step.mul_(module.k)
            v.add_(step)

        return update
    gx = xs if module._unit_gain else module.gain * xs

    def update(v: torch.Tensor, t: int) -> None:  # (beta*v + g*x) + c
        v.mul_(module.beta)
        v.add_(gx[t])
        if not module._no_drive:
            v.add_(module.drive)

    return update


def _spiking_loop(module, drive: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The ``_Spiking._fire`` recurrence over ``drive[T, ...]`` updating ``v`` in place; returns spikes."""
    out = sequence_workspace.empty_like(drive)
    update = _drive_terms(module, drive)
    compare = torch.ge if module.inclusive else torch.gt
    v_th = module.v_th
    mode, timing = module.reset_mode, module.reset_timing

    def reset(u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if mode is ResetMode.SUBTRACT:
            return u.addcmul_(z, v_th, value=-1)
        if mode is ResetMode.VALUE:
            return u.copy_(torch.where(z > 0, module.v_rst, u))
        return u

    if timing is ResetTiming.IMMEDIATE and (module.multi_spike or module.v_floor is not None):
        return _multi_spike_or_floor_loop(module, update, drive, v, out)
    if timing is ResetTiming.IMMEDIATE:
        for t in range(drive.shape[0]):
            update(v, t)
            compare(v, v_th, out=out[t])
            reset(v, out[t])
        return out
    z_prev = torch.empty_like(v)
    compare(v, v_th, out=z_prev)
    if timing is ResetTiming.SNNTORCH_IMMEDIATE:
        for t in range(drive.shape[0]):
            if t:
                compare(v, v_th, out=z_prev)
            update(v, t)
            reset(v, z_prev)
            compare(v, v_th, out=out[t])
            v.addcmul_(out[t] - z_prev, v_th, value=-1)  # u - (z - z_prev)*theta
        return out
    for t in range(drive.shape[0]):  # DELAYED, DELAYED_PRE_DECAY
        if module.spike_pre:
            out[t].copy_(z_prev)
        if timing is ResetTiming.DELAYED_PRE_DECAY:
            reset(v, z_prev)
        update(v, t)
        if timing is ResetTiming.DELAYED:
            reset(v, z_prev)
        if module.spike_pre:
            compare(v, v_th, out=z_prev)
        else:
            compare(v, v_th, out=out[t])
            z_prev = out[t]  # the crossing of this state is the next step's z_prev
    return out


def _multi_spike_or_floor_loop(module, update, drive: torch.Tensor, v: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The immediate-reset loop with ``spike_mode='multi'`` and/or the floor ``v_min``
    (docs/semantics.md §3.1): ``n = floor(v/theta)`` where ``v >= theta`` (else 0) written into the
    output, ``v - n·theta`` (the product rounded, then subtracted), then ``max(v - v_min, 0) + v_min``."""
    compare = torch.ge if module.inclusive else torch.gt
    v_th, floor = module.v_th, module.v_floor
    count = torch.empty_like(v)
    for t in range(drive.shape[0]):
        update(v, t)
        compare(v, v_th, out=out[t])
        if module.multi_spike:
            torch.div(v, v_th, out=count).floor_().clamp_min_(0)
            if module.max_spikes is not None:
                count.clamp_max_(module.max_spikes)
            out[t].mul_(count)  # z in {0, 1} times a count >= 0: exact, +0 where no spike
            torch.mul(out[t], v_th, out=count)
            v.sub_(count)
        elif module.reset_mode is ResetMode.SUBTRACT:
            v.addcmul_(out[t], v_th, value=-1)
        elif module.reset_mode is ResetMode.VALUE:
            v.copy_(torch.where(out[t] > 0, module.v_rst, v))
        if floor is not None:
            v.sub_(floor).clamp_min_(0).add_(floor)
    return out


def _start(module, v0: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """The spiking membrane to update in place: the caller's state (copied) or the node's ``v_init``."""
    return module._initial(like) if v0 is None else v0.clone()


def _lif_or_if(module, xs, state):
    v = _start(module, state, xs[0])
    return _spiking(module, xs, v)


def _spiking(module, drive: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes, final membrane): the compiled kernel when it applies, else the PyTorch loop."""
    if v.shape == drive.shape[1:] and _kernel_applies(module, drive, spiking_cost(module)):
        return _spiking_kernel(module, drive, v)
    return _spiking_loop(module, drive, v), v


_KERNEL_DTYPES = (torch.float32, torch.float64)

# What each path costs (talon._compiled.LoopCost, ns of CPU time; bench/loop_costs.py, one LIF layer
# through run_sequence, one thread, T 300-20,000 x B 1-64 x L 16-2,048). With a subtractive (or no)
# reset (snnTorch's Leaky: the examples' neuron) the PyTorch loop costs ~12 us per step (the dispatch
# of its half-dozen in-place operations) + ~2.8 ns per element, and the kernel is no quicker per
# element: ~2.2 ns on one row, up to 4-6 ns over many batch rows of a few hundred neurons (64 x 128:
# 45 ms against the loop's 26 ms for 1,000 steps; 64 x 512, 1,200 steps: 173 against 146 ms), so it
# is counted 0.5 ns slower: a step wider than ~24,000 elements keeps the loop even with numba started.
# A value reset adds an allocation a step to the loop (torch.where): ~19 us per step + ~6.8 ns per
# element, against the kernel's ~2.8 ns. A call's work for SEQUENCE_LOOP_WORK is what the kernel saves, in ns.
SEQUENCE_LOOP_COST = LoopCost(
    "run_sequence neuron loop", twin_step=12_000, twin_element=2.8, kernel_step=0, kernel_element=3.3
)
VALUE_RESET_LOOP_COST = LoopCost(
    "run_sequence neuron loop, value reset", twin_step=19_000, twin_element=6.8, kernel_step=0, kernel_element=2.8
)
# A current-based neuron's synaptic current (two PyTorch operations a step) saves less: measured as
# the difference of the two paths of a CubaLI layer (whose membrane steps in PyTorch on both),
# ~6.8 us per step + ~1.9 ns per element; only the difference is known, and only it matters.
SYNAPTIC_LOOP_COST = LoopCost(
    "run_sequence synaptic current", twin_step=6_800, twin_element=1.9, kernel_step=0, kernel_element=0
)
SEQUENCE_LOOP_WORK = SEQUENCE_LOOP_COST.threshold()  # one threshold (one start-up) for both kinds of call


def loop_work(steps: int, step_elements: int, cost: LoopCost | None = None) -> int:
    """The work of one compiled-loop call over ``steps`` steps of ``step_elements`` elements each
    (``B·L``), in ``SEQUENCE_LOOP_WORK``'s units: the CPU time the kernel saves over the PyTorch
    loop, in ns, by ``cost`` (default ``SEQUENCE_LOOP_COST``, the spiking recurrence)."""
    return (cost or SEQUENCE_LOOP_COST).saving_ns(steps, step_elements)


def kernel_fits(module, device: torch.device, dtype: torch.dtype, ndim: int) -> bool:
    """The compiled loops cover binary spikes without a membrane floor on CPU float32/64, with
    coefficients of the layer's shape (not varying over the batch); ``ndim``: of ``xs[T, B, ...]``."""
    return (
        _compiled.numba_available()
        and device.type == "cpu"
        and dtype in _KERNEL_DTYPES
        and ndim >= 2
        and all(b.ndim <= ndim - 2 for b in module.buffers())
        and _node_fits_kernel(module.node)
    )


def _kernel_applies(module, xs: torch.Tensor, cost: LoopCost | None = None) -> bool:
    """:func:`kernel_fits`, and the run is worth the compiled loop (``SEQUENCE_LOOP_WORK``, the
    work by ``cost``: :func:`loop_work`)."""
    return (
        xs.numel() > 0
        and kernel_fits(module, xs.device, xs.dtype, xs.ndim)
        and SEQUENCE_LOOP_WORK.use_compiled(loop_work(xs.shape[0], xs[0].numel(), cost))
    )


_KERNEL_FIELDS = frozenset({
    "input_type", "output_type", "metadata", "tau", "tau_syn", "tau_mem", "r", "v_leak", "w_in", "v_threshold",
    "v_reset", "reset_mode", "reset_timing", "spike_timing", "comparison", "integration", "v_init", "reset_gradient",
    "surrogate",  # training only: the kernels run without a gradient
})  # fmt: skip


def _node_fits_kernel(node) -> bool:
    """Every field of ``node`` is one the kernels implement, or holds its default value."""
    for field in dataclasses.fields(node):
        if field.name in _KERNEL_FIELDS:
            continue
        if field.default is dataclasses.MISSING:
            return False
        value = getattr(node, field.name)
        if value is field.default:
            continue
        try:
            if not bool(np.all(np.asarray(value == field.default))):
                return False
        except (TypeError, ValueError):
            return False
    return True


def _layer(coefficient: torch.Tensor | None, xs: torch.Tensor, repeat: int = 1) -> np.ndarray:
    """A coefficient broadcast to the flat layer of ``xs[T, B, ...]`` (``[L]``, or ``repeat``
    copies of it end to end), or empty."""
    if coefficient is None:
        return np.empty(0, xs.numpy().dtype)
    flat = torch.broadcast_to(coefficient, xs.shape[2:]).reshape(-1).numpy()
    return np.tile(flat, repeat) if repeat > 1 else np.ascontiguousarray(flat)


_NARROW = 256  # a layer narrower than this runs all batch rows as one row


def _kernel_rows(xs: torch.Tensor) -> tuple[int, int]:
    """(rows, repeat): how the kernels see the batch of ``xs[T, B, ...]``. The batch rows are
    independent and every operation is elementwise, so a narrow layer's ``B`` rows of ``L`` run as
    one row of ``B·L`` with its coefficients repeated ``B`` times (the same operations on the same
    elements, without ``T·B`` short inner loops); a wide or large layer keeps its rows."""
    steps, batch = xs.shape[:2]
    if xs.numel() // max(steps * batch, 1) < _NARROW and xs.numel() < _PARALLEL_MIN_ELEMENTS:
        return 1, batch
    return batch, 1


_PARALLEL_MIN_ELEMENTS = 1 << 18
_POOLS: dict = {}  # worker count -> ThreadPoolExecutor, created at the first large layer


def _over_batch_rows(kernel, batch: int, elements: int, *args) -> None:
    """``kernel(*args, b_start, b_stop)`` over all batch rows, split into as many slices as torch
    may use threads (``torch.get_num_threads()``): the kernels release the GIL and the rows are
    independent, so the result does not depend on the split. Small layers run in one call."""
    workers = min(torch.get_num_threads(), batch)
    if workers <= 1 or elements < _PARALLEL_MIN_ELEMENTS:
        kernel(*args, 0, batch)
        return
    pool = _POOLS.get(workers)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        pool = _POOLS.setdefault(workers, ThreadPoolExecutor(workers, thread_name_prefix="talon-sequence"))
    bounds = [batch * k // workers for k in range(workers + 1)]
    futures = [pool.submit(kernel, *args, lo, hi) for lo, hi in itertools.pairwise(bounds)]
    for future in futures:
        future.result()


_MEMBRANE_CODES = {"if": 0, "decay": 1, "euler": 2}
_RESET_CODES = {ResetMode.SUBTRACT: 1, ResetMode.VALUE: 2}
_TIMING_CODES = {
    ResetTiming.IMMEDIATE: 0, ResetTiming.SNNTORCH_IMMEDIATE: 1, ResetTiming.DELAYED: 2,
    ResetTiming.DELAYED_PRE_DECAY: 3,
}  # fmt: skip


def _spiking_kernel(module, drive: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from . import sequence_kernels

    kernel = compiled(sequence_kernels.spiking_steps)
    steps = drive.shape[0]
    xs = drive.detach().contiguous()
    v = v.detach().contiguous()
    out = sequence_workspace.empty_like(xs)
    if isinstance(module, IFModule):
        form = "if"
    else:
        form = "euler" if getattr(module.node, "integration", "decay") == "euler" else "decay"
    euler = form == "euler"
    unit = not euler and module._unit_gain
    drives = form == "decay" and not module._no_drive
    rows, n = _kernel_rows(xs)
    _over_batch_rows(
        kernel, rows, xs.numel(),
        xs.numpy().reshape(steps, rows, -1), v.numpy().reshape(rows, -1), out.numpy().reshape(steps, rows, -1),
        _MEMBRANE_CODES[form], unit, drives, _layer(None if unit or euler else module.gain, xs, n),
        _layer(module.beta if form == "decay" else None, xs, n), _layer(module.drive if drives else None, xs, n),
        *(_layer(getattr(module, name) if euler else None, xs, n) for name in ("k", "v_leak_e", "r_in")),
        _layer(module.v_th, xs, n), _layer(module.v_rst if module.reset_mode is ResetMode.VALUE else None, xs, n),
        _RESET_CODES.get(module.reset_mode, 0), _TIMING_CODES[module.reset_timing], module.spike_pre,
        module.inclusive,
    )  # fmt: skip
    return out, v


def _synaptic_current(module, xs: torch.Tensor, i0: torch.Tensor | None, unit_gain: bool) -> torch.Tensor:
    """``i[t] = alpha·i[t-1] + g_s·x[t]`` for all steps (it does not depend on the membrane)."""
    if (i0 is None or i0.shape == xs.shape[1:]) and _kernel_applies(module, xs, SYNAPTIC_LOOP_COST):
        return _synaptic_kernel(module, xs, i0, unit_gain)
    sx = xs if unit_gain else module.syn_gain * xs
    current = sequence_workspace.empty_like(xs)
    previous = torch.zeros_like(xs[0]) if i0 is None else i0
    if getattr(module, "input_first", False):  # i[t] = alpha·(i[t-1] + g_s·x[t])
        for t in range(xs.shape[0]):
            torch.add(previous, sx[t], out=current[t])
            current[t].mul_(module.alpha)
            previous = current[t]
        return current
    for t in range(xs.shape[0]):
        torch.mul(module.alpha, previous, out=current[t])
        current[t].add_(sx[t])
        previous = current[t]
    return current


def _synaptic_kernel(module, xs: torch.Tensor, i0: torch.Tensor | None, unit_gain: bool) -> torch.Tensor:
    from . import sequence_kernels

    kernel = compiled(sequence_kernels.synaptic_current)
    steps = xs.shape[0]
    xs = xs.detach().contiguous()
    current = sequence_workspace.empty_like(xs)
    start = torch.zeros_like(xs[0]) if i0 is None else i0.detach().contiguous()
    rows, n = _kernel_rows(xs)
    _over_batch_rows(
        kernel, rows, xs.numel(),
        xs.numpy().reshape(steps, rows, -1), start.numpy().reshape(rows, -1), unit_gain, _layer(module.alpha, xs, n),
        _layer(None if unit_gain else module.syn_gain, xs, n), current.numpy().reshape(steps, rows, -1),
    )  # fmt: skip
    return current


def _cuba_lif(module, xs, state):
    v0, i0 = (None, None) if state is None else state
    current = _synaptic_current(module, xs, i0, module._unit_syn_gain)
    v = _start(module, v0, xs[0])
    spikes, v = _spiking(module, current, v)
    state = (v, current[-1].clone())
    sequence_workspace.release(current)  # the spikes and state do not refer to it
    return spikes, state


# ---- non-spiking neurons (LI, CubaLI, Integrator): the output is the membrane ----------------


def _leaky_membrane(module, drive: torch.Tensor, v0: torch.Tensor | None) -> torch.Tensor:
    """``v[t] = (beta·v[t-1] + g·x[t]) + c`` (or the Euler form) written into the output."""
    out = torch.empty_like(drive)
    v = torch.zeros_like(drive[0]) if v0 is None else v0
    if getattr(module.node, "integration", "decay") == "euler":
        rx = module.r_in * drive
        for t in range(drive.shape[0]):
            torch.sub(module.v_leak_e, v, out=out[t])
            out[t].add_(rx[t])
            out[t].mul_(module.k)
            out[t].add_(v)
            v = out[t]
        return out
    gx = module.gain * drive
    for t in range(drive.shape[0]):
        torch.mul(module.beta, v, out=out[t])
        out[t].add_(gx[t])
        out[t].add_(module.drive)
        v = out[t]
    return out


def _li(module, xs, state):
    out = _leaky_membrane(module, xs, state)
    return out, out[-1].clone()


def _cuba_li(module, xs, state):
    v0, i0 = (None, None) if state is None else state
    current = _synaptic_current(module, xs, i0, unit_gain=False)
    out = _leaky_membrane(module, current, v0)
    state = (out[-1].clone(), current[-1].clone())
    sequence_workspace.release(current)
    return out, state


def _integrator(module, xs, state):
    gx = module.gain * xs
    out = torch.empty_like(xs)
    v = torch.zeros_like(xs[0]) if state is None else state
    for t in range(xs.shape[0]):
        torch.add(v, gx[t], out=out[t])
        v = out[t]
    return out, out[-1].clone()


# The compiled-loop calls a layer's in-place loop asks SEQUENCE_LOOP_WORK for, each over the whole
# sequence: a current-based neuron's synaptic current, and the spiking recurrence.
KERNEL_CALLS: dict[type, tuple[str, ...]] = {
    LIFModule: ("spiking",),
    IFModule: ("spiking",),
    CubaLIFModule: ("synaptic", "spiking"),
    CubaLIModule: ("synaptic",),
}


def spiking_cost(module) -> LoopCost:
    """The cost model of ``module``'s spiking recurrence: by its reset (a value reset costs the
    PyTorch loop more, per step and per element)."""
    return VALUE_RESET_LOOP_COST if module.reset_mode is ResetMode.VALUE else SEQUENCE_LOOP_COST


def kernel_costs(module) -> tuple[LoopCost, ...]:
    """The cost model of each compiled-loop call ``module`` makes (none without a kernel)."""
    kinds = KERNEL_CALLS.get(type(module), ())
    return tuple(SYNAPTIC_LOOP_COST if kind == "synaptic" else spiking_cost(module) for kind in kinds)


_FAST_LOOPS: dict[type, Callable[..., tuple[torch.Tensor, Any]]] = {
    LIFModule: _lif_or_if,
    IFModule: _lif_or_if,
    CubaLIFModule: _cuba_lif,
    LIModule: _li,
    CubaLIModule: _cuba_li,
    IntegratorModule: _integrator,
}
