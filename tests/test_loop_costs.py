"""The cost models of the compiled time loops (talon._compiled.LoopCost): a call's work is what the
kernel saves over its twin, ``steps x (per-step + per-element saving x elements)`` ns, against one
numba start-up. The rule with injected costs (no clock), the shipped models on the runs measured in
bench/bench_work_plans.py, and a wide run_sequence layer that keeps its PyTorch loop with numba
started, with the same bits as the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from talon import _compiled
from talon._compiled import NUMBA_STARTUP_NS, LoopCost

from .dispatch import decisions
from .markers import needs_numba

# injected costs: a twin of 10 us per step + 4 ns per element, a kernel of 2 ns per element
STEPPY = LoopCost("test loop", twin_step=10_000, twin_element=4, kernel_step=0, kernel_element=2)
# a kernel slower per element than its twin: it saves only on narrow steps
WIDE_LOSER = LoopCost("test loop", twin_step=20_000, twin_element=3, kernel_step=0, kernel_element=4)


def test_the_work_of_a_call_is_what_the_kernel_saves():
    assert STEPPY.twin_ns(100, 1_000) == 100 * (10_000 + 4_000)
    assert STEPPY.kernel_ns(100, 1_000) == 100 * 2_000
    assert STEPPY.saving_ns(100, 1_000) == 100 * 12_000
    assert STEPPY.crossover_elements() is None  # the kernel is quicker at every width
    assert WIDE_LOSER.saving_ns(10, 5_000) == 10 * (20_000 - 5_000) and WIDE_LOSER.saving_ns(10, 30_000) < 0
    assert WIDE_LOSER.crossover_elements() == 20_000  # from here the twin is quicker per call
    assert STEPPY.cold_steps(1_000) == pytest.approx(NUMBA_STARTUP_NS / 12_000)
    assert WIDE_LOSER.cold_steps(20_000) == float("inf")
    rule = STEPPY.threshold()
    assert (rule.cold_from, rule.warm_from) == (NUMBA_STARTUP_NS, 1)
    assert rule.share(STEPPY.saving_ns(100, 1_000)) == pytest.approx(1.2e6 / NUMBA_STARTUP_NS)


@pytest.mark.usefixtures("fresh_dispatch")
def test_a_fresh_process_starts_numba_only_for_a_call_that_pays_for_it():
    rule = STEPPY.threshold()
    enough = int(np.ceil(STEPPY.cold_steps(0)))  # steps of nothing but the per-step dispatch
    assert not rule.use_compiled(STEPPY.saving_ns(enough - 1, 0), count=False)
    assert rule.use_compiled(STEPPY.saving_ns(enough, 0), count=False)
    # many elements per step pay sooner: the per-element saving adds to the per-step one
    assert STEPPY.cold_steps(100_000) < STEPPY.cold_steps(0) / 10


@pytest.mark.usefixtures("fresh_dispatch")
def test_twin_calls_add_up_to_a_start_up_rent_or_buy():
    rule = STEPPY.threshold()
    quarter = round(NUMBA_STARTUP_NS / 4 / 10_000)  # steps of a quarter start-up, 0 elements
    assert [rule.use_compiled(STEPPY.saving_ns(quarter, 0)) for _ in range(3)] == [False] * 3
    assert _compiled.twin_cost_so_far() == pytest.approx(0.75, abs=1e-6)
    assert rule.use_compiled(STEPPY.saving_ns(quarter, 0))


@pytest.mark.usefixtures("fresh_dispatch")
def test_a_call_whose_kernel_saves_nothing_keeps_the_twin_even_with_numba_started(monkeypatch):
    rule = WIDE_LOSER.threshold()
    wide = WIDE_LOSER.saving_ns(10_000, 100_000)  # far above a start-up of twin time, but the twin is quicker
    assert wide < 0 and not rule.use_compiled(wide) and _compiled.twin_cost_so_far() == 0.0
    assert rule.share(wide) == 0.0
    with _compiled.planned_work(5.0):  # a long declared run does not make a losing call compiled
        assert not rule.use_compiled(wide)
    monkeypatch.setattr(_compiled, "_started", True)
    assert not rule.use_compiled(wide)
    assert rule.use_compiled(WIDE_LOSER.saving_ns(1, 10))  # a narrow call saves: compiled once started


def test_the_shipped_models_pick_the_path_measured_quicker():
    """The runs of bench/bench_work_plans.py whose quicker path was measured (docs/backend.md §9.2):
    the float32 loops of the long FPGA calibration (64-256-10, T 10,000, B 16) save less than a
    start-up, so the twins run (they were 1.2x quicker than forcing numba); in run_sequence
    (snnTorch's Leaky, a subtractive reset) 40,000 steps of a 64-128-10 network save more (the
    PyTorch loop pays its per-step dispatch 80,000 times), so numba starts, while the 784-128-128-128-10
    network over 10,000 steps and a 64 x 512 layer over 1,200 steps keep the loops."""
    from talon.backend.cpu.lowering.program import lower
    from talon.backend.cpu.run.work_plan import run_share
    from talon.bridge.sequence import SEQUENCE_LOOP_COST, VALUE_RESET_LOOP_COST
    from talon.examples import mlp_graph

    assert run_share(lower(mlp_graph(0, (64, 256, 10))), "fp32", 10_000, 16) < 1.0
    assert run_share(lower(mlp_graph(0, (64, 128, 10))), "fp32", 50_000, 1) > 1.0
    long_narrow = SEQUENCE_LOOP_COST.saving_ns(40_000, 128) + SEQUENCE_LOOP_COST.saving_ns(40_000, 10)
    assert long_narrow > NUMBA_STARTUP_NS
    four_layers = 3 * SEQUENCE_LOOP_COST.saving_ns(10_000, 128) + SEQUENCE_LOOP_COST.saving_ns(10_000, 10)
    assert four_layers < NUMBA_STARTUP_NS  # 784-128-128-128-10, T 10,000: the loops were 1.1x quicker
    assert SEQUENCE_LOOP_COST.saving_ns(1_200, 64 * 512) < 0  # the wide layer keeps its loop, numba started or not
    assert VALUE_RESET_LOOP_COST.saving_ns(1_200, 64 * 512) > 0  # ... unless a value reset makes the loop dearer


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
def test_run_sequence_keeps_the_loop_where_the_kernel_saves_nothing(monkeypatch):
    """With numba started, a layer whose kernel saves nothing (injected: slower per element from
    20,000 elements a step) runs the PyTorch loop, a narrow one the kernel; the bits are the
    kernel's either way."""
    import torch

    from talon import bridge, ir
    from talon.bridge import sequence
    from talon.examples import leaky

    n = 64
    lif = leaky(n)  # a subtractive reset: the spiking call asks SEQUENCE_LOOP_COST
    graph = ir.Graph(
        {"input": ir.Input(np.array([n])), "lif": lif, "output": ir.Output(np.array([n]))},
        [("input", "lif"), ("lif", "output")],
    )
    executor = bridge.ir_to_torch(graph)
    rng = np.random.default_rng(7)
    monkeypatch.setattr(sequence, "SEQUENCE_LOOP_COST", WIDE_LOSER)
    monkeypatch.setattr(sequence, "SEQUENCE_LOOP_WORK", WIDE_LOSER.threshold())
    monkeypatch.setattr(_compiled, "_started", True)
    for batch, compiled_expected in ((400, False), (4, True)):  # 25,600 and 256 elements a step
        x = torch.from_numpy(rng.normal(0.4, 1.0, (30, batch, n)).astype(np.float32))
        monkeypatch.setenv(_compiled.FORCE, "1")
        with torch.no_grad():
            forced, forced_state = executor.run_sequence(x)
        monkeypatch.delenv(_compiled.FORCE)
        seen = decisions(monkeypatch)
        with torch.no_grad():
            out, state = executor.run_sequence(x)
        assert [answer for *_, answer in seen] == [compiled_expected]
        assert torch.equal(out, forced) and torch.equal(state["lif"], forced_state["lif"])
        assert 0 < int(out.sum()) < out.numel()
