"""Open ``.t1c`` files in Google's Model Explorer (talon's ``model-explorer`` extra: ``ai-edge-model-explorer``).

Model Explorer lays a graph out one expanded group at a time, which keeps graphs of tens of
thousands of nodes usable. This package is a Model Explorer *adapter extension*: Model Explorer
imports ``talon.viz.model_explorer.main`` and calls its ``TalonAdapter.convert`` on a ``.t1c``.

    model-explorer model.t1c --extensions talon.viz.model_explorer

or from Python: ``talon.viz.model_explorer.visualize("model.t1c")``.

The conversion reads the same :func:`talon.viz.graph_to_dict` document as talon's own page:

* every node is a Model Explorer node (label = type, id = talon node id, fill = talon colour),
  its configuration and parameter summaries (dtype, shape, min/max/mean) as attributes, its
  output shapes as output metadata;
* subgraphs and detected patterns become **namespaces** (``rnn/SkipConnection_…``), which Model
  Explorer shows as collapsible layers;
* forward edges are incoming edges; recurrent edges (one-step delay) are not laid out (Model
  Explorer expects a DAG) but listed in the node attribute ``recurrent_inputs`` and drawn as an
  edge overlay ("recurrent edges").
"""

from __future__ import annotations

import json
import os
from typing import Any

ADAPTER_ID = "talon_t1c"


def _model_explorer():
    try:
        import model_explorer
    except ImportError as exc:
        from talon.ir.errors import MissingDependencyError, install_hint

        raise MissingDependencyError("Model Explorer is not installed; " + install_hint("model-explorer")) from exc
    return model_explorer


def _namespace(document: dict[str, Any], group: str | None) -> str:
    groups = {g["id"]: g for g in document["groups"]}
    parts = []
    while group is not None:
        g = groups[group]
        tail = g["id"].rsplit("/", 1)[-1]
        parts.append(tail if g["type"] == "Subgraph" else f"{g['type']}_{tail}")
        group = g["parent"]
    return "/".join(reversed(parts))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def to_model_explorer(document: dict[str, Any], graph_id: str = "talon") -> Any:
    """A ``model_explorer.graph_builder.Graph`` for a :func:`talon.viz.graph_to_dict` document."""
    gb = _model_explorer().graph_builder
    incoming: dict[str, list[Any]] = {n["id"]: [] for n in document["nodes"]}
    recurrent_in: dict[str, list[str]] = {n["id"]: [] for n in document["nodes"]}
    overlay = []
    for edge in document["edges"]:
        if edge["recurrent"]:
            recurrent_in[edge["target"]].append(edge["source"])
            overlay.append(gb.Edge(sourceNodeId=edge["source"], targetNodeId=edge["target"], label="t-1"))
        else:
            k = len(incoming[edge["target"]])
            incoming[edge["target"]].append(
                gb.IncomingEdge(sourceNodeId=edge["source"], sourceNodeOutputId="0", targetNodeInputId=str(k))
            )
    nodes = []
    for n in document["nodes"]:
        attrs = [gb.KeyValue(key="name", value=n["id"])]
        attrs += [gb.KeyValue(key=k, value=_text(v)) for k, v in n["config"].items()]
        for pname, p in n["params"].items():
            stats = ", ".join(f"{k} {p[k]:.6g}" for k in ("min", "max", "mean") if p.get(k) is not None)
            attrs.append(gb.KeyValue(key=pname, value=f"{p['dtype']}{p['shape']}" + (f" ({stats})" if stats else "")))
        if n["param_count"]:
            attrs.append(gb.KeyValue(key="param_count", value=str(n["param_count"])))
        if n["core_id"] is not None:
            attrs.append(gb.KeyValue(key="core_id", value=str(n["core_id"])))
        if recurrent_in[n["id"]]:
            attrs.append(gb.KeyValue(key="recurrent_inputs", value=", ".join(recurrent_in[n["id"]])))
        outputs = [
            gb.MetadataItem(
                id=str(i),
                attrs=[gb.KeyValue(key="shape", value=str(shape)), gb.KeyValue(key="__tensor_tag", value=port)],
            )
            for i, (port, shape) in enumerate(n["output_type"].items())
        ]
        nodes.append(
            gb.GraphNode(
                id=n["id"],
                label=n["type"],
                namespace=_namespace(document, n["group"]),
                attrs=attrs,
                incomingEdges=incoming[n["id"]],
                outputsMetadata=outputs,
                style=gb.GraphNodeStyle(backgroundColor=n["color"]),
            )
        )
    tasks = None
    if overlay:
        tasks = gb.TasksData(
            edgeOverlaysDataListLeftPane=[
                gb.EdgeOverlaysData(
                    name="recurrent edges",
                    overlays=[gb.EdgeOverlay(name="recurrent (t-1)", edgeColor="#e65100", edges=overlay)],
                )
            ]
        )
    return gb.Graph(id=graph_id, nodes=nodes, tasksData=tasks)


def convert_file(path: str | os.PathLike) -> dict[str, Any]:
    """What the adapter returns for a ``.t1c`` file: ``{"graphs": [Graph]}``."""
    from talon.ir import read

    from ..serialize import graph_to_dict

    graph = read(path)
    name = graph.metadata.get("name") or os.path.splitext(os.path.basename(os.fspath(path)))[0]
    return {"graphs": [to_model_explorer(graph_to_dict(graph), graph_id=str(name))]}


def visualize(path: str | os.PathLike, host: str = "127.0.0.1", port: int = 8080, open_browser: bool = True) -> None:
    """Start Model Explorer on ``host:port`` with ``path`` loaded through this adapter (blocks)."""
    model_explorer = _model_explorer()
    config = model_explorer.config()
    config.add_model_from_path(os.path.abspath(os.fspath(path)))
    model_explorer.visualize_from_config(
        config=config,
        extensions=["talon.viz.model_explorer"],
        host=host,
        port=port,
        no_open_in_browser=not open_browser,
    )
