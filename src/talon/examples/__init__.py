"""Example graphs the guide, the demo, the tests and the benchmarks share (numpy only).

Each builder returns a new, validated :class:`talon.ir.Graph` whose weights are drawn from
``numpy.random.default_rng(seed)`` with PyTorch's default initialisation (uniform in
``±1/sqrt(fan_in)``), so a given seed gives the same graph on every machine.

* :func:`hybrid_graph` — the hybrid ANN/SNN of the snnTorch tutorial (``docs/snntorch.md`` §6):
  Conv2d(1→16, 3×3, padding 1) → ReLU → MaxPool2d(2) → Flatten → Affine(3136→64) → LIF(64)
  (snnTorch ``Leaky(beta=0.9)``) → Affine(64→10).
* :func:`mlp_graph` — the tutorials' 784-128-10 SNN, two snnTorch ``Leaky(beta=0.9)`` layers.
* :func:`chain`, :func:`leaky`, :func:`uniform` — the pieces, to build your own.

Submodules: :mod:`talon.examples.shapes` (synthetic detection scenes with exact boxes, numpy) and
:mod:`talon.examples.spiking_detector` (a SU-YOLO-style spiking detector, torch; ``docs/detection.md``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from talon import ir

__all__ = ["SNNTORCH_BETA", "SNNTORCH_TAU", "blocks_graph", "chain", "hybrid_graph", "leaky", "mlp_graph", "uniform"]

SNNTORCH_BETA = np.float32(0.9)
SNNTORCH_TAU = 1.0 / (1.0 - np.float64(SNNTORCH_BETA))  # float64, so 1 - 1/tau is beta again


def uniform(rng: np.random.Generator, shape, fan_in: int) -> np.ndarray:
    """PyTorch's default initialisation of Linear / Conv weights and biases: U(−1/√fan_in, 1/√fan_in), float32."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def leaky(n: int, **overrides) -> ir.LIF:
    """snnTorch ``Leaky(beta=0.9)`` as a LIF of ``n`` neurons: ``tau = r = 1/(1 − β)``, threshold 1,
    subtract reset one step late, ``comparison='>'``; ``overrides`` replace any field."""
    fields = dict(
        tau=np.full(n, SNNTORCH_TAU), r=np.full(n, SNNTORCH_TAU), v_leak=0.0, v_threshold=1.0,
        reset_mode="subtract", reset_timing="delayed", comparison=">",
    )  # fmt: skip
    fields.update(overrides)
    return ir.LIF(**fields)


def chain(shape: Sequence[int], *layers: tuple[str, ir.Node], out_shape: Sequence[int] | None = None) -> ir.Graph:
    """``input → layers… → output``: an Input of ``shape``, the ``(name, node)`` layers in order, an Output."""
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array(shape))}
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
    """The hybrid ANN/SNN (9 nodes, 201,898 parameters): conv1 → relu → pool → flatten → fc1 → lif → fc2."""
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


def mlp_graph(seed: int = 0, sizes: Sequence[int] = (784, 128, 10)) -> ir.Graph:
    """A fully connected SNN: ``fc{k}`` Affine → ``lif{k}`` Leaky(0.9) per layer (default 784-128-10)."""
    rng = np.random.default_rng(seed)
    layers = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
        layers.append((f"fc{k}", ir.Affine(uniform(rng, (n_out, n_in), n_in), uniform(rng, n_out, n_in))))
        layers.append((f"lif{k}", leaky(n_out)))
    return chain([sizes[0]], *layers)


def blocks_graph(n_nodes: int, seed: int = 0, width: int = 8) -> ir.Graph:
    """A long graph of small populations, as a layer-split model gives: about ``n_nodes`` nodes.

    Block ``k`` is ``fc{k}`` Affine(width→width) → ``lif{k}`` Leaky(0.9) → ``res{k}`` residual
    Skip, which adds the block's input; every 5th block also feeds ``lif{k}`` back into ``fc{k}``
    (a recurrent edge), and every 7th block is followed by ``sub{k}``, a subgraph node holding
    Input → Affine → LIF → Output. Blocks are added while they fit in ``n_nodes`` (at least one).
    """
    rng = np.random.default_rng(seed)

    def affine() -> ir.Affine:
        return ir.Affine(uniform(rng, (width, width), width), uniform(rng, width, width))

    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array([width]))}
    edges: list[tuple[str, str]] = []
    prev, k = "input", 0
    while k == 0 or len(nodes) + 3 + (k % 7 == 6) < n_nodes:
        fc, lif, res = f"fc{k}", f"lif{k}", f"res{k}"
        nodes.update({fc: affine(), lif: leaky(width), res: ir.Skip("residual")})
        edges += [(prev, fc), (fc, lif), (lif, res), (prev, res)]
        if k % 5 == 4:
            edges.append((lif, fc))
        prev = res
        if k % 7 == 6:
            sub = chain([width], ("fc", affine()), ("lif", leaky(width)))
            nodes[f"sub{k}"] = sub
            edges.append((prev, f"sub{k}"))
            prev = f"sub{k}"
        k += 1
    nodes["output"] = ir.Output(np.array([width]))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)
