"""What :func:`talon.evaluate.evaluate` returns, computed once from the merged shard counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon.backend.results import LayerProfile

from .runner import ShardFailure


@dataclass
class PrecisionResult:
    """The metrics of one precision over the whole data set.

    ``accuracy`` / ``confusion_matrix`` (rows: label, columns: prediction) need labels;
    ``spike_agreement``: fraction of spike entries (step × sample × neuron, every spiking node) equal to
    the reference engine's; ``output_agreement``: fraction of graph-output entries equal to the
    reference's; ``energy_per_sample_uj``: the CPU backend's energy model on the measured activity;
    ``latency_per_sample_ms``: measured CPU time (the one number that is not exact); ``firing_rates``:
    spikes per neuron per step of every spiking node; ``neurobench``: footprint, connection sparsity,
    activation sparsity, synaptic operations per sample and classification accuracy.
    """

    name: str
    precision: str
    samples: int
    accuracy: float | None
    confusion_matrix: np.ndarray | None
    spike_agreement: float | None
    output_agreement: float | None
    energy_per_sample_uj: float
    latency_per_sample_ms: float
    total_spikes: int
    firing_rates: dict[str, float]
    neurobench: dict[str, Any]
    layers: dict[str, LayerProfile] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "precision": self.precision,
            "samples": self.samples,
            "accuracy": self.accuracy,
            "confusion_matrix": None if self.confusion_matrix is None else self.confusion_matrix.tolist(),
            "spike_agreement": self.spike_agreement,
            "output_agreement": self.output_agreement,
            "energy_per_sample_uj": self.energy_per_sample_uj,
            "latency_per_sample_ms": self.latency_per_sample_ms,
            "total_spikes": self.total_spikes,
            "firing_rates": dict(self.firing_rates),
            "neurobench": self.neurobench,
        }


@dataclass
class EvaluationResult:
    """Per precision (``result["int8"]``), plus how the run went: shards, failed attempts that were
    retried, shards taken from a checkpoint, workers and wall time."""

    samples: int
    n_steps: int
    energy_preset: str
    reference: str | None
    shards: int
    resumed_shards: int
    executor: str
    wall_time_s: float
    precisions: dict[str, PrecisionResult]
    failures: list[ShardFailure] = field(default_factory=list)

    def __getitem__(self, name: str) -> PrecisionResult:
        return self.precisions[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "n_steps": self.n_steps,
            "energy_preset": self.energy_preset,
            "reference": self.reference,
            "shards": self.shards,
            "resumed_shards": self.resumed_shards,
            "executor": self.executor,
            "wall_time_s": self.wall_time_s,
            "failures": [vars(f) for f in self.failures],
            "precisions": {name: p.to_dict() for name, p in self.precisions.items()},
        }

    def summary(self) -> str:
        lines = [
            f"{self.samples:,} samples x {self.n_steps} steps, {self.shards} shards on {self.executor}"
            + (f" ({self.resumed_shards} from the checkpoint)" if self.resumed_shards else "")
            + (f", {len(self.failures)} failed attempts retried" if self.failures else ""),
            f"{'precision':<12}{'accuracy':>10}{'agreement':>11}{'energy/sample':>15}{'act. sparsity':>15}"
            f"{'eff. ACs':>12}{'eff. MACs':>12}",
        ]
        for p in self.precisions.values():
            agreement = p.spike_agreement if p.spike_agreement is not None else p.output_agreement
            synops = p.neurobench.get("synaptic_operations") or {}
            lines.append(
                f"{p.name:<12}{pct(p.accuracy):>10}{pct(agreement):>11}{p.energy_per_sample_uj:>12.4f} uJ"
                f"{p.neurobench['activation_sparsity']:>15.4f}{synops.get('effective_acs', float('nan')):>12,.0f}"
                f"{synops.get('effective_macs', float('nan')):>12,.0f}"
            )
        return "\n".join(lines)


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"
