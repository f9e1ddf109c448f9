"""Graphs the backend tests share."""

from __future__ import annotations

import itertools

import numpy as np

from talon import ir

SNNTORCH_BETA = np.float32(0.9)
SNNTORCH_TAU = 1.0 / (1.0 - np.float64(SNNTORCH_BETA))  # float64, so 1 - 1/tau is beta again


def uniform(rng, shape, fan_in) -> np.ndarray:
    """PyTorch's default initialisation of Linear / Conv weights and biases."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def leaky(n: int, **overrides) -> ir.LIF:
    """snnTorch ``Leaky(beta=0.9)`` (subtract reset, delayed, '>')."""
    fields = dict(
        tau=np.full(n, SNNTORCH_TAU), r=np.full(n, SNNTORCH_TAU), v_leak=0.0, v_threshold=1.0,
        reset_mode="subtract", reset_timing="delayed", comparison=">",
    )  # fmt: skip
    fields.update(overrides)
    return ir.LIF(**fields)


def chain(shape, *layers, out_shape=None) -> ir.Graph:
    nodes = {"input": ir.Input(np.array(shape))}
    edges, prev = [], "input"
    current = tuple(shape)
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
        node.infer_types([current])
        current = node.output_shape
    nodes["output"] = ir.Output(np.array(out_shape if out_shape is not None else current))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


def hybrid_graph(seed: int = 0) -> ir.Graph:
    """Seed 002 §6's HybridSNN: Conv(1->16, 3x3, pad 1) -> ReLU -> MaxPool 2 -> Flatten -> Affine(3136->64)
    -> LIF (snnTorch Leaky(beta=0.9)) -> Affine(64->10)."""
    rng = np.random.default_rng(seed)
    return chain(
        [1, 28, 28],
        ("conv1", ir.Conv2d(uniform(rng, (16, 1, 3, 3), 9), uniform(rng, 16, 9), padding=1)),
        ("relu", ir.ReLU()),
        ("pool", ir.MaxPool2d(2)),
        ("flatten", ir.Flatten()),
        ("fc1", ir.Affine(uniform(rng, (64, 3136), 3136), uniform(rng, 64, 3136))),
        ("lif", leaky(64)),
        ("fc2", ir.Affine(uniform(rng, (10, 64), 64), uniform(rng, 10, 64))),
    )


def mlp_graph(seed: int = 0, sizes=(784, 128, 10)) -> ir.Graph:
    """The tutorials' 784-128-10 SNN (two snnTorch Leaky layers)."""
    rng = np.random.default_rng(seed)
    layers = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        layers.append((f"fc{k}", ir.Affine(uniform(rng, (n_out, n_in), n_in), uniform(rng, n_out, n_in))))
        layers.append((f"lif{k}", leaky(n_out)))
    return chain([sizes[0]], *layers)
