"""Hardware mapping: talon's mapping against two baselines on three networks, and the scale row.

Quality (same process, same activity measured by a CPU simulation of the default stimulus):

* **talon** — layers split to fit, METIS partition weighted by the measured spikes, annealed placement;
* **layer-per-core greedy** — the documented TALON behaviour: no splitting, one layer (weight layer
  and its neurons) per core in topological order, cores placed row-major (over-full cores allowed);
* **x-major fill** — PACMAN's approach: talon's slices packed in topological order, cores placed in
  x-major order without optimisation.

Reported: cut spikes (spikes per step between cores) and Σ spikes x hops per step of the X-then-Y
multicast routes. Scale: a >= 1,000,000-neuron convolutional SNN partitioned, placed, routed and
allocated on a 4,096-core mesh, in a fresh process (time and peak RSS).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from bench.common import Row

SCALE = """
import json, resource, time
from talon.graph import HardwareSpec, allocate, partition, place, route
from talon.graph.examples import deep_conv_snn
graph = deep_conv_snn(channels=(1024, 1024, 1024, 1024), size=16)
spec = HardwareSpec(num_cores=4096, mesh=(64, 64), max_neurons_per_core=256, max_synapses_per_core=65536,
                    sram_bytes_per_core=131072, precision="int8", name="4096-core mesh")
t = [time.perf_counter()]
mapped = partition(graph, spec); t.append(time.perf_counter())
placed = place(mapped, spec); t.append(time.perf_counter())
route(mapped, spec); t.append(time.perf_counter())
resources = allocate(mapped, spec); t.append(time.perf_counter())
neurons = sum(int(n.input_shape[0] * n.input_shape[1] * n.input_shape[2]) for n in graph.nodes.values()
              if type(n).__name__ == "LIF")
print(json.dumps({"neurons": neurons, "cores": mapped.partition_metadata["num_cores_used"],
                  "steps": [b - a for a, b in zip(t, t[1:])], "total": t[-1] - t[0],
                  "fits": resources.fits_hardware, "entries": mapped.routing.total_entries,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _cases():
    from tests.backend.graphs import mlp_graph

    from talon.graph import HardwareSpec
    from talon.graph.examples import deep_conv_snn, e2e_conv_snn

    return [
        ("e2e ConvSNN on zynq_us_plus", e2e_conv_snn(), HardwareSpec.zynq_us_plus()),
        (
            "MLP 784-1024-1024-10 on t1c_asic_target",
            mlp_graph(sizes=(784, 1024, 1024, 10)),
            HardwareSpec.t1c_asic_target(),
        ),
        ("conv SNN 16-32-32 @16x16 on loihi", deep_conv_snn(channels=(16, 32, 32), size=16), HardwareSpec.loihi()),
    ]


def _quality(vg, parts, spec, slots) -> tuple[float, float]:
    from talon.graph.route import route_vertices

    cross = parts[vg.src] != parts[vg.dst]
    routed = route_vertices(vg, parts, spec, slots, compress=False)
    return float(vg.traffic[cross].sum()), routed.spike_hops


def compare(name, graph, spec) -> dict:
    from talon.backend import get_backend
    from talon.graph import partition, place
    from talon.graph.partition import mapped_vertices, widths
    from talon.graph.split import find_units
    from talon.graph.traffic import rates_of, vertex_graph

    activity = get_backend("cpu").simulate(graph, n_steps=50)
    start = time.perf_counter()
    mapped = partition(graph, spec, "metis", activity)
    placed = place(mapped, spec)
    ours_s = time.perf_counter() - start
    vg, parts = mapped_vertices(mapped)
    talon = _quality(vg, parts, spec, placed.slots)
    # x-major fill: the same slices, packed in topological order, cores in x-major order
    start = time.perf_counter()
    filled = partition(graph, spec, "greedy", activity)
    fill_s = time.perf_counter() - start
    vg_f, parts_f = mapped_vertices(filled)
    xmajor = _quality(vg_f, parts_f, spec, np.arange(int(parts_f.max()) + 1))
    # layer per core, no splitting (the documented greedy)
    weight_bits, state_bits = widths(spec, None)
    rates = rates_of(graph, activity)
    vg_l = vertex_graph(graph, weight_bits, state_bits, rates)
    unit_of = {n: k for k, u in enumerate(find_units(graph, weight_bits, state_bits)) for n in u.nodes}
    order, core_of = graph.topological_order(), {}
    for n in order:
        key = unit_of.get(n, n)
        core_of.setdefault(key, len(core_of))
    parts_l = np.array([core_of[unit_of.get(n, n)] for n in vg_l.names], np.int64)
    layer = _quality(vg_l, parts_l, spec.with_(num_cores=max(spec.num_cores, int(parts_l.max()) + 1)),
                     np.arange(int(parts_l.max()) + 1))  # fmt: skip
    return {"case": name, "talon": talon, "x-major fill": xmajor, "layer-per-core greedy": layer,
            "cores": (mapped.partition_metadata["num_cores_used"], int(parts_f.max()) + 1, int(parts_l.max()) + 1),
            "ours_s": ours_s, "fill_s": fill_s}  # fmt: skip


def scale() -> dict:
    out = subprocess.run([sys.executable, "-c", SCALE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> list[Row]:
    from rich.console import Console
    from rich.table import Table

    results = [compare(*case) for case in _cases()]
    table = Table(title="mapping quality: cut spikes / Σ spikes×hops per step (lower is better)")
    for col in ("network", "talon", "x-major fill", "layer-per-core greedy", "cores (talon/fill/layer)"):
        table.add_column(col)
    lines = ["### Hardware mapping (bench/bench_mapping.py)", "",
             "Cut spikes and Σ spikes × hops per step (multicast X-then-Y routes) with the activity of 50 "
             "default-stimulus steps; lower is better.", "",
             "| network | talon | x-major fill | layer-per-core greedy | cores (talon / fill / layer) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in results:
        cells = [f"{r[k][0]:,.0f} / {r[k][1]:,.0f}" for k in ("talon", "x-major fill", "layer-per-core greedy")]
        cores = "/".join(str(c) for c in r["cores"])
        table.add_row(r["case"], *cells, cores)
        lines.append(f"| {r['case']} | " + " | ".join(cells) + f" | {cores} |")
    Console().print(table)
    s = scale()
    steps = ", ".join(
        f"{k} {v:.1f} s" for k, v in zip(("partition", "place", "route", "allocate"), s["steps"], strict=True)
    )
    scale_line = (f"Scale: {s['neurons']:,}-neuron conv SNN on a 4,096-core mesh: {s['cores']:,} cores used, "
                  f"{s['entries']:,} routing entries, fits {s['fits']}; {s['total']:.1f} s ({steps}), "
                  f"peak RSS {s['peak_rss_mb']:,.0f} MB.")  # fmt: skip
    print(scale_line)
    lines += ["", scale_line]
    main.markdown = lines
    return [
        Row(
            "mapping", f"{r['case']}: partition + place (talon) vs greedy fill", r["ours_s"], "greedy fill", r["fill_s"]
        )
        for r in results
    ] + [Row("mapping", f"scale: {s['neurons']:,} neurons -> {s['cores']} cores end to end", s["total"], "—", None)]


if __name__ == "__main__":
    main()
