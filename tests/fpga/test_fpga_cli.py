"""`talon csim` and `talon compile-fpga`."""

import numpy as np

from talon import ir
from talon.backend import get_backend
from talon.backend.fpga import examples

from ..cli.test_cli import run, run_json


def test_csim_compares_with_the_cpu_backend(tmp_path):
    path, inputs = tmp_path / "residual.t1c", tmp_path / "x.npy"
    graph, x = examples.residual_snn(), examples.residual_inputs(n_steps=50)
    ir.write(path, graph)
    np.save(inputs, x)
    doc = run_json("csim", path, "--precision", "int8", "--inputs", inputs)
    cpu = get_backend("cpu").simulate(graph, x, precision="int8")
    assert doc["identical"] is True and doc["spike_counts"] == cpu.spike_counts == doc["cpu_spike_counts"]
    assert doc["timesteps_run"] == 50 and doc["identical_outputs"] == {"output": True, "spike_out": True}
    text = run("csim", path, "--precision", "int8", "--inputs", inputs)
    assert text.exit_code == 0 and "identical to the CPU backend (int8): yes" in text.stdout


def test_compile_fpga_writes_the_project(tmp_path):
    path = tmp_path / "mlp.t1c"
    ir.write(path, examples.mlp_snn(sizes=(16, 8, 4)))
    doc = run_json("compile-fpga", path, "-o", tmp_path / "prj", "--precision", "int8", "--part", "xc7z020clg400-1")
    assert doc["hls"]["part"] == "xc7z020clg400-1" and [r["node"] for r in doc["estimate"]["layers"]][:2] == [
        "fc1",
        "lif1",
    ]
    assert (tmp_path / "prj" / "build_prj.tcl").is_file() and (tmp_path / "prj" / "firmware" / "snn_demo.cpp").is_file()
    text = run("compile-fpga", path, "-o", tmp_path / "prj2")
    assert text.exit_code == 0 and "estimated latency" in text.stdout


def test_fpga_commands_refuse_bad_input(tmp_path):
    path = tmp_path / "mlp.t1c"
    ir.write(path, examples.mlp_snn(sizes=(16, 8, 4)))
    (tmp_path / "x.txt").write_text("1 2 3")
    bad = run("csim", path, "--inputs", tmp_path / "x.txt")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --inputs") and "Traceback" not in bad.output
    fp32 = run("csim", path, "--precision", "fp32")
    assert fp32.exit_code == 2 and "'fp32' is not one of" in fp32.stderr
    wrong_shape = tmp_path / "w.npy"
    np.save(wrong_shape, np.zeros((3, 1, 5), np.float32))
    shape = run("csim", path, "--inputs", wrong_shape)
    assert shape.exit_code == 2 and shape.stderr.startswith("error:")


def test_talon_compile_has_the_fpga_target(tmp_path):
    path = tmp_path / "mlp.t1c"
    ir.write(path, examples.mlp_snn(sizes=(16, 8, 4)))
    doc = run_json("compile", path, "--target", "fpga", "--precision", "int8", "--part", "xc7z020clg400-1",
                   "-o", tmp_path / "prj")  # fmt: skip
    assert doc["hls"]["part"] == "xc7z020clg400-1" and (tmp_path / "prj" / "build_prj.tcl").is_file()
    cpu = run_json("compile", path, "--precision", "int8")  # the cpu target is unchanged
    assert cpu["target"] == "cpu"
    missing = run("compile", path, "--target", "fpga")
    assert missing.exit_code == 2 and "needs -o DIR" in missing.stderr
    fp32 = run("compile", path, "--target", "fpga", "--precision", "fp32", "-o", tmp_path / "p2")
    assert fp32.exit_code == 2 and "integer datapaths" in fp32.stderr
    part = run("compile", path, "--part", "xc7z020clg400-1")
    assert part.exit_code == 2 and "--part applies to --target fpga only" in part.stderr


def _one_error_line(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_talon_compile_fpga_target_takes_every_compile_fpga_option(tmp_path):
    """`compile --target fpga` writes the same project as `compile-fpga` with the same options (strategy,
    reuse factor, clock, project, part, calibration inputs) and defaults (int16, latency, R = 1)."""
    path, inputs = tmp_path / "mlp.t1c", tmp_path / "x.npy"
    graph = examples.mlp_snn(sizes=(16, 8, 4))
    ir.write(path, graph)
    np.save(inputs, np.random.default_rng(0).random((12, 2, 16), dtype=np.float32))
    options = ["--precision", "int8", "--strategy", "Resource", "--reuse", "4", "--clock", "8", "--project", "net",
               "--part", "xc7z020clg400-1", "--inputs", inputs]  # fmt: skip
    doc = run_json("compile", path, "--target", "fpga", "-o", tmp_path / "a", *options)
    ref = run_json("compile-fpga", path, "-o", tmp_path / "b", *options)
    assert (doc["target"], doc["precision"], doc["strategy"], doc["reuse_factor"]) == ("fpga", "int8", "resource", 4)
    assert (ref["strategy"], ref["reuse_factor"]) == ("resource", 4) and "target" not in ref
    hls = doc["hls"]
    settings = (hls["strategy"], hls["reuse_factor"], hls["clock_period"], hls["project_name"])
    assert settings == ("resource", 4, 8.0, "net")
    assert doc["estimate"] == ref["estimate"]
    for name in ("firmware/defines.h", "firmware/parameters.h", "firmware/net.cpp"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert "talon::DenseResourceExact<" in (tmp_path / "a/firmware/defines.h").read_text()
    # no options: compile-fpga's defaults, int16 included (compile's own default, fp32, has no FPGA datapath)
    plain = run_json("compile", path, "--target", "fpga", "-o", tmp_path / "a")  # an existing project: replaced
    assert (plain["precision"], plain["strategy"], plain["reuse_factor"]) == ("int16", "latency", 1)
    assert plain["hls"]["clock_period"] == 5.0 and plain["hls"]["project_name"] == "snn_demo"
    assert "talon::DenseResourceExact<" not in (tmp_path / "a/firmware/defines.h").read_text()
    text = run("compile", path, "--target", "fpga", "-o", tmp_path / "c", "--strategy", "resource", "--reuse", "3")
    assert text.exit_code == 0 and "resource strategy, reuse factor 3" in text.stdout


def test_talon_compile_refuses_bad_fpga_options(tmp_path):
    path = tmp_path / "mlp.t1c"
    ir.write(path, examples.mlp_snn(sizes=(16, 8, 4)))
    fpga = ("compile", path, "--target", "fpga", "-o", tmp_path / "prj")
    assert "'fast' is not one of 'latency', 'resource'" in _one_error_line(run(*fpga, "--strategy", "fast"))
    assert "'--reuse': 0 is not in the range x>=1" in _one_error_line(run(*fpga, "--reuse", "0"))
    assert "clock_period" in _one_error_line(run(*fpga, "--clock", "-1"))
    assert _one_error_line(run("compile", path, "--strategy", "resource", "--reuse", "2")) == (
        "error: --reuse, --strategy apply to --target fpga only"
    )
    assert _one_error_line(run("compile", path, "--clock", "4")) == "error: --clock applies to --target fpga only"
    assert "available: cpu, fpga" in _one_error_line(run("compile", path, "--target", "gpu"))
    (tmp_path / "d").mkdir()
    assert "is a directory" in _one_error_line(run("compile", path, "-o", tmp_path / "d"))
    assert not (tmp_path / "prj").exists()
