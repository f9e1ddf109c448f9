"""What a fixed-point run reports: inputs outside a compiled program's calibration are named, and a
multi-spike neuron's agreement with fp32 compares spike counts, not whether it spiked."""

import warnings

import numpy as np
import pytest

from talon import ir
from talon.backend import CalibrationRangeWarning, default_stimulus, get_backend
from talon.examples import mlp_graph

CPU = get_backend("cpu")


def test_a_compiled_program_names_inputs_outside_its_calibration():
    graph = mlp_graph(0)
    spikes = default_stimulus(graph, 10, batch_size=2)["input"]  # 0/1: exact steps of 1, bound 1
    program = CPU.compile(graph, precision="int8", calibration_inputs=spikes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = CPU.run_compiled(program, spikes)  # the calibration data itself: no warning
    assert np.array_equal(same.outputs["output"], CPU.simulate(graph, spikes, precision="int8").outputs["output"])
    ones = int(np.count_nonzero(spikes))
    with pytest.warns(CalibrationRangeWarning, match=rf"input 'input': {ones} of {spikes.size} values saturate"):
        CPU.run_compiled(program, spikes * 3)
    with pytest.warns(CalibrationRangeWarning, match=rf"0 of {spikes.size} values saturate .* {ones} fall between"):
        CPU.run_compiled(program, spikes * 0.5)


def test_multi_spike_agreement_compares_counts():
    rng = np.random.default_rng(0)
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([6])),
            "fc": ir.Affine(rng.normal(size=(8, 6)).astype(np.float32) * 0.9, np.zeros(8, np.float32)),
            "n": ir.IF(v_threshold=np.full(8, 0.3), reset_mode="subtract", spike_mode="multi"),
            "output": ir.Output(np.array([8])),
        },
        [("input", "fc"), ("fc", "n"), ("n", "output")],
    )
    x = (rng.random((20, 4, 6)) > 0.5).astype(np.float32)
    fixed = CPU.simulate(graph, x, precision="int8")
    counts, reference = fixed.outputs["output"], CPU.simulate(graph, x).outputs["output"]
    assert counts.max() >= 3  # several spikes per step
    differ = int(np.count_nonzero(counts != reference))
    assert differ > int(np.count_nonzero((counts != 0) != (reference != 0)))  # counts differ where both spiked
    assert fixed.quantization.per_node_spike_agreement["n"] == 1 - differ / counts.size


def test_the_dyadic_quantizer_counts_like_its_numpy_twin(monkeypatch, force_numba):
    from talon.backend.cpu.formats import fixed_point

    x = np.random.default_rng(5).normal(0, 2, 4_000).astype(np.float32)
    x[:400] = np.round(x[:400] * 8) / 8  # on the steps
    x[[7, 9, 11]] = [-np.inf, np.inf, 1e38]
    q, saturated, rounded = fixed_point.quantize_dyadic(x, 3, 8)
    monkeypatch.setattr(fixed_point, "compiled", lambda kernel: None)
    twin = fixed_point.quantize_dyadic(x, 3, 8)
    assert np.array_equal(q, twin[0]) and (saturated, rounded) == twin[1:]
    assert saturated == int(np.count_nonzero(np.abs(x.astype(np.float64) * 8) > 8)) and rounded > 0
