"""The self-contained HTML page: the viewer's template with its scripts, styles and the graph
document inlined (no file next to it, no network request; it works from ``file://``).

The scripts are built from npm packages at install time (``src/talon/viz/web``: dagre, bundled by
esbuild into ``talon/viz/static``); they are package data, not files in git.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import Any

from talon.ir.errors import MissingDependencyError

COLOR_BY = ("type", "memory", "ops", "load")

_BUILD_HINT = (
    "the talon.viz page scripts are not built; from a talon checkout run `make viz-assets` "
    "(npm ci && npm run build in src/talon/viz/web), or install talon from a wheel"
)


@cache
def load_asset(name: str) -> str:
    """The text of a built asset (``viewer.js``, ``layout-worker.js``, ``viewer.css``, ``events.js`` …)."""
    path = resources.files("talon.viz") / "static" / name
    if not path.is_file():
        raise MissingDependencyError(f"{_BUILD_HINT} (missing {name})")
    return path.read_text(encoding="utf-8")


@cache
def load_template(name: str = "viewer.html") -> str:
    return (resources.files("talon.viz") / "templates" / name).read_text(encoding="utf-8")


def json_for_script(document: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``<``, ``>`` or ``&`` can end it early)."""
    text = json.dumps(document, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def script_text(source: str, name: str) -> str:
    """A script's source for an inline ``<script>``: it must not contain ``</script``."""
    if "</script" in source.lower():
        source = source.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    return source


def fill(template: str, values: dict[str, str]) -> str:
    """Replace each ``@@KEY@@`` once, in one pass (a value containing ``@@X@@`` is not expanded)."""
    parts = template.split("@@")
    out = []
    for i, part in enumerate(parts):
        out.append(values[part] if i % 2 and part in values else (f"@@{part}@@" if i % 2 else part))
    return "".join(out)


def render_html(graph_dict: dict[str, Any], title: str = "TALON graph", **options: Any) -> str:
    """The viewer page for a :func:`talon.viz.graph_to_dict` document.

    Options: ``view`` (``"graph"`` or ``"partition"``), ``color_by`` (node fill: ``"type"``, or a heat
    scale of ``"memory"``, ``"ops"`` per step or the core's ``"load"``; the page's menu changes it),
    ``rankdir`` (``"TB"``, ``"LR"``, ``"BT"``, ``"RL"``), ``expand`` (``"auto"``: groups open on graphs
    up to ``expand_limit`` = 400 nodes, ``"all"``, ``"none"``), ``band_ranks`` (the layout cuts graphs
    deeper than this many ranks into bands laid out one by one, default 120; 0 lays out in one piece).
    """
    from talon import __version__

    if not isinstance(graph_dict, dict) or "nodes" not in graph_dict or "version" not in graph_dict:
        raise ValueError("render_html expects the document of talon.viz.graph_to_dict(graph)")
    rankdir = options.get("rankdir", "TB")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be one of TB, LR, BT, RL, got {rankdir!r}")
    color_by = options.get("color_by", "type")
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {', '.join(COLOR_BY)}, got {color_by!r}")
    summary = graph_dict.get("summary") or {}
    if color_by in ("memory", "ops") and "cost" not in summary:
        raise ValueError(
            f"color_by={color_by!r} needs the costs: make the document with graph_to_dict(graph, costs=True)"
        )
    if color_by == "load" and "cores" not in (summary.get("mapping") or {}):
        raise ValueError(
            "color_by='load' colours nodes by their core's load: it needs a graph mapped by talon.graph.partition "
            "(talon partition FILE --hw PRESET -o mapped.t1c), whose record names its chip"
        )
    page_options = {"title": title, "view": "graph", "expand": "auto", "expand_limit": 400, **options}
    return fill(
        load_template(),
        {
            "TITLE": html.escape(title),
            "VERSION": html.escape(__version__),
            "CSS": load_asset("viewer.css"),
            "DATA": json_for_script(graph_dict),
            "OPTIONS": json_for_script(page_options),
            "WORKER": script_text(load_asset("layout-worker.js"), "layout-worker.js"),
            "VIEWER": script_text(load_asset("viewer.js"), "viewer.js"),
        },
    )
