"""Result records of the backends: validation, simulation, quantization error and profile."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ValidationResult:
    """``is_valid`` is False when ``unsupported_nodes`` or ``errors`` is non-empty."""

    is_valid: bool
    unsupported_nodes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.is_valid


@dataclass
class BackendCapabilities:
    supported_primitives: list[str]
    supported_precisions: list[str]
    supports_cyclic: bool
    max_graph_size: int
    fixed_point_primitives: list[str] = field(default_factory=list)
    #: primitives a fixed-point run executes in float32 on dequantized values (the detection decode)
    fixed_point_float_primitives: list[str] = field(default_factory=list)


@dataclass
class QuantizationReport:
    """How far a reduced-precision run is from the fp32 run on the same inputs.

    ``spike_agreement``: the fraction of spike entries (step x batch x neuron, over every spiking
    node) equal in both runs; ``output_*``: per graph output, the largest absolute difference, the
    root mean square difference and ``||y - y_fp32|| / ||y_fp32||`` (0 when both are zero).
    """

    precision: str
    spike_agreement: float
    per_node_spike_agreement: dict[str, float]
    spike_counts_fp32: dict[str, int]
    output_max_abs_error: dict[str, float]
    output_rmse: dict[str, float]
    output_relative_error: dict[str, float]

    def summary(self) -> str:
        lines = [f"{self.precision} vs fp32: spike agreement {self.spike_agreement:.4%}"]
        for name, agree in self.per_node_spike_agreement.items():
            lines.append(f"  {name}: spikes agree {agree:.4%} (fp32 spikes {self.spike_counts_fp32[name]:,})")
        for name in self.output_max_abs_error:
            lines.append(
                f"  output {name}: max |err| {self.output_max_abs_error[name]:.4g}, "
                f"rmse {self.output_rmse[name]:.4g}, relative {self.output_relative_error[name]:.4g}"
            )
        return "\n".join(lines)


@dataclass
class SimulationResult:
    """What :meth:`simulate` returns.

    ``outputs``: ``{output node: [T, B, *shape] float32}``; ``outputs_valid``: every output was
    produced and is finite; ``spike_counts``: spikes emitted by every spiking node (LIF, IF,
    CubaLIF, Threshold) over all steps and batch entries; ``node_states`` (``step_by_step=True``):
    ``{node path: {"output": [T, B, ...], "v": ..., "i": ...}}`` after every step (fixed point:
    real values, and the raw integers as ``"output_int"``, ``"v_int"``, ``"i_int"``);
    ``quantization``: the error against fp32 for reduced precisions.
    """

    timesteps_run: int
    batch_size: int
    precision: str
    outputs: dict[str, np.ndarray]
    outputs_valid: bool
    spike_counts: dict[str, int]
    node_states: dict[str, dict[str, np.ndarray]] | None = None
    quantization: QuantizationReport | None = None
    wall_time_s: float = 0.0
    used_default_stimulus: bool = False
    #: the arithmetic each node ran in: the run's precision, or ``"float32"`` for the float tail of a
    #: fixed-point run (the detection decode and what follows it, docs/backend.md §4.6)
    node_precision: dict[str, str] = field(default_factory=dict)

    @property
    def float_nodes(self) -> list[str]:
        """Nodes of a fixed-point run that ran in float32 (empty for an all-integer run)."""
        if not self.precision.startswith("int"):
            return []
        return [path for path, p in self.node_precision.items() if p == "float32"]

    @property
    def total_spikes(self) -> int:
        return int(sum(self.spike_counts.values()))

    def summary(self) -> str:
        lines = [
            f"CPU simulation: {self.timesteps_run} steps x batch {self.batch_size}, precision {self.precision}"
            + (" (default stimulus)" if self.used_default_stimulus else ""),
            f"  spike counts: {self.spike_counts}",
            f"  outputs valid: {self.outputs_valid}",
        ]
        if self.float_nodes:
            lines.append(f"  float32 after the fixed-point decode boundary: {', '.join(self.float_nodes)}")
        if self.quantization is not None:
            lines.append("  " + self.quantization.summary().replace("\n", "\n  "))
        return "\n".join(lines)


@dataclass
class LayerProfile:
    """Counts and estimated energy of one node over the whole profiled run."""

    name: str
    type: str
    macs: int = 0  # dense multiply-accumulates (weight layer with a non-spike input, or neuron updates)
    synaptic_ops: int = 0  # spike-driven accumulates
    input_events: int = 0  # non-zero input elements of a spike-driven weight layer
    spikes: int = 0  # spikes emitted
    event_driven: bool = False
    sram_read_bits: int = 0
    sram_write_bits: int = 0
    mac_energy_uj: float = 0.0
    spike_energy_uj: float = 0.0
    sram_energy_uj: float = 0.0
    latency_us: float = 0.0  # measured CPU time of this node

    @property
    def energy_uj(self) -> float:
        return self.mac_energy_uj + self.spike_energy_uj + self.sram_energy_uj


@dataclass
class ProfileResult:
    """What :meth:`profile` returns; every energy is an analytical **estimate** (docs/backend.md)."""

    total_latency_us: float
    mac_ops: int
    synaptic_ops: int
    spike_count: int
    dense_equivalent_macs: int
    energy_estimate_uj: float
    mac_energy_uj: float
    spike_energy_uj: float
    sram_energy_uj: float
    per_layer_energy_uj: dict[str, float]
    peak_memory_bytes: int
    weight_memory_bytes: int
    parameter_memory_bytes: int
    state_memory_bytes: int
    activation_memory_bytes: int
    neuron_utilization: dict[str, float]
    energy_preset: str
    energy_per_op_pj: dict[str, float]
    n_steps: int
    batch_size: int
    precision: str
    layers: dict[str, LayerProfile]
    simulation: SimulationResult
    #: mapped graphs only (talon.graph): ``{spike_hops_per_step, spike_hops, noc_energy_uj, hop_energy_pj}``;
    #: ``noc_energy_uj`` (None without a sourced energy per hop) is included in ``energy_estimate_uj``
    noc: dict | None = None
    #: mapped graphs only: measured CPU time of each core's nodes in the simulation (not hardware latency)
    per_core_latency_us: dict[int, float] | None = None

    def summary(self) -> str:
        e = self.energy_per_op_pj
        total = self.energy_estimate_uj or 1.0
        lines = [
            "TALON CPU backend profile (energies are analytical estimates, not measurements)",
            "=" * 78,
            f"run: {self.n_steps} steps x batch {self.batch_size}, precision {self.precision}, "
            f"preset {self.energy_preset} (MAC {e['mac_pj']} pJ, spike op {e['spike_pj']} pJ, "
            f"SRAM {e['sram_read_pj']}/{e['sram_write_pj']} pJ per 32-bit read/write)",
            f"measured CPU time: {self.total_latency_us:,.1f} us",
            *(
                [f"float32 after the fixed-point decode boundary: {', '.join(self.simulation.float_nodes)}"]
                if self.simulation.float_nodes
                else []
            ),
            f"operations: {self.mac_ops:,} MACs, {self.synaptic_ops:,} spike-driven synaptic ops "
            f"(dense equivalent {self.dense_equivalent_macs:,} MACs), {self.spike_count:,} spikes",
            f"energy: {self.energy_estimate_uj:.4f} uJ = MAC {self.mac_energy_uj:.4f} "
            f"({self.mac_energy_uj / total:.1%}) + spike {self.spike_energy_uj:.4f} "
            f"({self.spike_energy_uj / total:.1%}) + SRAM {self.sram_energy_uj:.4f} "
            f"({self.sram_energy_uj / total:.1%})",
            f"memory: peak {self.peak_memory_bytes:,} B = weights {self.weight_memory_bytes:,} + parameters "
            f"{self.parameter_memory_bytes:,} + state {self.state_memory_bytes:,} + activations "
            f"{self.activation_memory_bytes:,}",
            *(
                [
                    f"NoC: {self.noc['spike_hops']:,.0f} spike-hops, "
                    + (
                        f"{self.noc['noc_energy_uj']:.4f} uJ at {self.noc['hop_energy_pj']} pJ/hop (E-W, N-S)"
                        if self.noc["noc_energy_uj"] is not None
                        else "no sourced energy per hop for this spec"
                    )
                ]
                if self.noc
                else []
            ),
            "",
            f"{'node':<20}{'type':<14}{'MACs':>12}{'syn. ops':>12}{'spikes':>9}{'energy uJ':>12}{'time us':>10}",
        ]
        for layer in self.layers.values():
            if not (layer.macs or layer.synaptic_ops or layer.spikes or layer.energy_uj):
                continue
            lines.append(
                f"{layer.name[:19]:<20}{layer.type[:13]:<14}{layer.macs:>12,}{layer.synaptic_ops:>12,}"
                f"{layer.spikes:>9,}{layer.energy_uj:>12.4f}{layer.latency_us:>10.1f}"
            )
        if self.neuron_utilization:
            lines.append("")
            lines.append(
                "neuron utilization (fraction that spiked): "
                + ", ".join(f"{k} {v:.1%}" for k, v in self.neuron_utilization.items())
            )
        return "\n".join(lines)
