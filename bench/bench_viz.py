"""The graph page in headless chromium (Debian's, through Playwright): how long a large graph takes
to open, and what the viewer's layout choices cost against laying out everything in one piece.

* 5,000 nodes (1,249 residual blocks): page load until the first drawing with the blocks folded
  (talon's default above 400 nodes), against the same page with every group expanded (every node
  laid out in the worker and drawn);
* what the costs on the page (:mod:`talon.viz.costs`: every node counted as ``talon analyze`` and
  ``talon profile`` count it, at five precisions, plus their totals) add to ``graph_to_dict`` of
  5,000 nodes, against the document without them (``costs=False``), interleaved;
* the dagre layout of 600- and 1,000-node graphs cut into bands of 120 ranks (talon's worker)
  against dagre in one piece (what Netron and Model Explorer run): at 1,000 nodes (1,000 ranks) the
  one-piece layout overflows dagre's recursion and the reference fails.

Times are wall-clock in one browser on a shared machine: indicative, compare the ratios.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Row, print_rows

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _load(browser, path: Path, timeout_ms: float = 600_000) -> tuple[float, float] | None:
    """(seconds from navigation to the first drawing, the worker's layout milliseconds), or None
    when the layout failed (dagre's recursion overflowing the stack)."""
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    try:
        start = time.perf_counter()
        page.goto(path.resolve().as_uri())
        page.wait_for_selector("body[data-layout=ready], body[data-layout=error]", timeout=timeout_ms)
        if page.get_attribute("body", "data-layout") == "error":
            return None
        return time.perf_counter() - start, float(page.get_attribute("body", "data-layout-ms"))
    finally:
        page.close()


def _layout_s(browser, path: Path, repeats: int = 3) -> float | None:
    runs = [_load(browser, path) for _ in range(repeats)]
    return None if None in runs else statistics.median(r[1] for r in runs) / 1e3


def main() -> list[Row]:
    from playwright.sync_api import sync_playwright
    from tests.viz.graphs import deep_residual

    from talon import viz

    rows = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        big = deep_residual(5000)
        start = time.perf_counter()
        folded = viz.export_html(big, Path(tmp) / "folded.html", "5,000 nodes")
        export_s = time.perf_counter() - start
        expanded = viz.export_html(big, Path(tmp) / "expanded.html", "5,000 nodes", expand="all")
        folded_s = statistics.median(_load(browser, folded)[0] for _ in range(3))
        expanded_s = _load(browser, expanded)[0]
        rows.append(Row("viz", "5,000 nodes: export_html (graph_to_dict + page)", export_s, "—", None))
        with_costs, without = [], []
        for _ in range(3):  # interleaved: the machine's load hits both alike
            for costs, runs in ((True, with_costs), (False, without)):
                start = time.perf_counter()
                viz.graph_to_dict(big, costs=costs)
                runs.append(time.perf_counter() - start)
        rows.append(
            Row(
                "viz",
                "5,000 nodes: graph_to_dict with the costs",
                statistics.median(with_costs),
                "without (costs=False)",
                statistics.median(without),
            )
        )
        rows.append(
            Row(
                "viz",
                "5,000 nodes: open the page, blocks folded (default)",
                folded_s,
                "every node expanded",
                expanded_s,
            )
        )
        for n in (600, 1000):
            graph = deep_residual(n)
            banded = viz.export_html(graph, Path(tmp) / f"banded{n}.html", "bands", expand="all")
            whole = viz.export_html(graph, Path(tmp) / f"whole{n}.html", "one piece", expand="all", band_ranks=0)
            whole_s = _layout_s(browser, whole)
            reference = "dagre in one piece" if whole_s is not None else "dagre in one piece: fails (stack overflow)"
            rows.append(
                Row(
                    "viz",
                    f"{n:,} nodes expanded: dagre layout in bands",
                    _layout_s(browser, banded),
                    reference,
                    whole_s,
                )
            )
        browser.close()
    print_rows("talon.viz in headless chromium", rows)
    return rows


if __name__ == "__main__":
    main()
