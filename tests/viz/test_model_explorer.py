"""The Model Explorer adapter: a .t1c loads through Model Explorer's own server on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from talon import ir, viz
from tests.sdk import graphs as sdk_graphs
from tests.subprocesses import child_env
from tests.viz import graphs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def model_explorer_server(tmp_path_factory):
    pytest.importorskip("model_explorer")
    port = _free_port()
    command = [sys.executable, "-m", "model_explorer", "--extensions", "talon.viz.model_explorer",
               "--no_open_in_browser", "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    log = tmp_path_factory.mktemp("me") / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, env=child_env(), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                extensions = _get(f"{base}/api/v1/get_extensions")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"Model Explorer did not start:\n{log.read_text()}") from None
                time.sleep(0.25)
        yield base, extensions
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _convert(base: str, path: Path) -> dict:
    command = {
        "extensionId": "talon_t1c",
        "cmdId": "convert",
        "modelPath": str(path),
        "settings": {},
        "deleteAfterConversion": False,
    }
    return _get(f"{base}/api/v1/send_command?json={urllib.parse.quote(json.dumps(command))}")


def test_adapter_is_registered(model_explorer_server):
    _, extensions = model_explorer_server
    (ours,) = [e for e in extensions if e["id"] == "talon_t1c"]
    assert ours["type"] == "adapter" and ours["fileExts"] == ["t1c"]


def test_seed_model_loads_through_model_explorer(model_explorer_server, tmp_path):
    base, _ = model_explorer_server
    graph = sdk_graphs.hybrid()  # the seed 002 HybridSNN as export_to_ir produces it
    path = tmp_path / "seed.t1c"
    ir.write(path, graph)
    response = _convert(base, path)
    assert "error" not in response, response
    (me_graph,) = response["graphs"]
    nodes = {n["id"]: n for n in me_graph["nodes"]}
    assert list(nodes) == list(graph.nodes)
    for name, node in graph.nodes.items():
        assert nodes[name]["label"] == type(node).__name__
        sources = [e["sourceNodeId"] for e in nodes[name]["incomingEdges"]]
        assert sources == graph.predecessors(name)
        assert nodes[name]["outputsMetadata"][0]["attrs"][0]["value"] == str(list(node.output_shape))
    attrs = {a["key"]: a["value"] for a in nodes["fc1"]["attrs"]}
    assert attrs["weight"].startswith("float32[64, 3136]")
    assert attrs["param_count"] == str(64 * 3136 + 64)


def test_groups_become_namespaces_and_recurrent_edges_an_overlay(model_explorer_server, tmp_path):
    base, _ = model_explorer_server
    path = tmp_path / "rec.t1c"
    ir.write(path, graphs.recurrent_nested())
    (me_graph,) = _convert(base, path)["graphs"]
    nodes = {n["id"]: n for n in me_graph["nodes"]}
    assert nodes["rnn/inner_lif"]["namespace"] == "rnn"
    assert {a["key"]: a["value"] for a in nodes["lif"]["attrs"]}["recurrent_inputs"] == "w_rec"
    assert [e["sourceNodeId"] for e in nodes["lif"]["incomingEdges"]] == ["fc_in"]  # w_rec -> lif is not laid out
    overlay = me_graph["tasksData"]["edgeOverlaysDataListLeftPane"][0]["overlays"][0]["edges"]
    assert sorted((e["sourceNodeId"], e["targetNodeId"]) for e in overlay) == [
        ("rnn/inner_w", "rnn/inner_lif"),
        ("w_rec", "lif"),
    ]
    path = tmp_path / "rc.t1c"
    ir.write(path, graphs.residual_concat())
    (me_graph,) = _convert(base, path)["graphs"]
    spaces = {n["id"]: n["namespace"] for n in me_graph["nodes"]}
    assert spaces["p2"] == "SPPF_sppf_res_add_sppf_cat" and spaces["rep1"] == "RepConv_repconv_lif0_rep_add"
    assert spaces["stem"] == ""
    assert viz.graph_to_dict(graphs.residual_concat())["node_to_group"]["p2"] == "sppf_res_add_sppf_cat"


def test_missing_model_explorer_names_the_extra():
    code = (
        "import sys; sys.modules['model_explorer'] = None\n"
        "from talon.examples import mlp_graph\n"
        "from talon.viz import graph_to_dict\n"
        "from talon.viz.model_explorer import to_model_explorer\n"
        "try:\n    to_model_explorer(graph_to_dict(mlp_graph()))\nexcept ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_env(), check=True
    ).stdout
    assert out.startswith("MissingDependencyError Model Explorer is not installed")
    assert "pip install -e '.[model-explorer]' in the talon checkout" in out
