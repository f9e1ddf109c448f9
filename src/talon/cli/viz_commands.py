"""Commands that draw a `.t1c` file: `talon visualize` (open or serve the page) and `talon export-html`."""

from __future__ import annotations

import time
from pathlib import Path

import click

from talon.cli._common import (
    _emit_json,
    _file_argument,
    _json_option,
    _read,
    _refuse_overwriting_inputs,
    _reports_errors,
    main,
)


@main.command()
@_file_argument
@click.option("--serve", is_flag=True, help="Serve the page on 127.0.0.1 (until Ctrl+C) instead of opening the file.")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port for --serve (default: a free one).")
@click.option("--title", default=None, help="Page title (default: the graph's metadata name, or the file name).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser; print where the page is.")
@_json_option
@_reports_errors
def visualize(file: Path, serve: bool, port: int | None, title: str | None, no_browser: bool, as_json: bool) -> None:
    """Interactive graph page of FILE: written to the talon-viz temp folder and opened in the browser."""
    from talon import viz

    if port is not None and not serve:
        raise click.UsageError("--port needs --serve")
    graph = _read(file)
    title = title or graph.metadata.get("name") or file.stem
    if not serve:
        path = viz.export_html(graph, viz.display._temp_page(title), title)
        if as_json:
            _emit_json({"file": str(file), "path": str(path)})
        else:
            click.echo(f"Visualization written to: {path}")
        if not no_browser:
            import webbrowser

            webbrowser.open(path.resolve().as_uri())
        return
    page = viz.export_html(graph, viz.display._temp_page(title), title)
    try:
        url = viz.display._serve_file(page, port)
    except OSError as exc:
        raise ValueError(f"cannot serve on port {port}: {exc.strerror or exc}") from None
    if as_json:
        _emit_json({"file": str(file), "path": str(page), "url": url})
    else:
        click.echo(f"Serving visualization at: {url} (Ctrl+C to stop)")
    if not no_browser:
        import webbrowser

        webbrowser.open(url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        viz.stop_servers()


def _is_latency(value) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _latency_file(path: Path, graph, file: Path) -> dict[str, float]:
    """Per-node latencies (µs) from a saved profile: the JSON of ``talon energy FILE --json``
    (``layers.<node>.latency_us``) or a ``{node: µs}`` object; every node of the graph, no other."""
    import json

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the profile {path}: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("layers"), dict):
        table = {k: (v.get("latency_us") if isinstance(v, dict) else None) for k, v in document["layers"].items()}
    elif isinstance(document, dict):
        table = document
    else:
        raise ValueError(
            f"{path} is not a profile: expected the JSON of 'talon energy FILE --json' or a {{node: µs}} object"
        )
    bad = [k for k, v in table.items() if not _is_latency(v)]
    if bad:
        raise ValueError(f"{path}: node {bad[0]!r} has no latency (a finite number of µs >= 0 is needed)")
    hint = f"profile the same file: talon energy {file} --json > profile.json"
    unknown = [k for k in table if k not in graph.nodes]
    if unknown:
        raise ValueError(f"{path} names node {unknown[0]!r}, which {file} does not have; {hint}")
    missing = [n for n in graph.nodes if n not in table]
    if missing:
        raise ValueError(f"{path} has no latency for node {missing[0]!r} of {file} ({len(missing)} missing); {hint}")
    return {k: float(v) for k, v in table.items()}


@main.command("export-html")
@_file_argument
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The .html to write.",
)
@click.option("--title", default=None, help="Page title (default: the graph's metadata name, or the file name).")
@click.option("--direction", type=click.Choice(["TB", "LR", "BT", "RL"]), default="TB", show_default=True)
@click.option(
    "--view",
    type=click.Choice(["graph", "partition", "schedule"]),
    default="graph",
    show_default=True,
    help="graph: the interactive graph; partition / schedule: the mapping views of a partitioned file "
    "(talon partition FILE --hw ... -o mapped.t1c).",
)
@click.option(
    "--color-by",
    type=click.Choice(["type", "memory", "ops", "load"]),
    default="type",
    show_default=True,
    help="Node fill (graph and partition views): the type, or a heat scale of memory, operations per step "
    "or the core's load (a partitioned file); the page's menu changes it.",
)
@click.option(
    "--profile-steps",
    type=click.IntRange(min=1),
    default=None,
    help="Schedule view: profile FILE on the CPU backend for N steps and draw each node's measured latency.",
)
@click.option(
    "--profile",
    "profile_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Schedule view: per-node latencies from a saved profile (the JSON of 'talon energy FILE --json', "
    "or a {node: µs} object).",
)
@_json_option
@_reports_errors
def export_html(
    file: Path,
    output: Path,
    title: str | None,
    direction: str,
    view: str,
    color_by: str,
    profile_steps: int | None,
    profile_file: Path | None,
    as_json: bool,
) -> None:
    """Write FILE's interactive graph (or, with --view, its partition or execution-schedule view) as
    one self-contained HTML file (works offline, from file://)."""
    from talon import viz
    from talon.viz.serialize import drawn_node_count

    if (profile_steps is not None or profile_file is not None) and view != "schedule":
        raise click.UsageError("--profile-steps and --profile draw latencies in the schedule view: add --view schedule")
    if profile_steps is not None and profile_file is not None:
        raise click.UsageError("give --profile-steps N (profile now) or --profile FILE (a saved profile), not both")
    if color_by != "type" and view == "schedule":
        raise click.UsageError("--color-by colours the graph and partition views; the schedule view fills by type")
    _refuse_overwriting_inputs(output, file)
    graph = _read(file)
    drawn = len(graph.nodes) if view == "schedule" else drawn_node_count(graph)
    latency_source = None
    if view == "graph":
        name = title or graph.metadata.get("name") or file.stem
        path = viz.export_html(graph, output, name, rankdir=direction, color_by=color_by)
    else:
        from talon.viz.serialize import partition_info

        if partition_info(graph) is None:
            raise ValueError(
                f"{file} is not partitioned, so it has no {view} view: map it first with "
                f"'talon partition {file} --hw PRESET -o mapped.t1c' and export mapped.t1c"
            )
        if view == "partition":
            path = viz.visualize_partitioned(graph, output, title=title, rankdir=direction, color_by=color_by)
        else:
            profile = None
            if profile_file is not None:
                profile, latency_source = _latency_file(profile_file, graph, file), str(profile_file)
            elif profile_steps is not None:
                from talon._terminal import layer_progress
                from talon.backend import get_backend

                with layer_progress(f"profiling {profile_steps:,} steps", disable=as_json) as progress:
                    profile = get_backend("cpu").profile(graph, n_steps=profile_steps, progress=progress)
                latency_source = f"CPU profile, {profile_steps} steps"
            path = viz.visualize_execution_schedule(graph, output, profile_result=profile, title=title)
    size = path.stat().st_size
    if as_json:
        _emit_json(
            {
                "file": str(file),
                "output": str(path),
                "view": view,
                "bytes": size,
                "nodes": drawn,
                "top_level_nodes": len(graph.nodes),
                **({"latency": latency_source} if view == "schedule" else {}),
            }
        )
    else:
        count = f"{drawn} nodes"
        if drawn != len(graph.nodes):
            count += f" ({len(graph.nodes)} top-level, subgraphs flattened)"
        extra = "" if view == "graph" else f" ({view} view)"
        if latency_source:
            extra = f" ({view} view, latency from {latency_source})"
        click.echo(f"✓ Exported {count} to: {path}{extra}")
