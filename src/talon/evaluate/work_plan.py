"""The compiled-kernel work a process will do for an evaluation, declared before its first shard.

Each shard runs the CPU backend's engines (every precision, and a precision named as the
reference) on ``[T, B, ...]`` inputs, and a ``"torch"`` reference runs the PyTorch executor's
``run_sequence``; their neuron loops ask the work-size dispatch (:class:`talon._compiled.WorkThreshold`,
docs/backend.md §9.2) call by call. One shard is often far below a numba start-up while the
shards a worker process runs add up to many: left alone, every worker runs its first shards on
the numpy twins until their work pays for the start-up. The runner knows how many shards each
process is to run (all of them in this process with ``executor="serial"``, about
``ceil(shards / workers)`` in each worker of its own process pool), so :func:`process_share`
declares that many shards' work (:func:`shard_share`) at a process's first shard, and what is left
at each later one: a process with a start-up's worth of shards to run starts numba at once. With
an executor of the caller's (a Dask client, any ``concurrent.futures.Executor``) the processes are
not known and each shard declares only its own work. The results are the same bits either way.

Not declared (counted call by call): the spike-driven product and the input quantization (they
depend on the data), and a reference that is a callable or a framework module (its work is its own).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace

from talon import _compiled
from talon.backend.cpu.lowering.program import Program
from talon.backend.cpu.run.work_plan import run_share

from .shard import EvalModel, ShardJob, run_names

_RAN: dict[str, int] = {}  # evaluation run -> shards this process has run for it


def shard_share(model: EvalModel, program: Program, batch: int) -> float:
    """The compiled-loop work of one shard of ``batch`` samples, in numba start-ups: the
    engines' runs (``talon.backend.cpu.run.work_plan.run_share``) and a ``"torch"`` reference's
    ``run_sequence`` (``talon.bridge.sequence_plan``)."""
    share = sum(run_share(program, model.configs[name].precision, model.n_steps, batch) for name in run_names(model))
    planned = getattr(model.reference, "planned_share", None)
    if planned is not None:
        share += planned(model.n_steps, batch)
    return share


def process_share(job: ShardJob, program: Program) -> float:
    """What ``job``'s process declares before running it: :func:`shard_share` times the shards it
    is still expected to run for the evaluation, this one included (at least this one); 0 when a
    plan cannot change a decision (numba already started in this process, or a mode forced)."""
    if _compiled.mode() != "auto" or _compiled.numba_started():
        return 0.0
    remaining = max(1, job.process_shards - _RAN.get(job.run, 0))
    return remaining * shard_share(job.model, program, job.stop - job.start)


def shard_ran(job: ShardJob) -> None:
    """Count ``job`` as run by this process (an earlier evaluation's count is forgotten)."""
    count = _RAN.get(job.run, 0) + 1
    _RAN.clear()
    _RAN[job.run] = count


def assign(jobs: list[ShardJob], processes: int | None) -> list[ShardJob]:
    """``jobs`` of one new evaluation run, each told the shards its process is expected to run:
    all of them over ``processes`` (rounded up), or only itself when the processes are not known
    (``None``)."""
    run = uuid.uuid4().hex
    per_process = math.ceil(len(jobs) / processes) if processes else 1
    return [replace(job, run=run, process_shards=per_process) for job in jobs]
