"""NIR exchange: talon's ``.nir`` reading/writing and ``.t1c`` files against ``nir.read`` / ``nir.write``.

Same model, same process, median of several repetitions. Models: the NIR paper's CNN
(``02_cnn__cnn_sinabs.nir``, 15 nodes, 0.27 MB of weights) and a deep stack of small layers
(200 x Affine(64 -> 64) + LIF), where HDF5's per-dataset cost dominates.

Rows:

* ``read .nir``: ``talon.interop.nir.read_nir`` (HDF5 -> talon graph) vs ``nir.read`` (HDF5 -> nir graph);
* ``write .nir``: ``talon.interop.nir.write_nir`` (talon graph -> HDF5) vs ``nir.write`` (nir graph -> HDF5);
* ``to_nir`` / ``from_nir``: in-memory conversions (no reference: reported in ms);
* ``write .t1c`` / ``read .t1c``: the same graph as a talon file vs ``nir.write`` / ``nir.read``.

Run: ``python -m bench.bench_nir`` (or ``make bench``).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPEATS = 7


def _median(fn, repeats: int = REPEATS) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _deep_model(layers: int = 200, width: int = 64):
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


def _cnn_model():
    from talon.interop.nir import read_nir

    shared = Path(os.environ.get("TALON_SHARED", Path(__file__).resolve().parents[1].parent / "shared"))
    path = shared / "data" / "nir-paper" / "02_cnn__cnn_sinabs.nir"
    return read_nir(path) if path.exists() else None


def bench_model(name: str, graph) -> list[tuple[str, str, float, float | None]]:
    import nir

    from talon import ir
    from talon.interop.nir import from_nir, read_nir, to_nir, write_nir

    rows = []
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmp = Path(tmp)
        nir_graph = to_nir(graph)
        ours_nir, ref_nir, ours_t1c = tmp / "ours.nir", tmp / "ref.nir", tmp / "ours.t1c"
        write_nir(ours_nir, graph)
        nir.write(ref_nir, nir_graph)
        ir.write(ours_t1c, graph)
        t_write_ref = _median(lambda: nir.write(ref_nir, nir_graph))
        t_read_ref = _median(lambda: nir.read(ref_nir))
        rows.append((name, "read .nir (read_nir vs nir.read)", _median(lambda: read_nir(ours_nir)), t_read_ref))
        rows.append(
            (name, "write .nir (write_nir vs nir.write)", _median(lambda: write_nir(ours_nir, graph)), t_write_ref)
        )
        rows.append((name, "to_nir (talon -> nir objects)", _median(lambda: to_nir(graph)), None))
        rows.append((name, "from_nir (nir objects -> talon)", _median(lambda: from_nir(nir_graph)), None))
        rows.append(
            (name, "write .t1c (ir.write vs nir.write)", _median(lambda: ir.write(ours_t1c, graph)), t_write_ref)
        )
        rows.append((name, "read .t1c (ir.read vs nir.read)", _median(lambda: ir.read(ours_t1c)), t_read_ref))
    return rows


def main() -> None:
    models = [("paper CNN", _cnn_model()), ("200 x (Affine 64 + LIF)", _deep_model())]
    rows = []
    for name, graph in models:
        if graph is None:
            print(f"bench_nir: skipping {name} (../shared/data/nir-paper not found)")
            continue
        rows += bench_model(name, graph)
    print(f"\nNIR exchange (median of {REPEATS} runs)")
    print("| model | operation | talon (ms) | nir (ms) | talon / nir |\n|---|---|---:|---:|---:|")
    for name, op, ours, ref in rows:
        ratio = f"{ours / ref:.2f}" if ref else "-"
        ref_text = f"{ref * 1e3:.1f}" if ref else "-"
        print(f"| {name} | {op} | {ours * 1e3:.1f} | {ref_text} | {ratio} |")


if __name__ == "__main__":
    main()
