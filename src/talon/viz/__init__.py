"""talon.viz: the interactive graph page, mapping views, spike/event views and matplotlib plots.

* graph: :func:`visualize`, :func:`export_html`, :func:`serve`, :func:`stop_servers`,
  :func:`list_graphs`, ``TEMP_GRAPHS_DIR``, :func:`graph_to_dict`, :func:`render_html`;
  patterns in :mod:`talon.viz.patterns`;
* mapping: :func:`visualize_partitioned`, :func:`visualize_execution_schedule`;
* events: :func:`plot_events`, :func:`export_events_html`, :func:`plot_frames`,
  :func:`events_to_frames`, :func:`events_to_grid`, :func:`events_to_raster`;
* static plots (matplotlib): :func:`plot_spikes_and_membranes`, :func:`plot_simulation`.

Importing talon.viz needs numpy and h5py only; matplotlib is imported when a plot is drawn.
"""

from . import display, patterns
from .compiled import visualize_execution_schedule, visualize_partitioned
from .display import TEMP_GRAPHS_DIR, export_html, list_graphs, serve, stop_servers, visualize
from .events import (
    PIL_AVAILABLE,
    TONIC_AVAILABLE,
    events_to_frames,
    events_to_grid,
    events_to_raster,
    export_events_html,
    plot_events,
    plot_frames,
)
from .patterns import PatternDetector, detect_all_patterns
from .raster import plot_simulation, plot_spikes_and_membranes
from .render import render_html
from .serialize import graph_to_dict, serialize_node

__all__ = [
    "PIL_AVAILABLE",
    "TEMP_GRAPHS_DIR",
    "TONIC_AVAILABLE",
    "PatternDetector",
    "detect_all_patterns",
    "display",
    "events_to_frames",
    "events_to_grid",
    "events_to_raster",
    "export_events_html",
    "export_html",
    "graph_to_dict",
    "list_graphs",
    "patterns",
    "plot_events",
    "plot_frames",
    "plot_simulation",
    "plot_spikes_and_membranes",
    "render_html",
    "serialize_node",
    "serve",
    "stop_servers",
    "visualize",
    "visualize_execution_schedule",
    "visualize_partitioned",
]
