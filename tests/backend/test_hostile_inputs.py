"""The CPU backend on hostile numbers (issue 18 §6-7): clear BackendErrors, no numpy warnings, bounded memory."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.backend.errors import BackendError

CPU = get_backend("cpu")


def lif_chain(lif, width=4):
    return ir.Graph(
        {
            "input": ir.Input(np.array([width])),
            "fc": ir.Affine(np.ones((width, width), np.float32)),
            "lif": lif,
            "output": ir.Output(np.array([width])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("value", [1e300, -1e300])
def test_float64_inputs_beyond_float32_are_refused(value):
    graph = lif_chain(ir.LIF(tau=np.full(4, 10.0), r=1.0))
    with pytest.raises(BackendError, match=r"input 'input' has values up to 1e\+300 .* beyond float32"):
        CPU.simulate(graph, inputs=np.full((3, 1, 4), value))


@pytest.mark.parametrize("precision", ["int8", "int16"])
def test_a_tiny_threshold_is_refused_in_fixed_point(precision):
    graph = lif_chain(ir.LIF(tau=np.full(4, 10.0), r=1.0, v_threshold=1e-300))
    with pytest.raises(BackendError, match=r"node 'lif': .* cannot be represented in fixed point"):
        CPU.simulate(graph, n_steps=5, precision=precision)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_huge_gain_is_refused(precision):
    graph = lif_chain(ir.LIF(tau=np.full(4, 10.0), r=1e300))
    with pytest.raises(BackendError, match=r"node 'lif': its coefficient\(s\) g .* not finite in float32"):
        CPU.simulate(graph, n_steps=5, precision=precision)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int16", "int8"])
def test_zero_width_layers_run_in_every_precision(precision):
    graph = lif_chain(ir.LIF(tau=np.full(0, 10.0), r=1.0), width=0)
    result = CPU.simulate(graph, n_steps=5, precision=precision)
    assert result.outputs_valid and result.outputs["output"].shape == (5, 1, 0)
    assert result.spike_counts == {"lif": 0}


def test_steps_beyond_memory_are_refused_before_allocating():
    graph = lif_chain(ir.LIF(tau=np.full(4, 10.0), r=1.0))
    # the stimulus is drawn chunk by chunk and a held input is a view: the outputs are what cannot fit
    message = r"a run of 100,000,000,000 steps x batch 1 at fp32 must hold 1,600,000,000,000 bytes of results .*"
    with pytest.raises(BackendError, match=message):
        CPU.simulate(graph, n_steps=100_000_000_000)
    with pytest.raises(BackendError, match=message):
        CPU.simulate(graph, inputs=np.ones(4), n_steps=100_000_000_000)


@pytest.mark.parametrize("step_by_step", [False, True])
def test_a_huge_delay_holds_only_the_steps_run(step_by_step):
    """delay [10**12, 0, 2] for 5 steps: y0 = 0 always, y1 = x, y2 = x two steps late."""
    graph = ir.Graph(
        {"input": ir.Input(np.array([3])), "d": ir.Delay(np.array([10**12, 0, 2])), "output": ir.Output(np.array([3]))},
        [("input", "d"), ("d", "output")],
    )
    x = np.arange(1, 16, dtype=np.float32).reshape(5, 1, 3)
    y = CPU.simulate(graph, inputs=x, step_by_step=step_by_step).outputs["output"]
    assert np.array_equal(y[:, 0, 0], np.zeros(5))
    assert np.array_equal(y[:, 0, 1], x[:, 0, 1])
    assert np.array_equal(y[:, 0, 2], [0, 0, 3, 6, 9])


def test_a_growing_ring_buffer_matches_the_sequence_run_past_its_first_capacity():
    delays = np.array([0, 1, 15, 16, 17, 40])
    graph = ir.Graph(
        {"input": ir.Input(np.array([6])), "d": ir.Delay(delays), "output": ir.Output(np.array([6]))},
        [("input", "d"), ("d", "output")],
    )
    x = np.random.default_rng(0).random((60, 2, 6)).astype(np.float32)
    stepped = CPU.simulate(graph, inputs=x, step_by_step=True).outputs["output"]
    whole = CPU.simulate(graph, inputs=x).outputs["output"]
    assert np.array_equal(stepped, whole)
    for k, d in enumerate(delays):
        assert np.array_equal(stepped[d:, :, k], x[: 60 - d, :, k]) and not stepped[:d, :, k].any()


@pytest.mark.parametrize("step_by_step", [False, True])
def test_an_infinite_multi_spike_count_is_a_clear_error(step_by_step):
    """A multi-spike IF doubling its count through a recurrent weight overflows float16 within a few
    steps; the spike counter used to crash with a bare OverflowError (int of an infinite sum)."""
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([1])),
            "if": ir.IF(v_threshold=0.5, reset_mode="subtract", spike_mode="multi"),
            "rec": ir.Linear(np.array([[2.0]], np.float32)),
            "output": ir.Output(np.array([1])),
        },
        [("input", "if"), ("if", "rec"), ("rec", "if"), ("if", "output")],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the float16 overflow itself
        with pytest.raises(BackendError, match=r"node 'if'.*spike count.*infinite.*max_spikes"):
            CPU.simulate(graph, np.ones((30, 1, 1), np.float32), precision="fp16", step_by_step=step_by_step)


@pytest.mark.parametrize("entry", ["compile", "simulate", "validate", "profile"])
@pytest.mark.parametrize("graph", ["model.t1c", None, {"input": 1}], ids=["path", "None", "dict"])
def test_every_entry_point_says_it_wants_a_graph(entry, graph):
    """compile ran check_finite before check_graph and failed with 'not enough values to unpack'."""
    with pytest.raises(BackendError, match=r"expected a talon.ir.Graph, got \w+; read a .t1c file with talon.ir.read"):
        getattr(get_backend("cpu"), entry)(graph)


def test_a_masked_array_with_masked_entries_is_refused():
    """``np.asarray`` drops the mask: the run read the data under it as if it were input."""
    graph = lif_chain(ir.LIF(tau=np.full(4, 10.0), r=1.0))
    data = np.ones((6, 2, 4), np.float32)
    x = np.ma.array(data, mask=np.zeros(data.shape, bool))
    x[2, 1, 3] = np.ma.masked
    message = r"input 'input' is a masked array and 1 of its 48 entries are masked: .* fill them first"
    with pytest.raises(BackendError, match=message):
        CPU.simulate(graph, x)
    with pytest.raises(BackendError, match=message):
        CPU.simulate(graph, {"input": x}, precision="int8")
    with pytest.raises(BackendError, match=message):
        CPU.compile(graph, {"precision": "int8"}, calibration_inputs=x)
    descriptor = CPU.compile(graph, {"precision": "int8"}, calibration_inputs=data)
    with pytest.raises(BackendError, match=message):
        CPU.run_compiled(descriptor, x)
    unmasked = CPU.simulate(graph, np.ma.array(data))  # nothing masked: its data
    assert np.array_equal(unmasked.outputs["output"], CPU.simulate(graph, data).outputs["output"])


def test_a_state_passed_as_a_torch_executor_would_take_it_says_the_backend_takes_none():
    """``simulate(graph, x, state)`` puts the state in n_steps (or step_by_step): the refusal says the
    backends take no state, instead of only that n_steps is no integer."""
    graph = lif_chain(ir.LIF(tau=np.full(4, 10.0), r=1.0))
    x = np.ones((6, 2, 4), np.float32)
    no_state = r"; the backends take no state: simulate\(graph, inputs, n_steps, step_by_step\) runs the whole"
    with pytest.raises(BackendError, match=r"n_steps must be a positive integer, got \{\}" + no_state):
        CPU.simulate(graph, x, {})
    with pytest.raises(BackendError, match=r"step_by_step must be True or False, got \{'lif': 0\}" + no_state):
        CPU.simulate(graph, x, None, {"lif": 0})
    with pytest.raises(BackendError, match=r"n_steps must be a positive integer, got 0$"):
        CPU.simulate(graph, x, 0)  # no hint where no state was passed
