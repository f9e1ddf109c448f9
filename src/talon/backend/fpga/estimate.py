"""Resource and latency estimate per layer (the model is written down in docs/fpga.md §5).

An analytic model, not a synthesis report: it says where the BRAM, DSPs and cycles go before any
vendor tool runs. For a layer with reuse factor ``R`` (``default_reuse_factor``):

* **BRAM_18K** = ``ceil(weight_bits_total / 18432)`` for weight layers whose weights exceed
  ``LUTRAM_LIMIT_BITS`` bits (smaller ones sit in LUTs / registers), plus the same for neuron
  state arrays ``neurons * state_bits * state_vars`` over that limit;
* **DSP** = ``ceil(multipliers / R) * dsp_per_mult``: a weight layer has ``MACs`` multipliers
  unless its input is spikes (a spike selects the weight: adders only, 0 DSPs); a neuron layer
  has 1 (IF, Integrator), 2 (LIF, LI) or 4 (Cuba) multipliers per neuron; ``dsp_per_mult`` is 1
  when both operands fit a DSP48's 27 x 18 multiplier, else ``ceil(a/27) * ceil(b/18)``;
* **cycles** per timestep = ``R + ceil(log2(fan_in)) + 2`` for a weight layer (an adder tree
  after ``R`` multiply rounds, plus input and output registers), ``ceil(outputs / parallel)``
  when convolutions and pooling run one output position per cycle (``parallel = 1``), 3 for a
  neuron layer (decay/gain, compare, reset), 1 for routing; the step latency is the sum over
  layers (they run one after another within a step).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

BRAM_BITS = 18432
LUTRAM_LIMIT_BITS = 4096
DSP_A, DSP_B = 27, 18
COEFFICIENT_BITS = 18  # neuron gains and decays enter the DSP's 18-bit port after the shift


@dataclass
class LayerEstimate:
    node: str
    kind: str
    bram_18k: int
    dsp: int
    cycles: int
    weight_bits: int

    def to_dict(self) -> dict:
        return asdict(self)


def dsp_per_mult(a_bits: int, b_bits: int) -> int:
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    if a <= DSP_A and b <= DSP_B:
        return 1
    return math.ceil(a / DSP_A) * math.ceil(b / DSP_B)


def _bram(bits: int) -> int:
    return math.ceil(bits / BRAM_BITS) if bits > LUTRAM_LIMIT_BITS else 0


def estimate_layer(layer: dict, reuse: int) -> LayerEstimate:
    kind = layer["kind"]
    if kind in ("dense", "conv"):
        wbits = layer["weights"] * layer["weight_bits"] + layer["bias"] * layer["acc_bits"]
        mults = 0 if layer["spike_input"] else layer["macs"]
        dsp = math.ceil(mults / reuse) * dsp_per_mult(layer["weight_bits"], layer["input_bits"]) if mults else 0
        tree = math.ceil(math.log2(max(layer["fan_in"], 2))) + 2
        if kind == "dense":
            cycles = reuse + tree
        else:
            dsp = math.ceil(dsp / max(layer["outputs"], 1)) if dsp else 0  # one output position at a time
            cycles = layer["outputs"] * reuse + tree
        return LayerEstimate(layer["node"], kind, _bram(wbits), dsp, cycles, wbits)
    if kind == "neuron":
        sbits = layer["neurons"] * layer["state_bits"] * layer["state_vars"]
        dsp = math.ceil(layer["multipliers"] / reuse) * dsp_per_mult(layer["state_bits"], COEFFICIENT_BITS)
        return LayerEstimate(layer["node"], kind, _bram(sbits), dsp, 3, 0)
    if kind == "pool":
        return LayerEstimate(layer["node"], kind, 0, 0, layer["outputs"], 0)
    if kind == "delay":
        return LayerEstimate(layer["node"], kind, 0, 0, 1, 0)
    dsp = math.ceil(layer.get("multipliers", 0) / reuse)
    return LayerEstimate(layer["node"], kind, 0, dsp, 1, 0)


def estimate(layers: list[dict], reuse: int, clock_period_ns: float) -> dict:
    """Per-layer estimates and totals: BRAM_18K, DSP, cycles and latency per timestep."""
    rows = [estimate_layer(layer, reuse) for layer in layers]
    cycles = sum(r.cycles for r in rows)
    return {
        "model": "talon analytic estimate (docs/fpga.md §5), not a synthesis report",
        "reuse_factor": reuse,
        "clock_period_ns": clock_period_ns,
        "layers": [r.to_dict() for r in rows],
        "total": {
            "bram_18k": sum(r.bram_18k for r in rows),
            "dsp": sum(r.dsp for r in rows),
            "cycles_per_step": cycles,
            "latency_us_per_step": cycles * clock_period_ns * 1e-3,
        },
    }
