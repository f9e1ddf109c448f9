"""Networks the mapping tests split: MLP, conv SNN with pooling, residual, recurrent."""

from __future__ import annotations

import itertools

import numpy as np

from talon import ir
from tests.backend.graphs import hybrid_graph, leaky, mlp_graph, uniform


def conv_snn(seed: int = 0) -> ir.Graph:
    """Conv(2->12, 3x3) -> LIF -> MaxPool 2 -> Conv(12->8) -> LIF -> SumPool 2 -> Flatten -> Affine -> LIF."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": ir.Input(np.array([2, 12, 12])),
        "conv1": ir.Conv2d(uniform(rng, (12, 2, 3, 3), 18) * 3, uniform(rng, 12, 18), padding=1),
        "lif1": leaky(12, tau=np.full(12, 10.0), r=np.full(12, 10.0)),
        "pool1": ir.MaxPool2d(2),
        "conv2": ir.Conv2d(uniform(rng, (8, 12, 3, 3), 108) * 3, uniform(rng, 8, 108), padding=1),
        "lif2": leaky(8, tau=np.full(8, 10.0), r=np.full(8, 10.0)),
        "pool2": ir.SumPool2d(2),
        "flat": ir.Flatten(),
        "fc": ir.Affine(uniform(rng, (10, 72), 72) * 2, uniform(rng, 10, 72)),
        "lif3": leaky(10),
        "output": ir.Output(np.array([10])),
    }
    names = list(nodes)
    return ir.Graph(nodes, list(itertools.pairwise(names)))


def residual_net(seed: int = 0) -> ir.Graph:
    """fc1 -> lif1 -> fc2 -> lif2, Skip(residual: lif1 + lif2) -> fc3 -> output."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": ir.Input(np.array([40])),
        "fc1": ir.Affine(uniform(rng, (48, 40), 40) * 4, uniform(rng, 48, 40)),
        "lif1": leaky(48),
        "fc2": ir.Affine(uniform(rng, (48, 48), 48) * 4, uniform(rng, 48, 48)),
        "lif2": leaky(48),
        "skip": ir.Skip("residual"),
        "fc3": ir.Affine(uniform(rng, (6, 48), 48), uniform(rng, 6, 48)),
        "output": ir.Output(np.array([6])),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif1", "skip"),
             ("lif2", "skip"), ("skip", "fc3"), ("fc3", "output")]  # fmt: skip
    return ir.Graph(nodes, edges)


def recurrent_net(seed: int = 0, hidden: int = 40) -> ir.Graph:
    """fc_in -> lif <-> fc_rec (a recurrent loop) ; lif -> fc_out -> output."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": ir.Input(np.array([20])),
        "fc_in": ir.Affine(uniform(rng, (hidden, 20), 20) * 4, uniform(rng, hidden, 20)),
        "lif": leaky(hidden),
        "fc_rec": ir.Linear(uniform(rng, (hidden, hidden), hidden) * 2),
        "fc_out": ir.Affine(uniform(rng, (5, hidden), hidden), uniform(rng, 5, hidden)),
        "output": ir.Output(np.array([5])),
    }
    edges = [("input", "fc_in"), ("fc_in", "lif"), ("lif", "fc_rec"), ("fc_rec", "lif"), ("lif", "fc_out"),
             ("fc_out", "output")]  # fmt: skip
    return ir.Graph(nodes, edges)


def spikes(shape, steps: int = 25, batch: int = 3, rate: float = 0.35, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, *shape)) < rate).astype(np.float32)


__all__ = ["conv_snn", "hybrid_graph", "mlp_graph", "recurrent_net", "residual_net", "spikes"]
