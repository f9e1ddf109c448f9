"""`.t1c` files against nir.write/nir.read and safetensors, on the same arrays.

* a large model: 784-4096-4096-10 dense SNN (~70 MB of float32 weights);
* a graph of 6,000 small nodes (Affine 8x8 + LIF 8, alternating): many tiny arrays;
plus talon's previous file format (2: one manifest entry per node, every node read through its
constructor) against the current one (3: node tables, ``docs/format.md``), each file's size against
the raw bytes of its arrays, what the integrity check (SHA-256 over the file) costs inside
``ir.read``, and the peak memory (RSS) of
writing and reading a 67 MB and a 268 MB model (one 4096x4096 or 8192x8192 float32 Affine + LIF),
each in a fresh process, against safetensors on the same tensors. The write comparison also prints
the quartiles of the per-round ratios.
"""

from __future__ import annotations

import itertools
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bench.common import Row, median_time, median_times, print_rows, ratio_quartiles


def large_model():
    from talon import ir

    rng = np.random.default_rng(0)
    sizes = [784, 4096, 4096, 10]
    nodes = {"input": ir.Input(np.array([784]))}
    edges, prev = [], "input"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        nodes[f"fc{i}"] = ir.Affine(rng.standard_normal((n_out, n_in), dtype=np.float32), np.zeros(n_out, np.float32))
        nodes[f"lif{i}"] = ir.LIF(tau=np.full(n_out, 10.0), r=np.full(n_out, 10.0), comparison=">")
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = ir.Output(np.array([10]))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


def small_nodes(n: int = 6000):
    from talon import ir

    rng = np.random.default_rng(1)
    nodes = {"input": ir.Input(np.array([8]))}
    edges, prev = [], "input"
    for i in range(n // 2):
        nodes[f"fc{i}"] = ir.Affine(
            rng.standard_normal((8, 8), dtype=np.float32), rng.standard_normal(8, dtype=np.float32)
        )
        nodes[f"lif{i}"] = ir.LIF(tau=rng.uniform(2, 20, 8), r=1.0, comparison=">")
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = ir.Output(np.array([8]))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


def as_nir(graph):
    """The same network as a nir.NIRGraph built directly with the nir package (no talon code)."""
    import nir

    from talon import ir

    nodes = {}
    for name, node in graph.nodes.items():
        if isinstance(node, ir.Input):
            nodes[name] = nir.Input(np.array(node.shape))
        elif isinstance(node, ir.Output):
            nodes[name] = nir.Output(np.array(node.shape))
        elif isinstance(node, ir.Affine):
            nodes[name] = nir.Affine(node.weight, node.bias)
        else:
            n = node.tau.shape
            nodes[name] = nir.LIF(tau=node.tau * 1e-4, r=np.broadcast_to(node.r, n).copy(), v_leak=node.v_leak,
                                  v_threshold=node.v_threshold)  # fmt: skip
    return nir.NIRGraph(nodes, list(graph.edges))


def arrays_of(graph) -> dict[str, np.ndarray]:
    return {
        f"{name}.{k}": np.ascontiguousarray(v) for name, node in graph.nodes.items() for k, v in node.arrays().items()
    }


def read_without_checksum(path):
    """``ir.read`` with the integrity check replaced by a plain read (to measure what the check costs)."""
    import io

    from talon import ir
    from talon.ir import t1c_header

    real = t1c_header.verify

    def unchecked(fh, size):
        fh.seek(0)
        data = fh.read()
        return int.from_bytes(data[8:12], "little"), io.BytesIO(data)

    t1c_header.verify = unchecked
    try:
        return ir.read(path)
    finally:
        t1c_header.verify = real


_RSS_SCRIPT = """
import os, sys
import numpy as np

def rss(field="VmRSS"):  # VmHWM is this process image's peak; ru_maxrss would carry the parent's over exec
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

mode, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode.startswith("talon"):
    from talon import ir
else:
    from safetensors.numpy import load_file, save_file
base = rss()
if mode.endswith("write"):
    w = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    tau, r = np.full(n, 10.0), np.float64(1.0)
    if mode == "talon-write":
        nodes = {"input": ir.Input(np.array([n])), "fc": ir.Affine(w), "lif": ir.LIF(tau=tau, r=r),
                 "output": ir.Output(np.array([n]))}
        graph = ir.Graph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")])
        ir.write(path, graph)
    else:
        save_file({"fc.weight": w, "fc.bias": np.zeros(n, np.float32), "lif.tau": tau}, path)
elif mode == "talon-read":
    graph = ir.read(path)
else:
    load_file(path)
grown = rss("VmHWM") - base
model = sum(a.nbytes for node in graph.nodes.values() for a in node.arrays().values()) if mode.startswith("t") else 0
print(grown, model)
"""


def peak_memory() -> list[tuple[str, int, int, int]]:
    """(case, the model's array bytes in talon, talon's peak RSS growth, safetensors'), each in a fresh process.

    safetensors stores the same weight, bias and tau; the LIF's other parameters are broadcast to
    n neurons by talon (stored once as constant arrays in the file)."""
    import subprocess
    import sys

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        t1c, st = Path(tmp, "big.t1c"), Path(tmp, "big.safetensors")
        for n in (4096, 8192):
            for op in ("write", "read"):
                grown, model = [], 0
                for lib, path in (("talon", t1c), ("safetensors", st)):
                    cmd = [sys.executable, "-c", _RSS_SCRIPT, f"{lib}-{op}", str(path), str(n)]
                    result = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
                    peak, nbytes = map(int, result)
                    grown.append(peak)
                    model = max(model, nbytes)
                out.append((f"{model / 1e6:.0f} MB model: {op}", model, *grown))
    return out


def bench_case(
    label: str, graph, repeats: int, nir_repeats: int
) -> tuple[list[Row], list[tuple[str, int, int, int, int]]]:
    """talon against safetensors, the unchecked read and format 2 interleaved (medians); nir.write /
    nir.read (10-20x slower) timed on their own with fewer repeats."""
    import nir
    from safetensors.numpy import load_file, save_file

    from talon import ir

    nir_graph = as_nir(graph)
    tensors = arrays_of(graph)
    raw = sum(a.nbytes for a in tensors.values())
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1c, nirf, st = Path(tmp, "g.t1c"), Path(tmp, "g.nir"), Path(tmp, "g.safetensors")
        v2 = Path(tmp, "g2.t1c")
        samples: dict[str, list[float]] = {}
        w = median_times(
            {
                "ours": lambda: ir.write(t1c, graph),
                "st": lambda: save_file(tensors, st),
                "v2": lambda: ir.write(v2, graph, format_version=2),
            },
            repeats,
            samples=samples,
        )
        bench_case.write_quartiles[label] = ratio_quartiles(samples["st"], samples["ours"])
        r = median_times(
            {
                "ours": lambda: ir.read(t1c),
                "st": lambda: load_file(st),
                "unchecked": lambda: read_without_checksum(t1c),
                "v2": lambda: ir.read(v2),
            },
            repeats,
        )
        w_nir = median_time(lambda: nir.write(nirf, nir_graph), nir_repeats)
        r_nir = median_time(lambda: nir.read(nirf), nir_repeats)
        sizes = (label, raw, t1c.stat().st_size, nirf.stat().st_size, st.stat().st_size)
    rows = [
        Row("io", f"{label}: write", w["ours"], "nir.write", w_nir),
        Row("io", f"{label}: write", w["ours"], "safetensors save_file (arrays only)", w["st"]),
        Row("io", f"{label}: write", w["ours"], "talon's format 2 write (one manifest entry per node)", w["v2"]),
        Row("io", f"{label}: read", r["ours"], "nir.read", r_nir),
        Row("io", f"{label}: read", r["ours"], "safetensors load_file (arrays only)", r["st"]),
        Row("io", f"{label}: read", r["ours"], "talon's format 2 read (every node through its constructor)", r["v2"]),
        Row(
            "io", f"{label}: read with its SHA-256 check", r["ours"], "the same read without the check", r["unchecked"]
        ),
    ]
    return rows, [sizes]


bench_case.write_quartiles = {}


def main() -> list[Row]:
    rows, sizes = [], []
    for label, graph, repeats, nir_repeats in (
        ("~70 MB dense SNN", large_model(), 11, 3),
        ("6,000 small nodes", small_nodes(), 9, 1),
    ):
        r, s = bench_case(label, graph, repeats, nir_repeats)
        rows += r
        sizes += s
    print_rows(".t1c vs nir and safetensors", rows)
    for label, (q1, q2, q3) in bench_case.write_quartiles.items():
        print(f"{label}: write, safetensors / talon per round: median {q2:.2f}x, quartiles {q1:.2f}x-{q3:.2f}x")
    from rich.console import Console
    from rich.table import Table

    table = Table(title="file size vs raw array bytes")
    for col in ("model", "raw bytes", ".t1c", "nir", "safetensors"):
        table.add_column(col)
    for label, raw, *files in sizes:
        table.add_row(label, f"{raw:,}", *(f"{f:,} ({f / raw:.3f}×)" for f in files))
    Console().print(table)
    main.sizes = sizes
    memory = peak_memory()
    table = Table(title="peak RSS growth vs the model's bytes (fresh process each)")
    for col in ("case", "model bytes", ".t1c", "safetensors"):
        table.add_column(col)
    for label, model, ours, ref in memory:
        table.add_row(label, f"{model:,}", f"{ours:,} ({ours / model:.3f}×)", f"{ref:,} ({ref / model:.3f}×)")
    Console().print(table)
    main.markdown = [
        "### Write: safetensors' time / talon's, per interleaved round",
        "",
        "| model | 25 % | median | 75 % |",
        "|---|---|---|---|",
        *(f"| {label} | {q[0]:.2f}× | {q[1]:.2f}× | {q[2]:.2f}× |" for label, q in bench_case.write_quartiles.items()),
        "",
        "### Peak memory against the model's bytes (RSS growth, a fresh process each)",
        "",
        "| case | model bytes | .t1c | safetensors |",
        "|---|---|---|---|",
        *(f"| {label} | {model:,} | {ours:,} ({ours / model:.3f}×) | {ref:,} ({ref / model:.3f}×) |"
          for label, model, ours, ref in memory),
        "",
    ]  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
