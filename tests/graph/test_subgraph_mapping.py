"""Recurrent layers exported as subgraphs (snnTorch RLeaky, Spyx RLIF, NIR RNN subgraphs) cost
what their nodes cost and are mapped node by node, their feedback routed; the mapped graph
simulates bit-identically."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from talon import ir, sdk
from talon.backend import get_backend
from talon.graph import HardwareSpec, MappingError, allocate, partition
from talon.graph.examples import recurrent_snn
from talon.graph.inline import inline_subgraphs
from talon.graph.partition import mapped_vertices
from talon.graph.pipeline import map_graph
from talon.graph.resources import Cost, node_cost

from .nets import spikes


@pytest.mark.parametrize(
    ("precision_bits", "expected"),
    [
        # LIF: 24 neurons x 4 values (v, beta, g, theta); w_rec: 24 x 24 = 576 weights, no bias
        ((32, 32), Cost(neurons=24, synapses=576, fan_in=24, weight_bytes=576 * 4, state_bytes=24 * 4 * 4)),
        ((8, 24), Cost(neurons=24, synapses=576, fan_in=24, weight_bytes=576, state_bytes=24 * 4 * 3)),
        ((4, 16), Cost(neurons=24, synapses=576, fan_in=24, weight_bytes=288, state_bytes=24 * 4 * 2)),
    ],
)
def test_a_subgraph_costs_exactly_what_its_nodes_cost(precision_bits, expected):
    graph = recurrent_snn(inputs=8, hidden=24, outputs=3)
    assert node_cost(graph.nodes["rec"], *precision_bits) == expected


def test_a_nested_subgraph_is_summed_at_every_level():
    inner = recurrent_snn(inputs=8, hidden=24, outputs=3).nodes["rec"]
    outer = ir.Graph(
        {"input": ir.Input(np.array([24])), "inner": inner, "output": ir.Output(np.array([24]))},
        [("input", "inner"), ("inner", "output")],
    )
    assert node_cost(outer, 32, 32) == node_cost(inner, 32, 32)


def test_inlining_keeps_the_recurrent_edge_and_the_node_paths():
    graph = recurrent_snn(inputs=8, hidden=24, outputs=3)
    flat, inlined = inline_subgraphs(graph)
    assert inlined == {"rec": ["rec.input", "rec.neuron", "rec.w_rec", "rec.output"]}
    assert flat.recurrent_edges == [("rec.w_rec", "rec.neuron")]
    assert isinstance(flat.nodes["rec.input"], ir.Skip)
    assert not any(isinstance(n, ir.Graph) for n in flat.nodes.values())


def _simulate_both(graph, mapped, precision):
    backend = get_backend("cpu")
    inputs = {"input": spikes((int(graph.nodes["input"].shape[0]),), steps=20, batch=2)}
    before = backend.simulate(graph, inputs, step_by_step=True, precision=precision)
    after = backend.simulate(mapped, inputs, step_by_step=True, precision=precision)
    return before, after


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_split_recurrent_layer_simulates_bit_identically(precision):
    graph = recurrent_snn(inputs=20, hidden=48, outputs=5)
    # 48 x 48 recurrent weight = 9,216 B at fp32: two cores of 6 KiB do not hold it
    spec = HardwareSpec(sram_bytes_per_core=6_144, num_cores=16)
    mapped = partition(graph, spec)
    meta = mapped.partition_metadata
    assert "rec.w_rec" in meta["split_layers"]
    assert meta["inlined_subgraphs"]["rec"] == ["rec.input", "rec.neuron", "rec.w_rec", "rec.output"]
    before, after = _simulate_both(graph, mapped, precision)
    assert before.spike_counts["rec.neuron"] > 50, "the stimulus must make the recurrent layer fire"
    np.testing.assert_array_equal(after.outputs["output"], before.outputs["output"])
    np.testing.assert_array_equal(after.node_states["rec.neuron"]["output"], before.node_states["rec.neuron"]["output"])
    np.testing.assert_array_equal(after.node_states["rec.neuron"]["v"], before.node_states["rec.neuron"]["v"])


def test_the_feedback_is_a_routed_recurrent_connection():
    graph = recurrent_snn(inputs=20, hidden=48, outputs=5)
    mapped = map_graph(graph, HardwareSpec(sram_bytes_per_core=6_144, num_cores=16, max_feedback_delay=8))
    vg, parts = mapped_vertices(mapped)
    neuron = vg.index["rec.neuron"]
    feedback = [(vg.names[s], vg.names[d]) for s, d, r in zip(vg.src, vg.dst, vg.recurrent, strict=True) if r]
    assert feedback and all(d == "rec.neuron" and s.startswith("rec.w_rec_s") for s, d in feedback)
    assert any(parts[vg.index[s]] != parts[neuron] for s, _ in feedback), "the feedback crosses cores"
    routed = {mapped.routing.keys[k] for k in mapped.routing.keys}
    remote = {s for s, _ in feedback if parts[vg.index[s]] != parts[neuron]}
    assert remote <= routed, "every feedback slice on another core has a multicast route"
    assert not mapped.routing.feedback_violations


def test_a_recurrent_layer_that_fits_stays_on_one_core_and_counts():
    graph = recurrent_snn(inputs=20, hidden=48, outputs=5)
    spec = HardwareSpec(num_cores=4)  # 1024 neurons, 128 KiB per core
    mapped = partition(graph, spec)
    cores = mapped.partition_metadata["assignments"]
    assert cores["rec.neuron"] == cores["rec.w_rec"]
    budget = allocate(mapped, spec)
    assert budget.fits_hardware
    assert sum(b.neuron_count for b in budget.budgets.values()) == 48
    assert sum(b.synapse_count for b in budget.budgets.values()) == 48 * 20 + 48 * 48 + 5 * 48


def test_a_recurrent_layer_too_big_for_the_chip_does_not_fit():
    """The report's case: 300 LIF + a 300 x 300 recurrent weight. Before the fix it 'fit' 3 cores."""
    graph = recurrent_snn()
    spec = HardwareSpec.zynq_us_plus()
    small = HardwareSpec.from_dict({**spec.to_dict(), "num_cores": 4, "mesh": None, "name": "four"})
    with pytest.warns(UserWarning, match="needs 8 cores"):
        mapped = partition(graph, small)
    budget = allocate(mapped, small)
    assert not budget.fits_hardware
    assert {v["resource"] for v in budget.violations} == {"cores"}
    assert sum(b.neuron_count for b in budget.budgets.values()) == 300
    assert sum(b.synapse_count for b in budget.budgets.values()) == 200 * 300 + 300 * 300 + 300 * 10
    # unpartitioned, everything is budgeted on core 0: the recurrent layer counts there too
    whole = allocate(graph, spec)
    assert whole.budgets[0].neuron_count == 300 and whole.budgets[0].synapse_count == 153_000


def test_a_recurrent_row_that_exceeds_a_core_is_refused():
    graph = recurrent_snn(inputs=20, hidden=48, outputs=5)
    with pytest.raises(MappingError, match=r"node 'rec.w_rec' \(Linear\).*192 SRAM bytes.*100"):
        partition(graph, HardwareSpec(sram_bytes_per_core=100, num_cores=64))
    with pytest.raises(MappingError, match=r"'rec.w_rec'.*fan-in of 32"):
        partition(graph, HardwareSpec(max_fan_in=32, num_cores=64))


def test_analyze_and_the_mapper_count_the_same_neurons_and_weights():
    graph = recurrent_snn(inputs=20, hidden=48, outputs=5)
    stats = sdk.analyze_graph(graph)
    spec = HardwareSpec(num_cores=4, precision="fp32")
    mapped = partition(graph, spec)
    budget = allocate(mapped, spec)
    assert stats.spiking_neurons == sum(b.neuron_count for b in budget.budgets.values())
    weight_params = sum(layer.params for layer in stats.layers if layer.node_type in ("Affine", "Linear"))
    assert weight_params * 4 == budget.total_weight_bytes  # fp32: 4 bytes per weight or bias
    layers = {layer.name: layer.params for layer in stats.layers}
    assert layers["rec.w_rec"] == node_cost(mapped.nodes["rec.w_rec"], 32, 32).synapses == 48 * 48


def test_the_partitioned_graph_survives_a_t1c_round_trip(tmp_path):
    graph = recurrent_snn(inputs=20, hidden=48, outputs=5)
    mapped = partition(graph, HardwareSpec(sram_bytes_per_core=6_144, num_cores=16))
    ir.write(tmp_path / "m.t1c", mapped)
    back = ir.read(tmp_path / "m.t1c")
    vg, parts = mapped_vertices(back)
    assert dict(zip(vg.names, parts.tolist(), strict=True)) == {
        n: mapped.partition_metadata["assignments"][n] for n in vg.names
    }
    before, after = _simulate_both(graph, back, "fp32")
    np.testing.assert_array_equal(after.outputs["output"], before.outputs["output"])


def test_an_snntorch_rleaky_maps_and_simulates_bit_identically():
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from talon import bridge

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(20, 64),
        snn.RLeaky(beta=0.9, linear_features=64, init_hidden=True),
        torch.nn.Linear(64, 4),
    )
    with torch.no_grad():
        net[0].weight.mul_(4)
    graph = bridge.to_ir(net, torch.randn(1, 20))
    (rec,) = [n for n, node in graph.nodes.items() if isinstance(node, ir.Graph)]
    cost = node_cost(graph.nodes[rec], 32, 32)
    assert (cost.neurons, cost.synapses, cost.weight_bytes) == (64, 64 * 64, 64 * 64 * 4)
    spec = HardwareSpec(sram_bytes_per_core=8_192, num_cores=16)  # 16 KiB of recurrent weight: split
    mapped = partition(graph, spec)
    assert f"{rec}.w_rec" in mapped.partition_metadata["split_layers"]
    assert allocate(mapped, spec).fits_hardware
    (inp,) = graph.input_nodes
    (out,) = graph.output_nodes
    backend = get_backend("cpu")
    x = {inp: spikes((20,), steps=20, batch=2)}
    before = backend.simulate(graph, x, step_by_step=True)
    after = backend.simulate(mapped, x, step_by_step=True)
    assert sum(before.spike_counts.values()) > 50
    np.testing.assert_array_equal(after.outputs[out], before.outputs[out])


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_delay_costs_its_history_and_is_split_by_channel(precision):
    delay = ir.Delay(np.array([3] * 60 + [1] * 4))  # a history of 3 * 60 + 4 = 184 values
    rng = np.random.default_rng(0)
    nodes = {
        "input": ir.Input(np.array([20])),
        "fc": ir.Affine(rng.uniform(-0.6, 0.6, (64, 20)).astype(np.float32), np.zeros(64, np.float32)),
        "lif": recurrent_snn(inputs=8, hidden=64, outputs=3).nodes["rec"].nodes["neuron"],
        "delay": delay,
        "out": ir.Affine(rng.uniform(-0.3, 0.3, (4, 64)).astype(np.float32), np.zeros(4, np.float32)),
        "output": ir.Output(np.array([4])),
    }
    names = list(nodes)
    graph = ir.Graph(nodes, list(itertools.pairwise(names)))
    assert node_cost(graph.nodes["delay"], 32, 32) == Cost(state_bytes=736)
    assert node_cost(graph.nodes["delay"], 8, 24) == Cost(state_bytes=552)
    mapped = partition(graph, HardwareSpec(sram_bytes_per_core=1_200, num_cores=32))
    assert "delay" in mapped.partition_metadata["split_layers"]
    before, after = _simulate_both(graph, mapped, precision)
    assert before.spike_counts["lif"] > 50
    np.testing.assert_array_equal(after.outputs["output"], before.outputs["output"])


def test_inlining_that_would_move_a_one_step_delay_is_refused():
    """A loop not reached from any Input: the flat graph's search would enter the subgraph at
    another node than the subgraph's own search (docs/semantics.md), moving the delay."""
    layer = recurrent_snn(inputs=8, hidden=4, outputs=3).nodes["rec"]
    sub = ir.Graph({n: layer.nodes[n] for n in ("neuron", "input", "w_rec", "output")}, layer.edges)
    graph = ir.Graph(
        {"input": ir.Input(np.array([4])), "output": ir.Output(np.array([4])), "sub": sub, "q": ir.ReLU()},
        [("input", "output"), ("sub", "q"), ("q", "sub")],
    )
    with pytest.raises(MappingError, match=r"edge \('q', 'sub.input'\) would stop being a recurrent"):
        inline_subgraphs(graph)
