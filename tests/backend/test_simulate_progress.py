"""``simulate(progress=)`` / ``profile(progress=)``: one call per operation of every run, so the CLI
can show a progress bar on long simulations (``talon simulate`` / ``talon energy``)."""

import numpy as np
import pytest

from talon.backend import BackendError, get_backend
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


@pytest.mark.parametrize("progress", [3, "yes", 1.5, [print]])
@pytest.mark.parametrize("entry", ["simulate", "profile"])
def test_progress_is_a_bool_or_a_callable(entry, progress):
    """``progress=3`` failed inside the run with a raw TypeError ('int' object is not callable)."""
    with pytest.raises(BackendError, match=r"progress must be True \(a progress bar on stderr\), False / None "):
        getattr(CPU, entry)(mlp_graph(0, (6, 8, 3)), n_steps=3, progress=progress)


def test_progress_true_draws_the_bar_on_a_terminal(monkeypatch):
    import io

    from rich.console import Console

    from talon import _terminal

    screen = io.StringIO()
    monkeypatch.setattr(_terminal, "console", lambda *, stderr=False: Console(file=screen, force_terminal=True))
    graph = mlp_graph(0, (6, 8, 3))
    shown = CPU.simulate(graph, n_steps=4, progress=True)
    assert "simulating" in screen.getvalue() and "layers" in screen.getvalue()
    assert shown.spike_counts == CPU.simulate(graph, n_steps=4, progress=False).spike_counts
    screen.seek(0)
    screen.truncate()
    CPU.profile(graph, n_steps=4, progress=np.True_)
    assert "profiling" in screen.getvalue()
