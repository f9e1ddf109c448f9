"""Example networks of the FPGA backend's documentation, tests and benchmark (seeded, numpy only).

Each builder returns a TALON IR graph with PyTorch's default initialisation (uniform
``±1/sqrt(fan_in)``) and gains chosen so that every spiking layer fires on the matching
``*_inputs`` stimulus:

* :func:`mlp_snn` — the tutorials' 784-128-10 SNN (snnTorch ``Leaky(beta=0.9)`` layers);
* :func:`conv_snn` — Conv2d → LIF → MaxPool2d → Conv2d (stride 2) → IF → AvgPool2d → Flatten →
  Affine → LIF, on real-valued (non-spike) images;
* :func:`residual_snn` — a residual block (Skip sums a weight layer's output with spikes, so the
  two edges are rescaled to one format), ChannelSplit / Concat, a Threshold and a LI readout;
* :func:`recurrent_snn` — a CubaLIF layer with a recurrent Linear (a delayed edge), a Delay line,
  and a LIF readout with ``'>='`` and a value reset.
"""

from __future__ import annotations

import itertools

import numpy as np

from talon import ir

SNNTORCH_TAU = 1.0 / (1.0 - np.float64(np.float32(0.9)))


def _uniform(rng, shape, fan_in, gain: float = 1.0) -> np.ndarray:
    bound = gain / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _leaky(n, **overrides) -> ir.LIF:
    fields = dict(
        tau=np.full(n, SNNTORCH_TAU), r=np.full(n, SNNTORCH_TAU), v_leak=0.0, v_threshold=1.0,
        reset_mode="subtract", reset_timing="delayed", comparison=">",
    )  # fmt: skip
    fields.update(overrides)
    return ir.LIF(**fields)


def _chain(shape, layers) -> ir.Graph:
    nodes = {"input": ir.Input(np.array(shape))}
    edges, prev, current = [], "input", tuple(shape)
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        node.infer_types([current])
        prev, current = name, node.output_shape
    nodes["output"] = ir.Output(np.array(current))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


def mlp_snn(seed: int = 0, sizes=(784, 128, 10)) -> ir.Graph:
    rng = np.random.default_rng(seed)
    layers = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        layers.append((f"fc{k}", ir.Affine(_uniform(rng, (n_out, n_in), n_in), _uniform(rng, n_out, n_in))))
        layers.append((f"lif{k}", _leaky(n_out)))
    return _chain([sizes[0]], layers)


def mlp_inputs(n_steps: int = 50, batch: int = 2, seed: int = 1, rate: float = 0.3) -> np.ndarray:
    """Bernoulli spike trains ``[T, B, 784]``."""
    return (np.random.default_rng(seed).random((n_steps, batch, 784)) < rate).astype(np.float32)


def conv_snn(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    return _chain(
        [1, 12, 12],
        [
            ("conv1", ir.Conv2d(_uniform(rng, (4, 1, 3, 3), 9, 2.0), _uniform(rng, 4, 9), padding=1)),
            ("lif1", _leaky((4, 12, 12), tau=np.full(4, 4.0), r=4.0, reset_mode="value", reset_timing="immediate")),
            ("pool1", ir.MaxPool2d(2)),
            ("conv2", ir.Conv2d(_uniform(rng, (8, 4, 3, 3), 36, 3.0), _uniform(rng, 8, 36), stride=2, padding=1)),
            ("if2", ir.IF(v_threshold=np.full(8, 1.0), reset_mode="subtract")),
            ("pool2", ir.AvgPool2d(3)),
            ("flatten", ir.Flatten()),
            ("fc", ir.Affine(_uniform(rng, (10, 8), 8, 4.0), _uniform(rng, 10, 8))),
            ("lif3", _leaky(10)),
        ],
    )


def conv_inputs(n_steps: int = 50, batch: int = 2, seed: int = 1) -> np.ndarray:
    """Real-valued images in [0, 1) ``[T, B, 1, 12, 12]`` (quantized by the Input layer)."""
    return np.random.default_rng(seed).random((n_steps, batch, 1, 12, 12)).astype(np.float32)


def residual_snn(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    n = 32
    nodes = {
        "input": ir.Input(np.array([40])),
        "fc1": ir.Affine(_uniform(rng, (n, 40), 40, 2.0), _uniform(rng, n, 40)),
        "lif1": _leaky(n),
        "fc2": ir.Affine(_uniform(rng, (n, n), n, 2.0), _uniform(rng, n, n)),
        "skip": ir.Skip(skip_type="residual"),
        "lif2": _leaky(n, tau=np.full(n, 5.0), r=5.0),
        "split": ir.ChannelSplit(split_sections=[12, 20], dim=1),
        "concat": ir.Concat(dim=1),
        "fc3": ir.Affine(_uniform(rng, (10, n), n, 3.0), _uniform(rng, 10, n)),
        "spikes": ir.Threshold(threshold=np.full(10, 0.25)),
        "li": ir.LI(tau=np.full(10, 4.0)),
        "output": ir.Output(np.array([10])),
        "spike_out": ir.Output(np.array([10])),
    }
    edges = [
        ("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "skip"), ("lif1", "skip"),
        ("skip", "lif2"), ("lif2", "split"), ("split", "concat"), ("split", "concat"),
        ("concat", "fc3"), ("fc3", "spikes"), ("fc3", "li"), ("li", "output"), ("spikes", "spike_out"),
    ]  # fmt: skip
    return ir.Graph(nodes, edges)


def residual_inputs(n_steps: int = 50, batch: int = 2, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((n_steps, batch, 40)) < 0.4).astype(np.float32)


def recurrent_snn(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    n = 24
    nodes = {
        "input": ir.Input(np.array([30])),
        "fc_in": ir.Affine(_uniform(rng, (n, 30), 30, 2.0), _uniform(rng, n, 30)),
        "cuba": ir.CubaLIF(
            tau_syn=np.full(n, 2.0),
            tau_mem=np.full(n, 4.0),
            r=4.0,
            w_in=2.0,
            v_threshold=np.full(n, 1.0),
            reset_mode="subtract",
            reset_timing="delayed",
            comparison=">",
        ),
        "w_rec": ir.Linear(_uniform(rng, (n, n), n, 1.5)),
        "delay": ir.Delay(delay=np.arange(n) % 3),
        "fc_out": ir.Affine(_uniform(rng, (8, n), n, 3.0), _uniform(rng, 8, n)),
        "lif_out": ir.LIF(tau=np.full(8, 3.0), r=3.0, v_threshold=0.5, comparison=">="),
        "output": ir.Output(np.array([8])),
    }
    edges = [
        ("input", "fc_in"), ("fc_in", "cuba"), ("cuba", "w_rec"), ("w_rec", "cuba"), ("cuba", "delay"),
        ("delay", "fc_out"), ("fc_out", "lif_out"), ("lif_out", "output"),
    ]  # fmt: skip
    return ir.Graph(nodes, edges)


def recurrent_inputs(n_steps: int = 50, batch: int = 2, seed: int = 1) -> np.ndarray:
    """Non-negative real inputs (multiples of 1/16) ``[T, B, 30]``."""
    return (np.random.default_rng(seed).integers(0, 16, (n_steps, batch, 30)) / 16).astype(np.float32)
