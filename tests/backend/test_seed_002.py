"""Seed 002 §9 ("Backend Simulation") runs unchanged, and the network fires (the original did not)."""

from .graphs import hybrid_graph as build_hybrid_graph


def test_seed_002_backend_section_runs_unchanged(capsys):
    hybrid_graph = build_hybrid_graph(0)  # the tutorial gets it from export_to_ir(HybridSNN(), ...)

    # ---- verbatim from the tutorial ----
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
    # ---- end of the tutorial's code ----

    out = capsys.readouterr().out
    assert " Timesteps: 10" in out and " Output valid: True" in out
    assert sim.spike_counts["lif"] > 0  # the documented run shows {'lif': 0}
    assert prof_result.spike_energy_uj > 0 and prof_result.mac_energy_uj > 0 and prof_result.sram_energy_uj > 0
    assert prof_result.peak_memory_bytes > prof_result.weight_memory_bytes > 0
