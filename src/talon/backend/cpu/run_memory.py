"""The memory a run of the CPU executor holds at once, checked before the run starts.

The executor (:mod:`.executor`) keeps every value as a ``[T, B, *shape]`` array from the operation
that produces it until its last reader has run, so a run's memory grows with the number of steps
``T``. :func:`sequence_bytes` replays that schedule on the value sizes alone: while a component
runs, the values still awaiting a reader and the component's outputs are all alive, and a weight
layer run over the whole sequence with exact (float64) accumulation also holds its float64 result
before the rounding. The sum is a lower bound of the run's peak (other kernel temporaries,
delayed-edge copies and recorded states come on top), so a run it refuses could not have fitted.
"""

from __future__ import annotations

import math

from ..errors import BackendError
from ..stimulus import memory_limit
from .observers import WEIGHT_NODES
from .program import Program


def sequence_bytes(
    program: Program, steps: int, batch: int, itemsize: int, *, keep_all: bool = False, accumulator_itemsize: int = 0
) -> int:
    """Peak bytes of the ``[steps, batch, *shape]`` values alive at once during one run of ``program``.

    ``itemsize``: bytes per element of a stored value; ``keep_all``: every value is kept to the end
    (a step-by-step run), otherwise a value is freed after its last reader, as the executor does;
    ``accumulator_itemsize``: bytes per element of the accumulator a weight layer computes its whole
    output in before rounding to ``itemsize`` (8 for fp32 with exact accumulation, else 0: none).
    """
    per_step = steps * batch * itemsize
    size = {value.id: math.prod(value.shape) * per_step for value in program.values}
    remaining = {vid: len(readers) for vid, readers in program.consumers().items()}
    kept = set(range(len(program.values))) if keep_all else set(program.outputs.values())
    live = set(program.inputs.values())  # the caller's input sequences
    peak = sum(size[v] for v in live)
    for component in program.components:
        ops = [program.ops[i] for i in component.ops]
        live |= {vid for op in ops for vid in op.outputs}
        accumulator = 0
        if accumulator_itemsize and not component.cyclic and isinstance(ops[0].node, WEIGHT_NODES):
            accumulator = sum(size[v] for v in ops[0].outputs) // itemsize * accumulator_itemsize
        peak = max(peak, sum(size[v] for v in live) + accumulator)
        for op in ops:
            for vid in dict.fromkeys(ref.value for ref in op.inputs):
                remaining[vid] -= 1
            for vid in [*(ref.value for ref in op.inputs), *op.outputs]:
                if remaining[vid] == 0 and vid not in kept:
                    live.discard(vid)
    return peak


def check_run_memory(
    program: Program, steps: int, batch: int, itemsize: int, *, keep_all: bool = False, accumulator_itemsize: int = 0
) -> None:
    """Refuse, before it starts, a run whose layer outputs alone (:func:`sequence_bytes`) exceed
    :func:`~..stimulus.memory_limit` (half of the machine's memory), naming the number of steps that fit."""
    needed = sequence_bytes(
        program, steps, batch, itemsize, keep_all=keep_all, accumulator_itemsize=accumulator_itemsize
    )
    limit = memory_limit()
    if needed <= limit:
        return
    fits = steps * limit // needed
    advice = f"run at most {fits:,} steps at this batch size" if fits >= 1 else "use a smaller batch"
    raise BackendError(
        f"a run of {steps:,} steps x batch {batch} holds at least {needed:,} bytes of layer outputs at once "
        f"(the CPU backend keeps each layer's output for every step), more than half of this machine's "
        f"memory ({limit:,} bytes); {advice}"
    )
