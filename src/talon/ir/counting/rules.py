"""Counting rules for one node: parameters, bytes, multiply-accumulates, neurons and state.

These are the formulas behind :func:`talon.sdk.analyze_graph`, :func:`talon.sdk.profile_graph`
and the costs ``talon.viz`` shows (``docs/sdk.md`` lists them with worked examples); their totals
over a graph are :func:`talon.ir.counting.count_graph`'s. Shapes exclude the batch dimension;
counts are per sample and per timestep.

* **params**: elements of every array parameter (``node.arrays()``): weights, biases *and* neuron
  parameter arrays (a LIF of n neurons has 5 arrays: tau, r, v_leak, v_threshold, v_reset).
* **bytes**: the arrays' real ``nbytes`` in their stored dtypes.
* **neuron params** (part of params): the elements of a neuron layer's arrays (LIF, IF, CubaLIF, LI,
  CubaLI, Integrator, Threshold). The IR stores them per neuron even when the source model has one
  value for the whole layer (snnTorch ``Leaky(beta=0.9)``, Spyx ``LIF(beta=0.9)``).
* **neuron constants**: the same arrays with every array that holds one value across its layer
  counted once (a per-neuron array with different values still counts every element).
* **model params** = params − neuron params + neuron constants: the parameters the source model
  has (its weights and biases plus one value per layer-uniform neuron parameter); **model bytes**
  likewise (a uniform array counts one element's bytes). ``weight_params`` = params − neuron params.
* **MACs** (multiply-accumulates, biases excluded); one MAC is one activation multiplied by a
  weight and accumulated, or one activation added into an accumulator:

  =====================================  ====================================================
  Affine, SpikingAffine, Linear          ``prod(leading dims) * in * out``
  Conv1d / Conv2d / SConv / SDConv       ``C_out * prod(out spatial) * (C_in / groups) * prod(kernel)``
  SepConv2d                              depthwise ``C_in * H_out * W_out * kH * kW`` + pointwise
                                         ``C_out * H_out * W_out * C_in``
  AvgPool2d, SumPool2d                   ``C * H_out * W_out * kH * kW`` (window accumulations)
  Scale, BatchNorm1d/2d                  one per element (the per-element scale; BatchNorm's
                                         statistics fold into it at inference)
  LayerNorm                              one per element when it has a weight (the affine part)
  Upsample                               bilinear: 4 per output element; nearest: 0
  any node summing n > 1 incoming edges  ``(n - 1) * elements`` (residual Skip, fan-in, Output)
  activations, MaxPool2d, reshapes,      0
  neurons, routing
  =====================================  ====================================================

  Recurrent weights are ordinary Affine/Linear nodes on a cycle and count like any other.
* **neurons**: elements of a neuron layer (LIF, IF, CubaLIF, LI, CubaLI, Integrator); spiking
  neurons (LIF, IF, CubaLIF, Threshold) are the per-step ``spike_ops``.
* **state values**: values a node keeps between timesteps: one per neuron for LIF, IF, LI and
  Integrator (the membrane), two for CubaLIF and CubaLI (membrane and synaptic current), and
  ``delay`` slots per element for Delay.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from talon import ir
from talon.ir import Node

from .detection import CONV_LIKE_TYPES, detection_macs

SPIKING_TYPES: tuple[type[Node], ...] = (ir.LIF, ir.IF, ir.CubaLIF, ir.Threshold)
NEURON_TYPES: tuple[type[Node], ...] = (ir.LIF, ir.IF, ir.CubaLIF, ir.LI, ir.CubaLI, ir.Integrator)
NEURON_PARAM_TYPES: tuple[type[Node], ...] = (*NEURON_TYPES, ir.Threshold)
"""Node types whose arrays are neuron parameters (counted apart as neuron params / constants)."""
STATE_VARIABLES: dict[type[Node], int] = {
    ir.LIF: 1,
    ir.IF: 1,
    ir.LI: 1,
    ir.Integrator: 1,
    ir.CubaLIF: 2,
    ir.CubaLI: 2,
}
DENSE_TYPES: tuple[type[Node], ...] = (ir.Affine, ir.Linear)  # SpikingAffine is an Affine
# SConv, SDConv are Conv2d; the ghost blocks and the detection head are convolution layers too
CONV_TYPES: tuple[type[Node], ...] = (ir.Conv1d, ir.Conv2d, ir.SepConv2d, *CONV_LIKE_TYPES)
POOL_TYPES: tuple[type[Node], ...] = (ir.MaxPool2d, ir.AvgPool2d, ir.SumPool2d)
# Node types whose MAC count is 0 by rule (no weights and no accumulation).
_ZERO_MAC_TYPES: tuple[type[Node], ...] = (
    ir.Input,
    ir.Output,
    ir.ReLU,
    ir.Sigmoid,
    ir.Tanh,
    ir.Softmax,
    ir.GELU,
    ir.ELU,
    ir.PReLU,
    ir.MaxPool2d,
    ir.Flatten,
    ir.Dropout,
    ir.Skip,
    ir.Concat,
    ir.ChannelSplit,
    ir.HybridRegion,
    ir.Delay,
    *NEURON_TYPES,
    ir.Threshold,
)
_CONCATENATING: tuple[type[Node], ...] = (ir.Concat,)

BYTES_PER_ACTIVATION = 4
"""Activations and neuron state are counted as float32 (4 bytes), the engines' default dtype."""


@dataclass(frozen=True, slots=True)
class NodeCounts:
    """What one node costs. ``counted`` is False when the node's MACs could not be counted
    (unknown input shape, or a node type without a counting rule); its MACs are then 0."""

    params: int
    nbytes: int
    macs: int
    neurons: int
    spiking: bool
    state_values: int
    output_elements: int
    counted: bool
    neuron_params: int
    neuron_constants: int
    model_nbytes: int
    spike_ops: int = 0
    """Spiking-neuron updates per step (LIF, IF, CubaLIF, Threshold elements): ``profile_graph``'s
    ``spike_ops`` is their sum."""

    @property
    def model_params(self) -> int:
        """``params - neuron_params + neuron_constants`` (see the module docstring)."""
        return self.params - self.neuron_params + self.neuron_constants


def count_node(node: Node, n_inputs: int = 1) -> NodeCounts:
    """The counts of one (non-Graph) node receiving ``n_inputs`` incoming edges."""
    if isinstance(node, ir.Graph):
        raise TypeError("count_node takes a single node; use count_graph (or analyze_graph) for a subgraph")
    if not isinstance(node, Node):
        raise TypeError(f"expected a talon.ir Node, got {type(node).__name__}")
    kind = _KINDS.get(type(node)) or _kind_of(type(node))
    arrays = node.arrays().values()
    params = nbytes = neuron_params = neuron_constants = 0
    for a in arrays:
        params += a.size
        nbytes += a.nbytes
    model_nbytes = nbytes
    if kind.neuron_params:
        for a in arrays:
            neuron_params += a.size
            if a.size > 1 and is_uniform(a):  # one value stored once per neuron
                neuron_constants += 1
                model_nbytes -= a.nbytes - a.itemsize
            else:
                neuron_constants += a.size
    in_shape = node.input_shape
    out_elems = sum(shape_numel(s) for s in node.output_shapes())
    if kind.zero_macs:
        macs, counted = 0, True
    else:
        macs, counted = _macs(node, in_shape)
    if n_inputs > 1 and in_shape is not None and not _concatenates(node, kind):
        macs += (n_inputs - 1) * shape_numel(in_shape)
    layer = shape_numel(in_shape) if (kind.neuron or kind.spiking) else 0
    if kind.delay:
        state = int((node.delay if in_shape is None else expand_to_layer(node.delay, in_shape)).sum())
    else:
        state = kind.state_per_neuron * shape_numel(in_shape)
    return NodeCounts(
        params=params,
        nbytes=nbytes,
        macs=macs,
        neurons=layer if kind.neuron else 0,
        spiking=kind.spiking,
        state_values=state,
        output_elements=out_elems,
        counted=counted,
        neuron_params=neuron_params,
        neuron_constants=neuron_constants,
        model_nbytes=model_nbytes,
        spike_ops=layer if kind.spiking else 0,
    )


@dataclass(frozen=True)
class _Kind:
    """What :func:`count_node` asks of a node's type, answered once per type: on a graph of many
    small layers the ``isinstance`` tests were a large part of the cost of counting a node."""

    neuron_params: bool
    neuron: bool
    spiking: bool
    zero_macs: bool
    concatenates: bool | None
    """True for Concat, None for Skip (decided by the node's ``skip_type``), else False."""
    delay: bool
    state_per_neuron: int


_KINDS: dict[type, _Kind] = {}


def _kind_of(cls: type[Node]) -> _Kind:
    per_neuron = STATE_VARIABLES.get(cls)
    if per_neuron is None:
        per_neuron = next((v for t, v in STATE_VARIABLES.items() if issubclass(cls, t)), 0)
    kind = _KINDS[cls] = _Kind(
        neuron_params=issubclass(cls, NEURON_PARAM_TYPES),
        neuron=issubclass(cls, NEURON_TYPES),
        spiking=issubclass(cls, SPIKING_TYPES),
        zero_macs=issubclass(cls, _ZERO_MAC_TYPES),
        concatenates=True if issubclass(cls, _CONCATENATING) else None if issubclass(cls, ir.Skip) else False,
        delay=issubclass(cls, ir.Delay),
        state_per_neuron=per_neuron,
    )
    return kind


def shape_numel(shape: tuple[int, ...] | None) -> int:
    """Elements of one sample of ``shape`` (0 for an unknown shape)."""
    return 0 if shape is None else math.prod(shape)


def is_uniform(arr: np.ndarray) -> bool:
    """True when every element of ``arr`` equals the first (NaNs equal to NaNs; an empty array is uniform)."""
    flat = arr.reshape(-1)
    if flat.size == 0:
        return True
    if flat.size <= _SMALL and flat.dtype.kind in "fiub":
        # the same comparisons on Python numbers (exact for these dtypes), without numpy's per-call cost
        values = flat.tolist()
        first = values[0]
        if first == first:
            return values.count(first) == len(values)
    first = flat[0]
    if first != first:  # NaN
        return bool(np.isnan(flat).all())
    return bool((flat == first).all())


_SMALL = 32  # below this many elements is_uniform compares Python numbers (about 4x faster at 8)


def _concatenates(node: Node, kind: _Kind) -> bool:
    if kind.concatenates is None:  # a Skip
        return node.skip_type is not ir.SkipType.RESIDUAL
    return kind.concatenates


def _macs(node: Node, in_shape: tuple[int, ...] | None) -> tuple[int, bool]:
    if isinstance(node, ir.Upsample) and node.mode is ir.UpsampleMode.NEAREST:
        return 0, True
    if in_shape is None:
        return 0, False
    out_shape = node.output_shape
    if isinstance(node, DENSE_TYPES):
        n_out, n_in = node.weight.shape
        return math.prod(in_shape[:-1]) * n_in * n_out, True
    if isinstance(node, (ir.Conv1d, ir.Conv2d)):
        per_output = int(np.prod(node.weight.shape[1:]))  # (C_in / groups) * prod(kernel)
        return shape_numel(out_shape) * per_output, True
    if isinstance(node, ir.SepConv2d):
        c_in, _, kh, kw = node.depthwise_weight.shape
        spatial = shape_numel(out_shape[1:])
        depthwise = c_in * spatial * kh * kw
        pointwise = out_shape[0] * spatial * c_in
        return depthwise + pointwise, True
    if isinstance(node, (ir.AvgPool2d, ir.SumPool2d)):
        return shape_numel(out_shape) * math.prod(node.kernel_size), True
    if isinstance(node, (ir.Scale, ir.BatchNorm1d, ir.BatchNorm2d)):
        return shape_numel(in_shape), True
    if isinstance(node, ir.LayerNorm):
        return (shape_numel(in_shape) if node.weight is not None else 0), True
    if isinstance(node, ir.Upsample):  # bilinear
        return 4 * shape_numel(out_shape), True
    macs = detection_macs(node, in_shape)
    if macs is not None:
        return macs, True
    return 0, False


def expand_to_layer(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast a neuron parameter (per element, per channel ``(C,)``, or scalar) to ``shape``."""
    arr = np.asarray(arr)
    if arr.shape == tuple(shape):
        return arr
    if arr.ndim == 1 and len(shape) > 1 and arr.shape[0] == shape[0] and arr.shape[0] != 1:
        arr = arr.reshape((shape[0],) + (1,) * (len(shape) - 1))
    return np.broadcast_to(arr, shape)
