"""Memory plan of a compiled program: weight, parameter, state and activation buffers.

Sizes per precision (``b`` bits per element, bytes rounded up per buffer):

* **weights** (weights and biases of Affine, SpikingAffine, Linear, convolutions, SepConv2d, the
  ghost blocks and SDDetect):
  fp32 32 bits, fp16 16, fixed point: weights at the node's ``weight_bits``, biases at its
  ``accumulator_bits``;
* **parameters** (every other parameter array: neuron constants, Scale, PReLU, normalisation):
  32 bits (16 in fp16);
* **state** (per batch entry): each neuron state variable (``v``, and ``i`` of Cuba neurons) at 32
  / 16 / ``state_bits``; a Delay line holds ``max_delay + 1`` copies of its input;
* **activations** (per batch entry): every value a step produces at 32 / 16 bits, or in fixed point
  the width its static bound needs (spikes: 1 bit). The peak is taken over one step of the
  schedule, a value living from its producer to its last reader; values read by a delayed edge
  and graph outputs live for the whole step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from talon import ir
from talon.ir.counting import CONV_LIKE_TYPES

from ...config import CompileConfig
from ..kernels.float_neurons import STATEFUL_NODES
from ..kernels.kernel import Kernel
from ..lowering.program import Program
from .observers import WEIGHT_NODES

WEIGHT_PARAMS = {
    "weight",
    "bias",
    "depthwise_weight",
    "pointwise_weight",
    "depthwise_bias",
    "pointwise_bias",
}


@dataclass
class MemoryPlan:
    buffers: list[dict] = field(default_factory=list)
    weight_bytes: int = 0
    parameter_bytes: int = 0
    state_bytes: int = 0  # per batch entry
    peak_activation_bytes: int = 0  # per batch entry

    def peak_bytes(self, batch: int = 1) -> int:
        return self.weight_bytes + self.parameter_bytes + batch * (self.state_bytes + self.peak_activation_bytes)

    def to_dict(self) -> dict:
        return {
            "weight_bytes": self.weight_bytes,
            "parameter_bytes": self.parameter_bytes,
            "state_bytes": self.state_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "peak_bytes": self.peak_bytes(1),
        }


def _bytes(n_elements: int, bits: int) -> int:
    return math.ceil(n_elements * bits / 8)


def value_bits(kernel: Kernel, port: int, config: CompileConfig) -> int:
    if config.precision == "fp32":
        return 32
    if config.precision == "fp16":
        return 16
    fmt = kernel.out_formats[port] if getattr(kernel, "out_formats", None) else None
    if fmt is None:
        return 32  # a graph output, returned as float32
    if fmt.scalar and float(fmt.scale) == 1.0 and fmt.bound <= 1:
        return 1
    return int(fmt.bound).bit_length() + 1


def weight_bits(kernel: Kernel, config: CompileConfig) -> tuple[int, int]:
    """(weight bits, bias bits) of a weight layer's stored parameters."""
    if config.precision == "fp32":
        return 32, 32
    if config.precision == "fp16":
        return 16, 16
    return kernel.w_bits, kernel.acc_bits


def state_bits(config: CompileConfig) -> int:
    if config.precision == "fp32":
        return 32
    if config.precision == "fp16":
        return 16
    return config.fixed_point.state_bits


def plan_memory(program: Program, kernels: list[Kernel], config: CompileConfig) -> MemoryPlan:
    plan = MemoryPlan()
    param_bits = 16 if config.precision == "fp16" else 32
    for op in program.ops:
        node, kernel = op.node, kernels[op.index]
        arrays = node.arrays()
        if isinstance(node, (*WEIGHT_NODES, *CONV_LIKE_TYPES)):  # ghost blocks, SDDetect: convolution weights
            w_bits, b_bits = weight_bits(kernel, config)
            for name, arr in arrays.items():
                bits = b_bits if "bias" in name else w_bits
                size = _bytes(arr.size, bits)
                plan.weight_bytes += size
                plan.buffers.append(_buffer(f"{op.path}.{name}", "weight", arr.shape, bits, size))
        else:
            for name, arr in arrays.items():
                size = _bytes(arr.size, param_bits)
                plan.parameter_bytes += size
                plan.buffers.append(_buffer(f"{op.path}.{name}", "parameter", arr.shape, param_bits, size))
        if isinstance(node, STATEFUL_NODES):
            shape = tuple(node.input_shape)
            n = math.prod(shape)
            if isinstance(node, ir.Delay):
                bits = value_bits(kernels[op.index], 0, config)
                size = _bytes(n * kernel.length, bits)
                plan.state_bytes += size
                plan.buffers.append(_buffer(f"{op.path}.line", "state", (kernel.length, *shape), bits, size))
                continue
            bits = state_bits(config)
            for var in kernel.state_names:
                size = _bytes(n, bits)
                plan.state_bytes += size
                plan.buffers.append(_buffer(f"{op.path}.{var}", "state", shape, bits, size))
    plan.peak_activation_bytes = _peak_activations(program, kernels, config, plan)
    return plan


def _buffer(name, kind, shape, bits, size) -> dict:
    return {"name": name, "kind": kind, "shape": [int(d) for d in shape], "bits": int(bits), "bytes": int(size)}


def _peak_activations(program: Program, kernels: list[Kernel], config: CompileConfig, plan: MemoryPlan) -> int:
    order = [i for component in program.components for i in component.ops]
    position = {op_index: k for k, op_index in enumerate(order)}
    end = len(order)
    last = {v.id: position[v.producer] for v in program.values}
    for op in program.ops:
        for ref in op.inputs:
            last[ref.value] = end if ref.delayed else max(last[ref.value], position[op.index])
    for vid in program.outputs.values():
        last[vid] = end
    sizes = {}
    for op in program.ops:
        for port, vid in enumerate(op.outputs):
            bits = value_bits(kernels[op.index], port, config)
            sizes[vid] = _bytes(math.prod(program.values[vid].shape), bits)
            plan.buffers.append(_buffer(program.values[vid].name, "activation", program.values[vid].shape, bits,
                                        sizes[vid]))  # fmt: skip
    # Value vid lives at schedule positions first..last[vid] (its producer's to its last reader's); a
    # value read through a delayed edge (last == end) and not a graph output also lives from the start
    # of the step, so at every position. The peak of the sum over positions, by a sweep over the
    # interval ends (linear, not positions x values).
    outputs = set(program.outputs.values())
    always = 0
    change = [0] * (end + 1)
    for vid, size in sizes.items():
        if last[vid] == end and vid not in outputs:
            always += size
        else:
            change[position[program.values[vid].producer]] += size
            change[min(last[vid], end - 1) + 1] -= size
    peak = live = 0
    for k in range(end):
        live += change[k]
        peak = max(peak, live + always)
    return peak
