"""The compiled float32 neuron loop (float_neuron_loop.py) against the reference ``FloatNeuron.step``
loop: bit for bit the same spikes, membranes and synaptic currents after every step, for every
neuron type, reset mode, reset timing, comparison and spike timing."""

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.backend.cpu.kernels import float_neuron_loop

from ..markers import needs_numba
from .test_fixed_neuron_loop import N, _graph, _non_spiking_neurons, _spiking_neurons

pytestmark = [needs_numba, pytest.mark.usefixtures("force_numba")]  # small inputs: force the loop
CPU = get_backend("cpu")


def _both(graph, x, monkeypatch, **kwargs):
    calls = []
    original = float_neuron_loop.run_float_neurons
    monkeypatch.setattr(float_neuron_loop, "run_float_neurons", lambda *a: calls.append(1) or original(*a))
    fast = CPU.simulate(graph, {"input": x}, step_by_step=True, **kwargs)
    monkeypatch.setattr(float_neuron_loop, "compiled", lambda kernel: None)  # the reference: FloatNeuron.step
    slow = CPU.simulate(graph, {"input": x}, step_by_step=True, **kwargs)
    return fast, slow, calls


@pytest.mark.parametrize("neuron", [*_spiking_neurons(), *_non_spiking_neurons()])
def test_the_compiled_float_loop_gives_the_step_loops_values(neuron, monkeypatch):
    x = np.random.default_rng(2).normal(0.0, 1.0, (25, 3, 20)).astype(np.float32)
    fast, slow, calls = _both(_graph(neuron, seed=1), x, monkeypatch)
    assert calls, "the compiled loop did not run"
    for key in ("output", "v", "i"):
        if key in slow.node_states["neuron"]:
            a, b = fast.node_states["neuron"][key], slow.node_states["neuron"][key]
            assert a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.int32), b.view(np.int32)), key
    assert np.array_equal(fast.outputs["output"], slow.outputs["output"])
    assert fast.spike_counts == slow.spike_counts
    if isinstance(neuron, (ir.LIF, ir.IF, ir.CubaLIF)):
        assert 0 < slow.spike_counts["neuron"] < x.shape[0] * x.shape[1] * N  # the resets were exercised


@pytest.mark.parametrize(
    "neuron",
    [
        pytest.param(ir.LIF(tau=np.full(N, 5.0), integration="euler"), id="euler"),
        pytest.param(ir.IF(v_threshold=np.full(N, 0.5), reset_mode="subtract", spike_mode="multi"), id="multi-spike"),
        pytest.param(ir.LIF(tau=np.full(N, 5.0), v_min=np.full(N, -0.5)), id="v_min"),
    ],
)
def test_variants_the_float_loop_does_not_implement_run_the_step(neuron, monkeypatch):
    x = np.random.default_rng(9).normal(0.0, 1.0, (15, 2, 20)).astype(np.float32)
    monkeypatch.setattr(float_neuron_loop, "compiled", lambda kernel: pytest.fail("compiled loop requested"))
    assert CPU.simulate(_graph(neuron, seed=8), {"input": x}).outputs_valid
    assert CPU.simulate(_graph(neuron, seed=8), {"input": x}, precision="fp16").outputs_valid  # not float32


def test_the_compiled_float_loop_keeps_int8_calibration_and_report(monkeypatch):
    """The fp32 run of an int8 simulate (calibration and reference) gives the same report either way."""
    neuron = ir.CubaLIF(tau_syn=np.full(N, 4.0), tau_mem=np.full(N, 6.0), r=np.full(N, 3.0), v_threshold=0.4)
    x = np.random.default_rng(3).normal(0.0, 1.0, (20, 2, 20)).astype(np.float32)
    fast, slow, calls = _both(_graph(neuron, seed=4), x, monkeypatch, precision="int8")
    assert calls
    assert fast.quantization == slow.quantization
    assert np.array_equal(fast.node_states["neuron"]["v_int"], slow.node_states["neuron"]["v_int"])
