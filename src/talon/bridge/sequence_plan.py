"""The compiled-loop work of a ``GraphExecutor.run_sequence`` call, known before it starts.

The neuron loops of ``run_sequence`` ask ``SEQUENCE_LOOP_WORK`` (``talon.bridge.sequence``, a
:class:`talon._compiled.WorkThreshold`) one layer at a time; left alone, a long run of a deep
network finds out it is worth starting numba only once the PyTorch loops have run its first
layers. But every layer's loop is known from the executor before the run: an acyclic graph runs
each neuron layer once over the ``T`` steps of a ``[T, B, ...]`` input, its work per compiled call
the CPU time the kernel saves over the PyTorch loop (``SEQUENCE_LOOP_COST``: ~12 µs of dispatch per
step and nothing per element of the ``B·L`` with a subtractive reset, ``VALUE_RESET_LOOP_COST``:
~19 µs and ~4 ns with a value reset; a current-based neuron makes one more call for its synaptic
current, ``SYNAPTIC_LOOP_COST``: ~7 µs and ~2 ns). So ``run_sequence`` adds up their
:meth:`~talon._compiled.WorkThreshold.share` here and declares the sum with
:func:`talon._compiled.planned_work`: a run worth a start-up runs compiled from its first layer, a
short one keeps the loops. The outputs are the same bits either way.

Left out (still counted call by call, or never compiled): a cyclic graph (it steps the generated
code, whose neurons run their own ``forward``), a call that needs a gradient (the loops then do not
run: counted as zero whenever autograd is on and an input, the state or a parameter requires grad),
and a layer whose shape, dtype, device or node the kernels do not take.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from talon import _compiled

from . import sequence

if TYPE_CHECKING:
    from .executor import GraphExecutor


def layer_share(
    module: torch.nn.Module, steps: int, batch: int, dtype: torch.dtype, device: torch.device, *, checked: bool = True
) -> float:
    """The work of the compiled calls ``run_neuron_sequence`` would make for ``module`` on input
    ``[steps, batch, *layer]`` (``layer``: the node's input shape), in numba start-ups; 0 for a
    module without a compiled loop or (``checked``) one the kernels do not take."""
    costs = sequence.kernel_costs(module)
    layer = getattr(module, "_layer_shape", None)
    if not costs or layer is None or steps < 1:
        return 0.0
    step = (batch, *map(int, layer))
    elements = math.prod(step)
    if elements == 0:
        return 0.0
    if checked and not (
        sequence.updates_in_place(module, step, dtype) and sequence.kernel_fits(module, device, dtype, len(step) + 1)
    ):
        return 0.0
    return sum(sequence.SEQUENCE_LOOP_WORK.share(sequence.loop_work(steps, elements, cost)) for cost in costs)


def executor_share(
    executor: GraphExecutor,
    steps: int,
    batch: int,
    dtype: torch.dtype,
    device: torch.device,
    *,
    checked: bool = True,
) -> float:
    """The sum of :func:`layer_share` over the neuron layers an acyclic ``executor`` (and every
    acyclic executor nested in it) runs through the sequence; 0 for a cyclic one. ``checked=False``:
    an upper bound, every layer with a compiled loop counted (cheap: no look at its node)."""
    if executor.is_cyclic:
        return 0.0
    total = 0.0
    for module in executor._modules.values():  # one per node (a module shared by two nodes runs twice)
        if type(module) in sequence.KERNEL_CALLS:
            total += layer_share(module, steps, batch, dtype, device, checked=checked)
        elif isinstance(module, _graph_executor()):
            total += executor_share(module, steps, batch, dtype, device, checked=checked)
    return total


@functools.cache
def _graph_executor() -> type:
    from .executor import GraphExecutor  # (it imports this module)

    return GraphExecutor


def run_sequence_share(executor: GraphExecutor, xs: tuple[torch.Tensor, ...], state: Mapping | None) -> float:
    """What ``executor.run_sequence(*xs, state=state)`` declares: :func:`executor_share` of its
    inputs' ``T``, ``B``, dtype and device; 0 when the plan cannot change a decision (numba already
    started or missing, a mode forced, or the run and the twin work so far together below one
    start-up, which the upper bound tells without looking at the nodes) or when the call may need
    a gradient."""
    if _compiled.mode() != "auto" or _compiled.numba_started() or not _compiled.numba_installed():
        return 0.0
    if not xs:
        return 0.0
    first = xs[0]
    steps, batch = int(first.shape[0]), int(first.shape[1])
    dtype = executor._compute_dtype() or first.dtype
    bound = executor_share(executor, steps, batch, dtype, first.device, checked=False)
    if _compiled.twin_cost_so_far() + bound < 1.0 or _may_need_grad(executor, xs, state):
        return 0.0
    return executor_share(executor, steps, batch, dtype, first.device)


def _may_need_grad(executor: torch.nn.Module, xs: tuple[torch.Tensor, ...], state: Any) -> bool:
    if not torch.is_grad_enabled():
        return False
    if any(x.requires_grad for x in xs) or any(p.requires_grad for p in executor.parameters()):
        return True
    return any(isinstance(t, torch.Tensor) and t.requires_grad for t in _tensors(state))


def _tensors(value: Any):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _tensors(item)
        yield from _tensors(getattr(value, "edges", None))
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
