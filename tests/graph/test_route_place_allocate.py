"""route, place and allocate on partitioned graphs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon.graph import HardwareSpec, allocate, partition, place, route
from talon.graph.examples import e2e_conv_snn
from talon.graph.route import CORE

from .nets import conv_snn, hybrid_graph, mlp_graph, recurrent_net


def _mapped(graph, spec, seed=0):
    mapped = partition(graph, spec, seed=seed)
    place(mapped, spec, seed=seed)
    route(mapped, spec)
    return mapped


def test_every_cross_core_connection_is_delivered_and_only_to_its_cores():
    spec = HardwareSpec(sram_bytes_per_core=65_536, num_cores=64)
    mapped = _mapped(hybrid_graph(), spec)
    routing = mapped.routing
    from talon.graph.partition import mapped_vertices
    from talon.graph.place import placement_slots

    vg, parts = mapped_vertices(mapped)
    slots = placement_slots(mapped, spec, int(parts.max()) + 1)
    key_of = {name: k for k, name in routing.keys.items()}
    crossing = slots[parts[vg.src]] != slots[parts[vg.dst]]
    assert crossing.any()
    for s, d in zip(vg.src[crossing], vg.dst[crossing], strict=True):
        key = key_of[vg.names[s]]
        assert int(slots[parts[d]]) in routing.deliver(key)
    for key, dests in routing.key_destinations.items():
        assert routing.deliver(key) == set(dests.tolist())


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    n_keys=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
)
def test_compressed_tables_route_every_key_like_uncompressed(rows, cols, n_keys, seed):
    """Random multicast sets on random meshes: both tables deliver exactly the destinations."""
    from talon.graph.route import RoutingResult, RoutingTable, _compress, _tree

    rng = np.random.default_rng(seed)
    n = rows * cols
    ew, ns = np.zeros((rows, max(cols - 1, 0))), np.zeros((max(rows - 1, 0), cols))
    es, ek, er, as_, ak, sources, dests = [], [], [], [], [], {}, {}
    for key in range(n_keys):
        src = int(rng.integers(n))
        d = np.unique(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=True))
        slots, routes, entry = _tree(src, d, rows, cols, ew, ns, 1.0)
        assert len(set(slots.tolist())) == slots.size  # a tree visits each router once
        sources[key], dests[key] = src, d
        as_.append(slots)
        ak.append(np.full(slots.size, key))
        es.append(slots[entry])
        ek.append(np.full(int(entry.sum()), key))
        er.append(routes[entry])
    es, ek, er, as_, ak = (np.concatenate(x).astype(np.int64) for x in (es, ek, er, as_, ak))
    compressed = _compress(es, ek, er, as_, ak)
    tables = {}
    for slot in np.unique(es).tolist():
        m = es == slot
        tables[slot] = RoutingTable(divmod(slot, cols), None, np.stack([ek[m], er[m]], 1), compressed.get(slot))
    result = RoutingResult(tables, dict.fromkeys(range(n_keys), "v"), sources, dests, ew, ns, 0.0, mesh=(rows, cols))
    for key in range(n_keys):
        want = set(dests[key].tolist())
        assert result.deliver(key, compressed=False) == want
        assert result.deliver(key, compressed=True) == want
    assert sum(len(t) for t in compressed.values()) <= es.size


def test_link_loads_sum_to_the_multicast_spike_hops_and_energy_uses_the_spec():
    spec = HardwareSpec.loihi()
    mapped = _mapped(mlp_graph(sizes=(600, 2000, 10)), spec)
    routing = mapped.routing
    assert routing.spike_hops == pytest.approx(routing.link_load_east_west.sum() + routing.link_load_north_south.sum())
    assert routing.noc_energy_pj_per_step == pytest.approx(
        3.0 * routing.link_load_east_west.sum() + 4.0 * routing.link_load_north_south.sum()
    )
    assert routing.max_link_load > 0
    assert all(t.entries[:, 1].min() > 0 for t in routing.tables.values())
    assert any(t.entries[:, 1].max() & CORE for t in routing.tables.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_placement_is_never_worse_than_identity_and_is_seeded(seed):
    spec = HardwareSpec(sram_bytes_per_core=65_536, num_cores=64)
    mapped = partition(hybrid_graph(), spec)
    first = place(mapped, spec, seed=seed)
    again = place(mapped, spec, seed=seed)
    assert first.total_hop_distance <= first.baseline_hops
    assert 0.0 <= first.improvement < 1.0
    assert first.logical_to_physical == again.logical_to_physical
    assert len(set(first.logical_to_physical.values())) == len(first.logical_to_physical)
    assert first.total_hops == first.total_hop_distance


def test_placement_improves_a_scattered_mapping():
    spec = HardwareSpec(max_neurons_per_core=32, num_cores=36)
    mapped = partition(mlp_graph(sizes=(60, 200, 10)), spec, algorithm="greedy")
    result = place(mapped, spec, seed=0)
    assert result.improvement > 0


def test_the_documented_overflow_fits_once_split():
    graph, spec = e2e_conv_snn(), HardwareSpec.zynq_us_plus()
    whole = allocate(graph, spec)
    assert not whole.fits_hardware
    assert f"{whole.peak_core_utilization:.2f}" == "16.42"
    (sram,) = [v for v in whole.violations if v["resource"] == "sram_bytes"]
    assert sram["core"] == 0 and sram["used"] == 1_614_152 and sram["limit"] == 98_304
    mapped = _mapped(graph, spec)
    resources = allocate(mapped, spec)
    assert resources.fits_hardware, resources.violations
    assert resources.total_weight_bytes == whole.total_weight_bytes == 1_611_944
    assert resources.total_state_bytes == whole.total_state_bytes == 138 * 16
    assert resources.peak_core_utilization <= 1.0
    assert sum(b.routing_bytes for b in resources.budgets.values()) > 0


def test_an_infeasible_spec_reports_violations():
    spec = HardwareSpec(max_neurons_per_core=32, num_cores=2)
    with pytest.warns(UserWarning):
        mapped = partition(mlp_graph(sizes=(60, 90, 10)), spec)
    resources = allocate(mapped, spec)
    assert not resources.fits_hardware
    (cores,) = [v for v in resources.violations if v["resource"] == "cores"]
    assert cores["limit"] == 2 and cores["excess"] == cores["used"] - 2
    small_tables = HardwareSpec(max_neurons_per_core=32, num_cores=16, routing_entries_per_core=1)
    mapped = _mapped(mlp_graph(sizes=(60, 90, 10)), small_tables)
    resources = allocate(mapped, small_tables)
    assert any(v["resource"] == "routing_entries" for v in resources.violations)


def test_int4_weights_are_packed():
    graph = mlp_graph(sizes=(60, 90, 10))
    fp32 = allocate(graph, HardwareSpec(precision="fp32")).total_weight_bytes
    int4 = allocate(graph, HardwareSpec(precision="int4")).total_weight_bytes
    assert fp32 == (60 * 90 + 90 + 90 * 10 + 10) * 4
    assert int4 == (60 * 90 + 90 + 90 * 10 + 10) // 2


def test_feedback_routes_longer_than_the_limit_are_reported():
    graph = recurrent_net(hidden=40)
    spec = HardwareSpec(max_neurons_per_core=8, num_cores=64, mesh=(1, 64), max_feedback_delay=1)
    mapped = _mapped(graph, spec)
    feedback = mapped.routing.feedback_violations
    assert feedback and all(v["hops"] > 1 and v["limit"] == 1 for v in feedback)
    assert any(v["resource"] == "feedback_delay" for v in allocate(mapped, spec).violations)
    relaxed = HardwareSpec(max_neurons_per_core=8, num_cores=64, mesh=(1, 64), max_feedback_delay=64)
    assert not _mapped(graph, relaxed).routing.feedback_violations


def test_conv_graph_routes():
    spec = HardwareSpec(max_neurons_per_core=300, num_cores=64)
    mapped = _mapped(conv_snn(), spec)
    assert mapped.routing.summary()["keys"] > 0


def test_compile_carries_the_mapping_and_profile_adds_noc_energy(tmp_path):
    from talon.backend import get_backend
    from talon.backend.descriptor import HardwareDescriptor

    from .nets import spikes

    graph = mlp_graph(sizes=(60, 90, 10))
    spec = HardwareSpec(max_neurons_per_core=32, num_cores=16, hop_energy_pj=(3.0, 4.0))
    backend = get_backend("cpu")
    descriptor = backend.compile(graph, hw_spec=spec)
    mapping = descriptor["mapping"]
    assert mapping["num_cores_used"] >= 3
    assert mapping["routing"]["tables"] and mapping["placement"]
    ops = [op for c in descriptor.schedule for op in c["ops"]]
    assert {op["core"] for op in ops} == set(range(mapping["num_cores_used"]))
    descriptor.to_json(tmp_path / "d.json")
    assert HardwareDescriptor.from_json(tmp_path / "d.json")["mapping"]["assignments"] == mapping["assignments"]

    mapped = _mapped(graph, spec)
    inputs = {"input": spikes((60,))}
    profile = backend.profile(mapped, inputs)
    plain = backend.profile(graph, inputs)
    assert plain.noc is None
    assert profile.noc["spike_hops"] > 0
    assert profile.noc["noc_energy_uj"] > 0
    assert profile.energy_estimate_uj == pytest.approx(
        plain.energy_estimate_uj + profile.noc["noc_energy_uj"], rel=1e-9
    )
    assert set(profile.per_core_latency_us) <= set(range(mapped.partition_metadata["num_cores_used"]))
    assert "NoC:" in profile.summary()
