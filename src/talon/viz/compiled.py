"""Views of a mapped graph (after :func:`talon.graph.partition`).

The partition contract of :func:`talon.graph.partition`: every node of a partitioned graph carries
``core_id`` (an int, also in ``node.metadata["core_id"]``), and the graph's ``partition_metadata``
(also ``graph.metadata["talon.partition"]``, which survives a ``.t1c`` round trip) holds
``algorithm``, ``num_cores_used``, ``assignments`` ``{node: core}``, ``cross_core_edges`` and
``metrics``.

* :func:`visualize_partitioned`: the interactive graph with node fill = primitive type, a dashed
  outline in the core's colour around each node and one dashed outline around each core's nodes,
  cross-core edges dashed, legends of types and cores.
* :func:`visualize_execution_schedule`: one row per core, the core's nodes in execution order as
  bars, cross-core dependencies as arrows, idle time, and the critical path. The schedule is a
  list schedule: a core runs its nodes one after another in topological order, and a node starts
  when its core is free and every (non-recurrent) input has finished:
  ``start(n) = max(free(core(n)), max finish(p) for p -> n)``, ``finish = start + latency(n)``.
  Latencies come from ``profile_result`` (``ProfileResult.layers[n].latency_us`` or a
  ``{node: µs}`` dict); without one every node counts one unit (the order, not the time).
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from talon.ir import Graph

from .constants import core_color, node_color
from .display import page_path, write_text_atomic
from .render import render_html
from .serialize import graph_to_dict, partition_assignments


def _cores_or_raise(graph: Graph, what: str) -> dict[str, int]:
    if not isinstance(graph, Graph):
        raise TypeError(f"{what} needs a talon.ir.Graph, got {type(graph).__name__}")
    cores = partition_assignments(graph)
    missing = [n for n in graph.nodes if n not in cores]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise ValueError(
            f"{what}: {len(missing)} node(s) have no core ({shown}); partition the graph first "
            "(talon.graph.partition) — a node without a core could not be placed on any core"
        )
    return cores


def visualize_partitioned(
    graph: Graph, path: str | os.PathLike, title: str | None = None, rankdir: str = "TB", color_by: str = "type"
) -> Path:
    """Write the partition view of a partitioned ``graph`` to ``path``; return the path.

    ``rankdir``: the layout direction (``"TB"``, ``"LR"``, ``"BT"``, ``"RL"``); ``color_by``: the
    node fill (``"type"``, ``"memory"``, ``"ops"``, ``"load"``). Each core's budget against the
    chip's limits comes from :func:`talon.graph.allocate` (:mod:`talon.viz.costs`). Raises
    ``ValueError`` naming the nodes that have no core."""
    path = page_path(path, "visualize_partitioned")
    _cores_or_raise(graph, "visualize_partitioned")
    document = graph_to_dict(graph, detect_patterns=False)
    part = document["metadata"].get("partition_metadata", {})
    name = title or f"Partitioned graph ({len(document['summary']['cores'])} cores"
    if title is None:
        name += f", {part['algorithm']})" if part.get("algorithm") else ")"
    return write_text_atomic(path, render_html(document, name, view="partition", rankdir=rankdir, color_by=color_by))


# ---- execution schedule -----------------------------------------------------------------------


def _latencies(graph: Graph, profile_result: Any) -> tuple[dict[str, float], str]:
    if profile_result is None:
        return dict.fromkeys(graph.nodes, 1.0), "step"
    if isinstance(profile_result, Mapping):
        table = {str(k): float(v) for k, v in profile_result.items()}
    elif hasattr(profile_result, "layers"):
        table = {k: float(v.latency_us) for k, v in profile_result.layers.items()}
    else:
        raise TypeError("profile_result must be a ProfileResult (talon.backend profile) or a {node: latency_us} dict")
    return {n: table.get(n, 0.0) for n in graph.nodes}, "µs"


def schedule(graph: Graph, cores: dict[str, int], latency: dict[str, float]) -> dict[str, Any]:
    """The list schedule of the module docstring: per node ``start``/``finish``, per core its order,
    the makespan and the critical path (node names, first to last)."""
    mask = graph.recurrent_mask()
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for (s, d), rec in zip(graph.edges, mask, strict=True):
        if not rec:
            preds[d].append(s)
    free: dict[int, float] = {}
    last_on_core: dict[int, str | None] = {}
    start, finish, cause = {}, {}, {}
    order: dict[int, list[str]] = {}
    for n in graph.topological_order():
        core = cores[n]
        ready_core = free.get(core, 0.0)
        ready_inputs, why = ready_core, last_on_core.get(core)
        for p in preds[n]:
            if finish[p] >= ready_inputs:  # on a tie the data dependency is the cause
                ready_inputs, why = finish[p], p
        start[n] = ready_inputs
        finish[n] = start[n] + latency[n]
        cause[n] = why
        free[core] = finish[n]
        last_on_core[core] = n
        order.setdefault(core, []).append(n)
    makespan = max(finish.values(), default=0.0)
    path: list[str] = []
    position = {n: i for i, n in enumerate(start)}  # topological: the last node to finish ends the path
    node = max(finish, key=lambda k: (finish[k], position[k])) if finish else None
    while node is not None:
        path.append(node)
        node = cause[node]
    return {
        "start": start,
        "finish": finish,
        "order": dict(sorted(order.items())),
        "makespan": makespan,
        "critical_path": path[::-1],
        "busy": {c: sum(latency[n] for n in ns) for c, ns in order.items()},
    }


def _fmt(value: float, unit: str) -> str:
    return (
        f"{value:,.0f} {unit}{'s' if unit == 'step' and value != 1 else ''}"
        if unit == "step"
        else f"{value:,.2f} {unit}"
    )


def visualize_execution_schedule(
    graph: Graph, path: str | os.PathLike, profile_result: Any = None, title: str | None = None
) -> Path:
    """Write the execution schedule of a partitioned ``graph`` (one row per core) to ``path``."""
    path = page_path(path, "visualize_execution_schedule")
    cores = _cores_or_raise(graph, "visualize_execution_schedule")
    latency, unit = _latencies(graph, profile_result)
    plan = schedule(graph, cores, latency)
    makespan = plan["makespan"] or 1.0
    critical = set(plan["critical_path"])
    label_w, row_h, bar_h, width = 90, 46, 28, 1100
    scale = (width - label_w - 30) / makespan
    core_ids = list(plan["order"])
    height = 40 + row_h * len(core_ids) + 30
    y_of = {c: 30 + i * row_h for i, c in enumerate(core_ids)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="schedule">',
        '<defs><marker id="dep" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0L10,5L0,10z" fill="#c2185b"/></marker></defs>',
    ]
    for c in core_ids:
        y = y_of[c]
        idle = plan["makespan"] - plan["busy"][c]
        parts.append(
            f'<g class="core-row" data-core="{c}"><text x="6" y="{y + bar_h / 2 + 4}" fill="{core_color(c)}" '
            f'font-weight="600">core {c}</text>'
            f'<rect x="{label_w}" y="{y}" width="{makespan * scale:.1f}" height="{bar_h}" fill="#f5f5f5" '
            f'stroke="{core_color(c)}" stroke-dasharray="6 3"><title>core {c}: busy {_fmt(plan["busy"][c], unit)}, '
            f"idle {_fmt(idle, unit)}</title></rect></g>"
        )
        for n in plan["order"][c]:
            x0 = label_w + plan["start"][n] * scale
            w = max(latency[n] * scale, 1.5)
            kind = type(graph.nodes[n]).__name__
            cls = "task critical" if n in critical else "task"
            parts.append(
                f'<g class="{cls}" data-node="{html.escape(n)}"><rect x="{x0:.1f}" y="{y + 2}" width="{w:.1f}" '
                f'height="{bar_h - 4}" fill="{node_color(kind)}" stroke="{"#c2185b" if n in critical else "#555"}" '
                f'stroke-width="{2.5 if n in critical else 1}"/>'
                f"<title>{html.escape(n)} ({kind}) on core {c}: start {_fmt(plan['start'][n], unit)}, "
                f"latency {_fmt(latency[n], unit)}</title>"
                + (
                    f'<text x="{x0 + w / 2:.1f}" y="{y + bar_h / 2 + 4}" text-anchor="middle" font-size="11">'
                    f"{html.escape(n)}</text>"
                    if w > 7 * len(n)
                    else ""
                )
                + "</g>"
            )
    mask = graph.recurrent_mask()
    for (s, d), rec in zip(graph.edges, mask, strict=True):
        if rec or cores[s] == cores[d]:
            continue
        x1 = label_w + plan["finish"][s] * scale
        x2 = label_w + plan["start"][d] * scale
        y1 = y_of[cores[s]] + bar_h / 2
        y2 = y_of[cores[d]] + bar_h / 2
        parts.append(
            f'<path class="dependency" d="M{x1:.1f},{y1:.1f}C{x1 + 20:.1f},{y1:.1f} {x2 - 20:.1f},{y2:.1f} '
            f'{x2:.1f},{y2:.1f}" fill="none" stroke="#c2185b" stroke-dasharray="4 3" marker-end="url(#dep)">'
            f"<title>{html.escape(s)} (core {cores[s]}) → {html.escape(d)} (core {cores[d]})</title></path>"
        )
    parts.append(
        f'<text x="{label_w}" y="{height - 8}" font-size="11" fill="#666">0</text>'
        f'<text x="{width - 30}" y="{height - 8}" font-size="11" fill="#666" text-anchor="end">'
        f"{_fmt(plan['makespan'], unit)}</text></svg>"
    )
    rows = "".join(
        f"<tr><td style='color:{core_color(c)}'>core {c}</td><td>{len(plan['order'][c])}</td>"
        f"<td>{_fmt(plan['busy'][c], unit)}</td><td>{_fmt(plan['makespan'] - plan['busy'][c], unit)}</td></tr>"
        for c in core_ids
    )
    node_rows = "".join(
        f"<tr data-node='{html.escape(n, quote=True)}'><td>{html.escape(n)}</td>"
        f"<td>{type(graph.nodes[n]).__name__}</td><td>{cores[n]}</td>"
        f"<td class='num'>{_fmt(plan['start'][n], unit)}</td><td class='num'>{_fmt(latency[n], unit)}</td></tr>"
        for n in plan["start"]
    )
    name = html.escape(title or "Execution schedule")
    source = "profiled CPU latency per node" if unit == "µs" else "no profile given: one unit per node (order only)"
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{name}</title><style>
body{{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}} table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #eee;padding:2px 10px;text-align:left;overflow-wrap:anywhere}}
.task:hover rect{{stroke:#000}} #summary{{overflow-wrap:anywhere}} td.num{{text-align:right}}
</style></head><body><h1 style="font-size:17px">{name}</h1>
<p id="summary">{len(core_ids)} cores · {len(graph.nodes)} nodes · latency {_fmt(plan["makespan"], unit)} ·
critical path: <b>{" → ".join(html.escape(n) for n in plan["critical_path"])}</b> ({source})</p>
{"".join(parts)}
<table><tr><th>core</th><th>nodes</th><th>busy</th><th>idle</th></tr>{rows}</table>
<details id="per-node"><summary>per node: core, start and latency ({len(graph.nodes)} nodes)</summary>
<table><tr><th>node</th><th>type</th><th>core</th><th>start</th><th>latency</th></tr>{node_rows}</table></details>
<p style="color:#666">Bars: nodes in execution order on their core (fill = primitive type; outlined: the critical
path). Dashed arrows: cross-core dependencies. Grey: idle time up to the slowest core.</p></body></html>"""
    return write_text_atomic(path, page)
