"""hls4ml's ``strategy`` in the FPGA backend (docs/fpga.md §3, §5): "Resource" generates another
dense kernel (talon::DenseResourceExact: weights transposed, in a BRAM ROM read over
``reuse_factor`` rounds) and other convolution pragmas, its C simulation computes the CPU
backend's integers exactly (for reuse factors below and above a layer's fan-in, dividing it or
not), and the estimate changes as the documented model says (hand-worked numbers below)."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir
from talon.backend import BackendError, get_backend
from talon.backend.fpga import examples, ir_to_hls4ml_config
from talon.backend.fpga.estimate import rom_bram
from talon.cli import main

FPGA = get_backend("fpga")

CASES = {  # graph, inputs, precision, reuse factor
    # fc1 784 -> 128 at R=300 (< n_in, no divisor: a short last round), fc2 128 -> 10 at R=300 (> n_in)
    "mlp_784_128_10": (examples.mlp_snn, examples.mlp_inputs, "int8", 300),
    # Conv2d on real-valued images and on spikes (conv2d_resource), then a dense 8 -> 10 at R=3
    "conv_pool": (examples.conv_snn, examples.conv_inputs, "int8", 3),
    # a recurrent Linear and two Affines at R=7, int16
    "recurrent": (examples.recurrent_snn, examples.recurrent_inputs, "int16", 7),
}


@pytest.mark.parametrize("case", list(CASES))
def test_resource_strategy_csim_matches_the_cpu_backend_bit_for_bit(case):
    build, stimulus, precision, reuse = CASES[case]
    graph, x = build(0), stimulus(n_steps=40)
    fpga = FPGA.simulate(graph, x, precision=precision, step_by_step=True, strategy="Resource", reuse_factor=reuse)
    cpu = get_backend("cpu").simulate(graph, x, precision=precision, step_by_step=True)
    assert fpga.spike_counts == cpu.spike_counts
    assert all(count > 0 for count in cpu.spike_counts.values()), cpu.spike_counts  # every layer fires
    for name, y in cpu.outputs.items():
        np.testing.assert_array_equal(fpga.outputs[name], y, err_msg=name)
    for path, states in fpga.node_states.items():
        for key, ints in states.items():
            if key.endswith("_int"):
                np.testing.assert_array_equal(ints, cpu.node_states[path][key], err_msg=f"{path} {key}")


def test_the_strategy_changes_the_generated_code():
    graph = examples.conv_snn()
    files = {}
    for strategy in ("Latency", "Resource"):
        desc = FPGA.compile(graph, output_dir="unused", default_precision="int8", default_reuse_factor=3,
                            strategy=strategy, write_to_disk=False)  # fmt: skip
        plan, gen = desc.program
        files[strategy] = gen
        assert desc["hls"]["strategy"] == strategy.lower()
    lat, res = (files[s].files["firmware/defines.h"] for s in ("Latency", "Resource"))
    assert "strategy = nnet::latency" in lat and "talon::DenseExact<" in lat and "DenseResourceExact" not in lat
    assert "strategy = nnet::resource" in res and "talon::DenseResourceExact<" in res
    assert "static const unsigned block_factor = 27;" in res  # ceil(8 * 10 / 3)
    top_lat, top_res = (files[s].files[f"firmware/{files[s].project_name}.cpp"] for s in ("Latency", "Resource"))
    assert "talon::conv2d<" in top_lat and "conv2d_resource" not in top_lat
    assert top_res.count("talon::conv2d_resource<") == 2
    # the dense weights: [n_in][n_out] for Latency, transposed [n_out][n_in] for Resource (hls4ml's layouts)
    fc = next(k for k in plan.kernels if getattr(k, "op", None) and k.op.path == "fc")
    tag = str(fc.op.index)
    as_int = {s: np.frombuffer(files[s].binaries[f"weights/w{tag}.bin"], np.int8) for s in files}
    np.testing.assert_array_equal(as_int["Latency"], fc.weight_t.reshape(-1))
    np.testing.assert_array_equal(as_int["Resource"], fc.weight_t.T.reshape(-1))


def _estimate(graph, strategy, reuse, precision="int8"):
    desc = FPGA.compile(graph, output_dir="unused", default_precision=precision, default_reuse_factor=reuse,
                        strategy=strategy, clock_period=5, write_to_disk=False)  # fmt: skip
    return desc["estimate"], {row["node"]: row for row in desc["estimate"]["layers"]}


def test_rom_bram_takes_the_best_ramb18_shape():
    assert rom_bram(4, 200704) == 5576  # 36 x 512: ceil(200704 / 36) = 5576 columns, one row
    assert rom_bram(784, 1024) == 57  # 18 x 1024: ceil(1024 / 18) = 57 (36 x 512 would take 29 x 2 = 58)
    assert rom_bram(784, 16) == 1
    assert rom_bram(5000, 1) == 1 and rom_bram(20000, 1) == 2  # 1 x 16384


def test_resource_estimate_against_hand_worked_numbers():
    graph = examples.mlp_snn()  # 784 -> 128 -> 10, int8 weights, 32-bit biases, spike inputs
    _, lat = _estimate(graph, "Latency", 4)
    est, res = _estimate(graph, "Resource", 4)
    assert est["strategy"] == "resource"
    # Latency: the 802,816 weight bits and 4,096 bias bits in registers, no BRAM; 4 + ceil(log2 784) + 2 cycles
    assert (lat["fc1"]["bram_18k"], lat["fc1"]["fabric_bits"], lat["fc1"]["cycles"]) == (0, 806912, 16)
    # Resource R=4: 4 words of 25,088 weights (200,704 bits) -> 5,576 RAMB18 of 36 x 512; the biases stay
    # in registers; 4 rounds + 1 BRAM read + ceil(log2(196)) = 8 + 2 registers = 15 cycles
    assert (res["fc1"]["bram_18k"], res["fc1"]["fabric_bits"], res["fc1"]["cycles"]) == (5576, 4096, 15)
    assert res["fc1"]["weight_storage"] == "bram" and lat["fc1"]["weight_storage"] == "fabric"
    # the multipliers are hls4ml's ceil(n_in * n_out / R) under both strategies: the same DSPs
    assert [r["dsp"] for r in est["layers"]] == [lat[n]["dsp"] for n in res]
    # neurons are not weight layers: the same under both strategies (R + 2 cycles, ceil(256 / 4) DSPs)
    assert res["lif1"] == lat["lif1"] and res["lif1"]["cycles"] == 6 and res["lif1"]["dsp"] == 64
    assert {r["reuse_factor"] for r in est["layers"]} == {4}

    est, res = _estimate(graph, "Resource", 784)
    # fc1: 784 words of 128 weights (1,024 bits): 57 RAMB18 of 18 x 1024; 784 + 1 + ceil(log2 1) + 2 cycles
    assert (res["fc1"]["bram_18k"], res["fc1"]["cycles"]) == (57, 787)
    # fc2: 1,280 weights, 784 words of 2 (16 bits): 1 RAMB18; 784 + 1 + 0 + 2 cycles
    assert (res["fc2"]["bram_18k"], res["fc2"]["cycles"]) == (1, 787)
    assert est["total"]["bram_18k"] == 57 + 1 and est["total"]["fabric_bits"] == 128 * 32 + 10 * 32
    # a layer runs at most as many rounds as it has multiplies: lif1 (128 LIFs x 2) at 256, lif2 at 20
    assert (res["lif1"]["reuse_factor"], res["lif1"]["cycles"], res["lif1"]["dsp"]) == (256, 258, 1)
    assert (res["lif2"]["reuse_factor"], res["lif2"]["cycles"]) == (20, 22)

    # Resource at R=1 is hls4ml's: no BRAM (the weights stay in registers), the Latency kernel's cycles
    _, one = _estimate(graph, "Resource", 1)
    _, lat1 = _estimate(graph, "Latency", 1)
    assert one == lat1


def test_resource_estimate_of_convolutions_and_a_dense_layer_with_multipliers():
    graph = examples.conv_snn()  # conv1 4 x 1 x 3 x 3, conv2 8 x 4 x 3 x 3 (spike inputs), fc 8 -> 10 (not spikes)
    _, lat = _estimate(graph, "Latency", 4)
    _, res = _estimate(graph, "Resource", 4)
    # conv1: taps 9, ceil(9 / 4) = 3 weights a word, 12 words of 24 bits: 1 RAMB18
    assert (res["conv1"]["bram_18k"], lat["conv1"]["bram_18k"]) == (1, 0)
    # conv2: taps 36, 9 weights a word, 32 words of 72 bits: 2 RAMB18 (36 x 512)
    assert (res["conv2"]["bram_18k"], lat["conv2"]["bram_18k"]) == (2, 0)
    # the same loop under both strategies, plus one BRAM read cycle
    for node in ("conv1", "conv2"):
        assert res[node]["cycles"] == lat[node]["cycles"] + 1
    outputs = math.prod(graph.nodes["conv2"].output_shape)
    assert lat["conv2"]["cycles"] == outputs * 4 + math.ceil(math.log2(36)) + 2
    # fc on 5-bit pooled values: ceil(80 / 4) = 20 DSPs under both strategies; Resource: 4 words of 20
    # weights (160 bits) = 5 RAMB18 of 36 x 512; cycles 4 + 1 + ceil(log2(ceil(8 / 4))) + 2 = 8 against
    # Latency's 4 + ceil(log2 8) + 2 = 9
    assert (lat["fc"]["dsp"], res["fc"]["dsp"]) == (20, 20)
    assert (lat["fc"]["bram_18k"], res["fc"]["bram_18k"]) == (0, 5)
    assert (lat["fc"]["cycles"], res["fc"]["cycles"]) == (9, 8)


def test_ir_to_hls4ml_config_validates_and_reports_the_strategy():
    graph = examples.mlp_snn(sizes=(16, 8, 4))
    cfg = ir_to_hls4ml_config(graph, "int8", strategy="resource", default_reuse_factor=4)
    assert cfg["Model"]["Strategy"] == "Resource" and cfg["Model"]["ReuseFactor"] == 4
    assert cfg["LayerName"]["fc1"]["Strategy"] == "Resource"
    # per layer, the reuse factor the generated code has: at most the layer's multiplies
    assert [cfg["LayerName"][n]["ReuseFactor"] for n in ("fc1", "lif1", "fc2", "lif2")] == [4, 4, 4, 4]
    small = ir_to_hls4ml_config(graph, "int8", default_reuse_factor=40)["LayerName"]
    assert [small[n]["ReuseFactor"] for n in ("fc1", "lif1", "fc2", "lif2")] == [40, 16, 32, 8]
    assert cfg["LayerName"]["fc1"]["WeightLayout"] == "[n_out][n_in]"
    assert ir_to_hls4ml_config(graph, "int8")["LayerName"]["fc1"]["WeightLayout"] == "[n_in][n_out]"
    with pytest.raises(BackendError, match="strategy must be 'Latency' or 'Resource'"):
        ir_to_hls4ml_config(graph, "int8", strategy="resource_unrolled")
    with pytest.raises(BackendError, match="default_reuse_factor must be an integer >= 1"):
        ir_to_hls4ml_config(graph, "int8", default_reuse_factor=0)


def test_compile_fpga_cli_takes_the_strategy(tmp_path):
    path = tmp_path / "mlp.t1c"
    ir.write(str(path), examples.mlp_snn(sizes=(16, 8, 4)))
    runner = CliRunner()
    out = runner.invoke(main, ["compile-fpga", str(path), "-o", str(tmp_path / "prj"), "--precision", "int8",
                               "--strategy", "resource", "--reuse", "4", "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "talon::DenseResourceExact<" in (tmp_path / "prj/firmware/defines.h").read_text()
    bad = runner.invoke(main, ["compile-fpga", str(path), "-o", str(tmp_path / "p2"), "--strategy", "fast"])
    assert bad.exit_code == 2 and "fast" in bad.output
    sim = runner.invoke(main, ["csim", str(path), "--precision", "int8", "--steps", "20", "--strategy", "Resource",
                               "--reuse", "5", "--json"])  # fmt: skip
    assert sim.exit_code == 0, sim.output
    doc = json.loads(sim.stdout)
    assert doc["identical"] and (doc["strategy"], doc["reuse_factor"]) == ("resource", 5)
