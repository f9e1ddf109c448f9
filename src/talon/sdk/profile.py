"""Static hardware profile: memory, operations, layer mix, warnings and recommendations.

Static means computed from the graph alone (no simulation); :mod:`talon.ir.counting` gives the
per-node rules and the totals (:func:`~talon.ir.counting.count_graph`). Memory, in bytes:

* ``weight_memory`` = every parameter array's real ``nbytes`` (weights, biases, neuron parameters
  stored per neuron, the TALON documentation's rule);
* ``model_weight_memory`` = the same with every neuron parameter that is uniform across its layer
  counted once (what the source model holds; ``GraphStats.model_bytes``);
* ``activation_memory`` = the largest single node output (all outputs of a multi-output node)
  x 4 bytes, the peak buffer a layer-by-layer engine needs;
* ``state_memory`` = 4 bytes x (neuron state values: 1 per LIF/IF/LI/Integrator neuron, 2 per
  CubaLIF/CubaLI neuron; Delay slots; one buffered value per element of every recurrent edge,
  which carries the previous step's value);
* ``total_memory`` = weight + activation + state;
* ``estimated_quantized_memory`` = 1 byte per parameter + activation + state (8-bit weights,
  activations and state unchanged).

Operations per sample and timestep: ``mac_ops`` (MACs), ``spike_ops`` (spiking neurons: LIF, IF,
CubaLIF and Threshold elements), ``total_ops = mac_ops + spike_ops``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from talon import ir
from talon.ir.counting import CONV_TYPES, DENSE_TYPES, POOL_TYPES, count_graph

from ._common import GraphLike, jsonable, load_graph
from .analysis import LIF_TYPES, format_bytes, format_number

__all__ = ["CORE_SRAM_BYTES", "HardwareProfile", "format_profile", "profile_graph"]

CORE_SRAM_BYTES = 524_288
"""SRAM of one core in the documented default ``HardwareSpec`` (512 KB): a layer whose parameters
exceed it cannot live on one core."""


@dataclass
class HardwareProfile:
    """Result of :func:`profile_graph` (bytes and per-step operation counts; see the module docstring)."""

    weight_memory: int
    activation_memory: int
    state_memory: int
    total_memory: int
    estimated_quantized_memory: int
    mac_ops: int
    spike_ops: int
    total_ops: int
    conv_layers: int
    fc_layers: int
    lif_layers: int
    neuron_layers: int
    pooling_layers: int
    upsample_layers: int
    uses_spiking_affine: bool
    uses_skip: bool
    uses_sepconv: bool
    largest_layer: str | None
    largest_layer_memory: int
    recurrent_edges: int
    model_weight_memory: int
    warnings: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)

    @property
    def quantization_savings(self) -> float:
        """Fraction of ``total_memory`` saved by 8-bit weights (0 for an empty graph)."""
        return 1.0 - self.estimated_quantized_memory / self.total_memory if self.total_memory else 0.0

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


def profile_graph(graph: GraphLike) -> HardwareProfile:
    """Static memory and operation profile of a graph (or ``.t1c`` file); see the module docstring."""
    totals = count_graph(load_graph(graph))
    largest, largest_bytes = None, 0
    n_conv = n_fc = n_lif = n_neuron = n_pool = n_up = 0
    spiking_affine = skip = sepconv = False
    plain_affine: list[str] = []
    for name, node, c in totals.layers:
        if c.nbytes > largest_bytes:
            largest, largest_bytes = name, c.nbytes
        n_conv += isinstance(node, CONV_TYPES)
        n_fc += isinstance(node, DENSE_TYPES)
        n_lif += isinstance(node, LIF_TYPES)
        n_neuron += c.neurons > 0 or c.spiking
        n_pool += isinstance(node, POOL_TYPES)
        n_up += isinstance(node, ir.Upsample)
        spiking_affine |= isinstance(node, ir.SpikingAffine)
        skip |= isinstance(node, ir.Skip)
        sepconv |= isinstance(node, ir.SepConv2d)
        if type(node) is ir.Affine:
            plain_affine.append(name)
    profile = HardwareProfile(
        weight_memory=totals.weight_memory,
        activation_memory=totals.activation_memory,
        state_memory=totals.state_memory,
        total_memory=totals.total_memory,
        estimated_quantized_memory=totals.estimated_quantized_memory,
        mac_ops=totals.total_macs,
        spike_ops=totals.spike_ops,
        total_ops=totals.total_ops,
        conv_layers=n_conv,
        fc_layers=n_fc,
        lif_layers=n_lif,
        neuron_layers=n_neuron,
        pooling_layers=n_pool,
        upsample_layers=n_up,
        uses_spiking_affine=spiking_affine,
        uses_skip=skip,
        uses_sepconv=sepconv,
        largest_layer=largest,
        largest_layer_memory=largest_bytes,
        recurrent_edges=totals.recurrent_edges,
        model_weight_memory=totals.model_bytes,
    )
    if totals.uncounted:
        profile.warnings.append(
            f"MACs of {len(totals.uncounted)} node(s) not counted (unknown input shape or no counting rule): "
            + ", ".join(totals.uncounted)
        )
    if largest is not None and largest_bytes > CORE_SRAM_BYTES:
        profile.warnings.append(
            f"Layer '{largest}' holds {format_bytes(largest_bytes)} of parameters, more than the "
            f"{format_bytes(CORE_SRAM_BYTES)} SRAM of one core: it must be split across cores"
        )
    if plain_affine and totals.spike_ops:
        profile.recommendations.append(
            "Consider using SpikingAffine for FC layers to enable hardware-optimized quantization "
            f"({', '.join(plain_affine)}; `talon convert --spiking`)"
        )
    saving = math.floor(100 * profile.quantization_savings)
    if totals.weight_memory > totals.total_params and saving >= 10:
        profile.recommendations.append(f"8-bit quantization could reduce memory by ~{saving}%")
    return profile


def format_profile(profile: HardwareProfile) -> str:
    """The text report of a :class:`HardwareProfile` (what ``talon profile`` prints)."""
    if not isinstance(profile, HardwareProfile):
        raise TypeError(f"format_profile expects a HardwareProfile, got {type(profile).__name__}")
    p = profile
    lines = [
        "TALON Hardware Profile",
        "=" * 50,
        "",
        "Memory Estimates:",
        f"  Weight memory:     {format_bytes(p.weight_memory)}",
        *(
            [f"    model's own:     {format_bytes(p.model_weight_memory)} (layer-uniform neuron parameters once)"]
            if p.model_weight_memory != p.weight_memory
            else []
        ),
        f"  Activation memory: {format_bytes(p.activation_memory)} (peak)",
        f"  State memory:      {format_bytes(p.state_memory)} (neuron state, recurrent buffers)",
        f"  Total:             {format_bytes(p.total_memory)}",
        f"  8-bit quantized:   {format_bytes(p.estimated_quantized_memory)} (estimate)",
        "",
        "Compute Estimates:",
        f"  MAC operations: {format_number(p.mac_ops)}",
        f"  Spike operations: {format_number(p.spike_ops)}",
        "",
        "Layers:",
        f"  Conv: {p.conv_layers}  |  FC: {p.fc_layers}  |  Neuron: {p.neuron_layers} (LIF: {p.lif_layers})  |  "
        f"Pooling: {p.pooling_layers}  |  Upsample: {p.upsample_layers}",
    ]
    if p.largest_layer is not None:
        lines.append(f"  Largest layer: {p.largest_layer} ({format_bytes(p.largest_layer_memory)})")
    if p.recurrent_edges:
        lines.append(f"  Recurrent edges: {p.recurrent_edges}")
    for title, items in (("Warnings", p.warnings), ("Recommendations", p.recommendations)):
        if items:
            lines += ["", f"{title}:", *(f"  - {item}" for item in items)]
    return "\n".join(lines)
