"""Runs that declare their compiled-kernel work up front (talon._compiled.planned_work), beyond
``simulate`` (tests/test_compiled_dispatch.py): ``GraphExecutor.run_sequence``
(talon.bridge.sequence_plan), ``evaluate``'s shards and calibration (talon.evaluate.work_plan) and
the FPGA lowering's calibration.

The shares are worked out by hand; then each path runs with its family's threshold set so that no
single call is worth a numba start-up but the declared run is: every call of the long run must run
compiled from the first, none of a short one, and the results must be the twins' bits.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from talon import _compiled, ir
from talon._compiled import WorkThreshold

from .dispatch import decisions
from .markers import needs_numba

torch = pytest.importorskip("torch")


def _lif(n: int, **extra) -> ir.LIF:
    return ir.LIF(tau=np.full(n, 6.0), r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.ones(n), **extra)


def _chain(nodes: dict[str, ir.Node]) -> ir.Graph:
    return ir.Graph(nodes, list(itertools.pairwise(nodes)))


def _mlp(sizes=(16, 24, 24, 8), seed: int = 0) -> ir.Graph:
    """Input -> (Affine -> LIF) per layer -> Output, weights strong enough to make every layer fire."""
    rng = np.random.default_rng(seed)
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array([sizes[0]]))}
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = rng.normal(0, 2.0 / np.sqrt(n_in), (n_out, n_in)).astype(np.float32)
        nodes[f"fc{k}"] = ir.Affine(weight=w, bias=np.full(n_out, 0.1, np.float32))
        nodes[f"lif{k}"] = _lif(n_out)
    nodes["output"] = ir.Output(np.array([sizes[-1]]))
    return _chain(nodes)


# ---------------------------------------------------------------------------------------------
# run_sequence


def _share(steps: int, elements: int, synaptic: bool = False) -> float:
    """A call's share by hand; the spiking calls of these tests' neurons, which reset to a value."""
    from talon._compiled import NUMBA_STARTUP_NS
    from talon.bridge.sequence import SYNAPTIC_LOOP_COST, VALUE_RESET_LOOP_COST

    cost = SYNAPTIC_LOOP_COST if synaptic else VALUE_RESET_LOOP_COST
    step, element = cost.twin_step - cost.kernel_step, cost.twin_element - cost.kernel_element
    return steps * (step + element * elements) / NUMBA_STARTUP_NS


def test_the_planned_work_of_run_sequence_is_its_compiled_loops():
    """By hand: a layer's call is what its kernel saves, T x (per-step + per-element saving x B x L),
    over one numba start-up; a CubaLIF makes two calls (synaptic current, by its own cost model, and
    spikes), a CubaLI one, an LI none; a nested executor counts, a cyclic graph does not."""
    from talon import bridge
    from talon.bridge.sequence_plan import executor_share

    cpu, f32 = torch.device("cpu"), torch.float32
    mlp = bridge.ir_to_torch(_mlp())
    assert executor_share(mlp, 100, 4, f32, cpu) == pytest.approx(_share(100, 4 * 24) * 2 + _share(100, 4 * 8))
    assert executor_share(mlp, 100, 4, torch.float16, cpu) == 0.0  # no kernel in float16
    assert executor_share(bridge.ir_to_torch(_mlp()).double(), 100, 4, torch.float64, cpu) == pytest.approx(
        _share(100, 4 * 24) * 2 + _share(100, 4 * 8)
    )

    n = 6
    cuba = dict(tau_syn=np.full(n, 4.0), tau_mem=np.full(n, 8.0), r=np.ones(n), v_leak=np.zeros(n))
    mixed = _chain({
        "input": ir.Input(np.array([n])),
        "cubalif": ir.CubaLIF(**cuba, v_threshold=np.ones(n)),
        "cubali": ir.CubaLI(**cuba),
        "li": ir.LI(tau=np.full(n, 5.0), r=np.ones(n), v_leak=np.zeros(n)),
        "multi": _lif(n, spike_mode="multi", reset_mode="subtract", reset_timing="immediate", comparison=">="),
        "output": ir.Output(np.array([n])),
    })  # fmt: skip
    synaptic = _share(10, 18, synaptic=True)  # the synaptic current's call saves less than the spikes'
    assert executor_share(bridge.ir_to_torch(mixed), 10, 3, f32, cpu) == pytest.approx(2 * synaptic + _share(10, 18))
    assert 0 < synaptic < _share(10, 18)

    nested = ir.Graph(
        {"input": ir.Input(np.array([16])), "inner": _mlp(), "output": ir.Output(np.array([8]))},
        [("input", "inner"), ("inner", "output")],
    )
    assert executor_share(bridge.ir_to_torch(nested), 100, 4, f32, cpu) == executor_share(mlp, 100, 4, f32, cpu)

    cyclic = ir.Graph(
        {"input": ir.Input(np.array([n])), "lif": _lif(n), "output": ir.Output(np.array([n]))},
        [("input", "lif"), ("lif", "lif"), ("lif", "output")],
    )
    assert executor_share(bridge.ir_to_torch(cyclic), 100, 4, f32, cpu) == 0.0


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
def test_run_sequence_declares_only_what_can_change_a_decision(monkeypatch):
    from talon import bridge
    from talon.bridge import sequence
    from talon.bridge.sequence_plan import run_sequence_share

    executor = bridge.ir_to_torch(_mlp())
    x = torch.zeros(100, 4, 16)
    full = _share(100, 4 * 24) * 2 + _share(100, 4 * 8)
    assert run_sequence_share(executor, (x,), None) == 0.0  # below one start-up: nothing to change
    monkeypatch.setattr(sequence, "SEQUENCE_LOOP_WORK", WorkThreshold("run_sequence neuron loop", 1_000_000, 0))
    scale = _compiled.NUMBA_STARTUP_NS / 1_000_000
    with torch.no_grad():
        assert run_sequence_share(executor, (x,), None) == pytest.approx(full * scale)
    assert run_sequence_share(executor, (x,), None) == 0.0  # autograd on, weights require grad: loops not run
    monkeypatch.setenv(_compiled.DISABLE, "1")
    with torch.no_grad():
        assert run_sequence_share(executor, (x,), None) == 0.0


def _run_thresholds(monkeypatch) -> int:
    """40 steps x batch 5 of _mlp(): each 24-wide layer's call 0.43 start-ups, the 8-wide one a little
    less, the run about 1.28; returns the cold_from."""
    from talon.bridge import sequence

    cold = round(sequence.loop_work(40, 5 * 24) / 0.43)
    monkeypatch.setattr(sequence, "SEQUENCE_LOOP_WORK", WorkThreshold("run_sequence neuron loop", cold, 0))
    return cold


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
@pytest.mark.parametrize("steps", [40, 4])
def test_run_sequence_starts_numba_at_the_first_layer_of_a_long_run_only(steps, monkeypatch):
    from talon import bridge

    executor = bridge.ir_to_torch(_mlp())
    x = torch.from_numpy(np.random.default_rng(1).normal(0.5, 1.0, (steps, 5, 16)).astype(np.float32))
    monkeypatch.setenv(_compiled.DISABLE, "1")
    with torch.no_grad():
        twins, twin_state = executor.run_sequence(x)
    monkeypatch.delenv(_compiled.DISABLE)
    cold = _run_thresholds(monkeypatch)
    seen = decisions(monkeypatch)
    with torch.no_grad():
        out, state = executor.run_sequence(x)
    long_run = steps == 40
    assert [answer for *_, answer in seen] == [long_run] * 3
    assert all(work < cold for _, work, _ in seen)  # no call alone is worth a start-up
    assert _compiled.numba_started() == long_run and _compiled.planned_share() == 0.0
    assert torch.equal(out, twins) and all(torch.equal(state[k], twin_state[k]) for k in twin_state)
    assert 0 < int(out.sum()) < out.numel() or not long_run  # (4 steps are too few to reach the output)


# ---------------------------------------------------------------------------------------------
# evaluate


def test_shards_are_told_how_many_their_process_runs():
    from talon.evaluate.shard import ShardJob
    from talon.evaluate.work_plan import _RAN, assign, shard_ran

    jobs = [ShardJob(None, None, a, a + 10) for a in range(0, 50, 10)]
    serial, pooled, theirs = assign(jobs, 1), assign(jobs, 2), assign(jobs, None)
    assert [j.process_shards for j in serial] == [5] * 5 and [j.process_shards for j in pooled] == [3] * 5
    assert [j.process_shards for j in theirs] == [1] * 5
    assert len({j.run for j in serial}) == 1 and serial[0].run != pooled[0].run  # one id per evaluation run
    shard_ran(serial[0])
    shard_ran(serial[1])
    shard_ran(pooled[0])  # another evaluation: the first one's count is forgotten
    assert {pooled[0].run: 1} == _RAN


def _eval_thresholds(monkeypatch, float_share: float = 0.126) -> int:
    """Float32 and integer neuron loops at which a loop call over 20 steps of 12 x 32 neurons (the
    hidden layer of a 12-sample shard of the 64-32-10 MLP) is ``float_share`` (fp32) and 0.106
    (int8) start-ups: a shard about 0.45 start-ups, 4 shards 1.8. Returns the float32 cold_from."""
    from talon.backend.cpu.kernels import fixed_neuron_loop, float_neuron_loop

    float_cold = round(float_neuron_loop.run_work(20, 12 * 32) / float_share)
    fixed_cold = round(fixed_neuron_loop.run_work(20, 12 * 32) / 0.106)
    monkeypatch.setattr(float_neuron_loop, "FLOAT_LOOP_WORK", WorkThreshold("float32 neuron loop", float_cold, 0))
    monkeypatch.setattr(fixed_neuron_loop, "FIXED_LOOP_WORK", WorkThreshold("fixed-point neuron loop", fixed_cold, 0))
    return float_cold


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
@pytest.mark.parametrize("samples", [48, 12])
def test_evaluate_starts_numba_at_the_first_shard_of_a_long_evaluation_only(samples, monkeypatch):
    from talon import evaluate as ev
    from talon.backend.cpu.lowering.program import lower
    from talon.backend.cpu.run import work_plan

    graph = _mlp((64, 32, 10))
    data = ev.digits()
    x, y = data.load(0, samples)
    x = np.stack(x)
    run = dict(n_steps=20, encoder=ev.Rate(), precisions=("fp32", "int8"), executor="serial", shard_size=12)
    run["calibration_samples"] = 4  # the calibration's fp32 run: about 0.23 start-ups
    monkeypatch.setenv(_compiled.DISABLE, "1")
    twins = ev.evaluate(graph, (x, y), **run)
    monkeypatch.delenv(_compiled.DISABLE)
    _eval_thresholds(monkeypatch)
    program = lower(graph)
    shard = work_plan.run_share(program, "fp32", 20, 12) + work_plan.run_share(program, "int8", 20, 12)
    assert shard < 1.0 <= 4 * shard  # one shard is not worth a start-up, four are
    seen = decisions(monkeypatch)
    result = ev.evaluate(graph, (x, y), **run)
    loops = [answer for family, _, answer in seen if "neuron loop" in family]
    calibration = 2  # the fp32 calibration run's two layers come first, below a start-up
    long_run = samples == 48
    assert loops[:calibration] == [False, False]
    assert loops[calibration:] == [long_run] * (len(loops) - calibration) and len(loops) > calibration
    assert _compiled.numba_started() == long_run
    for name in ("fp32", "int8"):
        ours, theirs = result[name].to_dict(), twins[name].to_dict()
        ours.pop("latency_per_sample_ms"), theirs.pop("latency_per_sample_ms")
        assert ours == theirs
    assert result["fp32"].total_spikes > 0 and result["int8"].total_spikes > 0


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
def test_the_evaluate_calibration_declares_its_run(monkeypatch):
    from talon import evaluate as ev

    graph = _mlp((64, 32, 10))
    x, y = ev.digits().load(0, 40)
    cold = _eval_thresholds(monkeypatch, float_share=0.5)  # 40 calibration samples x 20 steps: ~0.6 + ~0.5
    seen = decisions(monkeypatch)
    ev.evaluate(graph, (np.stack(x), y), n_steps=20, encoder=ev.Rate(), precisions="int8", executor="serial",
                calibration_samples=40, shard_size=40)  # fmt: skip
    assert [(family, answer) for family, _, answer in seen[:2]] == [("float32 neuron loop", True)] * 2
    assert all(work < cold for _, work, _ in seen[:2])


# ---------------------------------------------------------------------------------------------
# FPGA lowering


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
@pytest.mark.parametrize("steps", [60, 6])
def test_the_fpga_calibration_starts_numba_at_its_first_loop_when_long(steps, monkeypatch):
    from talon.backend.config import CompileConfig
    from talon.backend.fpga.lowering import plan_fixed

    graph = _mlp((64, 32, 10))
    config = CompileConfig(precision="int8")
    monkeypatch.setenv(_compiled.DISABLE, "1")
    twins = plan_fixed(graph, config, n_steps=steps)
    monkeypatch.delenv(_compiled.DISABLE)
    cold = _eval_thresholds(monkeypatch, float_share=0.25)  # batch 1, 60 steps: ~0.7 + ~0.7 start-ups
    seen = decisions(monkeypatch)
    plan = plan_fixed(graph, config, n_steps=steps)
    assert [answer for *_, answer in seen] == [steps == 60] * 2
    assert _compiled.numba_started() == (steps == 60)
    assert all(work < cold for _, work, _ in seen)
    for ours, theirs in zip(plan.kernels, twins.kernels, strict=True):
        for name, value in vars(theirs).items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(getattr(ours, name), value), name
