"""Resource and latency estimate per layer (the model is written down in docs/fpga.md §5).

An analytic model, not a synthesis report: it says where the BRAM, DSPs and cycles go before any
vendor tool runs. For a layer with reuse factor ``R`` (``default_reuse_factor``, at most the
layer's number of multiplies, as the generated code has it) and hls4ml's ``strategy`` (Latency or
Resource):

* **weights** (and biases) of a weight layer sit in the fabric (registers / LUTs, completely
  partitioned: ``fabric_bits``) under Latency, and under Resource when ``R = 1``; under Resource
  with ``R > 1`` the weights are a BRAM ROM (the biases stay in the fabric). A dense layer's ROM
  has ``R`` words of ``block_factor = ceil(weights / R)`` weights; a convolution's has words of
  ``ceil(taps / R)`` weights (``taps`` = its fan-in), ``ceil(weights / that)`` of them. A ROM of
  ``depth`` words of ``width`` bits takes ``min over the RAMB18 shapes (w, d) of
  ceil(width / w) * ceil(depth / d)`` BRAM_18K, the shapes being 1 x 16384, 2 x 8192, 4 x 4096,
  9 x 2048, 18 x 1024 and 36 x 512;
* **BRAM_18K** of a neuron layer: ``ceil(bits / 18432)`` of its state (``neurons * state_bits *
  state_vars``) when over ``LUTRAM_LIMIT_BITS`` (smaller arrays sit in LUTs / registers);
* **DSP** = ``ceil(multipliers / R) * dsp_per_mult`` under both strategies (hls4ml's multiplier
  limit): a weight layer has ``MACs`` multipliers unless its input is spikes (a spike selects the
  weight: adders only, 0 DSPs), a convolution the MACs of one output position; a neuron layer
  has 1 (IF, Integrator), 2 (LIF, LI) or 4 (Cuba) multipliers per neuron; ``dsp_per_mult`` is 1
  when both operands fit a DSP48's 27 x 18 multiplier, else ``ceil(a/27) * ceil(b/18)``;
* **cycles** per timestep of a dense layer: Latency ``R + ceil(log2(fan_in)) + 2`` (``R``
  multiply rounds, one adder tree over the fan-in, input and output registers); Resource
  ``R + read + ceil(log2(ceil(fan_in / R))) + 2`` (``R`` rounds at II=1, each adding its
  ``ceil(fan_in / R)`` products per output into the accumulators; ``read`` = 1 cycle of BRAM
  read latency when the weights are in BRAM, else 0). A convolution: ``outputs * R +
  ceil(log2(fan_in)) + 2``, plus ``read`` under Resource (one output position per round of ``R``
  cycles, the same tree under both strategies). Pooling ``outputs`` (one per cycle), a neuron
  layer ``R + 2`` (its multiplies in ``R`` rounds, then compare and reset), routing 1 (and
  elementwise layers 1, their multiplies unrolled: ``R`` does not apply). The step
  latency is the sum over layers (they run one after another within a step).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

BRAM_BITS = 18432
LUTRAM_LIMIT_BITS = 4096
DSP_A, DSP_B = 27, 18
COEFFICIENT_BITS = 18  # neuron gains and decays enter the DSP's 18-bit port after the shift


RAMB18_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))  # (width, depth)


@dataclass
class LayerEstimate:
    node: str
    kind: str
    reuse_factor: int
    bram_18k: int
    dsp: int
    cycles: int
    weight_bits: int
    fabric_bits: int = 0  # weight / bias bits held in registers and LUTs
    weight_storage: str | None = None  # "fabric" or "bram" for weight layers

    def to_dict(self) -> dict:
        return asdict(self)


def dsp_per_mult(a_bits: int, b_bits: int) -> int:
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    if a <= DSP_A and b <= DSP_B:
        return 1
    return math.ceil(a / DSP_A) * math.ceil(b / DSP_B)


def _bram(bits: int) -> int:
    return math.ceil(bits / BRAM_BITS) if bits > LUTRAM_LIMIT_BITS else 0


def rom_bram(depth: int, width: int) -> int:
    """BRAM_18K of a ROM of ``depth`` words of ``width`` bits: the best RAMB18 shape."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in RAMB18_SHAPES)


def _tree(terms: int) -> int:
    return math.ceil(math.log2(terms)) if terms > 1 else 0


def _weight_layer(layer: dict, reuse: int, strategy: str) -> LayerEstimate:
    kind, fan_in = layer["kind"], layer["fan_in"]
    wb = layer["weight_bits"]
    wbits = layer["weights"] * wb + layer["bias"] * layer["acc_bits"]
    mults = 0 if layer["spike_input"] else layer["macs"]
    dsp = math.ceil(mults / reuse) * dsp_per_mult(wb, layer["input_bits"]) if mults else 0
    in_bram = strategy == "resource" and reuse > 1
    read = 1 if in_bram else 0
    if kind == "dense":
        words, per_word = reuse, math.ceil(layer["weights"] / reuse)
        if strategy == "resource":
            cycles = reuse + read + _tree(math.ceil(fan_in / reuse)) + 2
        else:
            cycles = reuse + _tree(max(fan_in, 2)) + 2
    else:
        dsp = math.ceil(dsp / max(layer["outputs"], 1)) if dsp else 0  # one output position at a time
        per_word = math.ceil(fan_in / reuse)
        words = math.ceil(layer["weights"] / per_word)
        cycles = layer["outputs"] * reuse + _tree(max(fan_in, 2)) + 2 + read
    if in_bram:
        bram, fabric, storage = rom_bram(words, per_word * wb), layer["bias"] * layer["acc_bits"], "bram"
    else:
        bram, fabric, storage = 0, wbits, "fabric"
    return LayerEstimate(layer["node"], kind, reuse, bram, dsp, cycles, wbits, fabric, storage)


def estimate_layer(layer: dict, reuse: int, strategy: str = "latency") -> LayerEstimate:
    kind = layer["kind"]
    reuse = layer.get("reuse_factor", reuse)
    if kind in ("dense", "conv"):
        return _weight_layer(layer, reuse, strategy)
    if kind == "neuron":
        sbits = layer["neurons"] * layer["state_bits"] * layer["state_vars"]
        dsp = math.ceil(layer["multipliers"] / reuse) * dsp_per_mult(layer["state_bits"], COEFFICIENT_BITS)
        return LayerEstimate(layer["node"], kind, reuse, _bram(sbits), dsp, reuse + 2, 0)
    if kind == "pool":
        return LayerEstimate(layer["node"], kind, 1, 0, 0, layer["outputs"], 0)
    if kind == "delay":
        return LayerEstimate(layer["node"], kind, 1, 0, 0, 1, 0)
    # routing and elementwise layers are unrolled: the reuse factor does not apply to them
    return LayerEstimate(layer["node"], kind, 1, 0, layer.get("multipliers", 0), 1, 0)


def estimate(layers: list[dict], reuse: int, clock_period_ns: float, strategy: str = "latency") -> dict:
    """Per-layer estimates and totals: BRAM_18K, DSP, fabric bits, cycles and latency per timestep."""
    rows = [estimate_layer(layer, reuse, strategy) for layer in layers]
    cycles = sum(r.cycles for r in rows)
    return {
        "model": "talon analytic estimate (docs/fpga.md §5), not a synthesis report",
        "strategy": strategy,
        "reuse_factor": reuse,
        "clock_period_ns": clock_period_ns,
        "layers": [r.to_dict() for r in rows],
        "total": {
            "bram_18k": sum(r.bram_18k for r in rows),
            "dsp": sum(r.dsp for r in rows),
            "fabric_bits": sum(r.fabric_bits for r in rows),
            "cycles_per_step": cycles,
            "latency_us_per_step": cycles * clock_period_ns * 1e-3,
        },
    }
