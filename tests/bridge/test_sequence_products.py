"""run_sequence's stateless layers equal stepping bit for bit (talon.bridge.sequence_products).

A GEMM over ``T·B`` rows is summed by MKL in another order than over ``B`` rows (and the order
depends on the thread count), so these tests pin layer shapes where the old time-batched product
differs from the per-step one under torch 2.13's CPU build, at one and two threads, and check that
the default ``run_sequence`` gives the per-step outputs, spikes and final states exactly — for
talon's own executor, for stateless modules whose kernels round differently over more rows
(convolutions, sigmoid, ELU, tanh-GELU, a channel softmax), and for a real snnTorch model
against snnTorch's own per-step loop at inputs that make its neurons fire.
"""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from talon import bridge, ir
from talon.bridge import GraphExecutor, node_to_module

# (in, out, batch, steps): F.linear on T·B rows differs from T calls on B rows here (measured)
PINNED = [(200, 50, 4, 10), (300, 40, 8, 25), (784, 128, 8, 25), (100, 64, 1, 25), (500, 16, 4, 10)]


@pytest.fixture(params=[1, 2], ids=lambda n: f"{n}thread")
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


def _lif(n: int, seed: int) -> nn.Module:
    rng = np.random.default_rng(seed)
    node = ir.LIF(tau=rng.uniform(2, 8, n), r=np.ones(n), v_leak=np.zeros(n), v_threshold=rng.uniform(0.5, 1.5, n))
    return node_to_module(node)


def _mlp_executor(n_in: int, hidden: int, bias: bool, seed: int = 0) -> GraphExecutor:
    """input -> Linear -> LIF -> Linear -> LI; outputs the LI membrane (whose bits show every
    product's) and the LIF's spikes."""
    torch.manual_seed(seed)
    modules = {
        "fc1": nn.Linear(n_in, hidden, bias=bias),
        "lif": _lif(hidden, seed),
        "fc2": nn.Linear(hidden, 7, bias=bias),
        "li": node_to_module(ir.LI(tau=np.full(7, 4.0), r=np.ones(7), v_leak=np.zeros(7))),
    }
    edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "output"), ("lif", "spikes")]
    return GraphExecutor(modules, edges, return_state=True)


def _stepped(executor: GraphExecutor, xs: torch.Tensor):
    state, outs = None, []
    for t in range(xs.shape[0]):
        out, state = executor(xs[t], state)
        outs.append(out if isinstance(out, tuple) else (out,))
    stacked = tuple(torch.stack(o) for o in zip(*outs, strict=True))
    return (stacked if len(stacked) > 1 else stacked[0]), state


def _assert_same_run(executor: GraphExecutor, xs: torch.Tensor):
    """run_sequence and stepping give equal outputs and final states; returns the outputs."""
    with torch.no_grad():
        seq, final = executor.run_sequence(xs)
        steps, state = _stepped(executor, xs)
    for ours, theirs in zip(seq if isinstance(seq, tuple) else (seq,), steps if isinstance(steps, tuple) else (steps,),
                            strict=True):  # fmt: skip
        assert torch.equal(ours, theirs)
    assert final.keys() == state.keys()
    for name in state:
        assert torch.equal(final[name], state[name]), name
    return seq


def _firing_input(steps: int, batch: int, n_in: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(steps, batch, n_in, generator=gen) * 3


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("shape", PINNED, ids=lambda s: "x".join(map(str, s)))
def test_linear_layers_match_stepping_bit_for_bit(shape, bias, threads):
    n_in, hidden, batch, steps = shape
    executor = _mlp_executor(n_in, hidden, bias)
    xs = _firing_input(steps, batch, n_in, seed=n_in)
    _, spikes = _assert_same_run(executor, xs)
    assert 0 < spikes.mean() < 0.9  # the layer fires, and not everywhere


def test_the_pinned_shapes_expose_the_time_batched_product(threads):
    """The premise of the tests above: under this build the T·B-row product differs from the
    per-step one on the pinned shapes (else they could not catch a return of the old behaviour)."""
    differing = 0
    for n_in, hidden, batch, steps in PINNED:
        layer = nn.Linear(n_in, hidden)
        xs = _firing_input(steps, batch, n_in, seed=1)
        with torch.no_grad():
            per_step = torch.stack([layer(xs[t]) for t in range(steps)])
            time_batched = layer(xs.flatten(0, 1)).unflatten(0, (steps, batch))
        assert torch.allclose(per_step, time_batched, rtol=1e-5, atol=1e-5)
        differing += not torch.equal(per_step, time_batched)
    assert differing >= 3


@settings(max_examples=20, deadline=None)
@given(
    n_in=st.integers(1, 900), hidden=st.integers(1, 300), batch=st.integers(1, 64), steps=st.integers(1, 12),
    bias=st.booleans(), threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_any_linear_shape_matches_stepping(n_in, hidden, batch, steps, bias, threads, seed):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _assert_same_run(_mlp_executor(n_in, hidden, bias, seed), _firing_input(steps, batch, n_in, seed))
    finally:
        torch.set_num_threads(before)


def _conv(c_in, c_out, k, stride=1, padding=0, groups=1):
    return lambda: nn.Conv2d(c_in, c_out, k, stride, padding, groups=groups)


def _bn1d():
    bn = nn.BatchNorm1d(101).eval()
    with torch.no_grad():
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2), bn.weight.normal_(), bn.bias.normal_()
    return bn


# (module factory, per-sample input shape): conv shapes and activations that differed over T·B rows
STATELESS = {
    "conv2d 8->16 k3 s2": (_conv(8, 16, 3, 2, 1), (8, 14, 14)),
    "conv2d 32->64 k1": (_conv(32, 64, 1), (32, 8, 8)),
    "conv2d 64->64 k3": (_conv(64, 64, 3, 1, 1), (64, 8, 8)),
    "conv2d depthwise": (_conv(16, 16, 3, 1, 1, groups=16), (16, 12, 12)),
    "conv1d 16->32 k5": (lambda: nn.Conv1d(16, 32, 5), (16, 64)),
    "sigmoid": (nn.Sigmoid, (1001,)),
    "elu": (nn.ELU, (1001,)),
    "gelu tanh": (lambda: nn.GELU("tanh"), (1001,)),
    "softmax over channels": (lambda: nn.Softmax(dim=1), (7, 5, 5)),
    "batchnorm1d": (_bn1d, (101,)),
    "avgpool": (lambda: nn.AvgPool2d(3, 2, 1), (3, 15, 15)),
    "relu": (nn.ReLU, (1001,)),
    "leaky relu": (lambda: nn.LeakyReLU(0.1), (1001,)),
    "maxpool": (lambda: nn.MaxPool2d(2), (3, 14, 14)),
}


@pytest.mark.parametrize("name", list(STATELESS))
def test_stateless_modules_match_stepping_bit_for_bit(name, threads):
    make, shape = STATELESS[name]
    torch.manual_seed(5)
    layer = make()
    n = int(np.prod([d for d in layer(torch.zeros(1, *shape)).shape[1:]]))
    neuron = node_to_module(ir.IF(v_threshold=np.full(n, 0.5)))
    executor = GraphExecutor(
        {"layer": layer, "flat": nn.Flatten(), "if": neuron},
        [("input", "layer"), ("layer", "flat"), ("flat", "if"), ("if", "output")],
        return_state=True,
    )
    for steps, batch in ((5, 1), (20, 3)):
        xs = torch.randn(steps, batch, *shape, generator=torch.Generator().manual_seed(steps))
        _assert_same_run(executor, xs)


def test_time_batched_products_are_an_explicit_choice():
    executor = _mlp_executor(784, 128, bias=True)
    xs = _firing_input(25, 8, 784, seed=2)
    with torch.no_grad():
        _, exact = executor.run_sequence(xs)
        _, fast = executor.run_sequence(xs, products="time_batched")
    assert torch.allclose(exact["lif"], fast["lif"], atol=1e-4) and not torch.equal(exact["lif"], fast["lif"])
    with pytest.raises(ValueError, match=r"products must be one of 'per_step', 'time_batched', got 'batched'"):
        executor.run_sequence(xs, products="batched")


def test_a_sequence_without_a_step_is_refused():
    executor = _mlp_executor(20, 5, bias=True)  # before: torch.stack's RuntimeError from the neurons
    with pytest.raises(ValueError, match=r"T >= 1 step; got \(0, 4, 20\)"):
        executor.run_sequence(torch.zeros(0, 4, 20))


def test_with_a_gradient_the_layers_step_their_own_forward():
    executor = _mlp_executor(300, 40, bias=True)
    xs = _firing_input(10, 4, 300, seed=3).requires_grad_()
    (membrane, spikes), final = executor.run_sequence(xs)
    with torch.no_grad():
        (step_membrane, step_spikes), state = _stepped(executor, xs)
    assert torch.equal(spikes.detach(), step_spikes) and torch.equal(membrane.detach(), step_membrane)
    assert torch.equal(final["lif"].detach(), state["lif"])
    membrane.sum().backward()
    assert xs.grad is not None and torch.isfinite(xs.grad).all()
    assert executor.module_of("fc1").weight.grad.abs().sum() > 0


class _SnnTorchMLP(nn.Module):
    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        gen = torch.Generator().manual_seed(11)
        self.fc1 = nn.Linear(n_in, hidden)
        self.lif1 = snn.Leaky(beta=torch.rand(hidden, generator=gen) * 0.4 + 0.5, threshold=1.0)
        self.fc2 = nn.Linear(hidden, n_out)
        self.lif2 = snn.Leaky(beta=0.8, threshold=torch.rand(n_out, generator=gen) * 0.5 + 0.25)

    def forward(self, x, mem1=None, mem2=None):
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, mem1, mem2


@pytest.mark.parametrize("shape", [(784, 128, 8, 25), (300, 40, 8, 25)], ids=lambda s: "x".join(map(str, s)))
def test_snntorch_model_run_sequence_equals_its_own_loop(shape, threads):
    n_in, hidden, batch, steps = shape
    torch.manual_seed(4)
    model = _SnnTorchMLP(n_in, hidden, 10)
    xs = _firing_input(steps, batch, n_in, seed=9)
    executor = bridge.ir_to_torch(bridge.to_ir(model, xs[0]), return_state=True)
    with torch.no_grad():
        spikes, mems1, mem1, mem2 = [], [], None, None
        for t in range(steps):
            spk, mem1, mem2 = model(xs[t], mem1, mem2)
            spikes.append(spk)
            mems1.append(mem1)
        seq, final = executor.run_sequence(xs)
        _, fast_final = executor.run_sequence(xs, products="time_batched")
    reference = torch.stack(spikes)
    assert reference.sum() > 0 and torch.stack(mems1).gt(0.5).any()  # the neurons fire
    assert torch.equal(seq, reference)
    assert torch.equal(final["lif1"], mem1) and torch.equal(final["lif2"], mem2)
    # the opt-in does not keep snnTorch's membrane bits on this layer (why it is not the default)
    assert not torch.equal(fast_final["lif1"], mem1)
