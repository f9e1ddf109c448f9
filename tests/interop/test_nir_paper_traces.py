"""The NIR paper's artefacts as external oracles: the single-LIF traces, two chained LIFs, Braille RSNN.

Every test runs on the conformance reference (``tests/conformance/reference.py``) and on every
talon engine that has landed (``tests/conformance/engines.py``).
"""

from __future__ import annotations

import nir
import nirtorch
import numpy as np
import pytest
import torch

from talon.interop.nir import read_nir
from tests.paths import NIR_PAPER

from .nir_helpers import ENGINES, run

DT = 1e-4
F32 = np.float32
SPIKE_STEPS = [460, 510, 710, 760]  # every platform of the paper's task 1 that is not offset (nir.md §4.1)


def trace(name: str) -> np.ndarray:
    return np.loadtxt(NIR_PAPER / name, delimiter=",")


@pytest.mark.parametrize("integration", ["euler", "decay"])
@pytest.mark.parametrize("engine", ENGINES)
def test_single_lif_reproduces_the_papers_norse_trace(engine, integration):
    graph = read_nir(NIR_PAPER / "01_lif__lif_norse.nir", dt=DT, integration=integration)
    norse, exact, snntorch = (
        trace("01_lif__lif_norse.csv"),
        trace("01_lif__lif_exact.csv"),
        trace("01_lif__lif_snntorch.csv"),
    )
    x = norse[:, 0].astype(F32).reshape(-1, 1, 1)
    assert x.sum() == 34  # the paper's input: 34 spikes in 1000 steps
    out = run(engine, graph, x)
    spikes = out["outputs"]["output"][:, 0, 0]
    v = out["states"]["1"]["v"][:, 0, 0]
    assert np.flatnonzero(spikes).tolist() == SPIKE_STEPS
    np.testing.assert_array_equal(spikes, norse[:, 2].astype(F32))
    assert np.flatnonzero(exact[:, 2]).tolist() == SPIKE_STEPS  # the event-driven exact solution
    assert np.flatnonzero(snntorch[:, 2]).tolist() == SPIKE_STEPS
    # The CSV holds float32 values of Norse's v + dt/tau * ((v_leak - v) + x): integration='euler' is that
    # order and reproduces every value bit for bit; 'decay' computes (1 - 1/tau') v + x/tau'
    # (docs/semantics.md §3), the same number rounded differently: at most a few float32 ulps apart.
    assert v.dtype == F32
    if integration == "euler":
        np.testing.assert_array_equal(v, norse[:, 1].astype(F32))
    else:
        np.testing.assert_allclose(v, norse[:, 1].astype(F32), rtol=0, atol=5e-8)
        assert not np.array_equal(v, norse[:, 1].astype(F32))
    assert np.all(v[SPIKE_STEPS] == 0)  # reset to v_reset = 0 in the step of the spike


@pytest.mark.parametrize("engine", ENGINES)
def test_two_chained_lifs_match_an_euler_simulation_of_the_nir_equations(engine):
    """``two_lif_neurons.nir``: a self-spiking LIF (v_leak > v_threshold) drives a second one."""
    graph = read_nir(NIR_PAPER / "01_lif__debug_spike_representation__two_lif_neurons.nir", dt=DT)
    steps = 2000
    out = run(engine, graph, np.zeros((steps, 1, 1), F32))
    nodes = nir.read(NIR_PAPER / "01_lif__debug_spike_representation__two_lif_neurons.nir").nodes
    lif1, lif2 = nodes["lif1"], nodes["lif2"]
    v1 = v2 = 0.0
    spikes1, trace2 = [], []
    for _ in range(steps):
        v1 = v1 + DT / lif1.tau[0] * (lif1.v_leak[0] - v1 + lif1.r[0] * 0.0)
        z1 = v1 > lif1.v_threshold[0]
        v1 = lif1.v_reset[0] if z1 else v1
        v2 = v2 + DT / lif2.tau[0] * (lif2.v_leak[0] - v2 + lif2.r[0] * float(z1))
        v2 = lif2.v_reset[0] if v2 > lif2.v_threshold[0] else v2
        spikes1.append(z1)
        trace2.append(v2)
    assert sum(spikes1) >= 9
    assert out["states"]["lif1"]["v"][:, 0, 0].tolist() != [0.0] * steps
    np.testing.assert_array_equal(np.flatnonzero(out["states"]["lif1"]["v"][:, 0, 0] == 0), np.flatnonzero(spikes1))
    np.testing.assert_allclose(out["states"]["lif2"]["v"][:, 0, 0], trace2, rtol=2e-5, atol=1e-7)
    assert not out["outputs"]["out"].any()  # a spike adds dt/tau to lif2: it never reaches 20 (the file's point)


# ---- Braille RSNN: recurrent CubaLIF with the one-step delay on the back edge -------------------------


class _CubaLIF(torch.nn.Module):
    """NIR's CubaLIF, forward Euler at dt, for NIRTorch's interpreter (``forward(x, state)``)."""

    def __init__(self, node: nir.CubaLIF):
        super().__init__()

        def coef(a):
            return torch.from_numpy(np.asarray(a, np.float64).astype(F32))

        self.alpha, self.gs = coef(1 - DT / node.tau_syn), coef(node.w_in * DT / node.tau_syn)
        self.beta, self.g, self.c = (
            coef(1 - DT / node.tau_mem),
            coef(node.r * DT / node.tau_mem),
            coef(node.v_leak * DT / node.tau_mem),
        )
        self.theta, self.v_reset = coef(node.v_threshold), coef(node.v_reset)

    def forward(self, x, state=None):
        i, v = (torch.zeros_like(x), torch.zeros_like(x)) if state is None else state
        i = self.alpha * i + self.gs * x
        v = (self.beta * v + self.g * i) + self.c
        z = (v > self.theta).to(x.dtype)
        v = torch.where(z > 0, self.v_reset, v)
        return z, (i, v)


def _affine(node: nir.Affine) -> torch.nn.Linear:
    # nirtorch 2.6's default Affine map keeps a random bias (NIRTorch #55, fixed after 2.6): map it ourselves
    module = torch.nn.Linear(node.weight.shape[1], node.weight.shape[0])
    module.weight.data = torch.from_numpy(np.asarray(node.weight, F32))
    module.bias.data = torch.from_numpy(np.asarray(node.bias, F32))
    return module


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "name", ["03_rnn__braille_noDelay_bias_zero.nir", "03_rnn__braille_noDelay_noBias_subtract.nir"]
)
def test_braille_rsnn_runs_with_the_documented_recurrent_delay(engine, name):
    """talon vs NIRTorch's interpreter, which delays every back edge by one step (nir.md §3.3)."""
    graph = read_nir(NIR_PAPER / name, dt=DT)
    rng = np.random.default_rng(11)
    x = (rng.random((256, 2, 12)) < 0.15).astype(F32)  # 12 taxels, 256 steps, as in the paper
    out = run(engine, graph, x)
    module = nirtorch.nir_to_torch(nir.read(NIR_PAPER / name), {nir.CubaLIF: _CubaLIF, nir.Affine: _affine})
    spikes, v_hidden, state = [], [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            z, state = module(torch.from_numpy(x[t]), state)
            spikes.append(z.numpy())
            v_hidden.append(state["lif1_lif"][1].numpy())
    hidden_spikes = (out["states"]["lif1.lif"]["v"] == 0) & (out["states"]["lif1.lif"]["i"] != 0)
    assert hidden_spikes.any() and not hidden_spikes.all()
    assert 0 < out["outputs"]["output"].sum() < out["outputs"]["output"].size
    np.testing.assert_array_equal(out["outputs"]["output"], np.stack(spikes))
    np.testing.assert_allclose(
        out["states"]["lif1.lif"]["v"], np.stack(v_hidden), rtol=1e-6, atol=3e-5
    )  # matmul rounding


@pytest.mark.parametrize("engine", ENGINES)
def test_braille_recurrent_edge_delivers_the_previous_step_and_zero_at_first(engine):
    graph = read_nir(NIR_PAPER / "03_rnn__braille_noDelay_bias_zero.nir", dt=DT)
    x = (np.random.default_rng(12).random((40, 1, 12)) < 0.3).astype(F32)
    with_rec = run(engine, graph, x)["states"]["lif1.lif"]["i"]
    rec = graph.nodes["lif1.w_rec"]
    rec.weight, rec.bias = np.zeros_like(rec.weight), np.zeros_like(rec.bias)
    without = run(engine, graph, x)["states"]["lif1.lif"]["i"]
    np.testing.assert_array_equal(with_rec[0], without[0])  # t = 0: the back edge carries zero (not even the bias)
    assert not np.array_equal(with_rec[1], without[1])  # t = 1: W_rec s_0 + b_rec arrives
