"""The memory a run of the CPU executor holds, planned and checked before the run starts.

A run is cut into chunks of steps (:mod:`.executor`): every layer's output exists for one chunk at
a time, so the working set is ``chunk_steps x`` the bytes of one step (:func:`sequence_bytes`
replays the executor's schedule on the value sizes: while a component runs, the values still
awaiting a reader and the component's outputs are alive, and a weight layer run over a sequence
with exact (float64) accumulation also holds its float64 result before the rounding).
:func:`plan_chunk` picks the most steps whose working set stays within ``CHUNK_BYTES`` (all steps
when they fit: then the run is one chunk, as before chunking existed).

What grows with the steps is only what the run must hand back (:func:`held_bytes`): the graph
outputs ``[T, B, ...]``, with ``step_by_step=True`` the probed nodes' values (every node's without
``probes``), and at a reduced precision the fp32 reference's outputs for the error report (none
when ``on_outputs`` takes the outputs of a run of several chunks) and its spike trains (one bit per
neuron and step; for one chunk only when the run has several: the reference then runs in
lockstep, :mod:`.reference_run`). :func:`check_run_memory` refuses a run whose held results plus one chunk exceed
:func:`~..stimulus.memory_limit` (half of the machine's memory), naming what is held and the
number of steps that fit. Both sums are lower bounds (kernel temporaries come on top).
"""

from __future__ import annotations

import math
from collections.abc import Collection

from ...errors import BackendError
from ...stimulus import memory_limit
from ..lowering.program import Program
from .observers import WEIGHT_NODES

#: The working set a chunk of steps may take (layer outputs alive at once), in bytes. Large enough
#: that each chunk's stateless layers are big matrix products (the per-chunk cost of dispatching
#: every operation is negligible), small enough to stay far below any machine's memory.
CHUNK_BYTES = 64 << 20


def sequence_bytes(
    program: Program, steps: int, batch: int, itemsize: int, *, keep: Collection[int] = (),
    accumulator_itemsize: int = 0,
) -> int:  # fmt: skip
    """Peak bytes of the ``[steps, batch, *shape]`` values alive at once during one run of ``program``.

    ``itemsize``: bytes per element of a stored value; ``keep``: the ids of values kept to the end
    besides the graph outputs (a step-by-step run's), any other is freed after its last reader, as
    the executor does;
    ``accumulator_itemsize``: bytes per element of the accumulator a weight layer computes its whole
    output in before rounding to ``itemsize`` (8 for fp32 with exact accumulation, else 0: none).
    """
    per_step = steps * batch * itemsize
    size = {value.id: math.prod(value.shape) * per_step for value in program.values}
    remaining = {vid: len(readers) for vid, readers in program.consumers().items()}
    kept = set(keep) | set(program.outputs.values())
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


def plan_chunk(
    program: Program, steps: int, batch: int, itemsize: int, *, accumulator_itemsize: int = 0,
    chunk_steps: int | None = None, budget: int | None = None,
) -> int:  # fmt: skip
    """The number of steps run at once: ``chunk_steps`` when the caller gives one (at most
    ``steps``), else the most whose layer outputs (:func:`sequence_bytes`) fit in ``budget``
    (``CHUNK_BYTES``, or a quarter of :func:`~..stimulus.memory_limit` if that is less), at least 1."""
    if chunk_steps is not None:
        if isinstance(chunk_steps, bool) or not isinstance(chunk_steps, int) or chunk_steps < 1:
            raise BackendError(f"chunk_steps must be a positive integer or None (automatic), got {chunk_steps!r}")
        return min(int(chunk_steps), steps)
    per_step = sequence_bytes(program, 1, batch, itemsize, accumulator_itemsize=accumulator_itemsize)
    budget = min(CHUNK_BYTES, memory_limit() // 4) if budget is None else budget
    return max(1, min(steps, budget // max(per_step, 1)))


def held_bytes(
    program: Program, steps: int, batch: int, itemsize: int, *, step_values: Collection[int] | None = None,
    reference: bool = False, spiking_sizes: list[int] = (), stream_outputs: bool = False, chunk: int | None = None,
    lockstep: bool = False,
) -> dict[str, int]:  # fmt: skip
    """What a run must hold for all ``steps`` to hand it back, by kind (bytes): ``outputs`` (the graph
    outputs, float32), ``step_by_step`` (the values of ids ``step_values``, ``itemsize`` each: a
    step-by-step run's probed values), ``fp32 reference`` (with ``reference``: its outputs and spike
    trains, one bit per entry of the spiking layers of ``spiking_sizes`` neurons). ``stream_outputs``:
    the outputs go to the caller chunk by chunk (``on_outputs``), none are held. A reference run in
    ``lockstep`` with chunks of ``chunk`` steps holds the trains of one chunk, and its outputs only
    if the run's own are held (the report compares the whole arrays)."""
    per_step = steps * batch
    outputs = sum(math.prod(program.values[v].shape) for v in program.outputs.values()) * per_step * 4
    out = {"outputs": 0 if stream_outputs else outputs}
    if step_values is not None:
        out["step_by_step"] = sum(math.prod(program.values[v].shape) for v in step_values) * per_step * itemsize
    if reference:
        lockstep = lockstep and chunk is not None
        trains = sum(spiking_sizes) * (chunk if lockstep else steps) * batch // 8
        out["fp32 reference"] = (0 if lockstep and stream_outputs else outputs) + trains
    return out


def check_run_memory(
    program: Program, steps: int, batch: int, itemsize: int, *, step_values: Collection[int] | None = None,
    accumulator_itemsize: int = 0, chunk_steps: int | None = None, reference: bool = False,
    spiking_sizes: list[int] = (), stream_outputs: bool = False, lockstep: bool = False,
) -> int:  # fmt: skip
    """Plan the chunks (:func:`plan_chunk`) and refuse, before it starts, a run whose held results
    (:func:`held_bytes`) plus one chunk's layer outputs exceed :func:`~..stimulus.memory_limit`
    (half of the machine's memory), naming what is held and the steps that fit. Returns the chunk."""
    chunk = plan_chunk(
        program, steps, batch, itemsize, accumulator_itemsize=accumulator_itemsize, chunk_steps=chunk_steps
    )
    working = sequence_bytes(
        program, chunk, batch, itemsize, keep=step_values or (), accumulator_itemsize=accumulator_itemsize
    )
    held = held_bytes(
        program, steps, batch, itemsize, step_values=step_values, reference=reference, spiking_sizes=spiking_sizes,
        stream_outputs=stream_outputs, chunk=chunk, lockstep=lockstep,
    )  # fmt: skip
    total = sum(held.values())
    limit = memory_limit()
    if total + working <= limit:
        return chunk
    what = ", ".join(f"{kind} {nbytes:,}" for kind, nbytes in held.items() if nbytes)
    if working > limit:
        advice = "use a smaller batch" + ("" if chunk_steps is None or chunk == 1 else " or smaller chunk_steps")
    else:
        fits = steps * (limit - working) // max(total, 1)
        advice = f"run at most {fits:,} steps at this batch size" if fits >= 1 else "use a smaller batch"
        if step_values is not None:
            advice += "; without step_by_step only the graph outputs are kept (with probes, only the probed nodes)"
        advice += ", or cut the run into several calls"
    raise BackendError(
        f"a run of {steps:,} steps x batch {batch} must hold {total:,} bytes of results for all steps ({what}) "
        f"plus {working:,} bytes of layer outputs for one chunk of {chunk:,} steps, more than half of this "
        f"machine's memory ({limit:,} bytes); {advice}"
    )
