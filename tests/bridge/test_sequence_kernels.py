"""run_sequence's neuron loops: the compiled kernels, their PyTorch twins and the modules' own
per-step forward give the same spikes and states, bit for bit, on inputs that make neurons fire.

Every reset mode x reset timing x spike timing x comparison the IR allows, for LIF (decay and
Euler), IF (unit and non-unit gain) and CubaLIF, with per-neuron parameters, a drive, ``v_init``
and a caller's state; plus a per-channel (conv-shaped) layer and float64.
"""

import itertools

import numpy as np
import pytest
import torch

from talon import _compiled, ir
from talon.bridge import node_to_module
from talon.bridge.sequence import run_neuron_sequence

N = 6
RNG = np.random.default_rng(7)
TAU = RNG.uniform(1.5, 8.0, N)
R = RNG.uniform(0.5, 2.0, N)
LEAK = RNG.uniform(-0.2, 0.3, N)
THETA = RNG.uniform(0.6, 1.4, N)
V_RESET = RNG.uniform(-0.3, 0.2, N)

DYNAMICS = [
    dict(reset_mode=mode, reset_timing=timing, spike_timing=spike, comparison=comparison)
    for mode, timing, spike, comparison in itertools.product(
        ("value", "subtract", "none"),
        ("immediate", "delayed", "delayed_pre_decay", "snntorch_immediate"),
        ("post", "pre"),
        (">=", ">"),
    )
    if not (timing == "snntorch_immediate" and (mode != "subtract" or spike != "post"))
    and not (spike == "pre" and timing == "immediate")
]


def _nodes(dynamics: dict) -> dict[str, ir.Node]:
    common = dict(v_threshold=THETA, v_reset=V_RESET if dynamics["reset_mode"] == "value" else None, **dynamics)
    return {
        "lif": ir.LIF(tau=TAU, r=R, v_leak=LEAK, v_init=RNG.uniform(-0.5, 0.5, N), **common),
        "lif_no_drive": ir.LIF(tau=TAU, r=TAU, **common),
        "lif_euler": ir.LIF(tau=TAU, r=R, v_leak=LEAK, integration="euler", **common),
        "if": ir.IF(r=R, **common),
        "if_unit": ir.IF(**common),
        "cubalif": ir.CubaLIF(tau_syn=TAU + 1, tau_mem=TAU, r=R, v_leak=LEAK, w_in=R, **common),
        "cubalif_unit": ir.CubaLIF(tau_syn=np.full(N, 2.0), tau_mem=TAU, w_in=np.full(N, 2.0), **common),
    }


def _per_step(module, xs, state):
    outs = []
    for t in range(xs.shape[0]):
        out, state = module(xs[t], state)
        outs.append(out)
    return torch.stack(outs), state


def _state_tensors(state):
    return state if isinstance(state, tuple) else (state,)


def _assert_same(a, b):
    assert torch.equal(a[0], b[0])
    for x, y in zip(_state_tensors(a[1]), _state_tensors(b[1]), strict=True):
        assert torch.equal(x, y)


def _paths(module, xs, state=None):
    with torch.no_grad():
        reference = _per_step(module, xs, state)
        fast = run_neuron_sequence(module, xs, state)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(_compiled, "numba_available", lambda: False)
            twin = run_neuron_sequence(module, xs, state)
    return reference, fast, twin


@pytest.mark.parametrize("dynamics", DYNAMICS, ids=lambda d: "-".join(d.values()))
def test_kernel_twin_and_per_step_agree_bit_for_bit(dynamics):
    xs = torch.from_numpy(RNG.uniform(-0.6, 1.6, (40, 3, N)).astype(np.float32))
    for name, node in _nodes(dynamics).items():
        module = node_to_module(node)
        reference, fast, twin = _paths(module, xs)
        spikes = reference[0]
        assert 0 < spikes.sum() < spikes.numel(), f"{name}: the input must make some neurons fire"
        _assert_same(fast, reference)
        _assert_same(twin, reference)
        # continuing from the final state: the caller's state is copied, never updated in place
        state = reference[1]
        kept = [s.clone() for s in _state_tensors(state)]
        again = _paths(module, xs[:7], state)
        _assert_same(again[1], again[0])
        _assert_same(again[2], again[0])
        for s, k in zip(_state_tensors(state), kept, strict=True):
            assert torch.equal(s, k)


def test_per_channel_layer_and_float64():
    channels = 3
    per_channel = dict(tau=np.array([2.0, 3.0, 5.0]), r=np.array([1.0, 2.0, 0.5]), v_threshold=np.array([0.5, 1, 0.8]))
    shape = {"input": np.array([channels, 4, 4])}
    node = ir.LIF(**per_channel, reset_mode="subtract", reset_timing="delayed", input_type=shape)
    xs = torch.from_numpy(RNG.uniform(-0.5, 1.5, (20, 2, channels, 4, 4)).astype(np.float32))
    for dtype in (torch.float32, torch.float64):
        module = node_to_module(node).to(dtype)
        reference, fast, twin = _paths(module, xs.to(dtype))
        assert 0 < reference[0].sum() < reference[0].numel()
        _assert_same(fast, reference)
        _assert_same(twin, reference)


def test_the_compiled_kernel_runs_when_numba_is_installed_and_the_run_is_worth_it(monkeypatch):
    if not _compiled.numba_available():
        pytest.skip("the fast extra (numba) is not installed")
    from talon.bridge import sequence

    calls = []
    original = sequence._spiking_kernel
    monkeypatch.setattr(sequence, "_spiking_kernel", lambda *a: calls.append(1) or original(*a))
    monkeypatch.delenv(_compiled.DISABLE, raising=False)
    monkeypatch.setattr(sequence, "SEQUENCE_LOOP_WORK", _compiled.WorkThreshold("test", cold_from=1, warm_from=0))
    module = node_to_module(ir.LIF(tau=TAU, v_threshold=THETA))
    with torch.no_grad():
        run_neuron_sequence(module, torch.ones(5, 2, N))
    assert calls == [1]


def test_a_large_layer_split_over_threads_is_the_same(monkeypatch):
    """Above ``_PARALLEL_MIN_ELEMENTS`` the batch rows are split over torch's thread count."""
    from talon.bridge import sequence

    n = 2048
    nodes = [
        ir.LIF(tau=np.full(n, 4.0), r=np.full(n, 4.0), v_threshold=np.ones(n), reset_mode="subtract",
               reset_timing="delayed", comparison=">"),
        ir.CubaLIF(tau_syn=np.full(n, 2.0), tau_mem=np.full(n, 3.0), v_threshold=np.full(n, 0.5)),
    ]  # fmt: skip
    xs = torch.from_numpy(RNG.uniform(-0.5, 1.5, (32, 5, n)).astype(np.float32))
    assert xs.numel() >= sequence._PARALLEL_MIN_ELEMENTS
    threads = torch.get_num_threads()
    torch.set_num_threads(3)  # 5 rows over 3 slices: uneven split
    try:
        for node in nodes:
            reference, fast, twin = _paths(node_to_module(node), xs)
            assert 0 < reference[0].sum() < reference[0].numel()
            _assert_same(fast, reference)
            _assert_same(twin, reference)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dynamics", [DYNAMICS[0], DYNAMICS[-1]], ids=lambda d: "-".join(d.values()))
def test_a_narrow_layer_as_one_row_is_the_same(monkeypatch, dynamics):
    """Below ``_NARROW`` the kernels see the batch as one row of ``B·L`` with the coefficients
    repeated: the same elements through the same operations as row by row."""
    if not _compiled.numba_available():
        pytest.skip("the fast extra (numba) is not installed")
    from talon.bridge import sequence

    xs = torch.from_numpy(RNG.uniform(-0.6, 1.6, (30, 4, N)).astype(np.float32))
    assert sequence._kernel_rows(xs) == (1, 4)
    for name, node in _nodes(dynamics).items():
        module = node_to_module(node)
        with torch.no_grad():
            one_row = run_neuron_sequence(module, xs)
            monkeypatch.setattr(sequence, "_NARROW", 0)
            assert sequence._kernel_rows(xs) == (4, 1)
            by_rows = run_neuron_sequence(module, xs)
            monkeypatch.undo()
        assert 0 < one_row[0].sum() < one_row[0].numel(), name
        _assert_same(one_row, by_rows)
        for a, b in zip(_state_tensors(one_row[1]), _state_tensors(by_rows[1]), strict=True):
            assert torch.equal(a.view(torch.int32), b.view(torch.int32))
