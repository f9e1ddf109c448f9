"""``sweep``: one evaluation per grid point, a table, and the accuracy–energy Pareto front.

Grid keys: ``precision`` (names), ``weight_bits`` / ``activation_bits`` / ``accumulator_bits``
(fixed-point overrides; ignored by float precisions, so those points are evaluated once), and
``energy_preset``. All compile configurations are simulated in **one** pass over the data; energy
presets do not need another simulation: the energy of a point is the backend's energy model
applied to the same operation counts.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talon.backend.config import CompileConfig
from talon.backend.energy import DEFAULT_PRESET, resolve_energy

from .errors import EvaluationError
from .evaluate import evaluate, precision_name
from .result import EvaluationResult, PrecisionResult

CONFIG_KEYS = ("precision", "weight_bits", "activation_bits", "accumulator_bits")
GRID_KEYS = (*CONFIG_KEYS, "energy_preset")


def energy_per_sample(result: PrecisionResult, preset) -> float:
    """µJ per sample of ``result``'s operation counts under ``preset`` (the profiler's formula)."""
    e = resolve_energy(preset, None, None, None, None)
    total = sum(
        layer.macs * e.mac_pj
        + layer.synaptic_ops * e.spike_pj
        + (layer.sram_read_bits * e.sram_read_pj + layer.sram_write_bits * e.sram_write_pj) / 32
        for layer in result.layers.values()
    )
    return total * 1e-6 / result.samples


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated in (higher accuracy, lower energy); ties keep both."""
    front = []
    for i, (acc, energy) in enumerate(points):
        dominated = any(
            (a >= acc and e <= energy) and (a > acc or e < energy) for j, (a, e) in enumerate(points) if j != i
        )
        if not dominated:
            front.append(i)
    return front


@dataclass
class SweepResult:
    """``rows``: one dict per grid point (its settings, accuracy, energy per sample, agreement, sparsity);
    ``pareto``: indices of the rows on the accuracy–energy front; ``evaluation``: the underlying run."""

    rows: list[dict[str, Any]]
    pareto: list[int]
    evaluation: EvaluationResult

    def to_csv(self, path: str | os.PathLike) -> Path:
        from talon.ir.atomic import atomic_output

        path = Path(path)
        with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)
        return path

    def to_json(self, path: str | os.PathLike) -> Path:
        from talon.ir.atomic import atomic_output

        path = Path(path)
        with atomic_output(path) as tmp:
            tmp.write_text(json.dumps({"rows": self.rows, "pareto": self.pareto}, indent=2))
        return path

    def plot(self, path: str | os.PathLike, title: str = "accuracy vs energy") -> Path:
        """Accuracy against energy per sample, the Pareto front drawn as a line (PNG/SVG/PDF by suffix)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from talon.viz.figures import save_figure

        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        xs = [r["energy_per_sample_uj"] for r in self.rows]
        ys = [r["accuracy"] for r in self.rows]
        ax.scatter(xs, ys, color="#999999", label="grid point")
        front = sorted(self.pareto, key=lambda i: xs[i])
        ax.plot([xs[i] for i in front], [ys[i] for i in front], "o-", color="#d62728", label="Pareto front")
        for i in front:
            ax.annotate(self.rows[i]["label"], (xs[i], ys[i]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("energy per sample (µJ, estimate)")
        ax.set_ylabel("accuracy")
        ax.set_title(title)
        ax.legend(loc="lower right")
        fig.tight_layout()
        try:
            return save_figure(fig, path)  # atomic: a failed save leaves an old file intact
        finally:
            plt.close(fig)


def sweep(model, dataset, grid: dict[str, list], **evaluate_kwargs) -> SweepResult:
    """Evaluate ``model`` at every point of ``grid`` (keys :data:`GRID_KEYS`); other keyword arguments go
    to :func:`~talon.evaluate.evaluate`. The data set must have labels (rows report accuracy)."""
    unknown = set(grid) - set(GRID_KEYS)
    if unknown:
        raise EvaluationError(f"unknown sweep keys {sorted(unknown)}; use {list(GRID_KEYS)}")
    for key, values in grid.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or not list(values):
            raise EvaluationError(f"grid[{key!r}] must be a non-empty list of values")
    presets = list(grid.get("energy_preset", [evaluate_kwargs.pop("energy_preset", DEFAULT_PRESET)]))
    axes = [list(grid.get(k, [None])) for k in CONFIG_KEYS]
    configs: dict[str, CompileConfig] = {}
    for values in itertools.product(*axes):
        fields = {k: v for k, v in zip(CONFIG_KEYS, values, strict=True) if v is not None}
        fields.setdefault("precision", "fp32")
        if fields["precision"] in ("fp32", "fp16"):
            fields = {"precision": fields["precision"]}  # bit widths do not apply
        try:
            config = CompileConfig(**fields)
        except ValueError as exc:
            raise EvaluationError(f"sweep point {fields}: {exc}") from None
        configs[precision_name(config)] = config
    result = evaluate(model, dataset, precisions=list(configs.values()), energy_preset=presets[0], **evaluate_kwargs)
    rows = []
    for name, config in configs.items():
        p = result[name]
        if p.accuracy is None:
            raise EvaluationError("a sweep reports accuracy: the data set needs labels")
        for preset in presets:
            energy = resolve_energy(preset, None, None, None, None)
            rows.append(
                {
                    "label": f"{name} @ {energy.name}",
                    "precision": config.precision,
                    "weight_bits": config.fixed_point.weight_bits if config.is_fixed_point else None,
                    "activation_bits": config.fixed_point.activation_bits if config.is_fixed_point else None,
                    "accumulator_bits": config.fixed_point.accumulator_bits if config.is_fixed_point else None,
                    "energy_preset": energy.name,
                    "accuracy": p.accuracy,
                    "energy_per_sample_uj": energy_per_sample(p, energy),
                    "spike_agreement": p.spike_agreement,
                    "activation_sparsity": p.neurobench["activation_sparsity"],
                }
            )
    front = pareto_front([(r["accuracy"], r["energy_per_sample_uj"]) for r in rows])
    return SweepResult(rows, front, result)
