"""run_sequence's planned Linear products (talon.bridge.sequence_gemm_plan) equal the per-step calls.

The plan evaluates the per-step call's measured summation tree on many steps' rows at once, and is
used only after a bitwise verification. These tests check the tree measurement on synthetic trees
(no BLAS), that the verification rejects a wrong plan and the layer then steps (the fallback),
and that a real snnTorch model of the benchmark's shape (784-2048-10) gives snnTorch's own
spikes and membranes bit for bit through the planned path, at one and two threads.
"""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge
from talon.bridge import sequence_gemm_plan, sequence_products
from talon.bridge.sequence_gemm_plan import Chain, Plan, Spine


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}thread")
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    sequence_gemm_plan.clear_plans()
    yield request.param
    torch.set_num_threads(before)
    sequence_gemm_plan.clear_plans()


# ---- measuring a tree: the decomposition on synthetic trees (what a probe would report) -----


class _FakeProber:
    """Answers ``subtree_sizes`` from a known tree given as nested tuples of product indices."""

    def __init__(self, tree):
        self.parent, self.leaves, self.calls = {}, {}, 0
        self._index(tree, None)

    def _index(self, node, parent):
        self.parent[id(node) if isinstance(node, tuple) else node] = parent
        if not isinstance(node, tuple):
            self.leaves[node] = 1
            return 1
        self.leaves[id(node)] = sum(self._index(child, id(node)) for child in node)
        return self.leaves[id(node)]

    def _ancestors(self, leaf):
        chain, node = [], leaf
        while node is not None:
            chain.append(node)
            node = self.parent[node]
        return chain

    def subtree_sizes(self, i, js):
        self.calls += 1
        mine = self._ancestors(i)
        return {j: self.leaves[next(a for a in self._ancestors(j) if a in mine)] for j in js}


def _chain(start, stop):
    node = start
    for k in range(start + 1, stop):
        node = (node, k)
    return node


def test_a_two_thread_tree_is_recovered():
    tree = ((_chain(0, 6), _chain(6, 12)), (_chain(12, 18), _chain(18, 24)))
    got = sequence_gemm_plan._decompose(_FakeProber(tree), 0, 24)
    assert got == Spine((Chain(0, 6), Chain(6, 12), Spine((Chain(12, 18), Chain(18, 24)))))


def test_a_one_thread_blocked_tree_is_recovered():
    tree = ((_chain(0, 8), _chain(8, 16)), _chain(16, 19))
    got = sequence_gemm_plan._decompose(_FakeProber(tree), 0, 19)
    assert got == Spine((Chain(0, 8), Chain(8, 16), Chain(16, 19)))


def test_interleaved_accumulators_are_not_chains():
    """Two accumulators over even and odd products, added at the end (a dot-product kernel)."""
    even, odd = 0, 1
    for k in range(2, 12, 2):
        even, odd = (even, k), (odd, k + 1)
    with pytest.raises(sequence_gemm_plan._NotChains):
        sequence_gemm_plan._decompose(_FakeProber((even, odd)), 0, 12)


def test_the_measured_tree_reproduces_the_per_step_call(threads):
    """On this build the tree of the benchmark's first layer is measured and verifies."""
    plan = sequence_gemm_plan.discover_tree(32, 784, 2048, torch.float32, has_bias=True)
    assert sequence_gemm_plan.verify(plan, 32, 784, 2048, torch.float32, True, steps=3)
    assert len(plan.tree.parts) > 1  # K is summed in blocks: one chain over K would differ


# ---- the verification and the fallback ------------------------------------------------------


def test_a_wrong_plan_is_rejected_and_the_layer_steps(threads, monkeypatch):
    wrong = Plan(Spine((Chain(0, 100), Chain(100, 784))), (0, 100))  # blocks the BLAS does not use
    assert not sequence_gemm_plan.verify(wrong, 16, 784, 256, torch.float32, True, steps=4)
    monkeypatch.setattr(sequence_gemm_plan, "discover_tree", lambda *args: wrong)
    layer = nn.Linear(784, 256)
    xs = torch.rand(12, 16, 784) * 3
    with torch.no_grad():
        got = sequence_products.run_stateless_sequence(layer, [xs])
        expected = torch.stack([layer(xs[t]) for t in range(12)])
    assert torch.equal(got, expected)
    assert set(sequence_gemm_plan._PLANS.values()) == {None}  # measured, rejected: the per-step path ran


def test_a_tree_that_is_not_chains_leaves_the_layer_stepping(threads, monkeypatch):
    def refuse(*args):
        raise sequence_gemm_plan._NotChains("test")

    monkeypatch.setattr(sequence_gemm_plan, "discover_tree", refuse)
    layer = nn.Linear(300, 40)
    xs = torch.rand(9, 8, 300)
    with torch.no_grad():
        assert torch.equal(sequence_products.run_stateless_sequence(layer, [xs]),
                           torch.stack([layer(xs[t]) for t in range(9)]))  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_chunks_remainders_and_misaligned_inputs_match_stepping(dtype, bias, threads, monkeypatch):
    monkeypatch.setattr(sequence_products, "_CHUNK_ROWS", 128)  # chunks of 8 steps of 16 rows, then 3
    layer = nn.Linear(500, 128, bias=bias).to(dtype)
    weight_storage = torch.empty(128 * 500 + 3, dtype=dtype)
    weight_storage[3:].copy_(layer.weight.detach().reshape(-1))
    layer.weight = nn.Parameter(weight_storage[3:].view(128, 500))  # a misaligned weight too
    storage = torch.rand(19 * 16 * 500 + 1, dtype=dtype) * 3
    xs = storage[1:].view(19, 16, 500)  # one element past the allocation's alignment
    with torch.no_grad():
        got = sequence_products.run_stateless_sequence(layer, [xs])
        expected = torch.stack([layer(xs[t]) for t in range(19)])
    assert torch.equal(got, expected)
    used = {key[-2] for key, plan in sequence_gemm_plan._PLANS.items() if plan is not None}
    assert used == {8, 3}  # this build's trees for 16 rows are chains: both chunk sizes ran planned


# ---- a real snnTorch model of the benchmark's shape -----------------------------------------


class _Leaky784(nn.Module):
    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.fc1 = nn.Linear(784, 2048)
        self.lif1 = snn.Leaky(beta=torch.rand(2048, generator=gen) * 0.4 + 0.5, threshold=torch.ones(2048))
        self.fc2 = nn.Linear(2048, 10)
        self.lif2 = snn.Leaky(beta=torch.full((10,), 0.9), threshold=torch.full((10,), 0.5))

    def forward(self, x, mem1=None, mem2=None):
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, spk1, mem1, mem2


def test_snntorch_784_2048_10_planned_equals_its_own_loop(threads):
    torch.manual_seed(8)
    model = _Leaky784()
    xs = torch.rand(20, 32, 784, generator=torch.Generator().manual_seed(1)) * 4
    executor = bridge.ir_to_torch(bridge.to_ir(model, xs[0]), return_state=True)
    with torch.no_grad():
        spikes, hidden, mem1, mem2 = [], [], None, None
        for t in range(xs.shape[0]):
            spk2, spk1, mem1, mem2 = model(xs[t], mem1, mem2)
            spikes.append(spk2)
            hidden.append(spk1)
        seq, final = executor.run_sequence(xs)
    reference, hidden = torch.stack(spikes), torch.stack(hidden)
    assert 0.05 < hidden.mean() < 0.95 and reference.sum() > 0  # both layers fire
    assert isinstance(seq, tuple) and torch.equal(seq[0], reference) and torch.equal(seq[1], hidden)
    assert torch.equal(final["lif1"], mem1) and torch.equal(final["lif2"], mem2)
    planned = {key[:3] for key, plan in sequence_gemm_plan._PLANS.items() if plan is not None}
    assert (32, 784, 2048) in planned  # the first layer ran planned, not per step
