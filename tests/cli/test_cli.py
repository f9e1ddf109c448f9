"""The `talon` command line: every command through click's runner, exit codes, JSON, bad input."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir, sdk
from talon.cli import main
from tests.subprocesses import child_env

from ..sdk import graphs


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    paths = {}
    for name, build in [("hybrid", graphs.hybrid), ("chain", graphs.chain), ("recurrent", graphs.recurrent),
                        ("nested", graphs.nested), ("residual", graphs.residual)]:  # fmt: skip
        paths[name] = d / f"{name}.t1c"
        ir.write(paths[name], build())
    bad_lif = graphs.chain()
    bad_lif.nodes["lif1"].v_threshold = np.zeros(4)
    paths["lint_error"] = d / "lint_error.t1c"
    ir.write(paths["lint_error"], bad_lif)
    nodes = dict(graphs.chain().nodes)
    nodes["fc-2"] = nodes.pop("fc2")
    nodes["output"] = nodes.pop("output")
    warn = ir.Graph(nodes, [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc-2"), ("fc-2", "output")])
    paths["lint_warning"] = d / "lint_warning.t1c"
    ir.write(paths["lint_warning"], warn)
    changed = graphs.chain()
    changed.nodes["fc1"].weight[0, 0] += 0.5
    paths["chain_changed"] = d / "chain_changed.t1c"
    ir.write(paths["chain_changed"], changed)
    paths["damaged"] = d / "damaged.t1c"
    paths["damaged"].write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    paths["foreign"] = d / "foreign.t1c"  # HDF5 laid out like a NIR file
    with h5py.File(paths["foreign"], "w") as f:
        f.create_group("node")
        f.create_dataset("version", data="0.5")
    paths["missing"] = d / "missing.t1c"
    return paths


def run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])


def run_json(*args, code=0):
    result = run(*args, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_info_and_primitives():
    result = run("info")
    assert result.exit_code == 0 and "talon.ir" in result.stdout and sdk.__version__ in result.stdout
    doc = run_json("info")
    assert doc["components"]["talon.sdk"] == sdk.__version__ and "numpy" in doc["dependencies"]
    result = run("primitives")
    assert f"{len(ir.list_primitives())} TALON IR primitives" in result.stdout and "SepConv2d" in result.stdout
    rows = run_json("primitives")
    assert [r["name"] for r in rows] == ir.list_primitives()
    assert next(r for r in rows if r["name"] == "LIF") == {
        "name": "LIF", "family": "neurons", "summary": "Leaky integrate-and-fire neuron."
    }  # fmt: skip


def test_analyze(files):
    result = run("analyze", files["hybrid"])
    assert result.exit_code == 0
    assert "Nodes: 9  |  Edges: 8  |  Depth: 8  |  Width: 1" in result.stdout
    assert "Parameters: 201,898" in result.stdout and "FLOPs: 628.5K" in result.stdout
    assert "Layers" not in result.stdout
    verbose = run("analyze", "-v", files["hybrid"]).stdout
    fc1_row = next(line for line in verbose.splitlines() if " fc1 " in line)
    assert "[3136]" in fc1_row and "200,768" in fc1_row and "200,704" in fc1_row
    doc = run_json("analyze", files["hybrid"])
    assert (doc["total_params"], doc["total_flops"], doc["depth"]) == (201_898, 628_480, 8)
    assert "layers" not in doc and doc["file"] == str(files["hybrid"])
    assert len(run_json("analyze", "-v", files["nested"])["layers"]) == 8


def test_profile(files):
    result = run("profile", files["hybrid"])
    assert result.exit_code == 0 and result.stdout.startswith("TALON Hardware Profile")
    assert "  Spike operations: 64" in result.stdout
    doc = run_json("profile", files["recurrent"])
    assert (doc["state_memory"], doc["mac_ops"], doc["recurrent_edges"]) == (60, 55, 1)


def test_lint_exit_codes(files):
    clean = run("lint", files["hybrid"])
    assert clean.exit_code == 0 and "✓ Graph is valid" in clean.stdout
    error = run("lint", files["lint_error"])
    assert error.exit_code == 1 and "[THRESHOLD_NONPOSITIVE] (lif1)" in error.stdout
    warning = run("lint", files["lint_warning"])
    assert warning.exit_code == 0 and "[INVALID_NAME] (fc-2)" in warning.stdout and "hint: rename" in warning.stdout
    assert run("lint", "--strict", files["lint_warning"]).exit_code == 1
    doc = run_json("lint", files["lint_error"], code=1)
    assert doc["is_valid"] is False and doc["issues"][0]["code"] == "THRESHOLD_NONPOSITIVE"


def test_validate(files):
    ok = run("validate", files["nested"])
    assert ok.exit_code == 0 and "✓ Valid" in ok.stdout and "5 nodes, 4 edges" in ok.stdout
    doc = run_json("validate", files["lint_error"], code=1)
    assert doc["valid"] is False and doc["format_version"] == ir.FORMAT_VERSION and doc["errors"][0]["node"] == "lif1"
    assert run_json("validate", files["lint_warning"])["valid"] is True  # warnings do not invalidate


def test_compare(files, tmp_path):
    copy = tmp_path / "copy.t1c"
    ir.write(copy, ir.read(files["hybrid"]))
    same = run("compare", files["hybrid"], copy)
    assert same.exit_code == 0 and "Graph Comparison" in same.stdout and "✓ Graphs are identical" in same.stdout
    differ = run("compare", files["chain"], files["chain_changed"])
    assert differ.exit_code == 1 and "✗ Graphs differ" in differ.stdout
    assert "fc1:" in differ.stdout and "weight: max_diff=5.00e-01" in differ.stdout
    assert run("compare", "--atol", "0.6", files["chain"], files["chain_changed"]).exit_code == 0
    doc = run_json("compare", files["chain"], files["chain_changed"], code=1)
    assert doc["nodes_modified"] == ["fc1"] and doc["max_weight_diff"] == pytest.approx(0.5)
    assert [d["name"] for d in doc["node_diffs"]] == ["fc1"]
    assert run("compare", "--atol", "-1", files["chain"], copy).exit_code == 2


def test_hash_and_verify(files):
    fp = sdk.fingerprint_graph(files["hybrid"])
    result = run("hash", files["hybrid"])
    assert result.exit_code == 0 and result.stdout.strip() == fp
    assert run("hash", "--structure", files["hybrid"]).stdout.strip() == sdk.fingerprint_graph(
        files["hybrid"], include_weights=False
    )
    assert run("hash", files["hybrid"], "--verify", fp).exit_code == 0
    mismatch = run("hash", files["hybrid"], "--verify", "0" * 64)
    assert mismatch.exit_code == 1 and "✗ fingerprint differs" in mismatch.stdout
    bad = run("hash", files["hybrid"], "--verify", "xyz")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: Invalid value for '--verify': 'xyz' is not a fingerprint")
    doc = run_json("hash", "--metadata", files["chain"])
    assert doc["fingerprint"] == sdk.fingerprint_graph(files["chain"], include_metadata=True)
    assert run("hash", "--check-stamp", files["chain"]).exit_code == 2  # no stamp: bad input


def test_stamp(files, tmp_path):
    out = tmp_path / "stamped.t1c"
    result = run("stamp", files["chain"], "-o", out, "--notes", "release 1", "--git-commit", "abc")
    assert result.exit_code == 0 and f"✓ Saved to: {out}" in result.stdout
    stamp = sdk.get_stamp(out)
    assert stamp["notes"] == "release 1" and stamp["git_commit"] == "abc"
    assert stamp["fingerprint_full"] == sdk.fingerprint_graph(files["chain"])
    assert run("hash", "--check-stamp", out).exit_code == 0
    in_place = tmp_path / "in_place.t1c"
    ir.write(in_place, graphs.chain())
    doc = run_json("stamp", in_place, "--run-id", "r1")
    assert doc["output"] == str(in_place) and sdk.get_stamp(in_place)["training_run_id"] == "r1"
    g = ir.read(in_place)
    g.nodes["fc1"].bias[:] = 0
    ir.write(in_place, g)
    changed = run("hash", "--check-stamp", in_place)
    assert changed.exit_code == 1 and "✗ graph changed since it was stamped" in changed.stdout


def test_inspect(files):
    result = run("inspect", files["recurrent"])
    assert result.exit_code == 0
    rec_row = next(line for line in result.stdout.splitlines() if " w_rec " in line and "yes" in line)
    assert " lif " in rec_row
    doc = run_json("inspect", files["nested"])
    assert [n["name"] for n in doc["nodes"]] == ["input", "fc", "rnn", "out_fc", "output"]
    fc = doc["nodes"][1]
    assert fc["params"]["weight"] == {"dtype": "float32", "shape": [4, 3]} and fc["output_type"] == {"output": [4]}
    assert doc["nodes"][2]["graph"]["recurrent_edges"] == [["w", "lif"]]
    assert doc["format_version"] == ir.FORMAT_VERSION


def test_node(files):
    result = run("node", files["hybrid"], "fc1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Node: fc1 (Affine)" and "Inputs: flatten" in lines[1] and "Outputs: lif" in lines[2]
    assert any("weight: (64, 3136) float32, mean=" in line for line in lines)
    doc = run_json("node", files["nested"], "rnn.lif")
    assert doc["recurrent_inputs"] == ["rnn.w"] and doc["parameters"]["tau"]["mean"] == 3.0
    unknown = run("node", files["hybrid"], "fc9")
    assert unknown.exit_code == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: no node 'fc9'") and unknown.stderr.count("\n") == 1


def test_trace(files):
    result = run("trace", files["residual"], "input", "output")
    assert result.exit_code == 0 and "input → c1 → relu → c2 → add → output" in result.stdout
    assert "input → add → output" in result.stdout
    none = run("trace", files["residual"], "output", "input")
    assert none.exit_code == 1 and "No path" in none.stdout
    assert run_json("trace", files["recurrent"], "w_rec", "output")["paths"] == [["w_rec", "lif", "fc_out", "output"]]
    assert run("trace", files["residual"], "input", "nowhere").exit_code == 2
    too_many = run("trace", files["residual"], "input", "output", "--limit", "1")
    assert too_many.exit_code == 2 and "more than 1 paths" in too_many.stderr


def test_convert(files, tmp_path):
    out = tmp_path / "spiking.t1c"
    result = run("convert", files["hybrid"], "--spiking", "--weight-bits", "4", "--accumulator-bits", "20", "-o", out)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["✓ Converted 2 Affine layers to SpikingAffine", f"✓ Saved to: {out}"]
    fc1 = ir.read(out).nodes["fc1"]
    assert type(fc1) is ir.SpikingAffine and (fc1.weight_bits, fc1.accumulator_bits) == (4, 20)
    q = tmp_path / "q.t1c"
    doc = run_json("convert", files["residual"], "--quantize", "4", "--per-tensor", "-o", q)
    assert doc["quantized_layers"] == 2
    record = ir.read(q).nodes["c1"].metadata["quantization"]
    assert record["bits"] == 4 and record["per_channel"] is False
    pruned = tmp_path / "pruned.t1c"
    assert run("convert", files["chain"], "--prune", "-o", pruned).stdout.startswith("✓ Pruned 0 disconnected")


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "{chain}", "-o", "{tmp}/x.t1c"],  # nothing to do
        ["convert", "{chain}", "--weight-bits", "4", "-o", "{tmp}/x.t1c"],  # a hint without --spiking
        ["convert", "{chain}", "--spiking"],  # no -o
        ["convert", "{chain}", "--spiking", "--weight-bits", "40", "-o", "{tmp}/x.t1c"],  # out of range
        ["convert", "{chain}", "--quantize", "1", "-o", "{tmp}/x.t1c"],
        ["convert", "{chain}", "--per-tensor", "--spiking", "-o", "{tmp}/x.t1c"],
        ["analyze", "{chain}", "--bogus"],
    ],
)
def test_bad_arguments_exit_2_without_traceback(files, tmp_path, args):
    result = run(*[a.format(chain=files["chain"], tmp=tmp_path) for a in args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.t1c").exists()


COMMANDS_ON_A_FILE = [
    ["analyze"], ["profile"], ["lint"], ["validate"], ["hash"], ["stamp"], ["inspect"], ["node", "{f}", "fc1"],
    ["trace", "{f}", "input", "output"], ["convert", "{f}", "--prune", "-o", "{tmp}/out.t1c"], ["compare", "{f}"],
]  # fmt: skip


@pytest.mark.parametrize("kind", ["missing", "damaged", "foreign"])
@pytest.mark.parametrize("command", COMMANDS_ON_A_FILE, ids=lambda c: c[0])
def test_bad_files_give_one_line_and_exit_2(files, tmp_path, kind, command):
    target = files[kind]
    args = [a.format(f=target, tmp=tmp_path) for a in command]
    if "{f}" not in command:
        args.insert(1, str(target))
    if command[0] == "compare":
        args.append(str(files["chain"]))
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    if kind == "foreign":
        assert "looks like a NIR file" in result.stderr
    if kind == "missing":
        assert str(target) in result.stderr


def test_json_documents_are_strict_json(files):
    nan_graph = ir.Graph(
        {"input": ir.Input(np.array([2])), "fc": ir.Linear(np.array([[np.nan, 1.0]], np.float32)),
         "output": ir.Output(np.array([1]))},
        [("input", "fc"), ("fc", "output")],
        metadata={"score": float("inf")},
    )  # fmt: skip
    path = files["chain"].parent / "nan.t1c"
    ir.write(path, nan_graph)
    for command in (["inspect"], ["node", "fc"], ["lint"]):
        result = run(command[0], path, *command[1:], "--json")
        json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert run_json("inspect", path)["metadata"] == {"score": "inf"}


def test_demo_command_is_still_there():
    result = run("demo", "--help")
    assert result.exit_code == 0 and "--quick" in result.stdout


def test_as_a_real_subprocess(files, tmp_path):
    def talon(*args):
        return subprocess.run(
            [sys.executable, "-m", "talon", *map(str, args)], capture_output=True, text=True, env=child_env()
        )

    analyzed = talon("analyze", files["hybrid"], "--json")
    assert analyzed.returncode == 0 and json.loads(analyzed.stdout)["total_params"] == 201_898
    linted = talon("lint", files["lint_error"])
    assert linted.returncode == 1 and "THRESHOLD_NONPOSITIVE" in linted.stdout
    missing = talon("profile", files["missing"])
    assert missing.returncode == 2 and missing.stderr.startswith("error: no such .t1c file")
    assert "Traceback" not in missing.stderr and missing.stdout == ""
    usage = talon("--help")
    assert usage.returncode == 0 and "Usage: talon" in usage.stdout
    nested = talon("events", "frames", files["chain"], "--n-frames", "0")  # the hint names the whole command
    assert nested.returncode == 2 and nested.stderr.rstrip().endswith("(see 'talon events frames -h')"), nested.stderr
    sdk_main = subprocess.run([sys.executable, "-m", "talon.sdk", "hash", files["chain"]], capture_output=True,
                              text=True, env=child_env())  # fmt: skip
    assert sdk_main.returncode == 0 and sdk_main.stdout.strip() == sdk.fingerprint_graph(files["chain"])
