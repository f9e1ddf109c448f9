"""Metrics computed once from the merged counts: accuracy, firing rates, energy and the NeuroBench set.

NeuroBench's definitions (``neurobench`` 2.x, checked against it in the tests):

* **footprint**: bytes of the model's parameters (NeuroBench: torch parameters and buffers); talon
  counts the weights and neuron parameters at the evaluated precision (the backend's memory model);
* **connection sparsity**: zero weights / all weights of the weight layers (biases excluded);
* **activation sparsity**: ``1 - spikes / (spiking neurons x steps x samples)`` over every spiking node;
* **synaptic operations** per sample: for each weight layer and each (step, sample) input, the
  multiply-accumulates that meet a non-zero input and a non-zero weight (biases excluded) — counted
  as *effective ACs* when that input was spiking (every value in {-1, 0, 1}), else *effective MACs* —
  and *dense*, the same count with every weight and input non-zero.
"""

from __future__ import annotations

import math

import numpy as np

from talon import ir
from talon.backend.cpu.kernels import geometry
from talon.backend.cpu.run.observers import WEIGHT_NODES
from talon.backend.cpu.run.profiler import fan_out

from .errors import EvaluationError


def weight_arrays(node: ir.Node) -> list[np.ndarray]:
    if isinstance(node, ir.SepConv2d):
        return [node.depthwise_weight, node.pointwise_weight]
    return [node.weight]


def connection_sparsity(weight_nodes: list[ir.Node]) -> float:
    zeros = total = 0
    for node in weight_nodes:
        for w in weight_arrays(node):
            zeros += int(np.count_nonzero(np.asarray(w) == 0))
            total += int(np.asarray(w).size)
    return zeros / total if total else 0.0


def effective_fan_out(node: ir.Node) -> np.ndarray:
    """For each input element, the non-zero weights that read it (``[*in_shape]``, int64):
    the operations one non-zero input element costs when only non-zero weights count."""
    if isinstance(node, (ir.Affine, ir.SpikingAffine, ir.Linear)):
        return np.count_nonzero(np.asarray(node.weight) != 0, axis=0).astype(np.int64).reshape(node.input_shape)
    if isinstance(node, ir.SepConv2d):
        raise EvaluationError(
            f"synaptic operations of SepConv2d {type(node).__name__}: its pointwise input is internal and not counted"
        )
    return _conv_effective_fan_out(node)


def _conv_effective_fan_out(node) -> np.ndarray:
    """``fan[c, y, x] = Σ_{o in c's group} Σ_taps [W[o, c_local, tap] ≠ 0] · [tap of some output reads (y, x)]``."""
    shape = tuple(node.input_shape)
    w = np.asarray(node.weight) != 0
    one_d = len(shape) == 2
    stride, padding, dilation = node.stride, node.padding, node.dilation
    if one_d:
        shape, w = (shape[0], 1, shape[1]), w[:, :, None, :]
        stride, padding, dilation = (1, _one(stride)), (0, _one(padding)), (1, _one(dilation))
    c, h, width = shape
    o, c_local, kh, kw = w.shape
    groups = node.groups
    (sh, sw), (ph, pw), (dh, dw) = (geometry._pair(v) for v in (stride, padding, dilation))
    ho = geometry.conv_output_size(h, kh, sh, ph, dh, "conv")
    wo = geometry.conv_output_size(width, kw, sw, pw, dw, "conv")
    # weights per (input channel, tap): sum over the outputs of the channel's group
    per_tap = w.reshape(groups, o // groups, c_local, kh, kw).sum(axis=1).reshape(c, kh, kw).astype(np.int64)
    fan = np.zeros((c, h + 2 * ph, width + 2 * pw), np.int64)
    rows, cols = np.arange(ho) * sh, np.arange(wo) * sw
    for i in range(kh):
        for j in range(kw):
            hit = np.zeros((h + 2 * ph, width + 2 * pw), np.int64)
            np.add.at(hit, np.ix_(rows + i * dh, cols + j * dw), 1)
            fan += per_tap[:, i, j][:, None, None] * hit[None]
    fan = fan[:, ph : ph + h, pw : pw + width]
    return fan.reshape(node.input_shape)


def _one(v):
    return v[0] if isinstance(v, (tuple, list)) else v


def synaptic_operations(program, totals, n_steps: int, samples: int) -> dict[str, float]:
    """NeuroBench's ``SynapticOperations`` per sample: effective MACs, effective ACs and dense."""
    mac = ac = dense = 0
    for op in program.ops:
        if not isinstance(op.node, WEIGHT_NODES):
            continue
        effective = effective_fan_out(op.node)
        ac += int((totals.synaptic_ac.get(op.index, 0) * effective).sum())
        mac += int((totals.synaptic_mac.get(op.index, 0) * effective).sum())
        dense += int(fan_out(op.node).sum()) * n_steps * samples
    if samples == 0:
        return {"effective_macs": 0.0, "effective_acs": 0.0, "dense": 0.0}
    return {"effective_macs": mac / samples, "effective_acs": ac / samples, "dense": dense / samples}


def spiking_sizes(program, kernels) -> dict[str, int]:
    """Neurons of every spiking node (LIF, IF, CubaLIF, Threshold)."""
    return {
        op.path: math.prod(op.node.output_shape) for op in program.ops if kernels[op.index].spiking
    }  # fmt: skip
