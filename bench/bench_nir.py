"""NIR exchange: talon reading and writing ``.nir`` files against ``nir.read`` / ``nir.write``.

Same model, same process, talon and the reference interleaved (median of several repetitions).
Models: the NIR paper's CNN (``02_cnn__cnn_sinabs.nir``, 15 nodes, 0.27 MB of weights) and a deep stack of small layers
(200 x Affine(64 -> 64) + LIF), where HDF5's per-dataset cost dominates. Rows:

* ``read .nir``: ``talon.interop.nir.read_nir`` (HDF5 -> validated talon graph) vs ``nir.read``;
* ``write .nir``: ``talon.interop.nir.write_nir`` (talon graph -> HDF5, atomic: a temporary file,
  fsync, rename) vs ``nir.write``;
* ``to_nir`` / ``from_nir``: the in-memory conversions alone (no reference).

``.t1c`` files against ``nir.write`` / ``nir.read`` are in ``bench_io``. Run: ``python -m bench.bench_nir``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bench.common import Row, median_time, median_times, print_rows

REPEATS = 7


def deep_model(layers: int = 200, width: int = 64):
    from talon import ir

    rng = np.random.default_rng(0)
    nodes = {"input": ir.Input(np.array([width]))}
    edges, prev = [], "input"
    for i in range(layers):
        w = rng.normal(0, 0.2, (width, width)).astype(np.float32)
        nodes[f"fc{i}"] = ir.Affine(w, np.zeros(width, np.float32))
        tau = rng.uniform(5, 20, width).astype(np.float32)
        nodes[f"lif{i}"] = ir.LIF(tau=tau, r=tau, v_threshold=np.ones(width, np.float32), comparison=">")
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = ir.Output(np.array([width]))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


def paper_cnn():
    from talon.interop.nir import read_nir

    shared = Path(os.environ.get("TALON_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    path = shared / "data" / "nir-paper" / "02_cnn__cnn_sinabs.nir"
    return read_nir(path) if path.exists() else None


def bench_case(label: str, graph) -> list[Row]:
    import nir

    from talon.interop.nir import from_nir, read_nir, to_nir, write_nir

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, ref = Path(tmp) / "ours.nir", Path(tmp) / "ref.nir"
        nir_graph = to_nir(graph)
        write_nir(ours, graph)
        nir.write(ref, nir_graph)
        read = median_times({"talon": lambda: read_nir(ours), "nir": lambda: nir.read(ref)}, REPEATS)
        write = median_times(
            {"talon": lambda: write_nir(ours, graph), "nir": lambda: nir.write(ref, nir_graph)}, REPEATS
        )
        return [
            Row("nir", f"{label}: read .nir", read["talon"], "nir.read", read["nir"]),
            Row("nir", f"{label}: write .nir (atomic: fsync)", write["talon"], "nir.write (no fsync)", write["nir"]),
            Row("nir", f"{label}: to_nir", median_time(lambda: to_nir(graph), REPEATS), "—", None),
            Row("nir", f"{label}: from_nir", median_time(lambda: from_nir(nir_graph), REPEATS), "—", None),
        ]


def main() -> list[Row]:
    rows: list[Row] = []
    for label, graph in (("paper CNN", paper_cnn()), ("200 x (Affine 64 + LIF)", deep_model())):
        if graph is None:
            print(f"bench_nir: {label} skipped (../shared/data/nir-paper not found)")
            continue
        rows += bench_case(label, graph)
    print_rows(f"NIR exchange (median of {REPEATS})", rows)
    return rows


if __name__ == "__main__":
    main()
