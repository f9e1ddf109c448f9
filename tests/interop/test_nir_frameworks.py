"""Cross-framework parity through NIR: talon -> Norse, talon -> snnTorch, snnTorch -> talon.

Each test runs the real package (Norse 1.1.0, snnTorch 1.0.0, nirtorch 2.6, nir 1.0.8) on inputs
that make the neurons fire, for the configurations its importer or exporter can represent
(``neuron-semantics.md`` §7). Where an importer or exporter has a documented bug, a test pins
the version and shows the bug, so that a release that fixes it makes the test fail and gets noticed.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from importlib.metadata import version

import numpy as np
import pytest
import snntorch.utils

from talon import ir
from talon.interop.nir import from_nir, to_nir

from .nir_helpers import ENGINES, chain, run

torch = pytest.importorskip("torch")
norse_torch = pytest.importorskip("norse.torch")
snn = pytest.importorskip("snntorch")
from snntorch.export_nir import export_to_nir  # noqa: E402
from snntorch.import_nir import import_from_nir  # noqa: E402

DT = 1e-4
F32 = np.float32
NIR_LIF = dict(comparison=">", reset_mode="value", reset_timing="immediate", spike_timing="post")


def quiet(fn, *args, **kwargs):
    """Call a framework function that prints and warns on every call (snnTorch, nirtorch)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def step_module(module, x: np.ndarray, stateful: bool = True) -> list:
    """Run a per-step torch module over time-major ``x``; returns the outputs per step."""
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            if stateful:
                out, state = module(torch.from_numpy(x[t]), state)
            else:
                out = module(torch.from_numpy(x[t]))
            while isinstance(out, tuple):  # (output, state) and snnTorch's (spk, mem)
                out = out[0]
            outs.append(out)
    return [o.numpy() for o in outs]


def inputs(seed: int, t: int, b: int, n: int, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0.3, 1.0, (t, b, n)) * scale).astype(F32)


def assert_fires(spikes: np.ndarray) -> None:
    assert 0 < spikes.sum() < spikes.size * 0.8, f"{spikes.sum()} spikes of {spikes.size}: not a useful test input"


# ---- talon -> NIR -> Norse (norse.torch.from_nir, dt=1e-4) ------------------------------------------


def _norse(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    module = quiet(norse_torch.from_nir, to_nir(graph), dt=DT, ignore_warnings=True)
    return np.stack(step_module(module, x))


def _norse_graphs():
    rng = np.random.default_rng(20)
    w = lambda *s: rng.normal(0, 0.8, s).astype(F32)  # noqa: E731
    # Norse's LIFBoxCell ignores r and v_reset and starts at v = v_leak: r = 1, v_leak = v_reset = 0
    lif = ir.LIF(tau=rng.uniform(3, 20, 6).astype(F32), r=1.0, v_threshold=0.2, **NIR_LIF)
    yield "affine-lif", chain([4], ("fc", ir.Affine(w(6, 4), w(6))), ("lif", lif))
    # CubaLIF is imported exactly as NIR's equations (w_in, r kept), with v_leak = 0 (Norse gives it to the synapse)
    cuba = ir.CubaLIF(
        tau_syn=rng.uniform(2, 6, 5).astype(F32), tau_mem=rng.uniform(4, 20, 5).astype(F32),
        r=rng.uniform(2, 8, 5).astype(F32), w_in=rng.uniform(1, 4, 5).astype(F32), v_threshold=0.5, **NIR_LIF,
    )  # fmt: skip
    yield "linear-cubalif", chain([4], ("fc", ir.Linear(w(5, 4))), ("cuba", cuba))
    # Norse's IAFCell computes v + x, ignoring r and dt: talon IF with r = 1
    yield "affine-if", chain([4], ("fc", ir.Affine(w(3, 4), w(3))), ("if", ir.IF(v_threshold=1.0, r=1.0, **NIR_LIF)))
    conv = ir.Conv2d(w(3, 2, 3, 3), w(3), padding=(1, 1))
    yield "conv-if", chain([2, 6, 6], ("conv", conv), ("if", ir.IF(v_threshold=1.0, **NIR_LIF)))


NORSE = list(_norse_graphs())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("graph", [g for _, g in NORSE], ids=[n for n, _ in NORSE])
def test_talon_to_norse_gives_the_same_spikes(engine, graph):
    shape = graph.nodes["input"].shape
    x = inputs(21, 80, 3, int(np.prod(shape))).reshape(80, 3, *shape)
    want = run(engine, graph, x)["outputs"]["output"]
    assert_fires(want)
    np.testing.assert_array_equal(_norse(graph, x), want)


def test_norse_110_ignores_r_of_lif():
    """Pinned Norse 1.1.0 behaviour (neuron-semantics.md §3): LIF's r is dropped (only a warning).

    A talon LIF with snnTorch's convention r = tau (gain 1) imports into Norse with gain 1/tau.
    """
    assert version("norse") == "1.1.0"
    graph = chain([3], ("lif", ir.LIF(tau=[10.0, 10.0, 10.0], r=[10.0, 10.0, 10.0], v_threshold=1.0, **NIR_LIF)))
    x = inputs(22, 60, 2, 3, scale=0.8)
    want = run("reference", graph, x)["outputs"]["output"]
    assert_fires(want)
    assert _norse(graph, x).sum() < want.sum() / 4


# ---- talon -> NIR -> snnTorch (snntorch.import_nir.import_from_nir, dt=1e-4 hard-coded) --------------


def _snntorch(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    module = quiet(import_from_nir, to_nir(graph))
    return np.stack(quiet(step_module, module, x, False))


def _snntorch_graphs():
    rng = np.random.default_rng(23)
    w = lambda *s: rng.normal(0, 0.8, s).astype(F32)  # noqa: E731
    # snnTorch asserts v_leak = 0 and one threshold per layer; it folds r dt/tau into the threshold,
    # exact only for r = tau (gain 1, snnTorch's own export convention)
    tau = rng.uniform(3, 20, 6).astype(F32)
    lif = ir.LIF(tau=tau, r=tau, v_threshold=1.0, **NIR_LIF)
    yield "affine-lif", chain([4], ("fc", ir.Affine(w(6, 4), w(6))), ("lif", lif))
    ts, tm = rng.uniform(2, 6, 5).astype(F32), rng.uniform(4, 20, 5).astype(F32)
    cuba = ir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm, w_in=ts, v_threshold=1.0, **NIR_LIF)  # snnTorch's Synaptic
    yield "linear-cubalif-affine-lif", chain(
        [4], ("fc", ir.Linear(np.abs(w(5, 4)) * 0.3)), ("cuba", cuba), ("fc2", ir.Affine(np.abs(w(3, 5)), w(3) * 0.1)),
        ("lif", ir.LIF(tau=[5.0, 6.0, 7.0], r=[5.0, 6.0, 7.0], v_threshold=0.5, **NIR_LIF)),
    )  # fmt: skip


SNNTORCH = list(_snntorch_graphs())


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("graph", [g for _, g in SNNTORCH], ids=[n for n, _ in SNNTORCH])
def test_talon_to_snntorch_gives_the_same_spikes(engine, graph):
    x = inputs(24, 80, 3, 4)
    want = run(engine, graph, x)["outputs"]["output"]
    assert_fires(want)
    np.testing.assert_array_equal(_snntorch(graph, x), want)


def test_snntorch_100_imports_if_as_a_leaky_neuron():
    """Pinned snnTorch 1.0.0 bug (snntorch#416; fixed on master by PR #452, not released): IF -> Leaky(beta=0.9).

    (snnTorch also asserts NIR's r == 1, i.e. talon's r = dt: it integrates v + x per step, not Euler's v + dt r x.)
    """
    assert version("snntorch") == "1.0.0"
    graph = chain([3], ("fc", ir.Linear(np.eye(3, dtype=F32))), ("spk", ir.IF(v_threshold=3e-5, r=DT, **NIR_LIF)))
    module = quiet(import_from_nir, to_nir(graph))
    assert float(module.get_submodule("spk").beta) == pytest.approx(0.9)
    x = np.full((40, 1, 3), 0.1, F32)
    want = run("reference", graph, x)["outputs"]["output"]  # v + 1e-5 per step: a spike every 4th step
    assert want[:, 0, 0].tolist()[:8] == [0, 0, 0, 1, 0, 0, 0, 1]
    assert not np.array_equal(_snntorch(graph, x), want)


def test_snntorch_100_with_nirtorch_26_breaks_recurrent_imports():
    """Pinned bugs (snntorch#435 and NIRTorch#51, fixed after the releases): nirtorch 2.6 flattens the
    RNN subgraph snnTorch builds, and snnTorch wires the input through W_rec: lif(W (x + s)) instead
    of lif(x + W s)."""
    assert (version("snntorch"), version("nirtorch")) == ("1.0.0", "2.6")
    rng = np.random.default_rng(25)
    nodes = {
        "input": ir.Input(np.array([4])),
        "fc": ir.Linear(rng.normal(0, 0.8, (4, 4)).astype(F32)),
        "rnn.lif": ir.LIF(tau=[5.0] * 4, r=[5.0] * 4, v_threshold=1.0, **NIR_LIF),
        "rnn.w_rec": ir.Linear(rng.normal(0, 0.8, (4, 4)).astype(F32)),
        "output": ir.Output(np.array([4])),
    }
    edges = [
        ("input", "fc"),
        ("fc", "rnn.lif"),
        ("rnn.lif", "rnn.w_rec"),
        ("rnn.w_rec", "rnn.lif"),
        ("rnn.lif", "output"),
    ]
    graph = ir.Graph(nodes, edges)
    x = inputs(26, 80, 2, 4)
    want = run("reference", graph, x)["outputs"]["output"]
    assert_fires(want)
    got = _snntorch(graph, x)
    assert got.sum() < want.sum() / 2  # 69 spikes instead of 200 with this seed


# ---- snnTorch -> NIR (snntorch.export_nir.export_to_nir) -> talon -------------------------------------


class _FeedForward(torch.nn.Module):
    def __init__(self, reset_mechanism="zero", reset_delay=False):
        super().__init__()
        torch.manual_seed(27)
        dyn = dict(init_hidden=True, reset_mechanism=reset_mechanism, reset_delay=reset_delay)
        self.fc1 = torch.nn.Linear(4, 6)
        self.lif1 = snn.Leaky(beta=torch.full((6,), 0.85), threshold=torch.ones(6), **dyn)
        self.fc2 = torch.nn.Linear(6, 3)
        self.syn = snn.Synaptic(
            alpha=torch.full((3,), 0.7), beta=torch.full((3,), 0.9), threshold=torch.ones(3), output=True, **dyn
        )

    def forward(self, x):
        spk, _syn, mem = self.syn(self.fc2(self.lif1(self.fc1(x))))
        return spk, mem


class _Recurrent(torch.nn.Module):
    def __init__(self, recurrent_bias: bool = False):
        super().__init__()
        torch.manual_seed(28)
        self.fc = torch.nn.Linear(4, 5)
        self.rlif = snn.RLeaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), linear_features=5,
                               init_hidden=True, reset_mechanism="zero", reset_delay=False)  # fmt: skip
        if not recurrent_bias:  # see test_snntorch_rleaky_recurrent_bias_arrives_one_step_early
            with torch.no_grad():
                self.rlif.recurrent.bias.zero_()
        self.fc2 = torch.nn.Linear(5, 3)
        self.lif = snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), init_hidden=True, output=True,
                             reset_mechanism="zero", reset_delay=False)  # fmt: skip

    def forward(self, x):
        spk, mem = self.lif(self.fc2(self.rlif(self.fc(x))))
        return spk, mem


def _snntorch_run(net, x: np.ndarray) -> np.ndarray:
    snntorch.utils.reset(net)
    return np.stack(step_module(net, x, stateful=False))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("net_cls", [_FeedForward, _Recurrent], ids=["leaky-synaptic", "rleaky"])
def test_snntorch_export_runs_in_talon_with_the_same_spikes(engine, net_cls):
    """Leaky / Synaptic / RLeaky with reset_mechanism='zero', reset_delay=False: NIR's reset, exported exactly."""
    net = net_cls()
    x = inputs(29, 100, 3, 4, scale=1.5)
    want = _snntorch_run(net, x)
    assert_fires(want)
    nir_graph = quiet(export_to_nir, net, torch.zeros(1, 4), ignore_dims=[0])
    graph = from_nir(nir_graph)
    if net_cls is _Recurrent:
        assert graph.recurrent_edges == [("rlif.w_rec", "rlif.lif")]
    got = run(engine, graph, x)["outputs"]["output"]
    np.testing.assert_array_equal(got, want)


def test_snntorch_100_export_drops_the_reset_mechanism():
    """Pinned snnTorch 1.0.0 behaviour (neuron-semantics.md §2.3, pitfall 9): Leaky's default
    reset (subtract, delayed) is exported as NIR's reset to v_reset = 0; talon runs what the file says."""
    assert version("snntorch") == "1.0.0"
    net = _FeedForward(reset_mechanism="subtract", reset_delay=True)
    nir_graph = quiet(export_to_nir, net, torch.zeros(1, 4), ignore_dims=[0])
    assert not np.any(nir_graph.nodes["lif1"].v_reset)
    x = inputs(29, 100, 3, 4, scale=1.5)
    want = _snntorch_run(net, x)
    assert_fires(want)
    graph = from_nir(nir_graph)
    assert graph.nodes["lif1"].reset_mode == "value"
    assert not np.array_equal(run("reference", graph, x)["outputs"]["output"], want)
    # stating snnTorch's real reset in talon (what the file could not carry) gives its spikes back
    stated = dict(graph.nodes)
    for name in ("lif1", "syn"):
        node = graph.nodes[name]
        stated[name] = type(node)(**{**node.params(), "reset_mode": "subtract", "reset_timing": "delayed"})
    graph = ir.Graph(stated, graph.edges)
    np.testing.assert_array_equal(run("reference", graph, x)["outputs"]["output"], want)


def test_snntorch_rleaky_recurrent_bias_arrives_one_step_early():
    """snnTorch 1.0.0's RLeaky computes V(s_prev) with s_prev = 0 at t = 0, so V's bias reaches the
    membrane at the first step; in a NIR graph the back edge w_rec -> lif carries zero at t = 0
    (docs/semantics.md §2; NIRTorch does the same). The exported file therefore differs from the
    network at t = 0 unless the recurrent bias is zero (not reported upstream as far as we know)."""
    assert version("snntorch") == "1.0.0"
    net = _Recurrent(recurrent_bias=True)
    x = inputs(29, 100, 3, 4, scale=1.5)
    want = _snntorch_run(net, x)
    graph = from_nir(quiet(export_to_nir, net, torch.zeros(1, 4), ignore_dims=[0]))
    assert np.any(graph.nodes["rlif.w_rec"].bias)
    got = run("reference", graph, x)
    assert not np.array_equal(got["outputs"]["output"], want)
    # folding the recurrent bias into the feed-forward Affine states snnTorch's network exactly
    nodes = dict(graph.nodes)
    fc, rec = graph.nodes["fc"], graph.nodes["rlif.w_rec"]
    nodes["fc"] = ir.Affine(fc.weight, fc.bias + rec.bias)
    nodes["rlif.w_rec"] = ir.Linear(rec.weight)
    np.testing.assert_array_equal(run("reference", ir.Graph(nodes, graph.edges), x)["outputs"]["output"], want)
