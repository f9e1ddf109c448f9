"""Graphs, encoders and data for the evaluation tests (importable by worker processes)."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talon import ir
from talon.evaluate import Rate


def digits_graph(seed: int = 0, hidden: int = 32) -> ir.Graph:
    """64 → hidden LIF → 10 LIF with random weights strong enough to make both layers fire."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((hidden, 64)) * 2.0).astype(np.float32)
    w2 = (rng.standard_normal((10, hidden)) * 4.0).astype(np.float32)
    lif = dict(
        tau=np.full(hidden, 10.0, np.float32),
        r=np.ones(hidden, np.float32),
        v_leak=np.zeros(hidden, np.float32),
        v_threshold=np.ones(hidden, np.float32),
    )
    lif2 = {k: v[:10] for k, v in lif.items()}
    nodes = {
        "input": ir.Input(np.array([64])),
        "fc1": ir.Affine(weight=w1, bias=np.full(hidden, 0.05, np.float32)),
        "lif1": ir.LIF(**lif),
        "fc2": ir.Affine(weight=w2, bias=np.zeros(10, np.float32)),
        "lif2": ir.LIF(**lif2),
        "output": ir.Output(np.array([10])),
    }
    names = list(nodes)
    return ir.Graph(nodes=nodes, edges=list(itertools.pairwise(names)))


@dataclass(frozen=True)
class DyingRate:
    """Rate coding whose worker process dies (``os._exit``) on sample ``index`` the first time only."""

    marker: str
    index: int

    def __call__(self, sample, index, n_steps, shape):
        if index == self.index and not Path(self.marker).exists():
            Path(self.marker).touch()
            os._exit(3)
        return Rate()(sample, index, n_steps, shape)


@dataclass(frozen=True)
class InterruptedRate:
    """Rate coding interrupted (KeyboardInterrupt, as Ctrl-C) on sample ``index`` while ``marker`` is absent."""

    marker: str
    index: int

    def __call__(self, sample, index, n_steps, shape):
        if index == self.index and not Path(self.marker).exists():
            raise KeyboardInterrupt
        return Rate()(sample, index, n_steps, shape)
