"""The FPGA backend's API: validation, the generated project, the descriptor and estimate,
build_bitstream (csim, and the vendor steps' errors), the C-simulation cache."""

import json
import math
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from talon import ir
from talon.backend import BackendError, UnsupportedNodeError, get_backend
from talon.backend.fpga import BitstreamConfig, Zynq7020Backend, examples, ir_to_hls4ml_config
from talon.backend.fpga.csim import CACHE_ENV

FPGA = get_backend("fpga")


def _sigmoid_graph():
    return ir.Graph(
        {"input": ir.Input(np.array([4])), "act": ir.Sigmoid(), "lif": ir.LIF(tau=np.full(4, 2.0)),
         "output": ir.Output(np.array([4]))},
        [("input", "act"), ("act", "lif"), ("lif", "output")],
    )  # fmt: skip


def test_capabilities_and_validation():
    caps = FPGA.get_capabilities()
    assert caps.supported_precisions == ["int16", "int8", "int4"] and caps.supports_cyclic
    for kind in ("LIF", "IF", "CubaLIF", "LI", "Integrator", "Threshold", "Delay", "Conv2d", "MaxPool2d", "Concat"):
        assert kind in caps.supported_primitives
    assert FPGA.validate(examples.recurrent_snn()).is_valid
    result = FPGA.validate(_sigmoid_graph())
    assert not result.is_valid and result.unsupported_nodes == [
        "act (Sigmoid): no HLS implementation in the FPGA backend"
    ]
    assert not FPGA.validate(examples.mlp_snn(), {"precision": "fp32"}).is_valid


def test_bad_configurations_are_refused_with_the_reason(tmp_path):
    graph = examples.mlp_snn(sizes=(16, 8, 4))
    with pytest.raises(UnsupportedNodeError, match=r"act \(Sigmoid\): no HLS implementation"):
        FPGA.compile(_sigmoid_graph(), output_dir=tmp_path / "p")
    with pytest.raises(BackendError, match="ap_fixed<W,I> type cannot express"):
        FPGA.compile(graph, output_dir=tmp_path / "p", default_precision="ap_fixed<16,6>")
    with pytest.raises(BackendError, match="integer datapaths only"):
        FPGA.simulate(graph, np.zeros((3, 1, 16)), precision="fp32")
    with pytest.raises(BackendError, match="project_name must be a C identifier"):
        FPGA.compile(graph, output_dir=tmp_path / "p", project_name="my-project")
    with pytest.raises(BackendError, match="clock_period"):
        FPGA.compile(graph, output_dir=tmp_path / "p", clock_period=0)
    with pytest.raises(BackendError, match=r"strategy must be 'Latency' or 'Resource'.*'Distributed'"):
        FPGA.compile(graph, output_dir=tmp_path / "p", strategy="Distributed")
    with pytest.raises(BackendError, match="default_reuse_factor must be an integer >= 1"):
        FPGA.compile(graph, output_dir=tmp_path / "p", default_reuse_factor=0)
    with pytest.raises(BackendError, match="strategy must be 'Latency' or 'Resource'"):
        FPGA.simulate(graph, np.zeros((3, 1, 16)), precision="int8", strategy=None)
    with pytest.raises(BackendError, match="reuse_factor must be an integer >= 1"):
        FPGA.simulate(graph, np.zeros((3, 1, 16)), precision="int8", reuse_factor=1.5)
    for part in (" ", ""):  # "" fell back to the default part
        with pytest.raises(BackendError, match="part must be an FPGA part name"):
            FPGA.compile(graph, output_dir=tmp_path / "p", part=part)
    assert not (tmp_path / "p").exists()  # nothing written by a refused compile


# file-scope declarations of the generated C++: typedefs, structs, static arrays, functions, guards
_DECLARED = re.compile(
    r"^(?:typedef\s[^;]*?\b(\w+)\s*;|struct\s+(\w+)|static\s[^;(=]*?\b(\w+)\s*[\[=;(]"
    r"|(?:void|int|bool)\s+\*?(\w+)\s*\(|#define\s+(\w+)_H_)",
    re.M,
)


def test_a_project_name_the_generated_cpp_declares_is_refused(tmp_path):
    # 'int', 'main', 'w1', 'config2' ... were accepted and gave a project that g++ cannot compile
    declared = set()
    for graph, x in (
        (examples.residual_snn(), examples.residual_inputs),
        (examples.recurrent_snn(), examples.recurrent_inputs),
    ):
        for strategy in ("Latency", "Resource"):
            FPGA.compile(graph, output_dir=tmp_path / "prj", project_name="snn_top", default_precision="int8",
                         calibration_inputs=x(n_steps=5), strategy=strategy, default_reuse_factor=3)  # fmt: skip
            for path in [*(tmp_path / "prj" / "firmware").glob("*.[ch]*"), *(tmp_path / "prj").glob("*.cpp")]:
                found = [m.groups() for m in _DECLARED.finditer(path.read_text())]
                if path.name.startswith("nnet_talon_"):  # talon's layer headers: namespace talon, but global guards
                    found = [groups for groups in found if groups[-1]]
                declared |= {next(n for n in groups if n) for groups in found}
    declared -= {"snn_top"}
    assert {"main", "fail", "talon_load_parameters", "v1_t", "config2", "w1", "DEFINES", "PARAMETERS"} <= declared
    for name in [*sorted(declared), "int", "class", "nnet", "talon", "ap_int", "__top", "_Top"]:
        with pytest.raises(BackendError, match=f"project_name '{name}' is a"):
            FPGA.compile(examples.mlp_snn(sizes=(16, 8, 4)), output_dir=tmp_path / "refused", project_name=name)
    assert not (tmp_path / "refused").exists()


def test_compile_writes_the_project_with_the_cpu_backends_integers(tmp_path):
    graph = examples.mlp_snn()
    desc = Zynq7020Backend().compile(
        graph, output_dir=tmp_path / "prj", project_name="snn_demo", default_precision="int8",
        calibration_inputs=examples.mlp_inputs(n_steps=10),
    )  # fmt: skip
    prj = tmp_path / "prj"
    for rel in ("firmware/snn_demo.cpp", "firmware/snn_demo.h", "firmware/defines.h", "firmware/parameters.h",
                "firmware/weights.h", "firmware/nnet_talon_neuron.h", "firmware/nnet_utils/nnet_dense.h",
                "firmware/ap_types/ap_int.h", "snn_demo_test.cpp", "build_prj.tcl", "vivado_synth.tcl", "build_csim.sh",
                "talon_project.json", "firmware/weights/w1.bin"):  # fmt: skip
        assert (prj / rel).is_file(), rel
    assert desc["backend"] == "fpga" and desc.precision == "int8"
    assert (
        desc["hls"]["part"] == "xc7z020clg400-1" and "set_part {xc7z020clg400-1}" in (prj / "build_prj.tcl").read_text()
    )
    assert json.loads((prj / "talon_project.json").read_text())["hls"]["top_function"] == "snn_demo"
    # fc1's weights in the project are the CPU backend's quantized weights (transposed for nnet::dense)
    cpu = get_backend("cpu").compile(graph, precision="int8", calibration_inputs=examples.mlp_inputs(n_steps=10))
    fc1 = next(k for k in cpu.program.kernels if getattr(k, "op", None) and k.op.path == "fc1")
    stored = np.fromfile(prj / "firmware/weights/w1.bin", np.int8)  # ap_int<8>: one byte each
    np.testing.assert_array_equal(stored, fc1.weight_t.reshape(-1))
    assert "static w1_t w1[100352] = {" in (prj / "firmware/weights.h").read_text()
    assert "typedef ap_int<8> w1_t;" in (prj / "firmware/defines.h").read_text()
    # the project runs on its own: build_csim.sh compiles it with g++ and simulates the calibration inputs
    subprocess.run(["bash", str(prj / "build_csim.sh")], check=True, capture_output=True)
    ints = np.fromfile(prj / "tb_data/csim_results.bin", np.int64).reshape(2, 10, -1)  # [B, T, probes]
    ref = get_backend("cpu").simulate(graph, examples.mlp_inputs(n_steps=10), precision="int8")
    assert ints[:, :, :128].sum() == ref.spike_counts["lif1"] and ints[:, :, 128:138].sum() == ref.spike_counts["lif2"]
    # a second compile replaces the project atomically
    FPGA.compile(graph, output_dir=prj, project_name="snn_demo", default_precision="int8")
    assert (prj / "firmware/snn_demo.cpp").is_file() and not list(tmp_path.glob(".prj.*"))


def test_estimate_follows_the_documented_model(tmp_path):
    desc = FPGA.compile(examples.mlp_snn(), output_dir=tmp_path / "p", default_precision="int8", default_reuse_factor=4,
                        clock_period=5, write_to_disk=False)  # fmt: skip
    assert not (tmp_path / "p").exists()
    est = desc["estimate"]
    rows = {r["node"]: r for r in est["layers"]}
    fc1, lif1 = rows["fc1"], rows["lif1"]
    assert fc1["weight_bits"] == 784 * 128 * 8 + 128 * 32
    assert est["strategy"] == "latency" and fc1["weight_storage"] == "fabric"
    assert fc1["bram_18k"] == 0 and fc1["fabric_bits"] == fc1["weight_bits"]  # Latency: weights in registers
    assert fc1["dsp"] == 0  # spike inputs select weights: adders only
    assert fc1["cycles"] == 4 + math.ceil(math.log2(784)) + 2
    assert lif1["dsp"] == math.ceil(128 * 2 / 4)  # 2 multipliers per LIF neuron; 24 x 18 bits fit one DSP48
    assert lif1["cycles"] == 4 + 2 and lif1["bram_18k"] == 0  # 128 x 24 state bits: under the LUTRAM limit
    assert est["total"]["cycles_per_step"] == sum(r["cycles"] for r in est["layers"])
    assert est["total"]["latency_us_per_step"] == pytest.approx(est["total"]["cycles_per_step"] * 5e-3)


def test_ir_to_hls4ml_config_names_the_types():
    cfg = ir_to_hls4ml_config(examples.mlp_snn(sizes=(16, 8, 4)), "int8")
    assert cfg["Model"]["Precision"] == "int8"
    assert cfg["LayerName"]["fc1"]["Precision"] == {
        "weight": "ap_int<8>", "bias": "ap_int<32>", "accum": "ap_int<64>",
        "result": "ap_fixed<32, 32, AP_TRN, AP_SAT>", "input": "ap_int<2>",
    }  # fmt: skip
    assert cfg["LayerName"]["lif1"]["Precision"]["state"] == "ap_int<24>"


def test_build_bitstream_csim_and_the_cache(tmp_path):
    graph, x = examples.residual_snn(), examples.residual_inputs(n_steps=50)
    out = FPGA.build_bitstream(
        graph, output_dir=tmp_path / "prj", project_name="talon_csim", default_precision="int8", inputs=x,
        bitstream_config=BitstreamConfig(csim=True),
    )  # fmt: skip
    cpu = get_backend("cpu").simulate(graph, x, precision="int8")
    assert out["csim"].spike_counts == cpu.spike_counts
    for name in cpu.outputs:
        np.testing.assert_array_equal(out["csim"].outputs[name], cpu.outputs[name])
    assert (tmp_path / "prj/tb_data/csim_results.bin").stat().st_size > 0
    assert "build_prj.tcl" in out["files"]
    cache = Path(os.environ[CACHE_ENV])
    built = sorted(cache.iterdir())
    again = FPGA.simulate(graph, x, precision="int8")  # same project: no new build
    assert sorted(cache.iterdir()) == built and again.spike_counts == cpu.spike_counts
    # calibrated on x, run on other inputs: the CPU backend compiled on x and run on them
    x2 = examples.residual_inputs(n_steps=30, seed=5)
    out = FPGA.build_bitstream(
        graph, output_dir=tmp_path / "prj", project_name="talon_csim", default_precision="int8",
        calibration_inputs=x, inputs=x2, bitstream_config=BitstreamConfig(csim=True),
    )  # fmt: skip
    program = get_backend("cpu").compile(graph, precision="int8", calibration_inputs=x)
    ref = get_backend("cpu").run_compiled(program, x2)
    assert out["csim"].timesteps_run == 30 and out["csim"].spike_counts == ref.spike_counts
    for name in ref.outputs:
        np.testing.assert_array_equal(out["csim"].outputs[name], ref.outputs[name])
    assert sorted(cache.iterdir()) == built  # same structure and formats: still no new build


@pytest.mark.parametrize(("step", "tool"), [("synth", "vitis_hls"), ("cosim", "vitis_hls"), ("export", "vivado_hls"),
                                            ("vsynth", "'vivado'"), ("bitfile", "'vivado'")])  # fmt: skip
def test_vendor_steps_name_the_missing_tool(tmp_path, monkeypatch, step, tool):
    monkeypatch.setenv("PATH", str(tmp_path))  # no vendor tools (and nothing else) on PATH
    with pytest.raises(BackendError, match=tool):
        FPGA.build_bitstream(examples.mlp_snn(sizes=(8, 4, 2)), output_dir=tmp_path / "p",
                             bitstream_config=BitstreamConfig(csim=False, **{step: True}))  # fmt: skip
    assert not (tmp_path / "p").exists()


def test_an_output_dir_that_is_not_a_project_is_refused_not_deleted(tmp_path, monkeypatch):
    """The project directory is replaced whole: a folder holding the model (or '.') must survive."""
    graph = examples.mlp_snn(sizes=(8, 4, 2))
    work = tmp_path / "work"
    work.mkdir()
    (work / "model.t1c").write_bytes(b"the user's model")
    (work / "notes.txt").write_text("keep")
    monkeypatch.chdir(work)
    for output_dir in (work, "."):
        with pytest.raises(
            BackendError, match=r"is not a talon HLS project and is not empty \('model.t1c', 'notes.txt'\)"
        ):
            FPGA.compile(graph, output_dir=output_dir, default_precision="int8")
    assert sorted(p.name for p in work.iterdir()) == ["model.t1c", "notes.txt"]
    (work / "empty").mkdir()
    old = os.umask(0o022)
    try:
        FPGA.compile(graph, output_dir=work / "empty", default_precision="int8")  # an empty directory is fine
        FPGA.compile(graph, output_dir=work / "empty", default_precision="int8")  # and so is a previous project
    finally:
        os.umask(old)
    assert (work / "empty" / "talon_project.json").is_file()
    assert (work / "empty").stat().st_mode & 0o777 == 0o755  # the umask's mode, not mkdtemp's 0700
