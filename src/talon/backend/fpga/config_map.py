"""``ir_to_hls4ml_config``: the per-layer types of a graph in hls4ml's configuration layout.

hls4ml describes a model's arithmetic as ``{"Model": {...}, "LayerName": {layer: {"Precision":
{...}, "ReuseFactor": R}}}``. This function gives that dictionary for the project talon generates,
so the types can be read (and compared with an hls4ml model of the same network) in hls4ml's own
terms; the values come from the CPU backend's fixed-point kernels (docs/fpga.md §3).
"""

from __future__ import annotations

from talon import ir

from ..cpu.kernels import fixed_neurons, fixed_ops
from .backend import _config, check_reuse_factor, check_strategy
from .codegen import generate
from .hls_types import bits_for_bound, int_type, saturating_type
from .lowering import plan_fixed


def ir_to_hls4ml_config(
    graph: ir.Graph,
    precision: str = "int16",
    *,
    default_reuse_factor: int = 1,
    strategy: str = "Latency",
    calibration_inputs=None,
    n_steps: int | None = None,
) -> dict:
    """hls4ml-style configuration of ``graph`` at ``precision`` (``int16``, ``int8``, ``int4``).

    ``strategy`` ("Latency" / "Resource") and ``default_reuse_factor`` are validated as
    :meth:`FPGABackend.compile` validates them and given per weight layer as hls4ml gives them;
    a layer's ``ReuseFactor`` is the one its generated code has (at most its number of
    multiplies; 1 where the reuse factor does not apply). The Resource strategy stores a dense
    layer's weights transposed (``"WeightLayout"``).
    """
    strategy = check_strategy(strategy)
    reuse = check_reuse_factor(default_reuse_factor, "default_reuse_factor")
    hls_strategy = strategy.capitalize()
    plan = plan_fixed(graph, _config(None, precision), calibration_inputs, n_steps)
    generated = generate(plan, "talon_config", reuse_factor=reuse, strategy=strategy, synthesis_weights=False)
    layer_reuse = {layer["node"]: layer.get("reuse_factor", 1) for layer in generated.layers}
    layers: dict[str, dict] = {}
    for op in plan.program.ops:
        kernel = plan.kernels[op.index]
        entry: dict = {"Class": op.kind, "ReuseFactor": layer_reuse.get(op.path, 1)}
        fmts = [f for f in kernel.out_formats if f is not None]
        result = int_type(bits_for_bound(fmts[0].bound)) if fmts else "float (host side)"
        if isinstance(kernel, (fixed_ops.QDense, fixed_ops.QConv)):
            entry["Precision"] = {
                "weight": int_type(kernel.w_bits),
                "bias": int_type(kernel.acc_bits),
                "accum": "ap_int<64>",
                "result": saturating_type(kernel.acc_bits),
                "input": int_type(bits_for_bound(kernel.input_format.bound)),
            }
            entry["WeightScaling"] = "per_channel" if plan.config.per_channel else "per_tensor"
            entry["Strategy"] = hls_strategy
            if isinstance(kernel, fixed_ops.QDense):
                entry["WeightLayout"] = "[n_out][n_in]" if strategy == "resource" else "[n_in][n_out]"
        elif isinstance(kernel, fixed_neurons.FixedNeuron):
            entry["Precision"] = {
                "state": int_type(kernel.bits),
                "coefficient": f"ap_int<64> with {kernel.frac} fraction bits",
                "result": result,
            }
        else:
            entry["Precision"] = {"result": result}
        layers[op.path] = entry
    return {
        "Model": {
            "Precision": plan.config.precision,
            "ReuseFactor": reuse,
            "Strategy": hls_strategy,
            "FixedPoint": plan.config.to_dict(),
        },
        "LayerName": layers,
    }
