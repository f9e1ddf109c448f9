"""``simulate(progress=)`` / ``profile(progress=)``: one call per operation of every run, so the CLI
can show a progress bar on long simulations (``talon simulate`` / ``talon energy``)."""

import pytest

from talon.backend import get_backend
from talon.backend.cpu.lowering.program import lower

from ..sdk import graphs
from .graphs import mlp_graph

CPU = get_backend("cpu")


@pytest.mark.parametrize(("precision", "runs"), [("fp32", 1), ("fp16", 2), ("int8", 2)])
@pytest.mark.parametrize("name", ["mlp", "recurrent", "nested"])
def test_progress_counts_every_operation_of_every_run(name, precision, runs):
    graph = mlp_graph(0, (6, 8, 3)) if name == "mlp" else getattr(graphs, name)()
    calls = []
    result = CPU.simulate(
        graph, n_steps=4, precision=precision, progress=lambda done, total: calls.append((done, total))
    )
    total = runs * len(lower(graph).ops)  # a reduced precision runs fp32 first (calibration / reference)
    assert calls == [(k, total) for k in range(1, total + 1)]
    assert result.spike_counts == CPU.simulate(graph, n_steps=4, precision=precision).spike_counts


def test_profile_reports_progress_too():
    graph = graphs.recurrent()
    calls = []
    CPU.profile(graph, n_steps=3, progress=lambda done, total: calls.append((done, total)))
    total = len(lower(graph).ops)
    assert calls == [(k, total) for k in range(1, total + 1)]
