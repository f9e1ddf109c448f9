"""Every SDK function and graph CLI command on graphs of 3,000 and 30,000 nodes, against talon before.

The graphs are ``talon.examples.blocks_graph`` (Affine(8→8) → LIF(8) → residual Skip blocks, a
recurrent edge every 5th block, a subgraph node every 7th: a layer-split model's many small
populations). Each side runs in its own process — ours on this checkout's ``src``, the reference on
``src`` of commit ``BEFORE`` (the talon before this work, extracted with ``git archive``; rows are
left out when git or that commit is not at hand) — which reads the graph and times every case once
(wall clock, in-process: interpreter start-up is ``bench_cli``'s subject). The processes alternate
(ours, before, ours, before, ...), ``REPEATS`` each, and a row gives the medians. CLI commands run
in-process through click's test runner, so they include reading the file but not start-up.

The section also lists each case's **growth exponent** ``log(t30k / t3k) / log(10)``: 1 is linear,
2 quadratic. It compares two sizes measured minutes apart, so it is only meaningful on an idle
machine (the ratios, measured interleaved, are less sensitive to load). The ratio column gives the
quartiles of the per-round ratios (round *i*: before's *i*-th process / ours' *i*-th).

Environment, for an A/B run of one change (defaults in brackets): ``BENCH_SDK_BEFORE`` the
reference commit [``BEFORE``], ``BENCH_SDK_REPEATS`` processes per side [3], ``BENCH_SDK_SIZES``
comma-separated graph sizes, the last one the rows' [3000,30000], ``BENCH_SDK_CASES``
comma-separated case names to time [every case].
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.common import Row, fmt_time, print_rows, ratio_quartiles

BEFORE = os.environ.get("BENCH_SDK_BEFORE", "d269274a9bb7639ee37fabc6017aa72757772092")
SIZES = tuple(int(n) for n in os.environ.get("BENCH_SDK_SIZES", "3000,30000").split(","))
REPEATS = int(os.environ.get("BENCH_SDK_REPEATS", "3"))
ONLY = [c for c in os.environ.get("BENCH_SDK_CASES", "").split(",") if c]
REPO = Path(__file__).resolve().parents[1]


def _cases(path: Path, other: Path, scratch: Path) -> dict:
    """Case name -> callable, on the graph of ``path`` (``other``: the same graph with other weights)."""
    from click.testing import CliRunner

    from talon import ir, sdk
    from talon.cli import main as cli

    graph = ir.read(path)
    names = list(graph.nodes)
    fcs = [n for n in names if n.startswith("fc")]
    mid = fcs[len(fcs) // 2]
    near = f"lif{int(mid[2:]) + 3}"
    last = names[-2]
    part = names[100:400]
    runner = CliRunner()

    def cli_case(*args):
        def run():
            result = runner.invoke(cli, [str(a) for a in args])
            if result.exit_code not in (0, 1):
                raise RuntimeError(f"talon {' '.join(map(str, args))}: exit {result.exit_code}: {result.output[-300:]}")

        return run

    return {
        "Graph(nodes, edges) (validates)": lambda: ir.Graph(graph.nodes, graph.edges, graph.metadata),
        "ir.read": lambda: ir.read(path),
        "ir.write": lambda: ir.write(scratch / "written.t1c", graph),
        "lint_graph(graph)": lambda: sdk.lint_graph(graph),
        "lint_graph(path)": lambda: sdk.lint_graph(path),
        "analyze_graph": lambda: sdk.analyze_graph(graph),
        "summarize(verbose)": lambda: sdk.summarize(graph, verbose=True),
        "profile_graph": lambda: sdk.profile_graph(graph),
        "fingerprint_graph": lambda: sdk.fingerprint_graph(graph),
        "fingerprint_graph(structure)": lambda: sdk.fingerprint_graph(graph, include_weights=False),
        "stamp_graph": lambda: sdk.stamp_graph(graph),
        "compare_graphs(graph, other file)": lambda: sdk.compare_graphs(graph, ir.read(other)),
        "find_pattern": lambda: sdk.find_pattern(graph, "Affine->LIF->Skip"),
        "inspect_node": lambda: sdk.inspect_node(graph, last),
        "trace_path": lambda: sdk.trace_path(graph, mid, near),
        "extract_subgraph(300 nodes)": lambda: sdk.extract_subgraph(graph, part, add_boundaries=True),
        "get_node_statistics": lambda: sdk.get_node_statistics(graph),
        "convert_to_spiking": lambda: sdk.convert_to_spiking(graph),
        "quantize_weights": lambda: sdk.quantize_weights(graph),
        "prune_disconnected": lambda: sdk.prune_disconnected(graph),
        "merge_graphs(g, g)": lambda: sdk.merge_graphs(graph, graph),
        "talon info": cli_case("info", "--json"),
        "talon inspect": cli_case("inspect", path),
        "talon inspect --json": cli_case("inspect", path, "--json"),
        "talon analyze": cli_case("analyze", path),
        "talon profile": cli_case("profile", path),
        "talon lint": cli_case("lint", path),
        "talon validate": cli_case("validate", path),
        "talon compare": cli_case("compare", path, other),
        "talon hash": cli_case("hash", path),
        "talon node": cli_case("node", path, last),
        "talon trace": cli_case("trace", path, mid, near),
        "talon convert --spiking": cli_case("convert", path, "--spiking", "-o", scratch / "converted.t1c"),
        "talon stamp": cli_case("stamp", path, "-o", scratch / "stamped.t1c"),
    }


def child(path: str, other: str, scratch: str, out: str) -> None:
    """Time every case once on ``path`` and write ``{case: seconds}`` to ``out`` (runs in a new process)."""
    times = {}
    for name, fn in _cases(Path(path), Path(other), Path(scratch)).items():
        if ONLY and name not in ONLY:
            continue
        start = time.perf_counter()
        fn()
        times[name] = time.perf_counter() - start
    Path(out).write_text(json.dumps(times))


def _before_source(folder: Path) -> Path | None:
    done = subprocess.run(
        ["git", "-C", str(REPO), "archive", "-o", str(folder / "before.tar"), BEFORE, "src"], capture_output=True
    )
    if done.returncode != 0:
        return None
    with tarfile.open(folder / "before.tar") as tar:
        tar.extractall(folder / "before", filter="data")
    return folder / "before" / "src"


def _run(src: Path, graph: Path, other: Path, folder: Path) -> dict[str, float]:
    out = folder / "times.json"
    code = "import sys; from bench.bench_sdk import child; child(*sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{REPO}"}
    subprocess.run([sys.executable, "-c", code, str(graph), str(other), str(folder), str(out)], env=env, check=True)
    return json.loads(out.read_text())


def main() -> list[Row]:
    from talon import ir
    from talon.examples import blocks_graph

    medians: dict[str, dict[int, dict[str, float]]] = {"ours": {}, "before": {}}
    quartiles: dict[int, dict[str, tuple[float, float, float]]] = {}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sides = {"ours": REPO / "src", "before": _before_source(folder)}
        for n in SIZES:
            graph, other = folder / f"blocks{n}.t1c", folder / f"blocks{n}_other.t1c"
            ir.write(graph, blocks_graph(n))
            ir.write(other, blocks_graph(n, seed=1))
            runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
            for _ in range(REPEATS):
                for side, src in sides.items():
                    if src is not None:
                        runs[side].append(_run(src, graph, other, folder))
                load.append(os.getloadavg()[0])
            for side, results in runs.items():
                if results:
                    medians[side][n] = {case: statistics.median(r[case] for r in results) for case in results[0]}
            if runs["before"]:
                quartiles[n] = {
                    case: ratio_quartiles([r[case] for r in runs["before"]], [r[case] for r in runs["ours"]])
                    for case in runs["ours"][0]
                }
            print(f"{n:,} nodes measured", file=sys.stderr, flush=True)
    small, large = SIZES[0], SIZES[-1]
    rows = []
    for case, ours in medians["ours"][large].items():
        before = medians["before"].get(large, {}).get(case)
        rows.append(Row(f"sdk, {large:,} nodes", case, ours, f"before ({BEFORE[:7]})" if before else "—", before))

    def exponent(side: str, case: str) -> str:
        t = medians[side]
        if small not in t or case not in t[small]:
            return "—"
        return f"{math.log(t[large][case] / t[small][case]) / math.log(large / small):.2f}"

    main.markdown = [
        f"Rows: {large:,}-node `blocks_graph`, median of {REPEATS} processes per side, interleaved; ratio = "
        f"before / ours. Load average (1 min) during the runs: {min(load):.1f}–{max(load):.1f}.",
        "",
        f"| case | ours, {small:,} nodes | ours, {large:,} | growth exponent | before, {small:,} | before, "
        f"{large:,} | growth exponent | ratio at {large:,} (quartiles) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in medians["ours"][large]:
        cells = [fmt_time(medians["ours"][n][case]) for n in (small, large)] + [exponent("ours", case)]
        if medians["before"]:
            cells += [fmt_time(medians["before"][n].get(case)) for n in (small, large)] + [exponent("before", case)]
            q1, q2, q3 = quartiles[large][case]
            cells.append(f"{q2:.2f} ({q1:.2f}–{q3:.2f})")
        else:
            cells += ["—"] * 4
        main.markdown.append(f"| {case} | " + " | ".join(cells) + " |")
    print_rows(f"SDK and CLI on {large:,} nodes", rows)
    return rows


if __name__ == "__main__":
    main()
