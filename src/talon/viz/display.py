"""Showing a graph: write the page, open it in a browser, embed it in Jupyter, or serve it.

* ``export_html(graph, path, title=...) -> path`` writes one self-contained HTML file (atomic:
  a temporary file renamed over the target, so a failed write leaves the old file intact).
* ``visualize(graph, title=..., width=960, height=640, serve=False, port=None)``: in Jupyter, an
  embedded iframe; elsewhere the page is written to ``TEMP_GRAPHS_DIR`` as
  ``<Title_with_underscores>_<suffix>.html`` (80 characters of the title at most) and opened in
  the browser (``serve=True``: through a loopback HTTP server instead of ``file://``).
  Returns the path (or URL when served).
* ``serve(graph)`` / ``stop_servers()``: a background HTTP server on 127.0.0.1 serving
  ``TEMP_GRAPHS_DIR`` (like Plotly's renderer); ``list_graphs()`` lists the written pages.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import tempfile
import threading
import webbrowser
from pathlib import Path
from typing import Any

from talon.ir import Graph
from talon.ir.paths import check_path

from .render import render_html
from .serialize import graph_to_dict

TEMP_GRAPHS_DIR = Path(tempfile.gettempdir()) / "talon-viz"
#: at most this many characters of the title name a page in TEMP_GRAPHS_DIR
TITLE_STEM_CHARS = 80

try:  # Jupyter display is optional
    from IPython import get_ipython as _get_ipython

    _HAS_IPYTHON = True
except ImportError:  # pragma: no cover - IPython is not a talon dependency
    _HAS_IPYTHON = False
    _get_ipython = None

_SERVERS: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []


def _in_notebook() -> bool:
    if not _HAS_IPYTHON:
        return False
    shell = _get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def page_path(path: str | os.PathLike, who: str) -> Path:
    """``path`` checked as the ``.html`` file ``who`` writes (a path, not a directory): the writers
    call it first, so that a bad path is reported before any work (or a missing page script)."""
    path = check_path(path, f"{who}: the .html file to write")
    if path.is_dir():
        raise IsADirectoryError(f"{who}: {path} is a directory; give the path of the .html file to write")
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename
    (:func:`talon.ir.atomic.atomic_output`)."""
    from talon.ir.atomic import atomic_output

    path = page_path(path, "write_text_atomic")
    with atomic_output(path) as tmp:  # permission bits from the umask (or the replaced file), not 0600
        tmp.write_text(text, encoding="utf-8")
    return path


def _as_graph(graph: Any) -> Graph:
    if isinstance(graph, (str, os.PathLike)):
        from talon.ir import read

        return read(graph)
    if not isinstance(graph, Graph):
        raise TypeError(f"expected a talon.ir.Graph or the path of a .t1c file, got {type(graph).__name__}")
    return graph


def _default_title(graph: Graph) -> str:
    name = graph.metadata.get("name") if isinstance(graph.metadata, dict) else None
    return str(name) if name else "TALON graph"


def export_html(
    graph: Graph | str | os.PathLike, path: str | os.PathLike, title: str | None = None, **options: Any
) -> Path:
    """Write the interactive page of ``graph`` (a Graph or a ``.t1c`` path) to ``path``; return the path.

    ``options`` go to :func:`talon.viz.render.render_html` (``rankdir``, ``expand``). The legacy
    ``serve=True`` of ``talon.viz.display.export_html`` also serves it and returns the path.
    """
    path = page_path(path, "export_html")
    serve_it = bool(options.pop("serve", False))
    port = options.pop("port", None)
    graph = _as_graph(graph)
    page = render_html(graph_to_dict(graph), title or _default_title(graph), **options)
    out = write_text_atomic(path, page)
    if serve_it:
        print(f"Serving visualization at: {_serve_file(out, port)}")
    return out


def _temp_page(title: str) -> Path:
    TEMP_GRAPHS_DIR.mkdir(parents=True, exist_ok=True)
    # file-name-safe and short (a title of any length gives a name the file system accepts)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", title.strip().replace(" ", "_")).strip("_.")[:TITLE_STEM_CHARS] or "graph"
    fd, name = tempfile.mkstemp(prefix=f"{stem}_", suffix=".html", dir=TEMP_GRAPHS_DIR)
    os.close(fd)
    return Path(name)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _start_server(directory: Path, port: int | None) -> http.server.ThreadingHTTPServer:
    for server, _ in _SERVERS:
        if Path(server.directory) == directory and (port is None or server.server_address[1] == port):
            return server
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port or 0), handler)
    server.directory = str(directory)
    thread = threading.Thread(target=server.serve_forever, name="talon-viz-server", daemon=True)
    thread.start()
    _SERVERS.append((server, thread))
    return server


def _serve_file(path: Path, port: int | None) -> str:
    server = _start_server(path.parent.resolve(), port)
    return f"http://127.0.0.1:{server.server_address[1]}/{path.name}"


def serve(
    graph: Graph | str | os.PathLike, title: str | None = None, port: int | None = None, open_browser: bool = True
) -> str:
    """Write the page to ``TEMP_GRAPHS_DIR`` and serve it on 127.0.0.1 (a free port unless
    ``port`` is given); return the URL. The server runs in a daemon thread until
    :func:`stop_servers` or the end of the process."""
    graph = _as_graph(graph)
    title = title or _default_title(graph)
    page = export_html(graph, _temp_page(title), title)
    url = _serve_file(page, port)
    print(f"Serving visualization at: {url}")
    if open_browser:
        webbrowser.open(url)
    return url


def stop_servers() -> int:
    """Stop every server :func:`serve` started; return how many were stopped."""
    count = 0
    while _SERVERS:
        server, thread = _SERVERS.pop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        count += 1
    return count


def list_graphs() -> list[Path]:
    """The pages written to ``TEMP_GRAPHS_DIR``, oldest first."""
    if not TEMP_GRAPHS_DIR.is_dir():
        return []
    return sorted(TEMP_GRAPHS_DIR.glob("*.html"), key=lambda p: (p.stat().st_mtime, p.name))


def notebook_iframe(page: str, width: int = 960, height: int = 640) -> str:
    """An ``<iframe srcdoc=...>`` holding a whole page (for Jupyter)."""
    return (
        f'<iframe srcdoc="{html.escape(page, quote=True)}" width="{int(width)}" height="{int(height)}" '
        'style="border:1px solid #ddd" sandbox="allow-scripts"></iframe>'
    )


def visualize(
    graph: Graph | str | os.PathLike,
    title: str | None = None,
    width: int = 960,
    height: int = 640,
    serve: bool = False,
    port: int | None = None,
    open_browser: bool = True,
) -> str | Path:
    """Show ``graph``: an iframe in Jupyter, else a page in ``TEMP_GRAPHS_DIR`` opened in the browser
    (served on loopback with ``serve=True``). Returns the page's path or URL."""
    graph = _as_graph(graph)
    title = title or _default_title(graph)
    if _in_notebook() and not serve:
        from IPython.display import HTML, display

        page = render_html(graph_to_dict(graph), title)
        display(HTML(notebook_iframe(page, width, height)))
        return _temp_write(page, title)
    if serve:
        return globals()["serve"](graph, title=title, port=port, open_browser=open_browser)
    path = export_html(graph, _temp_page(title), title)
    print(f"Visualization written to: {path}")
    if open_browser:
        webbrowser.open(path.resolve().as_uri())
    return path


def _temp_write(page: str, title: str) -> Path:
    return write_text_atomic(_temp_page(title), page)
