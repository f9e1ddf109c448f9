"""Randomised differential conformance: random valid graphs on every engine, bit for bit.

Hypothesis draws small graphs — Affine / Linear layers with dyadic weights, every spiking neuron
type with random reset mode / timing / comparison / spike timing / multi-spike / floor / v_init,
per-neuron parameters with extremes (tau = 1, huge or infinite tau, tau < 1, thresholds at 0 or
negative, v_reset above threshold), recurrent weights, per-element Delays mixing lags 0..3, a
graded readout — and inputs strong enough to fire. Weights and inputs are dyadic and spikes are
0/1 (or counts), so every product is exact and every engine must reproduce the reference
(``reference.py``) bit for bit, outputs and membranes. This is how the step-wise JAX scan's
mixed-lag Delay bug was found (``test_jax_delay_carry.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir

from . import reference
from .engines import engine_names, load

TIMINGS = ("immediate", "delayed", "delayed_pre_decay", "snntorch_immediate")
TAUS = (1.0, 0.75, 1.5, 3.0, 17.0, 1e30, np.inf)


def _dynamics(draw) -> dict:
    timing = draw(st.sampled_from(TIMINGS))
    if timing == "snntorch_immediate":
        mode, spike = "subtract", "post"
    else:
        mode = draw(st.sampled_from(("value", "subtract", "none")))
        spike = "post" if timing == "immediate" else draw(st.sampled_from(("post", "pre")))
    comparison = draw(st.sampled_from((">", ">=")))
    fields = dict(reset_mode=mode, reset_timing=timing, spike_timing=spike, comparison=comparison)
    if timing == "immediate" and draw(st.booleans()):
        if draw(st.booleans()):
            fields.update(reset_mode="subtract", comparison=">=", spike_mode="multi")
            fields["max_spikes"] = draw(st.sampled_from((None, 1, 2)))
        fields["v_min"] = "set"
    return fields


def _neuron(draw, rng: np.random.Generator, n: int) -> ir.Node:
    kind = draw(st.sampled_from(("LIF", "IF", "CubaLIF")))
    fields = _dynamics(draw)
    multi = fields.get("spike_mode") == "multi"
    fields["v_threshold"] = rng.uniform(0.125, 2.0, n) if multi else rng.choice([0.0, -0.25, 0.5, 1.0, 1.7], n)
    if fields["reset_mode"] == "value":
        fields["v_reset"] = rng.uniform(-1.0, 2.5, n)  # sometimes above the threshold
    if fields.get("v_min") == "set":
        fields["v_min"] = rng.uniform(-2.0, 0.0, n)
    if draw(st.booleans()):
        fields["v_init"] = rng.uniform(-1.0, 2.0, n)
    r = rng.uniform(0.25, 4.0, n).astype(np.float32)
    if kind == "IF":
        return ir.IF(r=r, **fields)
    tau = rng.choice(TAUS, n) if draw(st.booleans()) else rng.uniform(1.0, 40.0, n)
    leak = rng.uniform(-0.5, 0.5, n)
    if kind == "LIF":
        return ir.LIF(tau=tau, r=r, v_leak=leak, integration=draw(st.sampled_from(("decay", "euler"))), **fields)
    fields["synapse"] = draw(st.sampled_from(("decay", "input_first")))
    w_in = rng.uniform(0.25, 4.0, n)
    return ir.CubaLIF(tau_syn=rng.choice(TAUS, n), tau_mem=tau, r=r, w_in=w_in, v_leak=leak, **fields)


@st.composite
def graphs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 5))
    nodes: dict[str, ir.Node] = {"input": ir.Input(np.array([n]))}
    edges, prev = [], "input"
    for k in range(draw(st.integers(1, 3))):
        m = draw(st.integers(2, 5))
        w = (rng.integers(-6, 9, (m, n)) / 8).astype(np.float32)
        nodes[f"fc{k}"] = ir.Affine(w, (rng.integers(-2, 3, m) / 8).astype(np.float32))
        nodes[f"n{k}"] = _neuron(draw, rng, m)
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"n{k}")]
        prev = f"n{k}"
        if draw(st.booleans()):  # a recurrent weight into the neuron (a one-step delayed edge)
            nodes[f"rec{k}"] = ir.Linear((rng.integers(-4, 5, (m, m)) / 8).astype(np.float32))
            edges += [(prev, f"rec{k}"), (f"rec{k}", prev)]
        if draw(st.booleans()):  # per-element lags, often mixing 0 and 1
            nodes[f"delay{k}"] = ir.Delay(rng.integers(0, draw(st.sampled_from((2, 2, 4))), m))
            edges.append((prev, f"delay{k}"))
            prev = f"delay{k}"
        n = m
    nodes["readout"] = ir.LI(tau=rng.choice(TAUS[2:], n), r=rng.uniform(0.5, 2.0, n).astype(np.float32))
    nodes["output"] = ir.Output(np.array([n]))
    edges += [(prev, "readout"), ("readout", "output")]
    graph = ir.Graph(nodes, edges)
    x = (rng.integers(-4, 20, (12, draw(st.integers(1, 3)), graph.nodes["input"].output_shape[0])) / 8).astype(
        np.float32
    )
    return graph, x


ENGINES = engine_names()


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=8, deadline=None)
@given(case=graphs())
def test_random_graphs_match_the_reference_bit_for_bit(engine, case):
    module = load(engine)
    for requirement in module.REQUIRES:
        pytest.importorskip(requirement)
    graph, x = case
    want = reference.run(graph, x)
    got = module.run(graph, x)
    for name, expected in want["outputs"].items():
        np.testing.assert_array_equal(np.asarray(got["outputs"][name]), expected, err_msg=f"{engine}: output {name}")
    for path, state in want["states"].items():
        for key, expected in state.items():
            have = np.asarray(got["states"][path][key])
            np.testing.assert_array_equal(have, expected, err_msg=f"{engine}: {path}.{key}")
