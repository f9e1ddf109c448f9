"""`talon export-html --view partition|schedule`: the mapping views of a file `talon partition -o` wrote."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from talon import ir
from talon.cli import main
from talon.graph.examples import e2e_conv_snn

pytest.importorskip("pymetis")


def run(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("views")
    ir.write(folder / "e2e.t1c", e2e_conv_snn())
    assert run("partition", folder / "e2e.t1c", "--hw", "zynq_us_plus", "-o", folder / "mapped.t1c").exit_code == 0
    return folder


def _document(page: str, element: str) -> dict:
    start = page.index(f'id="{element}">') + len(f'id="{element}">')
    return json.loads(page[start : page.index("</script>", start)])


def test_partition_view_of_a_partitioned_file(files):
    out = files / "partition.html"
    result = run("export-html", files / "mapped.t1c", "-o", out, "--view", "partition", "--direction", "LR", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["view"] == "partition"
    page = out.read_text()
    options, data = _document(page, "talon-options"), _document(page, "talon-data")
    assert options["view"] == "partition" and options["rankdir"] == "LR"
    assert options["title"] == "Partitioned graph (19 cores, metis)"
    mapped = ir.read(files / "mapped.t1c")
    assert {n["id"]: n["core_id"] for n in data["nodes"]} == mapped.metadata["talon.partition"]["assignments"]


def test_schedule_view_of_a_partitioned_file(files):
    out = files / "schedule.html"
    result = run("export-html", files / "mapped.t1c", "-o", out, "--view", "schedule", "--title", "ConvSNN <schedule>")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("(schedule view)")
    page = out.read_text()
    assert "<title>ConvSNN &lt;schedule&gt;</title>" in page and "19 cores · 47 nodes" in page


def test_mapping_view_of_an_unpartitioned_file_is_refused(files):
    result = run("export-html", files / "e2e.t1c", "-o", files / "x.html", "--view", "partition")
    assert result.exit_code == 2 and not (files / "x.html").exists()
    assert result.stderr.splitlines() == [
        f"error: {files / 'e2e.t1c'} is not partitioned, so it has no partition view: map it first with "
        f"'talon partition {files / 'e2e.t1c'} --hw PRESET -o mapped.t1c' and export mapped.t1c"
    ]


def _per_node_latency(page: str) -> dict[str, str]:
    """The schedule page's per-node table: {node: latency cell}."""
    import re

    rows = re.findall(
        r"<tr data-node='([^']*)'><td>.*?</td>(?:<td[^>]*>.*?</td>){3}<td class='num'>([^<]*)</td></tr>", page
    )
    return dict(rows)


def test_schedule_view_draws_a_cpu_profile(files):
    """--profile-steps N profiles the file on the CPU backend; --profile reads the JSON `talon energy
    --json` saved: the page's per-node latencies are the profile's."""
    saved = files / "energy.json"
    energy = run("energy", files / "mapped.t1c", "--steps", 3, "--json")
    assert energy.exit_code == 0, energy.output
    saved.write_text(energy.stdout)
    layers = json.loads(energy.stdout)["layers"]
    out = files / "saved.html"
    result = run("export-html", files / "mapped.t1c", "-o", out, "--view", "schedule", "--profile", saved)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(f"(schedule view, latency from {saved})")
    shown = _per_node_latency(out.read_text())
    assert shown == {name: f"{layer['latency_us']:,.2f} µs" for name, layer in layers.items()}
    assert len(shown) == 47 and "(profiled CPU latency per node)" in out.read_text()

    out = files / "profiled.html"
    result = run("export-html", files / "mapped.t1c", "-o", out, "--view", "schedule", "--profile-steps", 2, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["latency"] == "CPU profile, 2 steps"
    assert len(_per_node_latency(out.read_text())) == 47


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ('{"conv1": 1.0}', [], "has no latency for node 'input' of {mapped} (46 missing)"),
        ('{"nope": 1.0}', [], "names node 'nope', which {mapped} does not have"),
        ('{"layers": {"conv1": {"latency_us": "fast"}}}', [], "node 'conv1' has no latency"),
        ("[1, 2]", [], "is not a profile"),
        ("{", [], "cannot read the profile"),
        ("{}", ["--profile-steps", "3"], "give --profile-steps N (profile now) or --profile FILE"),
    ],
)
def test_bad_profiles_are_refused(files, content, args, message):
    profile = files / "bad.json"
    profile.write_text(content)
    out = files / "bad.html"
    result = run("export-html", files / "mapped.t1c", "-o", out, "--view", "schedule", "--profile", profile, *args)
    assert result.exit_code == 2 and not out.exists()
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and message.format(mapped=files / "mapped.t1c") in line


def test_profile_and_colour_options_need_their_view(files):
    result = run("export-html", files / "mapped.t1c", "-o", files / "x.html", "--profile-steps", 3)
    assert result.exit_code == 2 and "add --view schedule" in result.stderr
    result = run("export-html", files / "e2e.t1c", "-o", files / "x.html", "--color-by", "load")
    assert result.exit_code == 2 and "color_by='load' colours nodes by their core's load" in result.stderr
    result = run("export-html", files / "mapped.t1c", "-o", files / "x.html", "--view", "schedule", "--color-by", "ops")
    assert result.exit_code == 2 and "the schedule view fills by type" in result.stderr
    assert not (files / "x.html").exists()


def test_exported_count_is_what_the_page_draws(tmp_path, watched):
    """snnTorch RLeaky exports as a subgraph: 6 top-level nodes, 9 drawn (its input, neuron, w_rec, output)."""
    snn = pytest.importorskip("snntorch")
    import torch
    from torch import nn

    from talon import bridge

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(8, 16),
        snn.RLeaky(beta=0.9, linear_features=16, init_hidden=True),
        nn.Linear(16, 4),
        snn.Leaky(beta=0.8, init_hidden=True),
    )
    ir.write(tmp_path / "rleaky.t1c", bridge.to_ir(model, torch.zeros(1, 8)))
    out = tmp_path / "rleaky.html"
    result = run("export-html", tmp_path / "rleaky.t1c", "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"✓ Exported 9 nodes (6 top-level, subgraphs flattened) to: {out}\n"
    watched.goto_graph(out)
    assert watched.page.locator("g.node").count() == 9
    result = run("export-html", tmp_path / "rleaky.t1c", "-o", out, "--json")
    assert {k: json.loads(result.stdout)[k] for k in ("nodes", "top_level_nodes")} == {"nodes": 9, "top_level_nodes": 6}
