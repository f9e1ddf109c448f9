"""A run whose ``[T, B, ...]`` layer outputs cannot fit is refused before it starts (run_memory.py).

The executor holds each layer's output for every step, so memory grows with the number of steps;
without the check a long run of a large model ends in the kernel's OOM killer, not an error.
"""

import numpy as np
import pytest

from talon import ir
from talon.backend import BackendError, get_backend
from talon.backend.cpu import run_memory
from talon.backend.cpu.program import lower
from talon.cli import main

from .graphs import mlp_graph

CPU = get_backend("cpu")


def test_the_estimate_replays_the_executors_schedule():
    # input[4] -> fc1[8] -> lif1[8] -> fc2[3] -> lif2[3] -> output[3]; 10 steps x batch 2 x 4 B = 80 B per element
    program = lower(mlp_graph(0, (4, 8, 3)))
    # the peak is lif1 running: its input fc1 (8) and its output (8); the Input is freed after fc1
    assert run_memory.sequence_bytes(program, 10, 2, 4) == 16 * 80
    # fc1 with float64 accumulation: input (4) + output (8) + an 8-byte accumulator of the output
    assert run_memory.sequence_bytes(program, 10, 2, 4, accumulator_itemsize=8) == 12 * 80 + 8 * 10 * 2 * 8
    # step by step every value is kept: 4 + 8 + 8 + 3 + 3 + 3
    assert run_memory.sequence_bytes(program, 10, 2, 4, keep_all=True) == 29 * 80


def _limit_at(monkeypatch, nbytes: int) -> None:
    monkeypatch.setattr(run_memory, "memory_limit", lambda: nbytes)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_run_too_long_for_memory_is_refused_naming_the_steps_that_fit(monkeypatch, precision):
    graph = mlp_graph(0, (16, 64, 10))
    program = lower(graph)
    itemsize, accumulator = (4, 8) if precision == "fp32" else (4, 0)
    per_step = run_memory.sequence_bytes(program, 1, 1, itemsize, accumulator_itemsize=accumulator)
    _limit_at(monkeypatch, 100 * per_step)
    with pytest.raises(BackendError, match=r"a run of 101 steps x batch 1 .* run at most 100 steps"):
        CPU.simulate(graph, n_steps=101, precision=precision)
    with pytest.raises(BackendError, match=r"run at most \d+ steps"):  # profile's run is fp32
        CPU.profile(graph, n_steps=101)
    assert CPU.simulate(graph, n_steps=100, precision=precision).timesteps_run == 100
    x = np.zeros((101, 1, 16), np.float32)
    descriptor = CPU.compile(graph, {"precision": precision})
    with pytest.raises(BackendError, match="run at most 100 steps"):
        CPU.run_compiled(descriptor, x)


def test_the_cli_refuses_it_in_one_line(monkeypatch, tmp_path):
    from click.testing import CliRunner

    path = tmp_path / "mlp.t1c"
    graph = mlp_graph(0, (16, 64, 10))
    ir.write(path, graph)
    per_step = run_memory.sequence_bytes(lower(graph), 1, 1, 4, accumulator_itemsize=8)
    _limit_at(monkeypatch, 10 * per_step)
    result = CliRunner().invoke(main, ["simulate", str(path), "--steps", "50"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: a run of 50 steps") and result.stderr.count("\n") == 1
    assert "run at most 10 steps" in result.stderr
