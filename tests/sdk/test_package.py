"""talon.sdk as a package: light import, the original export list, lazy re-exports, versions."""

import io
import subprocess
import sys
import types

import pytest

from talon import ir, sdk
from tests.subprocesses import child_env

from . import graphs

# talon.sdk's own part of the original TALON export list (reference §1.5, "SDK proper").
SDK_PROPER = [
    "__version__",
    "get_versions",
    "info",
    "analyze_graph",
    "analyze_node",
    "summarize",
    "GraphStats",
    "LayerStats",
    "format_bytes",
    "format_number",
    "compare_graphs",
    "compare_nodes",
    "assert_graphs_equal",
    "GraphDiff",
    "NodeDiff",
    "profile_graph",
    "format_profile",
    "HardwareProfile",
    "convert_to_spiking",
    "quantize_weights",
    "batch_convert",
    "merge_graphs",
    "prune_disconnected",
    "ConversionResult",
    "lint_graph",
    "LintResult",
    "LintIssue",
    "Severity",
    "fingerprint_graph",
    "stamp_graph",
    "get_stamp",
    "verify_fingerprint",
    "inspect_node",
    "trace_path",
    "extract_subgraph",
    "find_pattern",
    "get_node_statistics",
    "list_primitives",
]


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=child_env()
    ).stdout.strip()


def test_importing_the_sdk_does_not_import_torch_or_jax():
    out = _run(
        "import sys\nfrom talon import sdk\n"
        "print(sorted(m for m in ('torch', 'jax', 'jaxlib', 'flax', 'nir', 'snntorch') if m in sys.modules))"
    )
    assert out == "[]"


def test_the_original_export_list_is_there():
    missing = [n for n in SDK_PROPER if n not in sdk.__all__ or not hasattr(sdk, n)]
    assert missing == []
    assert all(getattr(sdk, n) is getattr(ir, n) for n in ir.__all__ if n != "__version__")
    assert sdk.list_primitives() == ir.list_primitives()


def test_every_name_in_all_resolves_and_star_import_works():
    for name in sdk.__all__:
        getattr(sdk, name)
    out = _run("from talon.sdk import *\nprint(analyze_graph.__module__, Graph.__name__, LIF.__name__)")
    assert out == "talon.sdk.analysis Graph LIF"


def test_lazy_names_of_an_absent_layer(monkeypatch):
    monkeypatch.setitem(sdk._LAZY_LAYERS, "talon._absent_layer", (None, (), ("absent_fn",)))
    monkeypatch.setitem(sdk._LAZY, "absent_fn", "talon._absent_layer")
    with pytest.raises(AttributeError, match="not part of this talon installation"):
        sdk.absent_fn  # noqa: B018
    assert not hasattr(sdk, "absent_fn")
    assert "absent_fn" in dir(sdk)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        sdk.no_such_name  # noqa: B018


def test_missing_optional_dependency_names_the_pip_extra(monkeypatch, tmp_path):
    (tmp_path / "fake_bridge_layer.py").write_text("import torch_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sdk._EXTRA_OF, "torch_not_installed_xyz", "torch")
    monkeypatch.setitem(sdk._LAZY_LAYERS, "fake_bridge_layer", ("torch", ("torch_not_installed_xyz",), ("to_thing",)))
    monkeypatch.setitem(sdk._LAZY, "to_thing", "fake_bridge_layer")
    with pytest.raises(ir.MissingDependencyError, match=r"pip install -e '\.\[torch\]' in the talon checkout"):
        sdk.to_thing  # noqa: B018
    assert not sdk._available("fake_bridge_layer")


def test_lazy_names_resolve_and_are_cached(monkeypatch):
    layer = types.ModuleType("fake_ready_layer")
    layer.ready = object()
    monkeypatch.setitem(sys.modules, "fake_ready_layer", layer)
    monkeypatch.setattr(sdk, "_spec_exists", lambda module: True)
    monkeypatch.setitem(sdk._LAZY_LAYERS, "fake_ready_layer", (None, (), ("ready", "missing_here")))
    monkeypatch.setitem(sdk._LAZY, "ready", "fake_ready_layer")
    monkeypatch.setitem(sdk._LAZY, "missing_here", "fake_ready_layer")
    assert sdk.ready is layer.ready
    assert sdk.__dict__["ready"] is layer.ready
    monkeypatch.delitem(sdk.__dict__, "ready")
    with pytest.raises(AttributeError, match="does not define 'missing_here'"):
        sdk.missing_here  # noqa: B018


def test_bridge_names_are_re_exported():
    pytest.importorskip("torch")
    import talon.bridge

    assert sdk.to_ir is talon.bridge.to_ir and sdk.GraphExecutor is talon.bridge.GraphExecutor
    assert sdk.has_cycles(graphs.recurrent()) and not sdk.has_cycles(graphs.chain())
    assert "to_ir" in sdk.__all__


def test_versions_and_info():
    versions = sdk.get_versions()
    assert versions["talon"] == versions["talon.ir"] == versions["talon.sdk"] == sdk.__version__
    assert set(versions) == {"talon"} | {f"talon.{c}" for c in sdk.version.COMPONENTS}
    deps = sdk.get_dependency_versions()
    assert deps["numpy"] and deps["h5py"] and deps["python"] == ".".join(map(str, sys.version_info[:3]))
    buffer = io.StringIO()
    sdk.info(file=buffer)
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith(f"talon {sdk.__version__}")
    assert any(line.split() == ["talon.ir", sdk.__version__] for line in lines)


def test_t1c_alias_reaches_the_sdk():
    import t1c

    assert t1c.sdk is sdk
    from t1c.sdk import analyze_graph

    assert analyze_graph is sdk.analyze_graph
