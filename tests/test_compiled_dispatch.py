"""The work-size dispatch of the compiled kernels (talon._compiled.WorkThreshold, docs/backend.md §9.3).

The rule on its own (no numba needed), then every kernel family on the same input with its threshold
set just above the call's work (the twin runs, the kernel is never requested) and at it (the kernel
runs): the results are identical across the threshold. Last, whole one-shot processes: ``import
talon`` and ``talon --help`` import none of numba, torch, jax; a small ``talon simulate`` / ``talon
events info`` runs without importing numba and prints what the forced-numba run prints.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from talon import _compiled
from talon._compiled import WorkThreshold
from talon.ir.errors import MissingDependencyError

from .dispatch import decisions
from .markers import needs_numba
from .subprocesses import child_env


def _start(monkeypatch):
    monkeypatch.setattr(_compiled, "_started", True)  # what compiled() records when it hands out a kernel


def test_small_work_runs_the_twin_until_the_twin_work_pays_for_numba(fresh_dispatch):
    rule = WorkThreshold("test", cold_from=128, warm_from=8)
    assert not rule.use_compiled(4)  # below warm_from: never worth it, and not counted
    assert [rule.use_compiled(32), rule.use_compiled(64)] == [False, False]
    assert _compiled.twin_cost_so_far() == 0.75
    assert not rule.use_compiled(4)
    assert rule.use_compiled(32)  # 32 + 64 + 32 reaches cold_from: numba is worth starting
    assert not _compiled.numba_started()  # until compiled() hands out a kernel


def test_the_twin_cost_of_every_family_adds_up(fresh_dispatch):
    small, large = WorkThreshold("a", cold_from=100, warm_from=0), WorkThreshold("b", cold_from=10_000, warm_from=0)
    assert not small.use_compiled(50) and not large.use_compiled(2_500)
    assert _compiled.twin_cost_so_far() == 0.75
    assert not small.use_compiled(24) and large.use_compiled(2_500) and small.use_compiled(1)


def test_once_numba_is_started_warm_from_decides_for_every_family(fresh_dispatch, monkeypatch):
    rule = WorkThreshold("test", cold_from=100, warm_from=10)
    assert not rule.use_compiled(50)
    _start(monkeypatch)  # another family ran compiled
    assert _compiled.numba_started() and rule.use_compiled(10) and not rule.use_compiled(9)


@needs_numba
def test_handing_out_a_kernel_marks_numba_started(fresh_dispatch, monkeypatch):
    assert not _compiled.numba_started()
    assert _compiled.compiled(_twice) is not None and _compiled.numba_started()


def _twice(x):
    return 2 * x


def test_uncounted_calls_leave_the_history_alone(fresh_dispatch):
    rule = WorkThreshold("test", cold_from=100, warm_from=0)
    assert not rule.use_compiled(99, count=False) and _compiled.twin_cost_so_far() == 0
    assert rule.use_compiled(100, count=False)


def test_a_planned_run_worth_a_start_up_starts_numba_at_its_first_call(fresh_dispatch):
    rule = WorkThreshold("test", cold_from=100, warm_from=10)
    assert rule.share(30) == 0.3 and rule.share(9) == 0.0  # below warm_from: never compiled, not planned
    assert not rule.use_compiled(30)  # without a plan: rent, find out later
    with _compiled.planned_work(0.8):  # 0.3 done + 0.8 to come reach one start-up: buy now
        assert _compiled.planned_share() == 0.8
        assert rule.use_compiled(30) and not rule.use_compiled(9)
    assert _compiled.planned_share() == 0.0


def test_a_planned_run_below_a_start_up_is_not_counted_twice(fresh_dispatch, monkeypatch):
    rule = WorkThreshold("test", cold_from=128, warm_from=0)
    with _compiled.planned_work(0.75):
        assert [rule.use_compiled(32) for _ in range(3)] == [False, False, False]  # 0.75 in all: twins
        assert _compiled.planned_share() == 0.0 and _compiled.twin_cost_so_far() == 0.75
        assert not rule.use_compiled(31)  # past the plan: the history decides, as without one
        assert rule.use_compiled(1)
    monkeypatch.setattr(_compiled, "_foregone", 0.0)  # a new process
    with _compiled.planned_work(0.5):
        with _compiled.planned_work(0.25):  # a nested plan is part of the outer one
            assert _compiled.planned_share() == 0.5
            assert not rule.use_compiled(16)
        assert _compiled.planned_share() == 0.375
    with pytest.raises(ValueError, match="must be >= 0"), _compiled.planned_work(float("nan")):
        pass


def test_the_environment_forces_either_path(fresh_dispatch, monkeypatch):
    rule = WorkThreshold("test", cold_from=100, warm_from=10)
    monkeypatch.setenv(_compiled.FORCE, "1")
    assert rule.use_compiled(0) and _compiled.mode() == "compiled"
    monkeypatch.setenv(_compiled.DISABLE, "1")  # wins over FORCE
    _start(monkeypatch)
    assert not rule.use_compiled(10**12) and _compiled.mode() == "twin"
    monkeypatch.setenv(_compiled.DISABLE, "0")  # "0" is unset
    assert _compiled.mode() == "compiled"


def test_forcing_numba_without_numba_names_the_extra(monkeypatch):
    monkeypatch.delenv(_compiled.DISABLE, raising=False)
    monkeypatch.setenv(_compiled.FORCE, "1")
    monkeypatch.setattr(_compiled, "numba_installed", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"TALON_FORCE_NUMBA=1 needs numba.*'fast' extra"):
        WorkThreshold("test", 10, 1).use_compiled(5)
    with pytest.raises(MissingDependencyError, match="fast"):
        _compiled.compiled(len)
    monkeypatch.delenv(_compiled.FORCE)
    assert not WorkThreshold("test", 10, 1).use_compiled(10**9) and _compiled.compiled(len) is None


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError, match="warm_from <= cold_from"):
        WorkThreshold("test", cold_from=10, warm_from=20)


# ---------------------------------------------------------------------------------------------
# every family, across its threshold


def _across(module, attr: str, work: int, call, monkeypatch):
    """``call()`` with ``module.<attr>``'s threshold at ``work + 1`` (the twin must run) and at ``work``
    (the kernel must run); the two results."""
    requested = []
    real = module.compiled
    monkeypatch.setattr(module, "compiled", lambda kernel: requested.append(kernel.__name__) or real(kernel))
    family = getattr(module, attr)
    results = []
    for cold_from in (work + 1, work):
        requested.clear()
        monkeypatch.setattr(module, attr, WorkThreshold(family.family, cold_from, min(family.warm_from, work)))
        results.append(call())
        assert bool(requested) == (cold_from == work), (attr, cold_from, requested)
    return results


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
class TestEachFamilyAcrossItsThreshold:
    def test_nms(self, monkeypatch):
        from talon import _nms

        rng = np.random.default_rng(0)
        n = 300
        rows = np.concatenate([rng.uniform(0, 100, (n, 2)), rng.uniform(5, 30, (n, 2)), rng.random((n, 3))], 1)
        rows = rows.astype(np.float32)
        work = int(np.count_nonzero(rows[:, 4:].max(axis=1) > 0.3))
        below, above = _across(_nms, "NMS_WORK", work, lambda: _nms.nms_rows(rows, 0.3, 0.4, 0), monkeypatch)
        assert np.array_equal(below, above) and np.count_nonzero(below[:, 5] >= 0) > 10

    @pytest.mark.parametrize("version", ["2.0", "3.0"])
    def test_evt_decoding(self, version, monkeypatch):
        from talon.io import EvtDecoder, encode_evt2, encode_evt3, generate_random_events, prophesee

        events = generate_random_events(3_000, (64, 48), seed=1)
        data = (encode_evt2 if version == "2.0" else encode_evt3)(events, (64, 48))
        words = np.frombuffer(data[data.index(b"% end\n") + 6 :], "<u4" if version == "2.0" else "<u2")
        attr = "EVT2_WORK" if version == "2.0" else "EVT3_WORK"
        below, above = _across(
            prophesee, attr, words.size, lambda: EvtDecoder(version, (64, 48)).decode_words(words), monkeypatch
        )
        assert np.array_equal(below, above) and np.array_equal(below, events)

    def test_input_quantization(self, monkeypatch):
        from talon.backend.cpu.formats import fixed_point

        x = np.random.default_rng(2).normal(0, 3, 5_000).astype(np.float32)
        x[:7] = [0.5, 1.5, -2.5, 1e38, -np.inf, 2**-5, 3.0625]

        def call():
            return fixed_point.quantize_dyadic(x, 4, 100)

        (q0, *counts0), (q1, *counts1) = _across(fixed_point, "QUANTIZE_WORK", x.size, call, monkeypatch)
        assert np.array_equal(q0, q1) and counts0 == counts1 and counts0[0] > 0 and counts0[1] > 0

    @pytest.mark.parametrize("precision", ["fp32", "int8"])
    def test_neuron_loops(self, precision, monkeypatch):
        from talon import ir
        from talon.backend import get_backend
        from talon.backend.cpu.kernels import fixed_neuron_loop, float_neuron_loop

        n, steps, batch = 24, 40, 3
        rng = np.random.default_rng(3)
        graph = ir.Graph(
            {
                "input": ir.Input(np.array([n])),
                "lif": ir.LIF(tau=np.full(n, 6.0), r=np.full(n, 2.0), v_leak=np.full(n, 0.05), v_threshold=np.ones(n)),
                "output": ir.Output(np.array([n])),
            },
            [("input", "lif"), ("lif", "output")],
        )
        x = rng.normal(0.4, 1.0, (steps, batch, n)).astype(np.float32)
        module = float_neuron_loop if precision == "fp32" else fixed_neuron_loop
        attr = "FLOAT_LOOP_WORK" if precision == "fp32" else "FIXED_LOOP_WORK"
        work = module.run_work(steps, batch * n)
        cpu = get_backend("cpu")

        def call():
            with np.errstate(all="ignore"):
                return cpu.simulate(graph, {"input": x}, precision=precision)

        if precision == "int8":  # the fp32 calibration run would ask the float loop: keep it on its twin
            monkeypatch.setattr(float_neuron_loop, "FLOAT_LOOP_WORK", WorkThreshold("float", 10**15, 0))
        below, above = _across(module, attr, work, call, monkeypatch)
        assert np.array_equal(below.outputs["output"], above.outputs["output"])
        assert below.spike_counts == above.spike_counts and 0 < below.spike_counts["lif"] < steps * batch * n

    def test_event_driven_product(self, monkeypatch):
        from talon.backend.cpu.kernels import events

        rng = np.random.default_rng(4)
        weight_t = rng.integers(-127, 128, (200, 30)).astype(np.float32)
        x = (rng.random((50, 200)) < 0.02).astype(np.float32) * 3
        layer = events.EventWeights(weight_t, worst=3 * 127 * 200)

        def call():
            return events.synaptic_product(x, weight_t, layer)

        below, above = _across(events, "EVENT_WORK", x.size, call, monkeypatch)
        assert np.array_equal(below, above)
        assert np.array_equal(below, x.astype(np.int64) @ weight_t.astype(np.int64))

    def test_run_sequence_neuron_loops(self, monkeypatch):
        import torch

        from talon import bridge, ir
        from talon.bridge import sequence

        n, steps, batch = 24, 40, 3
        graph = ir.Graph(
            {
                "input": ir.Input(np.array([n])),
                "lif": ir.LIF(tau=np.full(n, 6.0), r=np.full(n, 2.0), v_leak=np.full(n, 0.05), v_threshold=np.ones(n)),
                "output": ir.Output(np.array([n])),
            },
            [("input", "lif"), ("lif", "output")],
        )
        executor = bridge.ir_to_torch(graph)
        x = torch.from_numpy(np.random.default_rng(5).normal(0.4, 1.0, (steps, batch, n)).astype(np.float32))
        work = sequence.loop_work(steps, batch * n, sequence.VALUE_RESET_LOOP_COST)  # the LIF resets to a value

        def call():
            with torch.no_grad():
                return executor.run_sequence(x)

        (below, state_below), (above, state_above) = _across(sequence, "SEQUENCE_LOOP_WORK", work, call, monkeypatch)
        assert torch.equal(below, above) and torch.equal(state_below["lif"], state_above["lif"])
        assert 0 < int(below.sum()) < steps * batch * n


# ---------------------------------------------------------------------------------------------
# simulate declares the work of its run (talon.backend.cpu.run.work_plan)


def test_the_planned_work_of_a_run_is_its_neuron_loops():
    """By hand: a neuron loop's share is what its kernel saves, steps x (per-step saving + per-element
    saving x batch x neurons), over one numba start-up."""
    from talon._compiled import NUMBA_STARTUP_NS
    from talon.backend.config import CompileConfig
    from talon.backend.cpu.kernels.fixed_neuron_loop import FIXED_LOOP_COST
    from talon.backend.cpu.kernels.float_neuron_loop import FLOAT_LOOP_COST
    from talon.backend.cpu.lowering.program import lower
    from talon.backend.cpu.run.work_plan import run_share, simulate_share
    from talon.backend.fpga.examples import recurrent_snn
    from talon.examples import mlp_graph

    mlp = lower(mlp_graph(0, (64, 32, 10)))

    def saved(cost, steps, elements):
        step = cost.twin_step - cost.kernel_step
        return steps * (step + (cost.twin_element - cost.kernel_element) * elements) / NUMBA_STARTUP_NS

    fp32 = saved(FLOAT_LOOP_COST, 100, 2 * 32) + saved(FLOAT_LOOP_COST, 100, 2 * 10)
    int8 = saved(FIXED_LOOP_COST, 100, 2 * 32) + saved(FIXED_LOOP_COST, 100, 2 * 10)
    assert run_share(mlp, "fp32", 100, 2) == pytest.approx(fp32)
    assert run_share(mlp, "int8", 100, 2) == run_share(mlp, "int4", 100, 2) == pytest.approx(int8)
    assert run_share(mlp, "fp16", 100, 2) == 0.0  # no compiled loop in float16
    assert simulate_share(mlp, CompileConfig(precision="int8"), 100, 2) == pytest.approx(fp32 + int8)
    assert simulate_share(mlp, CompileConfig(precision="fp16"), 100, 2) == pytest.approx(fp32)  # the reference
    # a CubaLIF (24) in a cycle: steps in numpy in float32 (not planned), one integer call per step
    rec = lower(recurrent_snn())
    assert run_share(rec, "fp32", 100, 2) == pytest.approx(saved(FLOAT_LOOP_COST, 100, 2 * 8))
    per_step = saved(FIXED_LOOP_COST, 1, 2 * 24)
    assert run_share(rec, "int8", 100, 2) == pytest.approx(100 * per_step + saved(FIXED_LOOP_COST, 100, 2 * 8))


def test_neurons_the_loops_do_not_implement_are_not_planned():
    from talon import ir
    from talon.backend.cpu.lowering.program import lower
    from talon.backend.cpu.run.work_plan import run_share

    def one(neuron):
        graph = ir.Graph({"input": ir.Input(np.array([4])), "n": neuron, "output": ir.Output(np.array([4]))},
                         [("input", "n"), ("n", "output")])  # fmt: skip
        return run_share(lower(graph), "fp32", 10, 1), run_share(lower(graph), "int8", 10, 1)

    plain = one(ir.LIF(tau=np.full(4, 5.0), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4)))
    assert plain[0] > 0 and plain[1] > 0
    multi = ir.LIF(tau=np.full(4, 5.0), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4),
                   spike_mode="multi", reset_mode="subtract", reset_timing="immediate", comparison=">=")  # fmt: skip
    assert one(multi) == (0.0, 0.0)
    euler = ir.LIF(tau=np.full(4, 5.0), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4), integration="euler")
    assert one(euler) == (0.0, plain[1])  # the integer loop runs Euler neurons, the float32 loop does not


def _small_thresholds(monkeypatch, fixed_share: float) -> int:
    """Neuron-loop thresholds at which 50 steps of the 64-32-10 MLP count as a long run: each loop
    call below one start-up, the calls of a run together above it. A float32 call of 50 steps of
    the 32 neurons is 0.19 start-ups, an integer one ``fixed_share``; returns the float32 cold_from."""
    from talon.backend.cpu.kernels import fixed_neuron_loop, float_neuron_loop

    float_cold = round(float_neuron_loop.run_work(50, 32) / 0.19)
    fixed_cold = round(fixed_neuron_loop.run_work(50, 32) / fixed_share)
    monkeypatch.setattr(float_neuron_loop, "FLOAT_LOOP_WORK", WorkThreshold("float32 neuron loop", float_cold, 0))
    monkeypatch.setattr(fixed_neuron_loop, "FIXED_LOOP_WORK", WorkThreshold("fixed-point neuron loop", fixed_cold, 0))
    return float_cold


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
@pytest.mark.parametrize("steps", [50, 5])
def test_simulate_starts_numba_at_the_first_call_of_a_long_run_only(steps, monkeypatch):
    """int8: the fp32 calibration's neuron loops come first; each is 0.19 start-ups (50 steps), the
    integer loops 0.43: no call alone pays for numba, the run does (1.24). Without the plan the
    calibration ran its twins; with it, every neuron loop of the long run is compiled. The short run
    (5 steps: 0.12) starts nothing. Either way the results are the twins'."""
    from talon.backend import get_backend
    from talon.examples import mlp_graph

    graph, cpu = mlp_graph(0, (64, 32, 10)), get_backend("cpu")
    monkeypatch.setenv(_compiled.DISABLE, "1")
    twins = cpu.simulate(graph, n_steps=steps, precision="int8")
    monkeypatch.delenv(_compiled.DISABLE)
    float_cold = _small_thresholds(monkeypatch, fixed_share=0.43)
    seen = decisions(monkeypatch)
    result = cpu.simulate(graph, n_steps=steps, precision="int8")
    loops = [(family, answer) for family, _, answer in seen if "neuron loop" in family]
    long_run = steps == 50
    assert loops[0] == ("float32 neuron loop", long_run) and seen[0][0] == "float32 neuron loop"
    assert all(answer == long_run for _, answer in loops) and _compiled.numba_started() == long_run
    assert all(work < float_cold for family, work, _ in seen if family == "float32 neuron loop")
    assert np.array_equal(result.outputs["output"], twins.outputs["output"])
    assert result.spike_counts == twins.spike_counts and result.spike_counts["lif1"] > 0
    assert result.quantization.spike_agreement == twins.quantization.spike_agreement


@needs_numba
@pytest.mark.usefixtures("fresh_dispatch")
def test_run_compiled_plans_its_run_too(monkeypatch):
    from talon.backend import get_backend
    from talon.examples import mlp_graph

    cpu = get_backend("cpu")
    descriptor = cpu.compile(mlp_graph(0, (64, 32, 10)), precision="int8", n_steps=5)
    _small_thresholds(monkeypatch, fixed_share=0.6)  # 50 steps: 0.6 + 0.6 start-ups
    seen = decisions(monkeypatch)
    result = cpu.run_compiled(descriptor, n_steps=50)
    assert [answer for family, _, answer in seen if "neuron loop" in family] == [True, True]
    monkeypatch.setenv(_compiled.DISABLE, "1")
    twins = cpu.run_compiled(descriptor, n_steps=50)
    assert (
        np.array_equal(result.outputs["output"], twins.outputs["output"]) and result.spike_counts == twins.spike_counts
    )


# ---------------------------------------------------------------------------------------------
# whole processes

HEAVY = ("numba", "torch", "jax")
_LOADED = "import sys, json; print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))"


_DEFAULT_MODE = {_compiled.DISABLE: None, _compiled.FORCE: None}  # child_env: without the numba switches


def _modules_after(code: str) -> list[str]:
    probe = code + "\n" + _LOADED.format(heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, env=child_env(**_DEFAULT_MODE), capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli(args: list[str]) -> str:
    run = "try:\n    main()\nexcept SystemExit:\n    pass"
    return f"import sys\nfrom talon.cli import main\nsys.argv = ['talon', *{args!r}]\n{run}"


def test_import_talon_and_talon_help_load_no_heavy_module():
    assert _modules_after("import talon, talon.io, talon.backend, talon.sdk") == []
    assert _modules_after(_cli(["--help"])) == []
    assert _modules_after(_cli(["simulate", "--help"])) == []


@needs_numba
def test_a_small_one_shot_command_runs_the_twins_and_prints_what_numba_prints(tmp_path):
    from talon import ir
    from talon.examples import mlp_graph
    from talon.io import generate_random_events, write_raw

    ir.write(tmp_path / "small.t1c", mlp_graph(0, (64, 32, 10)))
    write_raw(tmp_path / "small.raw", generate_random_events(4_000, (64, 48), seed=2), version="3.0")
    for args in (["simulate", "small.t1c", "--precision", "int8", "--json"], ["events", "info", "small.raw", "--json"]):
        outputs = {}
        for mode, switch in (("dispatch", {}), ("forced", {_compiled.FORCE: "1"})):
            run = subprocess.run(
                [sys.executable, "-c", _cli(args) + "\n" + _LOADED.format(heavy=("numba",))],
                env=child_env(**{**_DEFAULT_MODE, **switch}), cwd=tmp_path, check=True, capture_output=True, text=True,
            )  # fmt: skip
            *printed, loaded = run.stdout.strip().splitlines()
            assert json.loads(loaded) == ([] if mode == "dispatch" else ["numba"]), (args, mode)
            outputs[mode] = "\n".join(printed)
        assert outputs["dispatch"] == outputs["forced"] and outputs["dispatch"].startswith("{"), args
