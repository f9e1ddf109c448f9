"""run_sequence reuses the buffers of its intermediate values (talon.bridge.sequence_workspace).

A value is given back only when every consumer has run and none can still read it: these tests
check the workspace's contract, that a hidden layer's buffers are reused from call to call with
the outputs still equal to stepping bit for bit, and that nothing the caller receives (an output
node, a value also wired to an output, a value a non-releasing module reads) is ever overwritten
by a later call.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from talon import ir
from talon.bridge import GraphExecutor, node_to_module, sequence_workspace

T, B, HIDDEN = 12, 32, 1024  # a hidden value [T, B, HIDDEN] float32 is 1.5 MiB: pooled


@pytest.fixture(autouse=True)
def empty_workspace():
    sequence_workspace.release_buffers()
    yield
    sequence_workspace.release_buffers()


def _lif(n: int, seed: int) -> nn.Module:
    rng = np.random.default_rng(seed)
    node = ir.LIF(tau=rng.uniform(2, 8, n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=rng.uniform(0.5, 1.5, n))
    return node_to_module(node)


def _executor(edges: list[tuple[str, str]], n_in: int = 40) -> GraphExecutor:
    torch.manual_seed(3)
    modules = {
        "fc1": nn.Linear(n_in, HIDDEN),
        "lif1": _lif(HIDDEN, 1),
        "fc2": nn.Linear(HIDDEN, 6),
        "fc3": nn.Linear(HIDDEN, 5),
        "lif2": _lif(6, 2),
        "lif3": _lif(5, 3),
        "flat": nn.Flatten(1),
    }
    for name in ("fc2", "fc3"):  # strong enough for the output neurons to fire
        nn.init.uniform_(modules[name].weight, -0.02, 0.1)
    used = {n for e in edges for n in e}
    return GraphExecutor({k: m for k, m in modules.items() if k in used}, edges, return_state=True)


def _inputs(seed: int, n_in: int = 40) -> torch.Tensor:
    return torch.rand(T, B, n_in, generator=torch.Generator().manual_seed(seed)) * 3


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _stepped(executor: GraphExecutor, xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    state, outs = None, []
    for t in range(xs.shape[0]):
        out, state = executor(xs[t], state)
        outs.append(_as_tuple(out))
    return tuple(torch.stack(o) for o in zip(*outs, strict=True))


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.int32)


def _run_twice_and_check(executor: GraphExecutor) -> None:
    """Two calls on different inputs: each equals stepping, and the first call's outputs are
    untouched by the second (nothing handed to the caller was reused)."""
    first_xs, second_xs = _inputs(0), _inputs(1)
    with torch.no_grad():
        first = _as_tuple(executor.run_sequence(first_xs)[0])
        kept = [o.clone() for o in first]
        second = _as_tuple(executor.run_sequence(second_xs)[0])
        for ours, theirs in zip(first, _stepped(executor, first_xs), strict=True):
            assert torch.equal(_bits(ours), _bits(theirs))
        for ours, theirs in zip(second, _stepped(executor, second_xs), strict=True):
            assert torch.equal(_bits(ours), _bits(theirs))
    for now, before in zip(first, kept, strict=True):
        assert torch.equal(_bits(now), _bits(before)), "a later call overwrote an output of an earlier one"
    spikes = [o for o in first + second if o.shape[-1] != HIDDEN]
    assert all(0 < s.sum() < s.numel() for s in spikes), "the input must make the neurons fire"
    hidden = [o for o in first if o.shape[-1] == HIDDEN and bool(o.max() == 1)]
    assert all(0 < s.sum() < s.numel() for s in hidden)


# ---- the workspace itself ---------------------------------------------------------------------


def test_a_released_buffer_is_handed_out_again():
    a = sequence_workspace.empty((512, 1024), torch.float32)
    assert sequence_workspace.handed_out(a) and not sequence_workspace.handed_out(a[1:])
    pointer = a.data_ptr()
    sequence_workspace.release(a)
    assert sequence_workspace.kept_bytes() == a.numel() * 4 and not sequence_workspace.handed_out(a)
    del a
    b = sequence_workspace.empty((512, 1024), torch.float32)
    assert b.data_ptr() == pointer and sequence_workspace.kept_bytes() == 0
    assert sequence_workspace.empty((512, 1024), torch.float64).data_ptr() != pointer  # another dtype


def test_only_its_own_buffers_are_taken_back():
    foreign = torch.empty(512, 1024)
    sequence_workspace.release(foreign)
    mine = sequence_workspace.empty((512, 1024), torch.float32)
    sequence_workspace.release(mine[:10])  # a view is not the buffer
    sequence_workspace.release(mine)
    sequence_workspace.release(mine)  # twice: kept once
    assert sequence_workspace.kept_bytes() == mine.numel() * 4
    small = sequence_workspace.empty((4, 4), torch.float32)  # small tensors are not pooled
    sequence_workspace.release(small)
    assert sequence_workspace.kept_bytes() == mine.numel() * 4
    sequence_workspace.release_buffers()
    assert sequence_workspace.kept_bytes() == 0


def test_what_is_kept_is_bounded(monkeypatch):
    monkeypatch.setattr(sequence_workspace, "_MAX_FREE_BYTES", 3 << 20)
    buffers = [sequence_workspace.empty((1 << 18,), torch.float32) for _ in range(5)]  # 1 MiB each
    for b in buffers:
        sequence_workspace.release(b)
    assert sequence_workspace.kept_bytes() == 3 << 20


# ---- run_sequence ----------------------------------------------------------------------------


def test_hidden_values_are_reused_and_the_runs_stay_exact():
    executor = _executor([("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])
    with torch.no_grad():
        executor.run_sequence(_inputs(0))  # the first call of a shape also verifies its Linear plans
        sequence_workspace.release_buffers()
        executor.run_sequence(_inputs(0))
    hidden = T * B * HIDDEN * 4
    assert sequence_workspace.kept_bytes() == 2 * hidden  # fc1's products and lif1's spikes
    kept = {t.data_ptr() for free in sequence_workspace._FREE.values() for t in free}
    handed = set()
    original = sequence_workspace.empty

    def spy(shape, dtype):
        out = original(shape, dtype)
        handed.add(out.data_ptr())
        return out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sequence_workspace, "empty", spy)
        _run_twice_and_check(executor)
    assert kept <= handed
    assert sequence_workspace.kept_bytes() == 2 * hidden


@pytest.mark.parametrize(
    "edges",
    [
        # the hidden spikes are also an output of the graph
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out"), ("lif1", "spikes")],
        # the products also go to an output
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out"), ("fc1", "drive")],
        # a view of the spikes (Flatten) is an output
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "flat"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out")],
        # the spikes pass an Identity node that is read by a Linear and is an output
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "keep"), ("keep", "fc2"), ("fc2", "lif2"), ("lif2", "out"),
         ("keep", "seen")],
        # two Linear readers: given back after the second
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("lif1", "fc3"), ("fc2", "lif2"), ("fc3", "lif3"),
         ("lif2", "out"), ("lif3", "out3")],
    ],
    ids=["spikes_output", "products_output", "flatten_view", "identity", "two_readers"],
)  # fmt: skip
def test_nothing_the_caller_receives_is_reused(edges):
    _run_twice_and_check(_executor(edges))


def test_with_a_gradient_nothing_is_given_back():
    executor = _executor([("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")])
    out, _ = executor.run_sequence(_inputs(0))
    assert out.requires_grad
    assert sequence_workspace.kept_bytes() == 0
    out.sum().backward()
    assert executor.module_of("fc1").weight.grad is not None
