"""Example graphs of the mapping tutorial (``docs/mapping.md``) and benchmark; numpy only.

* :func:`e2e_conv_snn` — the TALON end-to-end tutorial's ConvSNN (403,538 parameters with the LIF
  arrays, 1.6 MB in fp32): Conv(1->16, 3x3, pad 1) -> ReLU -> MaxPool 2 -> Flatten ->
  Affine(3136->128) -> LIF -> Affine(128->10) -> LIF, with seeded PyTorch-style random weights.
* :func:`deep_conv_snn` — a convolutional SNN of any size (``channels`` per layer, ``size`` x
  ``size`` maps, LIF after every convolution), for the scale benchmark.
* :func:`recurrent_snn` — Affine -> a recurrent layer as snnTorch's ``RLeaky`` exports it (a
  subgraph: LIF with a ``Linear`` recurrent weight on its own spikes) -> Affine readout.
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import ir


def _uniform(rng, shape, fan_in) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _lif(shape, beta: float = 0.9) -> ir.LIF:
    tau = np.float32(1.0 / (1.0 - beta))
    return ir.LIF(
        tau=np.full(shape, tau, np.float32), r=np.full(shape, tau, np.float32), v_leak=0.0, v_threshold=1.0,
        reset_mode="subtract", reset_timing="delayed",
    )  # fmt: skip


def e2e_conv_snn(seed: int = 0) -> ir.Graph:
    """The TALON end-to-end tutorial's ConvSNN (see the module docstring)."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": ir.Input(np.array([1, 28, 28])),
        "conv1": ir.Conv2d(_uniform(rng, (16, 1, 3, 3), 9), _uniform(rng, 16, 9), padding=1),
        "relu": ir.ReLU(),
        "pool": ir.MaxPool2d(2),
        "flatten": ir.Flatten(),
        "fc1": ir.Affine(_uniform(rng, (128, 3136), 3136), _uniform(rng, 128, 3136)),
        "lif1": _lif(128),
        "fc2": ir.Affine(_uniform(rng, (10, 128), 128), _uniform(rng, 10, 128)),
        "lif2": _lif(10),
        "output": ir.Output(np.array([10])),
    }
    names = list(nodes)
    return ir.Graph(nodes, list(itertools.pairwise(names)))


def deep_conv_snn(channels=(32, 64, 64, 64), size: int = 32, in_channels: int = 2, seed: int = 0) -> ir.Graph:
    """Conv(3x3, pad 1) + LIF per entry of ``channels`` on ``size`` x ``size`` maps, then a
    global SumPool and a 10-way Affine readout; ``sum(channels) * size**2`` LIF neurons."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array([in_channels, size, size]))}
    previous = in_channels
    for k, c in enumerate(channels, start=1):
        fan_in = previous * 9
        nodes[f"conv{k}"] = ir.Conv2d(_uniform(rng, (c, previous, 3, 3), fan_in), _uniform(rng, c, fan_in), padding=1)
        nodes[f"lif{k}"] = _lif(c)
        previous = c
    nodes["pool"] = ir.SumPool2d(size)
    nodes["flatten"] = ir.Flatten()
    nodes["readout"] = ir.Affine(_uniform(rng, (10, previous), previous), _uniform(rng, 10, previous))
    nodes["output"] = ir.Output(np.array([10]))
    names = list(nodes)
    return ir.Graph(nodes, list(itertools.pairwise(names)))


def recurrent_layer(hidden: int, rng: np.random.Generator, gain: float = 2.0) -> ir.Graph:
    """An ``RLeaky``-shaped subgraph: ``input -> neuron``, ``neuron -> w_rec -> neuron`` (the
    recurrent edge, one step delayed), ``neuron -> output``."""
    nodes = {
        "input": ir.Input(np.array([hidden])),
        "neuron": _lif(hidden),
        "w_rec": ir.Linear(_uniform(rng, (hidden, hidden), hidden) * np.float32(gain)),
        "output": ir.Output(np.array([hidden])),
    }
    edges = [("input", "neuron"), ("neuron", "w_rec"), ("w_rec", "neuron"), ("neuron", "output")]
    return ir.Graph(nodes, edges)


def recurrent_snn(inputs: int = 200, hidden: int = 300, outputs: int = 10, seed: int = 0) -> ir.Graph:
    """``input -> fc1 (Affine) -> rec (recurrent subgraph, :func:`recurrent_layer`) -> fc2 (Affine) -> output``."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": ir.Input(np.array([inputs])),
        "fc1": ir.Affine(_uniform(rng, (hidden, inputs), inputs) * np.float32(4), _uniform(rng, hidden, inputs)),
        "rec": recurrent_layer(hidden, rng),
        "fc2": ir.Affine(_uniform(rng, (outputs, hidden), hidden), _uniform(rng, outputs, hidden)),
        "output": ir.Output(np.array([outputs])),
    }
    names = list(nodes)
    return ir.Graph(nodes, list(itertools.pairwise(names)))
