"""Seed 002 §9 ("Backend Simulation") runs unchanged, and the network fires (the original did not).

It runs on the HybridSNN graph built by hand (numpy only) and on the graph the bridge exports
from the seed's snnTorch model, whose own forward pass the backend then reproduces.
"""

import contextlib
import io

import numpy as np
import pytest

from talon.backend import default_stimulus, get_backend

from ..seed_texts import SEED_002_HYBRID
from .graphs import hybrid_graph as build_hybrid_graph

SEED_9 = """
from talon.backend import get_backend

cpu = get_backend("cpu")
sim = cpu.simulate(hybrid_graph, n_steps=10)
print("=== CPU Simulation (10 steps) ===")
print(f" Timesteps: {sim.timesteps_run}")
print(f" Spike counts: {sim.spike_counts}")
print(f" Output valid: {sim.outputs_valid}")
print()
prof_result = cpu.profile(hybrid_graph, n_steps=10, energy_preset="45nm_cmos")
print("=== Energy Profile (45nm CMOS) ===")
print(f" Total latency: {prof_result.total_latency_us:.1f} μs")
print(f" Total energy: {prof_result.energy_estimate_uj:.4f} μJ")
print(f" MAC energy: {prof_result.mac_energy_uj:.4f} μJ")
print(f" Spike energy: {prof_result.spike_energy_uj:.4f} μJ")
print(f" SRAM energy: {prof_result.sram_energy_uj:.4f} μJ")
print(f" Peak memory: {prof_result.peak_memory_bytes:,} bytes")
"""

SEED_6_MODEL = SEED_002_HYBRID


def run_seed_9(namespace: dict) -> tuple[str, dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(SEED_9, namespace)
    return out.getvalue(), namespace


def check(text: str, namespace: dict) -> None:
    sim, prof = namespace["sim"], namespace["prof_result"]
    assert " Timesteps: 10\n" in text and " Output valid: True\n" in text
    assert sim.spike_counts["lif"] > 0  # the documented run shows {'lif': 0}
    assert f" Spike counts: {{'lif': {sim.spike_counts['lif']}}}\n" in text
    assert prof.spike_energy_uj > 0 and prof.mac_energy_uj > 0 and prof.sram_energy_uj > 0
    assert prof.peak_memory_bytes > prof.weight_memory_bytes > 0
    assert f" Peak memory: {prof.peak_memory_bytes:,} bytes" in text


def test_seed_002_backend_section_on_the_hand_built_graph():
    check(*run_seed_9({"hybrid_graph": build_hybrid_graph(0)}))


def test_seed_002_backend_section_on_the_exported_model_and_its_parity():
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    namespace: dict = {}
    torch.manual_seed(0)
    exec(SEED_6_MODEL, namespace)
    check(*run_seed_9(namespace))
    # the backend reproduces the snnTorch model itself on the default stimulus
    model, graph = namespace["hybrid"], namespace["hybrid_graph"]
    x = default_stimulus(graph, 10, batch_size=2)["input"]
    ours = get_backend("cpu").simulate(graph, {"input": x}, step_by_step=True)
    mem = None
    with torch.no_grad():
        for t in range(10):
            out, mem = model(torch.from_numpy(x[t]), mem)
            np.testing.assert_allclose(ours.outputs["output"][t], out.numpy(), atol=1e-5, rtol=1e-5)
            np.testing.assert_allclose(ours.node_states["lif"]["v"][t], mem.numpy(), atol=1e-5, rtol=1e-5)
    assert ours.spike_counts["lif"] > 0
