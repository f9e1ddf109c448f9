"""The CLI on hostile input (issue 18): exit code 2 and one ``error:`` line, bounded work, no terminal injection."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir
from talon.cli import main

from ..ir.t1c_craft import edit_manifest


def run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])


def assert_bad_input(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def chain(width=4, name="lif"):
    return ir.Graph(
        {
            "input": ir.Input(np.array([width])),
            "fc": ir.Affine(np.eye(width, dtype=np.float32)),
            name: ir.LIF(tau=np.full(width, 5.0), r=1.0),
            "output": ir.Output(np.array([width])),
        },
        [("input", "fc"), ("fc", name), (name, "output")],
    )


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.t1c"
    ir.write(path, chain())
    return path


def test_simulate_with_absurd_steps_is_refused_before_allocating(good):
    assert_bad_input(run("simulate", good, "--steps", 100_000_000_000), "100,000,000,000 steps", "bytes")


def test_a_delay_of_10_to_the_12_steps_runs_3_steps(tmp_path):
    graph = ir.Graph(
        {"input": ir.Input(np.array([2])), "d": ir.Delay(np.array([10**12, 1])), "output": ir.Output(np.array([2]))},
        [("input", "d"), ("d", "output")],
    )
    path = tmp_path / "d.t1c"
    ir.write(path, graph)
    result = run("simulate", path, "--steps", 3, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["timesteps_run"] == 3


def test_a_fifo_is_bad_input_not_a_hang(tmp_path):
    fifo = tmp_path / "f.t1c"
    os.mkfifo(fifo)
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=run("inspect", fifo)), daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "talon inspect blocked on a FIFO"
    assert_bad_input(box["result"], "is a FIFO")


def test_deeply_nested_subgraphs_are_bad_input_for_inspect_json(tmp_path, good):
    from ..ir.test_hostile_files import _wrap

    edit_manifest(good, lambda m: m.update(graph=_wrap(m["graph"], 200)))
    assert_bad_input(run("inspect", good, "--json"), "subgraphs nest deeper than 64 levels")


def test_an_empty_output_name_is_bad_input_naming_it(good, tmp_path):
    result = run("convert", good, "--prune", "-o", "")
    assert_bad_input(result, "cannot write")
    assert ".tmp" not in result.stderr


def ladder(rungs):
    """Two rails with rungs both ways: exponentially many simple paths wander through it."""
    nodes = {"input": ir.Input(np.array([2]))}
    edges = [("input", "a0")]
    for i in range(rungs):
        nodes[f"a{i}"], nodes[f"b{i}"] = ir.Scale(np.float32(1)), ir.Scale(np.float32(1))
        edges += [(f"a{i}", f"b{i}"), (f"b{i}", f"a{i}")]
        if i:
            edges += [(f"a{i - 1}", f"a{i}"), (f"b{i - 1}", f"b{i}"), (f"a{i}", f"a{i - 1}"), (f"b{i}", f"b{i - 1}")]
    nodes["output"] = ir.Output(np.array([2]))
    edges.append((f"b{rungs - 1}", "output"))
    nodes["side"] = ir.Output(np.array([2]))
    edges.append(("a0", "side"))
    return ir.Graph(nodes, edges)


def test_trace_is_bounded_by_limit_on_a_ladder(tmp_path):
    path = tmp_path / "ladder.t1c"
    ir.write(path, ladder(42))  # 84 nodes
    assert_bad_input(run("trace", path, "input", "output", "--limit", 1), "more than 1 paths")
    result = run("trace", path, "input", "side", "--json")  # exactly one path, found without wandering
    assert result.exit_code == 0 and json.loads(result.stdout)["paths"] == [["input", "a0", "side"]]


HOSTILE = "lif\x1b]0;owned\x07\nerror: forged\x1b[31m"


def test_control_characters_in_names_are_escaped_in_text_output(tmp_path):
    path = tmp_path / "evil.t1c"
    ir.write(path, chain(name=HOSTILE))
    for args in (
        ("inspect", path),
        ("trace", path, "input", "output"),
        ("analyze", path, "-v"),
        ("node", path, HOSTILE),
    ):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output, args
        assert not any(line.startswith("error: forged") for line in result.output.splitlines()), args
        assert "\\x1b]0;owned" in result.output, args
    result = run("node", path, "missing\x1bname")
    assert_bad_input(result, "missing\\x1bname")
    doc = json.loads(run("inspect", path, "--json").stdout)  # JSON keeps the name exactly
    assert HOSTILE in [n["name"] for n in doc["nodes"]]
