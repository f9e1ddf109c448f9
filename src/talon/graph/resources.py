"""What one node costs on a core: neurons, stored synapses, fan-in, weight and state bytes.

* **neurons**: the elements of a neuron layer (LIF, IF, LI, CubaLIF, CubaLI, Integrator,
  Threshold), as TALON's ``allocate`` counts them; a weight layer's outputs are accumulators of the
  core's datapath, not neuron slots. Stateless routing and reshaping nodes cost nothing.
* **synapses**: stored weights (``weight.size``; a convolution stores its kernel once).
* **fan-in**: inputs summed by one neuron (``in_features``; ``C_in/groups * prod(kernel)``).
* **weight bytes**: ``ceil((weights + biases) * weight_bits / 8)`` (int4 packs two per byte).
* **state bytes**: per neuron, the values a core keeps: the state (``v``; ``v`` and ``i`` for the
  current-based neurons) and the per-neuron coefficients of docs/semantics.md (decay, gain,
  threshold; synaptic decay and gain for Cuba), at the state width — 16 bytes per fp32 LIF, as the
  TALON documentation counts.
* a **Delay** keeps the history of its input: ``sum(delay)`` values (each element's ring of
  ``delay[i]`` steps) at the state width, as state bytes; it has no neurons or synapses.
* the **ghost blocks and SDDetect** are convolution layers: their kernels (4-d arrays) are synapses
  and, with their biases, weight bytes; their fan-in is the widest kernel's ``C_in/groups * kH * kW``.
  They cannot be split.
* any **other node with parameters** (Scale, BatchNorm, LayerNorm, PReLU, ...) stores them per element
  on the core, at the state width (as the neurons' coefficients): state bytes, no neurons or synapses.
* a **subgraph** (an ``ir.Graph`` used as a node: a recurrent layer) costs what its nodes cost
  together (:func:`add`), its recurrent weight included; ``partition`` maps its nodes one by one
  (:mod:`.inline`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import ir

WEIGHT_LAYERS = (ir.Affine, ir.Linear, ir.Conv1d, ir.Conv2d, ir.SDConv, ir.SepConv2d)
CONV_BLOCKS = (ir.SGhostConv, ir.SGhostEncoderLite, ir.GhostBasicBlock1, ir.GhostBasicBlock2, ir.SDDetect)
#: values stored per neuron: state + coefficients
STATE_VALUES = {
    ir.LIF: 4,  # v, beta, g, theta
    ir.IF: 3,  # v, g, theta
    ir.LI: 3,  # v, beta, g
    ir.CubaLIF: 7,  # v, i, alpha, beta, gs, g, theta
    ir.CubaLI: 6,  # v, i, alpha, beta, gs, g
    ir.Integrator: 2,  # v, g
    ir.Threshold: 1,  # theta
}


@dataclass(frozen=True)
class Cost:
    neurons: int = 0
    synapses: int = 0
    fan_in: int = 0
    weight_bytes: int = 0
    state_bytes: int = 0

    @property
    def sram_bytes(self) -> int:
        return self.weight_bytes + self.state_bytes

    @property
    def free(self) -> bool:
        return not (self.neurons or self.synapses or self.sram_bytes)


def _prod(shape) -> int:
    return int(np.prod(shape)) if shape is not None else 0


def weight_counts(node: ir.Node) -> tuple[int, int, int]:
    """``(weights, biases, fan_in)`` of a weight layer; zeros for other nodes."""
    if isinstance(node, ir.SepConv2d):
        dw, pw = node.depthwise_weight, node.pointwise_weight
        return dw.size + pw.size, dw.shape[0] + pw.shape[0], int(np.prod(dw.shape[1:])) + pw.shape[1]
    if isinstance(node, (ir.Affine, ir.Linear)):
        bias = node.bias.size if isinstance(node, ir.Affine) else 0
        return int(node.weight.size), int(bias), int(node.weight.shape[1])
    if isinstance(node, (ir.Conv1d, ir.Conv2d)):
        return int(node.weight.size), int(node.bias.size), int(np.prod(node.weight.shape[1:]))
    if isinstance(node, CONV_BLOCKS):
        arrays = node.arrays().values()
        kernels = [a for a in arrays if a.ndim == 4]
        return (
            sum(int(a.size) for a in kernels),
            sum(int(a.size) for a in arrays if a.ndim != 4),
            max((int(np.prod(a.shape[1:])) for a in kernels), default=0),
        )
    return 0, 0, 0


def node_cost(node: ir.Node, weight_bits: int, state_bits: int) -> Cost:
    """The cost of ``node`` (whole) on one core at the given widths."""
    if isinstance(node, ir.Graph):
        total = Cost()
        for inner in node.nodes.values():
            total = add(total, node_cost(inner, weight_bits, state_bits))
        return total
    if isinstance(node, ir.Delay):
        history = int(np.sum(node.delay)) * (_prod(node.input_shape) // max(int(node.delay.size), 1))
        return Cost(state_bytes=math.ceil(history * state_bits / 8))
    weights, biases, fan_in = weight_counts(node)
    if weights:
        return Cost(synapses=weights, fan_in=fan_in, weight_bytes=math.ceil((weights + biases) * weight_bits / 8))
    values = next((v for t, v in STATE_VALUES.items() if type(node) is t or isinstance(node, t)), 0)
    if values:
        n = _prod(node.input_shape)
        return Cost(neurons=n, state_bytes=math.ceil(n * values * state_bits / 8))
    parameters = sum(int(a.size) for a in node.arrays().values())
    return Cost(state_bytes=math.ceil(parameters * state_bits / 8))


def add(a: Cost, b: Cost) -> Cost:
    """Costs of two nodes sharing a core."""
    return Cost(
        neurons=a.neurons + b.neurons,
        synapses=a.synapses + b.synapses, fan_in=max(a.fan_in, b.fan_in),
        weight_bytes=a.weight_bytes + b.weight_bytes, state_bytes=a.state_bytes + b.state_bytes,
    )  # fmt: skip
