"""Running shards: on any ``concurrent.futures.Executor``, with retries, a checkpoint and a progress bar.

* ``executor=None``: a process pool of ``workers`` processes (default: the CPU count), started
  with ``spawn`` (safe beside torch/JAX threads). If a worker dies, the pool is rebuilt and the
  shards it held are submitted again.
* ``executor="serial"``: in this process (debugging, tiny runs).
* any ``concurrent.futures.Executor`` (yours; ``distributed.Client.get_executor()``), or a Dask
  ``Client`` itself.

A shard that raises is submitted again up to ``retries`` times and every failure is reported
(:class:`ShardFailure`); one that still fails stops the evaluation with an
:class:`~talon.evaluate.errors.EvaluationError` naming its samples — a shard is never dropped.
Bad input (a :class:`~talon.ir.errors.TalonError` such as a sample of the wrong shape) is not
retried: it would fail the same way again.

**Checkpoint** (``checkpoint=DIR``): every finished shard is written to ``DIR/shard-<start>.npz``
(atomically) beside ``DIR/run.json``, which holds a key of the model, data size, steps, precisions
and shard size; each shard file also holds a digest of its samples and labels. A run started again
with the same directory and key skips the shards on disk once their data is checked unchanged; a
different key or changed data is refused rather than mixed.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import multiprocessing
import os
import pickle
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talon.ir.errors import TalonError

from .errors import EvaluationError
from .shard import ShardJob, run_shard
from .stats import ShardStats
from .work_plan import assign


@dataclass(frozen=True)
class ShardFailure:
    """One failed attempt of a shard (it was retried, or the evaluation stopped)."""

    start: int
    stop: int
    attempt: int
    error: str


_SPAWN_HINT = (
    " (workers start by importing the main module: in a script, call evaluate under "
    "`if __name__ == '__main__':`; a worker killed by the system, e.g. out of memory, looks the same)"
)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, BrokenProcessPool):
        text += _SPAWN_HINT
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Checkpoint:
    """Finished shards on disk (see the module docstring)."""

    def __init__(self, directory: str | os.PathLike, key: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = self.directory / "run.json"
        if manifest.exists():
            try:
                stored = json.loads(manifest.read_text()).get("key")
            except (OSError, ValueError) as exc:
                raise EvaluationError(f"{manifest}: unreadable checkpoint manifest ({exc})") from None
            if stored != key:
                raise EvaluationError(
                    f"{self.directory} holds the checkpoint of a different evaluation (other model, data, steps, "
                    "precisions or shard size); pass another checkpoint directory or delete this one"
                )
        else:
            manifest.write_text(json.dumps({"key": key}))

    def load(self) -> dict[int, ShardStats]:
        done = {}
        for path in sorted(self.directory.glob("shard-*.npz")):
            try:
                with np.load(path, allow_pickle=False) as arrays:
                    stats = ShardStats.from_arrays(arrays)
            except (OSError, ValueError, KeyError) as exc:
                raise EvaluationError(f"{path}: damaged checkpoint shard ({exc}); delete it to recompute") from None
            done[stats.start] = stats
        return done

    def save(self, stats: ShardStats) -> None:
        from talon.ir.atomic import atomic_output

        with atomic_output(self.directory / f"shard-{stats.start:012d}.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, **stats.to_arrays())


def _as_executor(executor) -> cf.Executor | None:
    if executor is None or executor == "serial":
        return None
    if isinstance(executor, cf.Executor):
        return executor
    if hasattr(executor, "get_executor") and hasattr(executor, "scheduler_info"):  # a distributed.Client
        return executor.get_executor()
    raise EvaluationError(
        f"executor must be None (a process pool), 'serial', a concurrent.futures.Executor or a Dask Client; "
        f"got {type(executor).__name__}"
    )


# One BLAS thread per worker (as Dask's nanny does): N workers each spinning N BLAS threads on N cores
# were measured 2x slower than one process.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def worker_environment():
    """:data:`WORKER_ENV` (where the caller has not set those variables) for the processes started inside.

    A ``spawn`` pool starts its workers on demand, at any submit, so the variables stay set while the
    pool runs; this process's own BLAS is already initialised and keeps its threads.
    """
    saved = {k: os.environ.get(k) for k in WORKER_ENV}
    os.environ.update({k: v for k, v in WORKER_ENV.items() if saved[k] is None})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)


def new_process_pool(workers: int) -> cf.ProcessPoolExecutor:
    """A ``spawn`` pool (safe beside torch/JAX threads); call inside :func:`worker_environment`."""
    pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        pool.submit(os.getpid).result()  # fail here, clearly, when workers cannot start
    except BrokenProcessPool as exc:
        pool.shutdown(wait=False)
        raise EvaluationError("the worker processes could not start: " + _describe(exc)) from None
    return pool


def run_jobs(
    jobs: list[ShardJob],
    *,
    executor=None,
    workers: int | None = None,
    retries: int = 2,
    on_done: Callable[[ShardStats], None] | None = None,
    failures: list[ShardFailure] | None = None,
) -> Iterator[ShardStats]:
    """Run ``jobs``, yielding each shard's stats as it finishes (in completion order)."""
    failures = [] if failures is None else failures
    attempts = {job.start: 0 for job in jobs}

    def failed(job: ShardJob, exc: BaseException) -> None:
        attempts[job.start] += 1
        failures.append(ShardFailure(job.start, job.stop, attempts[job.start], _describe(exc)))
        if isinstance(exc, TalonError):  # bad input fails the same way every time
            raise EvaluationError(f"samples {job.start}..{job.stop - 1}: {exc}") from exc
        if attempts[job.start] > retries:
            raise EvaluationError(
                f"shard of samples {job.start}..{job.stop - 1} failed"
                + (f" {attempts[job.start]} times" if attempts[job.start] > 1 else "")
                + f": {_describe(exc)}"
            ) from exc

    if executor == "serial":
        for job in assign(jobs, 1):
            while True:
                try:
                    stats = run_shard(job)
                except Exception as exc:
                    failed(job, exc)
                    continue
                break
            if on_done:
                on_done(stats)
            yield stats
        return

    given = _as_executor(executor)
    if given is None:
        _check_picklable(jobs)
        processes = workers or os.cpu_count() or 1
        with worker_environment():
            yield from _run_pool(assign(jobs, processes), None, processes, failed, on_done)
    else:  # the caller's executor: its processes are not known
        yield from _run_pool(assign(jobs, None), given, workers or 2, failed, on_done)


def _check_picklable(jobs: list[ShardJob]) -> None:
    """A shard that cannot be pickled fails the same way on every attempt: say so once, before the pool."""
    if not jobs:
        return
    try:
        pickle.dumps(jobs[0])
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise EvaluationError(
            f"the shards cannot be sent to worker processes ({type(exc).__name__}: {exc}): the data set, encoder "
            "and decode must be picklable (module-level functions and classes, not lambdas or local functions); "
            "or run in this process with executor='serial' (talon evaluate --serial)"
        ) from None


def _run_pool(jobs, given, n_workers: int, failed, on_done) -> Iterator[ShardStats]:
    pool = given or new_process_pool(n_workers)
    limit = 2 * n_workers
    queue = list(reversed(jobs))
    running: dict[cf.Future, ShardJob] = {}
    try:
        while queue or running:
            while queue and len(running) < limit:
                job = queue.pop()
                running[pool.submit(run_shard, job)] = job
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            broken = False
            for future in done:
                job = running.pop(future)
                try:
                    stats = future.result()
                except BrokenProcessPool as exc:
                    broken = True
                    failed(job, exc)
                    queue.append(job)
                    continue
                except Exception as exc:
                    failed(job, exc)
                    queue.append(job)
                    continue
                if on_done:
                    on_done(stats)
                yield stats
            if broken and given is None:  # a worker died: every shard of the pool is lost with it
                for job in running.values():
                    failed(job, BrokenProcessPool("a worker process died"))
                    queue.append(job)
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_process_pool(n_workers)
    finally:
        if given is None:
            pool.shutdown(wait=True, cancel_futures=True)
