"""Spike rasters and membrane traces as PNG (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from talon.ir.errors import MissingDependencyError, install_hint

from .figures import save_figure


def plot_spikes_and_membranes(
    spikes: Mapping[str, np.ndarray],
    membranes: Mapping[str, np.ndarray],
    path: str | Path,
    title: str = "",
) -> Path:
    """One raster per layer (``spikes[name]``: ``[T, N]`` of 0/1) and the membrane traces of a few
    neurons (``membranes[name]``: ``[T, N]``), stacked in one figure written to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the viz extra
        raise MissingDependencyError("plots need matplotlib; " + install_hint("viz")) from exc
    rows = len(spikes) + len(membranes)
    if rows == 0:
        raise ValueError("nothing to plot: give at least one spike or membrane trace")
    fig, axes = plt.subplots(rows, 1, figsize=(8, 2.2 * rows), sharex=True, squeeze=False)
    axes = axes[:, 0]
    for ax, (name, s) in zip(axes, spikes.items(), strict=False):
        s = np.asarray(s)
        t, n = np.nonzero(s)
        ax.scatter(t, n, s=4, marker="|", color="black")
        ax.set_ylabel(f"{name}\nneuron")
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_title(f"{name}: {int(s.sum())} spikes", fontsize=9, loc="left")
    for ax, (name, v) in zip(axes[len(spikes) :], membranes.items(), strict=False):
        v = np.asarray(v)
        ax.plot(v[:, : min(10, v.shape[1])], linewidth=1)
        ax.set_ylabel(f"{name}\nmembrane")
    axes[-1].set_xlabel("timestep")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        return save_figure(fig, path, dpi=110)  # atomic: a failed save leaves an old file intact
    finally:
        plt.close(fig)


def plot_simulation(
    result,
    path: str | Path,
    nodes: list[str] | None = None,
    batch: int = 0,
    title: str = "",
) -> Path:
    """Spike rasters and membrane traces of a CPU-backend run (``simulate(..., step_by_step=True)``).

    ``nodes``: the spiking nodes to draw (default: every node in ``result.spike_counts``); a
    node's spikes are its ``"output"`` state, its membrane its ``"v"`` state, both flattened per
    step for batch entry ``batch``.
    """
    states = getattr(result, "node_states", None)
    if states is None:
        raise ValueError(
            "this SimulationResult has no per-step states; run simulate(graph, inputs, n_steps=..., "
            "step_by_step=True) to record them"
        )
    names = list(result.spike_counts) if nodes is None else list(nodes)
    if not names:
        raise ValueError("the result has no spiking node to plot; pass nodes=[...] explicitly")
    unknown = [n for n in names if n not in states]
    if unknown:
        raise ValueError(f"no recorded states for {unknown}; recorded nodes are: {', '.join(states)}")
    spikes, membranes = {}, {}
    for name in names:
        record = states[name]
        out = np.asarray(record["output"])
        if not 0 <= batch < out.shape[1]:
            raise ValueError(f"batch={batch} is out of range for {out.shape[1]} batch entries")
        spikes[name] = out[:, batch].reshape(out.shape[0], -1)
        if "v" in record:
            v = np.asarray(record["v"])
            membranes[name] = v[:, batch].reshape(v.shape[0], -1)
    return plot_spikes_and_membranes(spikes, membranes, path, title=title)
