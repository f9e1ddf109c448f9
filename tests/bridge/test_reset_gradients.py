"""Fine-tuning gradients through the executor equal snnTorch's own, resets included: the delayed reset
is detached (snnTorch's ``mem_reset``), the same-step correction of ``reset_delay=False``
(``mem - (spk - reset)·θ``) carries the spike's surrogate gradient."""

from __future__ import annotations

import pytest
import snntorch as snn
import snntorch.utils
import torch
from torch import nn

from talon import bridge

T, B = 25, 3


def _neuron(kind: str, reset_delay: bool, beta: float) -> nn.Module:
    if kind == "Leaky":
        return snn.Leaky(beta=beta, reset_delay=reset_delay, init_hidden=True)
    return snn.Synaptic(alpha=0.6, beta=beta, reset_delay=reset_delay, init_hidden=True)


@pytest.mark.parametrize("reset_delay", [True, False])
@pytest.mark.parametrize("kind", ["Leaky", "Synaptic"])
def test_executor_gradients_equal_snntorch_with_subtractive_resets(kind, reset_delay):
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(10, 16), _neuron(kind, reset_delay, 0.8), nn.Linear(16, 4), _neuron(kind, reset_delay, 0.7)
    )
    xs = torch.randn(T, B, 10) * 6
    executor = bridge.ir_to_torch(bridge.to_ir(model, xs[0]))
    weights = torch.arange(1.0, 5.0)

    snntorch.utils.reset(model)
    expected = torch.stack([model(x) for x in xs])
    (expected * weights).sum().backward()
    got, _ = executor.run_sequence(xs)
    (got * weights).sum().backward()

    assert torch.equal(got.detach(), expected.detach())
    assert 0.02 < float(expected.detach().mean()) < 0.98, "the output layer must fire, and not on every step"
    for name in ("0.weight", "0.bias", "2.weight"):
        module, param = name.split(".")
        want = getattr(model[int(module)], param).grad
        have = getattr(executor.module_of(module), param).grad
        torch.testing.assert_close(have, want, rtol=1e-5, atol=1e-6 * float(want.abs().max()))
