"""talon partition / compile / pipeline."""

from __future__ import annotations

import json

from click.testing import CliRunner

from talon import ir
from talon.cli import main
from talon.graph import HardwareSpec
from talon.graph.examples import e2e_conv_snn


def run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])


def test_partition_splits_the_documented_overflow(tmp_path):
    path = tmp_path / "e2e.t1c"
    ir.write(path, e2e_conv_snn())
    out = tmp_path / "mapped.t1c"
    result = run("partition", path, "--hw", "zynq_us_plus", "-o", out, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["fits_hardware"] and doc["split_layers"] == {"fc1": 19, "lif1": 19}
    assert ir.read(out).metadata["talon.partition"]["num_cores_used"] == doc["num_cores_used"]
    text = run("partition", path, "--hw", "zynq_us_plus")
    assert "split fc1 into 19 slices" in text.output and "fits" in text.output


def test_partition_exit_codes(tmp_path):
    path = tmp_path / "e2e.t1c"
    ir.write(path, e2e_conv_snn())
    spec = tmp_path / "tiny.json"
    HardwareSpec(num_cores=2, sram_bytes_per_core=98_304).to_json(spec)
    result = run("partition", path, "--hw", spec, "--json")
    assert result.exit_code == 1
    assert any(v["resource"] == "cores" for v in json.loads(result.output)["violations"])
    bad = run("partition", path, "--hw", "nope")
    assert bad.exit_code == 2 and bad.output.startswith("error: unknown hardware spec 'nope'")
    missing = run("partition", tmp_path / "missing.t1c")
    assert missing.exit_code == 2 and missing.output.startswith("error:")


def test_compile_with_hw_and_targets(tmp_path):
    path = tmp_path / "e2e.t1c"
    ir.write(path, e2e_conv_snn())
    result = run("compile", path, "--hw", "loihi", "-o", tmp_path / "d.json", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mapping"]["num_cores_used"] >= 2
    assert "mapping" in json.loads((tmp_path / "d.json").read_text())
    other = run("compile", path, "--target", "gpu")
    assert other.exit_code == 2 and "--target 'gpu'" in other.output
    fpga = run("compile", path, "--target", "fpga", "--hw", "loihi", "-o", tmp_path / "prj")  # see tests/fpga
    assert fpga.exit_code == 2 and "--hw" in fpga.output


def test_pipeline_summary(tmp_path):
    path = tmp_path / "e2e.t1c"
    ir.write(path, e2e_conv_snn())
    result = run("pipeline", path, "--steps", "5", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [s["stage"] for s in doc["stages"]] == [
        "load", "lint", "partition", "place", "route", "allocate", "compile", "simulate"
    ]  # fmt: skip
    assert doc["ok"] and "identical" in doc["stages"][-1]["result"]


def test_partition_and_pipeline_count_a_recurrent_layer(tmp_path):
    """A recurrent layer (a subgraph) occupies cores: 300 LIF and its 300 x 300 recurrent weight."""
    from talon.graph.examples import recurrent_snn

    path = tmp_path / "rec.t1c"
    ir.write(path, recurrent_snn())
    result = run("partition", path, "--hw", "zynq_us_plus", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert sum(c["neurons"] for c in doc["cores"]) == 300
    assert sum(c["synapses"] for c in doc["cores"]) == 200 * 300 + 300 * 300 + 300 * 10
    assert doc["split_layers"]["rec.w_rec"] == 4  # 360,000 B of fp32 weights on 96 KiB cores
    activity = tmp_path / "rates.json"
    activity.write_text(json.dumps({"rec.neuron": 30.0}))
    weighted = run("partition", path, "--activity", activity, "--json")
    assert weighted.exit_code == 0, weighted.output
    spec = tmp_path / "four.json"
    HardwareSpec(num_cores=4, sram_bytes_per_core=98_304).to_json(spec)
    small = run("partition", path, "--hw", spec, "--json")
    assert small.exit_code == 1 and not json.loads(small.output)["fits_hardware"]
    piped = run("pipeline", path, "--steps", "5", "--json")
    assert piped.exit_code == 0, piped.output
    assert "identical" in json.loads(piped.output)["stages"][-1]["result"]
