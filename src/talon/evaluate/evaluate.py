"""``evaluate``: a graph over a whole data set, in shards, on a process pool or a Dask cluster.

Contract: every reported metric except the measured latency is computed once from integer sums
over shards (:mod:`talon.evaluate.stats`), and every sample's stimulus depends only on its index
(:mod:`talon.evaluate.encoders`); fixed-point formats are calibrated once, before sharding. So the
result is **identical** — bit for bit — for 1 worker or N, a process pool or Dask, any shard size,
and a run resumed from a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from talon import ir
from talon._compiled import planned_work
from talon.backend.config import CompileConfig
from talon.backend.cpu.lowering.program import lower
from talon.backend.cpu.run.engine import Engine, calibrate
from talon.backend.cpu.run.memory import plan_memory
from talon.backend.cpu.run.profiler import count_layers
from talon.backend.cpu.run.run_memory import plan_chunk
from talon.backend.cpu.run.work_plan import run_share
from talon.backend.energy import DEFAULT_PRESET, resolve_energy
from talon.backend.errors import BackendError
from talon.ir.fingerprint import graph_fingerprint

from . import metrics
from .data import as_source
from .encoders import Sequence, encode_batch, resolve_encoder
from .errors import EvaluationError
from .references import ModuleReference, TorchExecutorReference
from .result import EvaluationResult, PrecisionResult
from .runner import Checkpoint, ShardFailure, run_jobs
from .shard import DECODERS, EvalModel, ShardJob, data_digest
from .stats import merge_all


def precision_name(config: CompileConfig) -> str:
    """``int8``, or ``int8/w4`` etc. when bit widths are overridden (a sweep's row label)."""
    overrides = [
        f"{tag}{getattr(config, field)}"
        for field, tag in (("weight_bits", "w"), ("activation_bits", "a"), ("accumulator_bits", "acc"))
        if getattr(config, field) is not None
    ]
    return "/".join([config.precision, *overrides])


def _configs(precisions) -> dict[str, CompileConfig]:
    if isinstance(precisions, (str, CompileConfig, dict)):
        precisions = [precisions]
    out = {}
    for p in precisions:
        try:
            config = CompileConfig.coerce(None, p) if isinstance(p, str) else CompileConfig.coerce(p)
        except BackendError as exc:
            raise EvaluationError(str(exc)) from None
        out[precision_name(config)] = config
    if not out:
        raise EvaluationError("precisions is empty: name at least one (e.g. 'fp32')")
    return out


def _graph(model) -> ir.Graph:
    if isinstance(model, ir.Graph):
        return model
    if isinstance(model, (str, os.PathLike)):
        return ir.read(model)
    raise EvaluationError(f"model must be a talon IR Graph or a .t1c path, got {type(model).__name__}")


def _reference(reference, graph: ir.Graph, configs: dict[str, CompileConfig]):
    if reference is None or (callable(reference) and not hasattr(reference, "parameters")):
        return reference
    if isinstance(reference, str):
        if reference == "torch":
            return TorchExecutorReference(graph)
        configs.setdefault(reference, _configs([reference])[reference])
        return reference
    if hasattr(reference, "parameters") and callable(reference):  # a torch module (snnTorch, Norse, ...)
        return ModuleReference(reference)
    raise EvaluationError(
        "reference must be a precision ('fp32'), 'torch' (talon's PyTorch executor), a torch module or a callable"
    )


def _run_key(graph, n_samples, n_steps, configs, shard_size, encoder, decode, reference, calibration_samples) -> str:
    """What a checkpoint must match (the data itself is checked shard by shard: :func:`_check_resumed`)."""
    document = {
        "graph": graph_fingerprint(graph),
        "samples": n_samples,
        "calibration_samples": calibration_samples if any(c.is_fixed_point for c in configs.values()) else None,
        "n_steps": n_steps,
        "precisions": {k: c.to_dict() for k, c in configs.items()},
        "shard_size": shard_size,
        "encoder": repr(encoder),
        "decode": repr(decode),
        "reference": type(reference).__name__
        if reference is not None and not isinstance(reference, str)
        else reference,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def evaluate(
    model,
    dataset,
    *,
    precisions=("fp32",),
    reference=None,
    n_steps: int | None = None,
    encoder=None,
    energy_preset=DEFAULT_PRESET,
    executor=None,
    workers: int | None = None,
    shard_size: int = 256,
    retries: int = 2,
    checkpoint: str | os.PathLike | None = None,
    progress: bool = False,
    labels=None,
    decode="count",
    output: str | None = None,
    calibration_samples: int = 64,
) -> EvaluationResult:
    """Evaluate ``model`` (a Graph or ``.t1c`` path) on ``dataset`` on the CPU backend.

    ``dataset``: arrays ``(x, y)``, an ``.npy``/``.npz`` path, a PyTorch / tonic Dataset or DataLoader,
    :func:`talon.evaluate.digits` (:mod:`talon.evaluate.data`). ``precisions``: names (``"fp32"``,
    ``"int8"``…) or :class:`~talon.backend.CompileConfig` / dicts for other bit widths.
    ``reference``: a precision (spike agreement on every spiking node), ``"torch"`` (talon's PyTorch
    executor), or the source framework's module / any callable on ``[T, B, *in]`` (output agreement).
    ``encoder``: see :mod:`talon.evaluate.encoders`. ``decode``: how outputs become a class
    (``"count"``, ``"last"``, ``"max"`` or a callable). ``executor``: None (a process pool of
    ``workers``), ``"serial"``, any ``concurrent.futures.Executor`` or a Dask ``Client``.
    Fixed-point precisions are calibrated on the first ``calibration_samples`` samples.
    """
    started = time.perf_counter()
    graph = _graph(model)
    source = as_source(dataset, labels)
    n = len(source)
    if n == 0:
        raise EvaluationError("the data set is empty")
    for name, value in (("shard_size", shard_size), ("calibration_samples", calibration_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise EvaluationError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise EvaluationError(f"retries must be a non-negative integer, got {retries!r}")
    if not (callable(decode) or decode in DECODERS):
        raise EvaluationError(f"decode must be one of {DECODERS} or a callable, got {decode!r}")
    if len(graph.input_nodes) != 1:
        raise EvaluationError(
            f"evaluate feeds one Input node; the graph has {len(graph.input_nodes)} ({graph.input_nodes})"
        )
    outputs = graph.output_nodes
    if output is None:
        if len(outputs) != 1:
            raise EvaluationError(f"the graph has {len(outputs)} Output nodes {outputs}; choose one with output=")
        output = outputs[0]
    elif output not in outputs:
        raise EvaluationError(f"output={output!r} is not an Output node of the graph (its outputs: {outputs})")
    input_name = graph.input_nodes[0]
    input_shape = tuple(graph.nodes[input_name].shape)

    configs = _configs(precisions)
    evaluated = list(configs)
    reference = _reference(reference, graph, configs)
    first, _ = source.load(0, 1)
    encoder = resolve_encoder(encoder, np.shape(first[0]), input_shape)
    if n_steps is None:
        if not isinstance(encoder, Sequence):
            raise EvaluationError("pass n_steps= (the number of timesteps each sample is presented for)")
        n_steps = int(np.shape(first[0])[0])
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise EvaluationError(f"n_steps must be a positive integer, got {n_steps!r}")
    try:  # a bad sample or encoder fails here, before any worker starts
        encode_batch(encoder, first, 0, n_steps, input_shape)
    except EvaluationError:
        raise
    except Exception as exc:
        raise EvaluationError(f"the encoder failed on sample 0: {type(exc).__name__}: {exc}") from exc
    energy = resolve_energy(energy_preset, None, None, None, None)

    program = lower(graph)
    calibrations = {}
    if any(c.is_fixed_point for c in configs.values()):
        samples, _ = source.load(0, min(n, calibration_samples))
        x = encode_batch(encoder, samples, 0, n_steps, input_shape)
        chunk = plan_chunk(program, n_steps, x.shape[1], 4, accumulator_itemsize=8)
        with planned_work(run_share(program, "fp32", n_steps, len(samples))):
            calibration, _ = calibrate(program, {input_name: x}, chunk_steps=chunk)
        calibrations = {name: calibration for name, c in configs.items() if c.is_fixed_point}

    key = _run_key(graph, n, n_steps, configs, shard_size, encoder, decode, reference, calibration_samples)
    out_shape = graph.nodes[output].shape
    eval_model = EvalModel(
        token=key,
        graph=graph,
        input_name=input_name,
        output_name=output,
        n_steps=n_steps,
        precisions=evaluated,
        configs=configs,
        calibrations=calibrations,
        encoder=encoder,
        decode=decode,
        reference=reference,
        n_classes=int(np.prod(out_shape)) if out_shape else None,
        input_shape=input_shape,
    )
    store = Checkpoint(checkpoint, key) if checkpoint is not None else None
    done = store.load() if store else {}
    _check_resumed(done, source, store)
    jobs = [
        ShardJob(eval_model, source.part(a, min(a + shard_size, n)), a, min(a + shard_size, n))
        for a in range(0, n, shard_size)
        if a not in done
    ]
    failures: list[ShardFailure] = []
    shards = list(done.values())
    with _progress(progress, n, sum(s.stop - s.start for s in shards)) as advance:

        def finished(stats):
            if store:
                store.save(stats)
            advance(stats.stop - stats.start)

        shards.extend(
            run_jobs(jobs, executor=executor, workers=workers, retries=retries, on_done=finished, failures=failures)
        )
    totals = merge_all(shards, evaluated)
    results = {
        name: _precision_result(name, configs[name], totals[name], program, n_steps, energy, calibrations.get(name))
        for name in evaluated
    }
    return EvaluationResult(
        samples=n,
        n_steps=n_steps,
        energy_preset=energy.name,
        reference=None if reference is None else reference if isinstance(reference, str) else type(reference).__name__,
        shards=len(shards),
        resumed_shards=len(done),
        executor=_describe_executor(executor, workers),
        wall_time_s=time.perf_counter() - started,
        precisions=results,
        failures=failures,
    )


def _check_resumed(done: dict, source, store) -> None:
    """Refuse checkpointed shards computed on other samples or labels than ``source`` holds now
    (each is read again, not simulated, and compared by :func:`~talon.evaluate.shard.data_digest`)."""
    for start in sorted(done):
        stats = done[start]
        samples, labels = source.load(stats.start, stats.stop)
        if stats.data_digest is None or stats.data_digest != data_digest(samples, labels):
            raise EvaluationError(
                f"{store.directory} holds the checkpoint of a different evaluation: its samples "
                f"{stats.start}..{stats.stop - 1} were computed on other data (samples or labels changed); "
                "pass another checkpoint directory or delete this one"
            )


def _describe_executor(executor, workers) -> str:
    if executor is None:
        return f"a process pool of {workers or os.cpu_count()} workers"
    if executor == "serial":
        return "this process"
    return type(executor).__name__


class _progress:
    """A rich progress bar over samples (on stderr), or nothing."""

    def __init__(self, enabled: bool, total: int, completed: int) -> None:
        self.enabled, self.total, self.completed = enabled, total, completed

    def __enter__(self):
        if not self.enabled:
            return lambda k: None
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)
        if not console.is_terminal:  # no bar in logs and pipes
            self.enabled = False
            return lambda k: None
        self.bar = Progress(console=console, transient=True)
        self.bar.start()
        task = self.bar.add_task("evaluating", total=self.total, completed=self.completed)
        return lambda k: self.bar.advance(task, k)

    def __exit__(self, *exc):
        if self.enabled:
            self.bar.stop()


def _precision_result(name, config, totals, program, n_steps, energy, calibration) -> PrecisionResult:
    engine = Engine(program, config, calibration)
    samples = totals.samples
    layers = count_layers(
        program, engine.kernels, config, totals.activity(), totals.spike_observer(), {}, n_steps, samples, energy
    )
    total_energy = sum(layer.energy_uj for layer in layers.values())
    sizes = metrics.spiking_sizes(program, engine.kernels)
    firing = {path: totals.spikes.get(path, 0) / (size * n_steps * samples) for path, size in sizes.items() if size}
    neuron_steps = sum(sizes.values()) * n_steps * samples
    spikes = sum(totals.spikes.get(path, 0) for path in sizes)
    plan = plan_memory(program, engine.kernels, config)
    weight_nodes = [op.node for op in program.ops if isinstance(op.node, metrics.WEIGHT_NODES)]
    try:
        synops = metrics.synaptic_operations(program, totals, n_steps, samples)
    except EvaluationError:
        synops = None
    accuracy = None if totals.confusion is None else totals.correct / samples
    return PrecisionResult(
        name=name,
        precision=config.precision,
        samples=samples,
        accuracy=accuracy,
        confusion_matrix=totals.confusion,
        spike_agreement=None if not totals.spikes_total else totals.spikes_equal / totals.spikes_total,
        output_agreement=None if not totals.output_total else totals.output_equal / totals.output_total,
        energy_per_sample_uj=total_energy / samples,
        latency_per_sample_ms=1e3 * totals.seconds / samples,
        total_spikes=spikes,
        firing_rates=firing,
        neurobench={
            "footprint_bytes": plan.weight_bytes + plan.parameter_bytes,
            "connection_sparsity": metrics.connection_sparsity(weight_nodes),
            "activation_sparsity": 1.0 - spikes / neuron_steps if neuron_steps else 0.0,
            "synaptic_operations": synops,
            "classification_accuracy": accuracy,
        },
        layers=layers,
    )


def save_result(result: EvaluationResult, path: str | os.PathLike) -> Path:
    """Write ``result.to_dict()`` as JSON (atomically: a failed write leaves the old file)."""
    from talon.ir.atomic import atomic_output

    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2))
    return path
