"""Operation counts and the energy model of :meth:`CPUBackend.profile` (docs/backend.md, "Profile").

Counts over the whole run (``T`` steps x ``B`` batch entries), from the activity measured in
the simulation:

* a weight layer whose input was binary (0/1) at every step is **spike-driven**: each non-zero
  input element costs one synaptic operation per weight it meets (its fan-out: ``out_features``
  for Affine / Linear, the number of (output position, kernel tap) pairs reading it times
  ``C_out / groups`` for a convolution). Otherwise the layer is **dense** and costs its full MAC
  count per step and batch entry (Linear ``in x out``; convolution ``C_out Ho Wo C_in/groups kH kW``;
  SepConv2d depthwise plus pointwise; biases excluded);
* a neuron update costs multiply-accumulates per neuron and step: 2 for LIF / LI (``beta v`` and
  ``g x``), 4 for CubaLIF / CubaLI (with ``alpha i`` and ``g_s x``), 1 for IF / Integrator;
* SRAM: every MAC and synaptic operation reads its weight; every output element of a weight layer
  reads its bias once per step; every neuron state variable is read and written once per step.

Energy (µJ) = ``mac_ops * mac_pj + synaptic_ops * spike_pj + (read_bits * sram_read_pj +
write_bits * sram_write_pj) / 32``, times 1e-6; per layer the same sums over its own counts.
"""

from __future__ import annotations

import math

import numpy as np

from talon import ir
from talon.ir.counting import DETECTION_TYPES, detection_macs

from ...config import CompileConfig
from ...energy import EnergyPreset
from ...results import LayerProfile
from ..kernels import geometry
from ..kernels.kernel import Kernel
from ..lowering.program import Program
from .memory import state_bits, weight_bits
from .observers import WEIGHT_NODES, ActivityObserver, SpikeObserver

NEURON_MACS = {"LIF": 2, "LI": 2, "CubaLIF": 4, "CubaLI": 4, "IF": 1, "Integrator": 1}


def dense_macs(node: ir.Node) -> int:
    """Multiply-accumulates of one step of one batch entry of a weight layer (biases excluded)."""
    out = math.prod(node.output_shape)
    if isinstance(node, (ir.Affine, ir.Linear)):
        return out * int(node.weight.shape[1])
    if isinstance(node, ir.SepConv2d):
        c, kh, kw = node.depthwise_weight.shape[0], *node.depthwise_weight.shape[2:]
        spatial = math.prod(node.output_shape[1:])
        return c * spatial * kh * kw + out * c
    w = node.weight
    return out * math.prod(w.shape[1:])


def fan_out(node: ir.Node) -> np.ndarray:
    """Synaptic operations caused by a spike at each input element (``[*in_shape]``)."""
    shape = tuple(node.input_shape)
    if isinstance(node, (ir.Affine, ir.Linear)):
        return np.full(shape, node.weight.shape[0], np.int64)
    if isinstance(node, ir.SepConv2d):
        return geometry.conv_fan_out(
            shape, node.depthwise_weight.shape, node.stride, node.padding, node.dilation, shape[0]
        )
    return geometry.conv_fan_out(shape, node.weight.shape, node.stride, node.padding, node.dilation, node.groups)


def count_layers(
    program: Program,
    kernels: list[Kernel],
    config: CompileConfig,
    activity: ActivityObserver,
    spikes: SpikeObserver,
    seconds: dict[str, float],
    steps: int,
    batch: int,
    energy: EnergyPreset,
) -> dict[str, LayerProfile]:
    runs = steps * batch
    s_bits = state_bits(config)
    layers: dict[str, LayerProfile] = {}
    for op in program.ops:
        node, kernel = op.node, kernels[op.index]
        layer = LayerProfile(op.path, op.kind, latency_us=1e6 * seconds.get(op.path, 0.0))
        if isinstance(node, WEIGHT_NODES):
            w_bits, b_bits = weight_bits(kernel, config)
            layer.event_driven = activity.binary.get(op.index, False)
            if layer.event_driven:
                nonzero = activity.nonzero.get(op.index, np.zeros(tuple(node.input_shape), np.int64))
                layer.input_events = int(nonzero.sum())
                layer.synaptic_ops = int((nonzero * fan_out(node)).sum())
                if isinstance(node, ir.SepConv2d):  # the pointwise stage reads the dense depthwise output
                    pointwise = math.prod(node.output_shape) * node.depthwise_weight.shape[0]
                    layer.macs = pointwise * runs
            else:
                layer.macs = dense_macs(node) * runs
            n_bias = 0 if isinstance(node, ir.Linear) else math.prod(node.output_shape)  # Linear: no bias
            if isinstance(node, ir.SepConv2d):
                n_bias += node.depthwise_weight.shape[0] * math.prod(node.output_shape[1:])
            layer.sram_read_bits = (layer.macs + layer.synaptic_ops) * w_bits + n_bias * runs * b_bits
        elif isinstance(node, DETECTION_TYPES):  # counted densely (talon.ir.counting.detection)
            layer.macs = detection_macs(node, tuple(node.input_shape)) * runs
            w_bits, _ = weight_bits(kernel, config)
            layer.sram_read_bits = layer.macs * w_bits
        elif type(node).__name__ in NEURON_MACS:
            n = math.prod(node.input_shape)
            layer.macs = NEURON_MACS[type(node).__name__] * n * runs
            n_state = 2 if isinstance(node, (ir.CubaLIF, ir.CubaLI)) else 1
            layer.sram_read_bits = n_state * n * runs * s_bits
            layer.sram_write_bits = layer.sram_read_bits
        layer.spikes = spikes.counts.get(op.path, 0)
        layer.mac_energy_uj = layer.macs * energy.mac_pj * 1e-6
        layer.spike_energy_uj = layer.synaptic_ops * energy.spike_pj * 1e-6
        layer.sram_energy_uj = (
            (layer.sram_read_bits * energy.sram_read_pj + layer.sram_write_bits * energy.sram_write_pj) / 32 * 1e-6
        )
        layers[op.path] = layer
    return layers
