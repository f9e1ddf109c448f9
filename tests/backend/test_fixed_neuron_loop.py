"""The compiled time loop of the integer neurons (fixed_neuron_loop.py) against the reference
``FixedNeuron.step`` loop: the same integers — spikes, membranes and synaptic currents after every
step — for every neuron type, reset mode, reset timing, comparison and spike timing."""

import itertools

import numpy as np
import pytest

from talon import ir
from talon.backend import CalibrationRangeWarning, get_backend
from talon.backend.cpu.kernels import fixed_neuron_loop

from ..markers import needs_numba
from .graphs import uniform

pytestmark = [needs_numba, pytest.mark.usefixtures("force_numba")]  # small inputs: force the loop
CPU = get_backend("cpu")
N = 12


def _graph(neuron: ir.Node, seed: int) -> ir.Graph:
    """Two weight layers feeding the neuron (a fan-in of two edges of different scales), read out."""
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([20])),
            "fc_a": ir.Affine(uniform(rng, (N, 20), 20) * 3, uniform(rng, N, 20)),
            "fc_b": ir.Linear(uniform(rng, (N, 20), 20)),
            "neuron": neuron,
            "out": ir.Linear(uniform(rng, (4, N), N)),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc_a"), ("input", "fc_b"), ("fc_a", "neuron"), ("fc_b", "neuron"), ("neuron", "out"),
         ("out", "output")],
    )  # fmt: skip


def _spiking_neurons():
    rng = np.random.default_rng(7)
    theta = rng.uniform(0.5, 1.5, N)
    options = itertools.product(("value", "subtract", "none"), ("immediate", "delayed", "delayed_pre_decay",
                                "snntorch_immediate"), (">=", ">"), ("post", "pre"))  # fmt: skip
    for k, (mode, timing, comparison, spike_timing) in enumerate(options):
        fields = dict(v_threshold=theta, reset_mode=mode, reset_timing=timing, comparison=comparison,
                      spike_timing=spike_timing, v_reset=np.full(N, -0.25) if mode == "value" else None,
                      v_init=rng.uniform(-0.5, 0.5, N) if k % 3 == 0 else None)  # fmt: skip
        for kind in ("LIF", "IF", "CubaLIF"):
            try:
                if kind == "LIF":
                    node = ir.LIF(tau=np.full(N, 8.0), r=np.full(N, 2.0), v_leak=np.full(N, 0.1), **fields)
                elif kind == "IF":
                    node = ir.IF(r=np.full(N, 1.5), **fields)
                else:
                    node = ir.CubaLIF(tau_syn=np.full(N, 4.0), tau_mem=np.full(N, 6.0), r=np.full(N, 3.0), **fields)
            except ValueError:  # a combination the IR refuses (e.g. snntorch_immediate needs subtract)
                continue
            yield pytest.param(node, id=f"{kind}-{mode}-{timing}-{comparison}-{spike_timing}")


def _non_spiking_neurons():
    yield pytest.param(ir.LI(tau=np.full(N, 5.0), r=np.full(N, 2.0), v_leak=np.full(N, 0.05)), id="LI")
    yield pytest.param(ir.CubaLI(tau_syn=np.full(N, 3.0), tau_mem=np.full(N, 7.0)), id="CubaLI")
    yield pytest.param(ir.Integrator(r=np.full(N, 0.5)), id="Integrator")


@pytest.mark.parametrize("neuron", [*_spiking_neurons(), *_non_spiking_neurons()])
def test_the_compiled_loop_gives_the_step_loops_integers(neuron, monkeypatch):
    graph = _graph(neuron, seed=1)
    x = np.random.default_rng(2).normal(0.0, 1.0, (25, 3, 20)).astype(np.float32)
    calls = []
    original = fixed_neuron_loop.run_neurons
    monkeypatch.setattr(
        "talon.backend.cpu.kernels.fixed_neurons.run_neurons", lambda *a: calls.append(1) or original(*a)
    )
    fast = CPU.simulate(graph, {"input": x}, step_by_step=True, precision="int8")
    assert calls, "the compiled loop did not run"
    monkeypatch.setattr(fixed_neuron_loop, "compiled", lambda kernel: None)  # the reference: FixedNeuron.step
    slow = CPU.simulate(graph, {"input": x}, step_by_step=True, precision="int8")
    for key in ("output_int", "v_int", "i_int"):
        if key in slow.node_states["neuron"]:
            assert np.array_equal(fast.node_states["neuron"][key], slow.node_states["neuron"][key]), key
    assert np.array_equal(fast.outputs["output"], slow.outputs["output"])
    assert fast.spike_counts == slow.spike_counts
    if isinstance(neuron, (ir.LIF, ir.IF, ir.CubaLIF)):
        assert 0 < slow.spike_counts["neuron"] < x.shape[0] * x.shape[1] * N  # the resets were exercised


def _cyclic_graph(neuron: ir.Node, seed: int) -> ir.Graph:
    """The neuron in a loop through a recurrent weight layer: it runs step by step (``step``)."""
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([20])),
            "fc": ir.Affine(uniform(rng, (N, 20), 20) * 3, uniform(rng, N, 20)),
            "neuron": neuron,
            "rec": ir.Linear(uniform(rng, (N, N), N)),
            "out": ir.Linear(uniform(rng, (4, N), N)),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc"), ("fc", "neuron"), ("neuron", "rec"), ("rec", "neuron"), ("neuron", "out"),
         ("out", "output")],
    )  # fmt: skip


@pytest.mark.parametrize(
    "neuron", [p for k, p in enumerate(_spiking_neurons()) if k % 7 == 0] + [*_non_spiking_neurons()]
)
def test_the_compiled_step_in_a_cycle_gives_the_reference_integers(neuron, monkeypatch):
    graph = _cyclic_graph(neuron, seed=5)
    x = np.random.default_rng(6).normal(0.0, 1.0, (20, 3, 20)).astype(np.float32)
    calls = []
    original = fixed_neuron_loop.step_neurons
    monkeypatch.setattr(
        "talon.backend.cpu.kernels.fixed_neurons.step_neurons", lambda *a: calls.append(1) or original(*a)
    )
    fast = CPU.simulate(graph, {"input": x}, step_by_step=True, precision="int8")
    assert len(calls) == x.shape[0]  # one compiled step per time step
    monkeypatch.setattr(fixed_neuron_loop, "compiled", lambda kernel: None)
    slow = CPU.simulate(graph, {"input": x}, step_by_step=True, precision="int8")
    for key in ("output_int", "v_int", "i_int"):
        if key in slow.node_states["neuron"]:
            assert np.array_equal(fast.node_states["neuron"][key], slow.node_states["neuron"][key]), key
    assert np.array_equal(fast.outputs["output"], slow.outputs["output"])


def test_a_compiled_program_on_stronger_inputs_saturates_the_same_way(monkeypatch):
    """Calibrated on weak inputs, run on strong ones: the states hit the saturation bound of
    ``state_bits`` and both loops clamp alike."""
    graph = _graph(ir.CubaLI(tau_syn=np.full(N, 50.0), tau_mem=np.full(N, 50.0), r=np.full(N, 4.0)), seed=3)
    rng = np.random.default_rng(4)
    weak = rng.normal(0.0, 0.1, (10, 2, 20)).astype(np.float32)
    strong = np.broadcast_to(np.sign(rng.normal(size=20)) * 5.0, (60, 2, 20)).astype(np.float32)  # held
    descriptor = CPU.compile(graph, precision="int8", calibration_inputs=weak)
    with pytest.warns(CalibrationRangeWarning, match="input 'input': 2400 of 2400 values saturate"):
        fast = CPU.run_compiled(descriptor, {"input": strong}, step_by_step=True)
    monkeypatch.setattr(fixed_neuron_loop, "compiled", lambda kernel: None)
    with pytest.warns(CalibrationRangeWarning):
        slow = CPU.run_compiled(descriptor, {"input": strong}, step_by_step=True)
    top = 2**23 - 1  # int8: 24-bit state
    for key in ("v_int", "i_int"):
        assert np.abs(slow.node_states["neuron"][key]).max() >= top, key  # saturated
        assert np.array_equal(fast.node_states["neuron"][key], slow.node_states["neuron"][key]), key
    assert np.array_equal(fast.outputs["output"], slow.outputs["output"])


@pytest.mark.parametrize(
    "neuron",
    [
        pytest.param(ir.IF(v_threshold=np.full(N, 0.5), reset_mode="subtract", spike_mode="multi"), id="multi-spike"),
        pytest.param(ir.LIF(tau=np.full(N, 5.0), v_min=np.full(N, -0.5)), id="v_min"),
        pytest.param(
            ir.CubaLIF(
                tau_syn=np.full(N, 4.0),
                tau_mem=np.full(N, 6.0),
                r=np.full(N, 4.0),
                v_threshold=np.full(N, 0.3),
                synapse="input_first",
            ),
            id="input_first",
        ),
    ],
)
def test_variants_the_loop_does_not_implement_run_the_reference_step(neuron, monkeypatch):
    graph = _graph(neuron, seed=8)
    x = np.random.default_rng(9).normal(0.0, 1.0, (15, 2, 20)).astype(np.float32)
    monkeypatch.setattr(fixed_neuron_loop, "neuron_loop", None)  # would fail if the compiled loop were used
    monkeypatch.setattr(fixed_neuron_loop, "compiled", lambda kernel: pytest.fail("compiled loop requested"))
    result = CPU.simulate(graph, {"input": x}, precision="int8")
    assert result.outputs_valid and result.spike_counts["neuron"] > 0
