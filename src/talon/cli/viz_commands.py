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
@_json_option
@_reports_errors
def export_html(file: Path, output: Path, title: str | None, direction: str, view: str, as_json: bool) -> None:
    """Write FILE's interactive graph (or, with --view, its partition or execution-schedule view) as
    one self-contained HTML file (works offline, from file://)."""
    from talon import viz

    _refuse_overwriting_inputs(output, file)
    graph = _read(file)
    if view == "graph":
        path = viz.export_html(graph, output, title or graph.metadata.get("name") or file.stem, rankdir=direction)
    else:
        from talon.viz.serialize import partition_info

        if partition_info(graph) is None:
            raise ValueError(
                f"{file} is not partitioned, so it has no {view} view: map it first with "
                f"'talon partition {file} --hw PRESET -o mapped.t1c' and export mapped.t1c"
            )
        if view == "partition":
            path = viz.visualize_partitioned(graph, output, title=title, rankdir=direction)
        else:
            path = viz.visualize_execution_schedule(graph, output, title=title)
    size = path.stat().st_size
    if as_json:
        _emit_json({"file": str(file), "output": str(path), "view": view, "bytes": size, "nodes": len(graph.nodes)})
    else:
        click.echo(f"✓ Exported {len(graph.nodes)} nodes to: {path}" + ("" if view == "graph" else f" ({view} view)"))
