"""Data-set-scale evaluation and sweeps of TALON IR graphs on the CPU backend (``docs/evaluate.md``).

``evaluate(model, dataset, precisions=..., reference=..., n_steps=...)`` runs a graph over every
sample in shards on a process pool (default), a Dask cluster or any ``concurrent.futures``
executor and reports accuracy, confusion matrix, spike agreement, energy and latency per sample,
firing rates and the NeuroBench metrics — identical for any number of workers and shard size.
``sweep(model, dataset, grid=...)`` evaluates every point of a grid and finds the accuracy–energy
Pareto front.
"""

from .dask import local_cluster
from .data import ArraySource, DatasetSource, FileSource, as_source, digits
from .encoders import Direct, Rate, Sequence
from .errors import EvaluationError
from .evaluate import evaluate, precision_name, save_result
from .references import ModuleReference, TorchExecutorReference
from .result import EvaluationResult, PrecisionResult
from .runner import ShardFailure
from .sweep import SweepResult, sweep

__all__ = [
    "ArraySource",
    "DatasetSource",
    "Direct",
    "EvaluationError",
    "EvaluationResult",
    "FileSource",
    "ModuleReference",
    "PrecisionResult",
    "Rate",
    "Sequence",
    "ShardFailure",
    "SweepResult",
    "TorchExecutorReference",
    "as_source",
    "digits",
    "evaluate",
    "local_cluster",
    "precision_name",
    "save_result",
    "sweep",
]
