"""What the page says a graph costs: per node and in total the numbers of `talon analyze --json` and
`talon profile --json`, per core the budget of `talon.graph.allocate` against the chip's limits."""

from __future__ import annotations

import json
import warnings

import pytest
from click.testing import CliRunner

from talon import ir, sdk, viz
from talon.cli import main
from talon.graph import HardwareSpec, allocate, partition
from talon.graph.examples import e2e_conv_snn, recurrent_snn
from talon.graph.spec import PRECISION_BITS
from talon.viz.costs import NEAR_FULL
from tests.viz.test_hostile_names import hostile_graph

pytest.importorskip("pymetis")


def _cli_json(*args) -> dict:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("make", [recurrent_snn, hostile_graph], ids=["recurrent-subgraph", "hostile-names"])
def test_node_costs_are_the_cli_numbers(make, tmp_path):
    """Every drawn node (subgraph nodes included) carries analyze's bytes and MACs under analyze's
    name; the spike ops sum to profile's; the summary is analyze's and profile's totals."""
    graph = make()
    ir.write(tmp_path / "m.t1c", graph)
    analyzed = _cli_json("analyze", tmp_path / "m.t1c", "--json", "--verbose")
    profiled = _cli_json("profile", tmp_path / "m.t1c", "--json")
    document = viz.graph_to_dict(ir.read(tmp_path / "m.t1c"))
    costs = [n["cost"] for n in document["nodes"]]
    assert [c["layer"] for c in costs] == [layer["name"] for layer in analyzed["layers"]]
    assert [(c["bytes"], c["macs"]) for c in costs] == [(la["bytes"], la["macs"]) for la in analyzed["layers"]]
    assert sum(c["spike_ops"] for c in costs) == profiled["spike_ops"] > 0
    assert sum(c["ops"] for c in costs) == profiled["total_ops"]
    total = document["summary"]["cost"]
    for key in ("total_params", "total_bytes", "total_macs", "total_flops"):
        assert total[key] == analyzed[key], key
    for key in ("spike_ops", "total_ops", "weight_memory", "activation_memory", "state_memory", "total_memory"):
        assert total[key] == profiled[key], key
    neurons = [n for n in document["nodes"] if n["type"] == "LIF"]
    assert all(n["cost"]["neurons"] == n["cost"]["spike_ops"] == n["input_shape"][0] for n in neurons)


def test_costs_can_be_left_out():
    document = viz.graph_to_dict(recurrent_snn(), costs=False)
    assert "cost" not in document["nodes"][0] and "cost" not in document["summary"]


@pytest.fixture(scope="module")
def mapped():
    return partition(e2e_conv_snn(), "zynq_us_plus")


def test_core_budgets_are_allocate(mapped):
    """Per core: allocate's neurons, synapses and SRAM bytes; a core's SRAM is the sum of its nodes'
    SRAM at the mapped precision (the graph is not routed: no routing bytes)."""
    document = viz.graph_to_dict(mapped, detect_patterns=False)
    budget = allocate(mapped, "zynq_us_plus")
    shown = document["summary"]["mapping"]
    assert (shown["spec"], shown["precision"], shown["num_cores"]) == ("zynq_us_plus", "fp32", 32)
    assert shown["limits"] == {"neurons": 512, "synapses": 200_000, "sram_bytes": 98_304}
    assert [c["core"] for c in shown["cores"]] == sorted(budget.budgets)
    per_node: dict[int, int] = {}
    for n in document["nodes"]:
        per_node[n["core_id"]] = per_node.get(n["core_id"], 0) + n["cost"]["sram_bytes"]["fp32"]
    for core in shown["cores"]:
        b = budget.budgets[core["core"]]
        assert (core["neurons"], core["synapses"], core["sram_bytes"]) == (
            b.neuron_count,
            b.synapse_count,
            b.sram_bytes,
        )
        assert core["utilization"] == b.utilization and core["sram_bytes"] == per_node[core["core"]]
        assert core["load"]["sram_bytes"] == b.sram_bytes / 98_304
    # 88,588 of 98,304 bytes = 90.1 % on core 0: near full; 87,948 B = 89.5 % is not
    statuses = {c["core"]: c["status"] for c in shown["cores"]}
    assert statuses[0] == "near" and shown["cores"][0]["sram_bytes"] == 88_588
    assert {c["core"] for c in shown["cores"] if c["status"] == "near"} == {
        c for c, b in budget.budgets.items() if b.utilization >= NEAR_FULL
    }
    assert shown["fits_hardware"] and not shown["violations"]
    assert list(document["metadata"]) == ["partition_metadata"]  # the record once, not also as talon.partition


def test_over_full_cores_are_marked(mapped, tmp_path):
    """The same mapping on cores of 88,000 bytes (the record's spec edited, as a hand-edited file
    would be): core 0 (88,588 B) is over, the 87,948-byte cores are near full (99.9 %)."""
    ir.write(tmp_path / "mapped.t1c", mapped)
    graph = ir.read(tmp_path / "mapped.t1c")
    graph.metadata["talon.partition"]["spec"]["sram_bytes_per_core"] = 88_000
    shown = viz.graph_to_dict(graph)["summary"]["mapping"]
    statuses = {c["core"]: (c["status"], c["sram_bytes"]) for c in shown["cores"]}
    assert statuses[0] == ("over", 88_588) and statuses[1] == ("near", 87_948)
    assert not shown["fits_hardware"]
    assert {(v["core"], v["resource"], v["used"], v["limit"]) for v in shown["violations"]} == {
        (0, "sram_bytes", 88_588, 88_000)
    }


def test_sram_per_precision_follows_the_mapped_precision():
    """int8 weights: 1 byte per weight and bias, 3 bytes per LIF state value (24 bits, 4 values)."""
    graph = recurrent_snn(inputs=20, hidden=30, outputs=4)
    document = viz.graph_to_dict(graph)
    fc1 = next(n for n in document["nodes"] if n["id"] == "fc1")["cost"]
    assert fc1["sram_bytes"] == {p: (30 * 20 + 30) * w // 8 for p, (w, _) in PRECISION_BITS.items()}
    neuron = next(n for n in document["nodes"] if n["id"] == "rec/neuron")["cost"]
    assert neuron["sram_bytes"]["int8"] == 30 * 4 * 3 and neuron["neurons"] == 30
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        mapped = partition(graph, HardwareSpec(max_neurons_per_core=16, num_cores=8), precision="int8")
    shown = viz.graph_to_dict(mapped)
    assert shown["summary"]["mapping"]["precision"] == "int8"
    per_core: dict[int, int] = {}
    for n in shown["nodes"]:
        per_core[n["core_id"]] = per_core.get(n["core_id"], 0) + n["cost"]["sram_bytes"]["int8"]
    assert {c["core"]: c["sram_bytes"] for c in shown["summary"]["mapping"]["cores"]} == per_core
    assert sdk.analyze_graph(mapped).total_bytes == shown["summary"]["cost"]["total_bytes"]


def test_a_record_that_cannot_be_budgeted_is_said_not_hidden(mapped, tmp_path):
    """A hand-edited file whose record lost a node's assignment: the cores are still drawn (from
    each node's core_id) and the page says why it has no budgets, with a warning."""
    ir.write(tmp_path / "mapped.t1c", mapped)
    graph = ir.read(tmp_path / "mapped.t1c")
    del graph.metadata["talon.partition"]["assignments"]["fc1_s3"]
    with pytest.warns(UserWarning, match="cannot be budgeted against its chip .*fc1_s3"):
        document = viz.graph_to_dict(graph)
    assert list(document["summary"]["mapping"]) == ["error"]
    assert {n["id"]: n["core_id"] for n in document["nodes"]}["fc1_s3"] == mapped.nodes["fc1_s3"].core_id


def test_a_hand_annotated_mapping_has_no_budgets():
    from tests.viz import graphs

    graph = graphs.annotate_partition(graphs.residual_concat(), dict.fromkeys(graphs.residual_concat().nodes, 0))
    graph.metadata["partition_metadata"]["spec"] = HardwareSpec().to_dict()  # not where allocate reads it
    document = viz.graph_to_dict(graph)
    assert "mapping" not in document["summary"] and document["summary"]["cores"] == [0]


def test_the_costs_import_neither_torch_nor_jax_nor_the_sdk():
    """talon.viz counts with talon.ir.counting (numpy only), the code talon.sdk reports from: drawing
    a mapped graph's page imports neither torch, jax nor the SDK (architecture §2)."""
    import subprocess
    import sys

    from tests.subprocesses import child_env

    code = (
        "import sys\n"
        "from talon import viz\n"
        "from talon.graph import partition\n"
        "from talon.graph.examples import recurrent_snn\n"
        "assert 'talon.sdk' not in sys.modules, 'importing talon.viz imported the SDK'\n"
        "viz.graph_to_dict(partition(recurrent_snn(20, 30, 4), 'zynq_us_plus'))\n"
        "print(sorted(m for m in ('torch', 'jax', 'snntorch', 'talon.sdk') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_colour_by_needs_what_it_colours(mapped, tmp_path):
    with pytest.raises(ValueError, match="color_by='memory' needs the costs"):
        viz.render_html(viz.graph_to_dict(recurrent_snn(), costs=False), color_by="memory")
    with pytest.raises(ValueError, match="color_by='load' colours nodes by their core's load"):
        viz.export_html(recurrent_snn(), tmp_path / "x.html", color_by="load")
    assert not (tmp_path / "x.html").exists()
    page = viz.export_html(mapped, tmp_path / "load.html", color_by="load").read_text()  # the graph view of a mapping
    assert '"color_by":"load"' in page
