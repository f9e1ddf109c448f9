"""The memory a run of the CPU executor holds, planned and checked before the run starts.

A run is cut into chunks of steps (:mod:`.executor`): every layer's output exists for one chunk at
a time, so the working set is ``chunk_steps x`` the bytes of one step (:func:`sequence_bytes`
replays the executor's schedule on the value sizes: while a component runs, the values still
awaiting a reader and the component's outputs are alive, and a weight layer run over a sequence
with exact (float64) accumulation also holds its float64 result before the rounding).
:func:`plan_chunk` picks the most steps whose working set stays within ``CHUNK_BYTES`` (all steps
when they fit: then the run is one chunk, as before chunking existed).

What grows with the steps is only what the run must hand back (:func:`held_bytes`, the bytes of
the result's arrays): the graph outputs ``[T, B, ...]``; with ``step_by_step=True`` the recorded
nodes' values and neuron states (the probed nodes', every node's without ``probes``), as the
result reports them (fixed point: int64 and float32 each); at a reduced precision the fp32
reference's outputs for the error report (none when ``on_outputs`` takes the outputs of a run of
several chunks) and its spike trains (one bit per neuron and step; for one chunk only when the run
has several: the reference then runs in lockstep, :mod:`.reference_run`). :func:`check_run_memory`
refuses a run whose held results plus the working set of one chunk (:func:`estimate_run`) exceed
:func:`~..stimulus.memory_limit` (half of the machine's memory), naming what is held, the number of
steps that fit and what else reduces it. Kernel temporaries and the kernels themselves come on top.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence

from ...errors import BackendError
from ...stimulus import memory_limit
from ..kernels.fixed_detection import float_tail
from ..kernels.float_neurons import state_names
from ..lowering.program import Op, Program
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
    program: Program, steps: int, batch: int, itemsize: int, *, record: Sequence[Op] | None = None,
    fixed_point: bool = False, reference: bool = False, spiking_sizes: list[int] = (), stream_outputs: bool = False,
    chunk: int | None = None, lockstep: bool = False,
) -> dict[str, int]:  # fmt: skip
    """What a run hands back for all ``steps``, by kind (bytes): the arrays of its result.

    * ``outputs``: the graph outputs, float32 ``[T, B, ...]`` (an fp16 run, ``itemsize`` 2, also holds
      its float16 outputs while they are converted); none when ``stream_outputs`` (``on_outputs``
      takes them chunk by chunk);
    * with ``record`` (the operations a step-by-step run records, :mod:`.probes`): ``step_by_step``,
      their output values, and ``neuron states``, their state variables (``v``, and ``i`` of a Cuba
      neuron: :func:`.float_neurons.state_names`). In float each element takes ``itemsize``; in
      ``fixed_point`` it is reported as the raw int64 and the float32 real value (12 bytes), except a
      value the fixed-point run computes in float32 (the float decode tail) which is reported as
      it is (4). A graph output recorded is the array of ``outputs``, counted there;
    * with ``reference``: ``fp32 reference``, the outputs and the spike trains (one bit per entry of
      the spiking layers of ``spiking_sizes`` neurons) of a reduced precision's fp32 run. In
      ``lockstep`` with chunks of ``chunk`` steps it holds the trains of one chunk, and its outputs only
      if the run's own are held (the report compares the whole arrays).
    """
    per_step = steps * batch
    graph_outputs = set(program.outputs.values())
    outputs = sum(_elements(program, v) for v in graph_outputs) * per_step
    out = {"outputs": 0 if stream_outputs else outputs * (4 if fixed_point or itemsize == 4 else 4 + itemsize)}
    if record is not None:
        tail = float_tail(program)[0] if fixed_point else set()
        values = sum(
            _elements(program, vid) * (itemsize if not fixed_point else 4 if op.index in tail else 12)
            for op in record
            for vid in op.outputs
            if vid not in graph_outputs
        )
        out["step_by_step"] = values * per_step
        out["neuron states"] = _state_elements(record) * per_step * (12 if fixed_point else itemsize)
    if reference:
        lockstep = lockstep and chunk is not None
        trains = sum(spiking_sizes) * (chunk if lockstep else steps) * batch // 8
        out["fp32 reference"] = (0 if lockstep and stream_outputs else outputs * 4) + trains
    return out


def estimate_run(
    program: Program, steps: int, batch: int, itemsize: int, *, record: Sequence[Op] | None = None,
    fixed_point: bool = False, calibration: bool = False, accumulator_itemsize: int = 0, chunk_steps: int | None = None,
    reference: bool = False, spiking_sizes: list[int] = (), stream_outputs: bool = False, lockstep: bool = False,
) -> tuple[int, dict[str, int], int]:  # fmt: skip
    """``(chunk, held, working)``: the chunk of steps (:func:`plan_chunk`), what the run holds for all
    steps (:func:`held_bytes`) and what computing one chunk takes on top (bytes).

    The working set is one chunk's layer outputs (:func:`sequence_bytes`) and, in a run of several
    chunks, the chunk's recorded values and states before they are copied into the held arrays (in
    a run of one chunk they are the held arrays); a ``calibration`` run (fp32, measuring the ranges
    of a fixed-point precision) also records every neuron's states, float32, for one chunk.
    """
    chunk = plan_chunk(
        program, steps, batch, itemsize, accumulator_itemsize=accumulator_itemsize, chunk_steps=chunk_steps
    )
    held = held_bytes(
        program, steps, batch, itemsize, record=record, fixed_point=fixed_point, reference=reference,
        spiking_sizes=spiking_sizes, stream_outputs=stream_outputs, chunk=chunk, lockstep=lockstep,
    )  # fmt: skip
    kept = () if record is None or chunk == steps else [vid for op in record for vid in op.outputs]
    working = sequence_bytes(program, chunk, batch, itemsize, keep=kept, accumulator_itemsize=accumulator_itemsize)
    if kept:
        working += _state_elements(record) * chunk * batch * (8 if fixed_point else itemsize)
    if calibration:
        working += _state_elements(program.ops) * chunk * batch * 4
    return chunk, held, working


def check_run_memory(
    program: Program, steps: int, batch: int, itemsize: int, *, precision: str = "fp32", probed: bool = False,
    **plan,
) -> int:  # fmt: skip
    """Refuse, before it starts, a run whose held results plus its working set (:func:`estimate_run`,
    which takes the keyword arguments ``plan``) exceed :func:`~..stimulus.memory_limit` (half of the
    machine's memory), naming the ``precision``, what is held, the steps that fit and what else
    reduces it (``probed``: the record was chosen by ``probes``, so: probe fewer). Returns the chunk."""
    chunk, held, working = estimate_run(program, steps, batch, itemsize, **plan)
    record, stream_outputs = plan.get("record"), plan.get("stream_outputs", False)
    total = sum(held.values())
    limit = memory_limit()
    if total + working <= limit:
        return chunk
    what = ", ".join(f"{kind} {nbytes:,}" for kind, nbytes in held.items() if nbytes)
    if working > limit:
        chunk_steps = plan.get("chunk_steps")
        advice = ["use a smaller batch" + ("" if chunk_steps is None or chunk == 1 else " or smaller chunk_steps")]
    else:
        fits = steps * (limit - working) // max(total, 1)
        advice = [f"run at most {fits:,} steps per call at this batch size" if fits >= 1 else "use a smaller batch"]
        if record is not None:
            advice.append("probe fewer nodes" if probed else "record only the nodes you need with probes=[...]")
            advice.append("or drop step_by_step (only the graph outputs are kept)")
        elif held["outputs"] and not stream_outputs:
            advice.append(
                "or take the outputs chunk by chunk with on_outputs (talon simulate -o) instead of keeping them"
            )
    raise BackendError(
        f"a run of {steps:,} steps x batch {batch} at {precision} must hold {total:,} bytes of results for all steps "
        f"({what}) plus {working:,} bytes to compute one chunk of {chunk:,} steps at a time: "
        f"{total + working:,} bytes, more than half of this machine's memory ({limit:,} bytes); " + "; ".join(advice)
    )


def _elements(program: Program, vid: int) -> int:
    """Elements of value ``vid`` per step and batch entry."""
    return math.prod(program.values[vid].shape)


def _state_elements(ops: Iterable[Op]) -> int:
    """State elements a step of ``ops`` records per batch entry (every state variable of every neuron)."""
    return sum(math.prod(op.node.input_shape) * len(state_names(op.node)) for op in ops)
