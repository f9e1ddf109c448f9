"""`.t1c` files against nir.write/nir.read and safetensors, on the same arrays.

* a large model: 784-4096-4096-10 dense SNN (~70 MB of float32 weights);
* a graph of 6,000 small nodes (Affine 8x8 + LIF 8, alternating): many tiny arrays;
plus each file's size against the raw bytes of its arrays.
"""

from __future__ import annotations

import itertools
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bench.common import Row, median_time, print_rows


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


def bench_case(label: str, graph, repeats: int) -> tuple[list[Row], list[tuple[str, int, int, int, int]]]:
    import nir
    from safetensors.numpy import load_file, save_file

    from talon import ir

    nir_graph = as_nir(graph)
    tensors = arrays_of(graph)
    raw = sum(a.nbytes for a in tensors.values())
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t1c, nirf, st = Path(tmp, "g.t1c"), Path(tmp, "g.nir"), Path(tmp, "g.safetensors")
        w_ours = median_time(lambda: ir.write(t1c, graph), repeats)
        w_nir = median_time(lambda: nir.write(nirf, nir_graph), repeats)
        w_st = median_time(lambda: save_file(tensors, st), repeats)
        r_ours = median_time(lambda: ir.read(t1c), repeats)
        r_nir = median_time(lambda: nir.read(nirf), repeats)
        r_st = median_time(lambda: load_file(st), repeats)
        sizes = (label, raw, t1c.stat().st_size, nirf.stat().st_size, st.stat().st_size)
    rows = [
        Row("io", f"{label}: write", w_ours, "nir.write", w_nir),
        Row("io", f"{label}: write", w_ours, "safetensors save_file (arrays only)", w_st),
        Row("io", f"{label}: read", r_ours, "nir.read", r_nir),
        Row("io", f"{label}: read", r_ours, "safetensors load_file (arrays only)", r_st),
    ]
    return rows, [sizes]


def main() -> list[Row]:
    rows, sizes = [], []
    for label, graph, repeats in (("~70 MB dense SNN", large_model(), 5), ("6,000 small nodes", small_nodes(), 3)):
        r, s = bench_case(label, graph, repeats)
        rows += r
        sizes += s
    print_rows(".t1c vs nir and safetensors", rows)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="file size vs raw array bytes")
    for col in ("model", "raw bytes", ".t1c", "nir", "safetensors"):
        table.add_column(col)
    for label, raw, *files in sizes:
        table.add_row(label, f"{raw:,}", *(f"{f:,} ({f / raw:.3f}×)" for f in files))
    Console().print(table)
    main.sizes = sizes
    return rows


if __name__ == "__main__":
    main()
