"""The work of one shard, in a worker process: encode its samples, run every precision, count.

A :class:`ShardJob` is small and picklable (the model, a :class:`~talon.evaluate.data.Source`
part holding only the shard's range, and the range); :func:`run_shard` is a top-level function, so
any ``concurrent.futures.Executor`` — a process pool, a Dask client's executor — can run it. Each
worker process compiles the model once per precision and keeps it for the next shards.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon import ir
from talon._compiled import planned_work
from talon.backend.config import CompileConfig
from talon.backend.cpu.formats.calibration import Calibration
from talon.backend.cpu.lowering.program import Program, lower
from talon.backend.cpu.run.engine import Engine
from talon.backend.cpu.run.observers import ActivityObserver, SpikeObserver
from talon.backend.cpu.run.run_memory import plan_chunk

from .encoders import encode_batch
from .errors import EvaluationError
from .stats import PrecisionStats, ShardStats, SynapticObserver

DECODERS = ("count", "last", "max")


@dataclass
class EvalModel:
    """Everything a worker needs besides the samples (``token`` identifies it in the worker cache)."""

    token: str
    graph: ir.Graph
    input_name: str
    output_name: str
    n_steps: int
    precisions: list[str]
    configs: dict[str, CompileConfig]
    calibrations: dict[str, Calibration | None]
    encoder: Any
    decode: Any = "count"
    reference: Any = None  # None, a precision name (engine reference) or a callable on [T, B, *in]
    n_classes: int | None = None
    input_shape: tuple[int, ...] = field(default=())


@dataclass
class ShardJob:
    """One shard to run. ``run`` names the evaluation it belongs to and ``process_shards`` the
    shards the process that runs it is expected to run for that evaluation (this one included);
    the runner sets both (:func:`talon.evaluate.work_plan.process_share` declares their work)."""

    model: EvalModel
    source: Any
    start: int
    stop: int
    run: str = ""
    process_shards: int = 1


_CACHE: dict[str, tuple[Program, dict[str, Engine]]] = {}


def engines_for(model: EvalModel) -> tuple[Program, dict[str, Engine]]:
    """The lowered program and one engine per precision (built once per process and model)."""
    if model.token not in _CACHE:
        program = lower(model.graph)
        names = set(model.precisions) | ({model.reference} if isinstance(model.reference, str) else set())
        engines = {p: Engine(program, model.configs[p], model.calibrations.get(p)) for p in names}
        _CACHE.clear()  # one model per worker at a time: a sweep moves on, memory does not pile up
        _CACHE[model.token] = (program, engines)
    return _CACHE[model.token]


def predict(outputs: np.ndarray, decode) -> np.ndarray:
    """Class predictions ``[B]`` from outputs ``[T, B, ...]``: argmax (first maximum on ties) of the
    spike count / sum over time (``count``), the last step (``last``) or the maximum over time (``max``)."""
    if callable(decode):
        return np.asarray(decode(outputs)).astype(np.int64).reshape(-1)
    flat = outputs.reshape(outputs.shape[0], outputs.shape[1], -1).astype(np.float64)
    scores = {"count": lambda: flat.sum(axis=0), "last": lambda: flat[-1], "max": lambda: flat.max(axis=0)}[decode]()
    return np.argmax(scores, axis=1).astype(np.int64)


def _check_labels(labels: np.ndarray | None, model: EvalModel, start: int) -> None:
    """A built-in decoder predicts one of the output's ``n_classes`` neurons: a label past them is bad data."""
    if labels is None or callable(model.decode) or not model.n_classes or not len(labels):
        return
    bad = np.flatnonzero(labels >= model.n_classes)
    if len(bad):
        raise EvaluationError(
            f"sample {start + int(bad[0])} has label {int(labels[bad[0]])}, but the output {model.output_name!r} has "
            f"{model.n_classes} neurons (classes 0..{model.n_classes - 1}); {len(bad)} label(s) of samples "
            f"{start}..{start + len(labels) - 1} are out of range (a decode= callable may predict other classes)"
        )


def data_digest(samples, labels) -> str:
    """SHA-256 of a shard's samples (dtype, shape and bytes of each) and labels: what a checkpointed
    shard was computed on, so a resumed run can tell that the data set changed."""
    h = hashlib.sha256()
    for sample in [*samples, *([] if labels is None else [labels])]:
        a = np.ascontiguousarray(np.asarray(sample))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(b"labels" if labels is not None else b"no labels")
    return h.hexdigest()


def run_names(model: EvalModel) -> list[str]:
    """The engines a shard runs: every precision, then an engine reference not among them."""
    engine_ref = model.reference if isinstance(model.reference, str) else None
    return [*model.precisions, *([engine_ref] if engine_ref and engine_ref not in model.precisions else [])]


def run_shard(job: ShardJob) -> ShardStats:
    from .work_plan import process_share, shard_ran  # (it imports this module)

    program, _ = engines_for(job.model)
    try:
        with planned_work(process_share(job, program)):  # a worker with much to do starts numba at its first shard
            return _run_shard(job)
    finally:
        shard_ran(job)


def _run_shard(job: ShardJob) -> ShardStats:
    model = job.model
    program, engines = engines_for(model)
    samples, labels = job.source.load(job.start, job.stop)
    n = job.stop - job.start
    if len(samples) != n:
        raise EvaluationError(f"samples {job.start}..{job.stop - 1}: the data source returned {len(samples)} samples")
    _check_labels(labels, model, job.start)
    x = encode_batch(model.encoder, samples, job.start, model.n_steps, model.input_shape)
    inputs = {model.input_name: x}
    out_vid = program.outputs[model.output_name]
    engine_ref = model.reference if isinstance(model.reference, str) else None
    keep_trains = engine_ref is not None

    # the layer outputs of one chunk of steps at a time (docs/backend.md §3.1); the same results
    chunk = plan_chunk(program, model.n_steps, max(n, 1), 4, accumulator_itemsize=8)
    runs: dict[str, tuple[np.ndarray, SpikeObserver, PrecisionStats]] = {}
    for name in run_names(model):
        activity, spikes, synaptic = ActivityObserver(), SpikeObserver(keep_trains=keep_trains), SynapticObserver()
        start = time.perf_counter()
        trace = engines[name].run(inputs, observers=(activity, spikes, synaptic), chunk_steps=chunk)
        seconds = time.perf_counter() - start
        outputs = np.asarray(trace.values[out_vid], np.float32)
        stats = PrecisionStats.from_observers(n, activity, spikes, synaptic)
        stats.seconds = seconds
        runs[name] = (outputs, spikes, stats)

    reference_outputs = None
    if engine_ref is not None:
        reference_outputs = runs[engine_ref][0]
    elif model.reference is not None:
        reference_outputs = np.asarray(model.reference(x), np.float32)
        if reference_outputs.shape != runs[model.precisions[0]][0].shape:
            raise EvaluationError(
                f"the reference returned outputs shaped {list(reference_outputs.shape)}; the graph's output "
                f"{model.output_name!r} is {list(runs[model.precisions[0]][0].shape)} ([T, B, ...])"
            )

    result = {}
    for name in model.precisions:
        outputs, spikes, stats = runs[name]
        if labels is not None:
            predicted = predict(outputs, model.decode)
            stats.correct = int(np.count_nonzero(predicted == labels))
            classes = max(model.n_classes or 0, int(labels.max()) + 1, int(predicted.max()) + 1)
            stats.confusion = np.zeros((classes, classes), np.int64)
            np.add.at(stats.confusion, (labels, predicted), 1)
        if reference_outputs is not None:
            stats.output_equal = int(np.count_nonzero(outputs == reference_outputs))
            stats.output_total = int(outputs.size)
        if engine_ref is not None:
            ref_spikes = runs[engine_ref][1]
            for path in spikes.trains:
                ours, theirs = spikes.train(path), ref_spikes.train(path)
                stats.spikes_equal += int(np.count_nonzero(ours == theirs))
                stats.spikes_total += int(ours.size)
        result[name] = stats
    return ShardStats(job.start, job.stop, result, data_digest(samples, labels))
