"""snnTorch RLeaky with β = 1 (no leak) and a recurrent bias exports as a LIF with ``tau = r = 2**30``.

snnTorch adds the recurrent bias at every step, t = 0 included, so the exporter moves it out of the
cycle into the neuron's constant drive ``c = v_leak/tau = b`` (docs/semantics.md §3.4). An IF has no
drive; the 2**30 form has one and its float32 coefficients are exactly ``β = 1``, ``g = 1``, ``c = b``,
so it is the no-leak neuron with the bias. It is held to the contract of every RLeaky
(docs/bridge.md §2): spikes identical to snnTorch on every step, in the PyTorch executor (stepping and
``run_sequence``), the CPU backend and the JAX engine; membranes within float32 rounding, because the
IR sums ``x + V·s`` before adding ``m`` where snnTorch adds ``(m + x) + (V·s + b)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge, ir
from talon.backend import get_backend
from talon.ir.coefficients import neuron_coefficients

from .parity import lookup

T, B = 120, 3


def _model(arch: str, reset: str, delay: bool) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(3)
    gen = torch.Generator().manual_seed(3)
    common = dict(beta=1.0, reset_mechanism=reset, reset_delay=delay, init_hidden=True)
    if arch == "linear":
        layer = nn.Linear(20, 24)
        rleaky, xs = snn.RLeaky(linear_features=24, **common), torch.rand(T, B, 20, generator=gen) * 0.6
    else:
        layer = nn.Conv2d(2, 4, 3, padding=1)
        rleaky = snn.RLeaky(conv2d_channels=4, kernel_size=3, **common)
        xs = torch.rand(T, B, 2, 6, 6, generator=gen) * 0.6
    assert rleaky.recurrent.bias is not None and rleaky.recurrent.bias.abs().min() > 0
    return nn.Sequential(layer, rleaky), xs


def _snntorch_run(model: nn.Module, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    model[1].reset_mem()
    spikes, membranes = [], []
    with torch.no_grad():
        for x in xs:
            spikes.append(model(x))
            membranes.append(model[1].mem.clone())
    return torch.stack(spikes), torch.stack(membranes)


CASES = [("linear", reset, delay) for reset in ("subtract", "zero", "none") for delay in (True, False)]


@pytest.mark.parametrize(("arch", "reset", "delay"), [*CASES, ("conv", "subtract", True), ("conv", "zero", False)])
def test_rleaky_without_leak_and_with_a_recurrent_bias_runs_like_snntorch_in_every_engine(arch, reset, delay):
    model, xs = _model(arch, reset, delay)
    graph = bridge.to_ir(model, xs[0])  # before: "a recurrent bias with beta = 1 has no IF equivalent"
    neuron = graph.nodes["1"].nodes["neuron"]
    assert isinstance(neuron, ir.LIF) and np.all(neuron.tau == 2.0**30) and np.all(neuron.r == 2.0**30)
    coefficients = neuron_coefficients(neuron, np.float32)
    bias = model[1].recurrent.bias.detach().numpy()
    assert np.all(coefficients["beta"] == 1) and np.all(coefficients["g"] == 1)
    c = coefficients["c"]  # c = b bit for bit (per channel, over the feature map, for the conv layer)
    assert np.array_equal(c, np.broadcast_to(bias.reshape(-1, *[1] * (c.ndim - 1)), c.shape))

    want, want_mem = _snntorch_run(model, xs)
    assert 0.02 < float(want.mean()) < 0.9  # the layer fires, not on every step

    executor = bridge.ir_to_torch(graph, return_state=True)
    state, steps, worst = None, [], 0.0
    with torch.no_grad():
        seq, _ = executor.run_sequence(xs)
        for t, x in enumerate(xs):
            out, state = executor(x, state)
            steps.append(out)
            v = lookup(state, ("1", "neuron"))
            worst = max(worst, float(((v - want_mem[t]).abs() / want_mem[t].abs().clamp(min=1.0)).max()))
    assert torch.equal(torch.stack(steps), want) and torch.equal(seq, want)
    assert worst <= 1e-5  # the contract of every RLeaky (docs/bridge.md §2)

    cpu = get_backend("cpu").simulate(graph, inputs=xs.numpy()).outputs["output"]
    np.testing.assert_array_equal(cpu, want.numpy())

    jax = pytest.importorskip("jax")
    from talon.interop.jax import JaxGraph

    jax_graph = JaxGraph(graph)
    y, _ = jax_graph.run(jax_graph.params, xs.numpy())
    np.testing.assert_array_equal(np.asarray(jax.device_get(y)), want.numpy())


def test_without_a_recurrent_bias_beta_1_stays_an_if():
    model = nn.Sequential(nn.Linear(4, 5), snn.RLeaky(beta=1.0, all_to_all=False, V=0.5, init_hidden=True))
    neuron = bridge.to_ir(model, torch.zeros(1, 4)).nodes["1"].nodes["neuron"]
    assert isinstance(neuron, ir.IF)
