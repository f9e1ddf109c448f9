"""Seed 002 §7-8 (SDK analysis, profiling, linting, fingerprint) runs unchanged on the HybridSNN graph.

The seed builds ``hybrid_graph = export_to_ir(HybridSNN(), torch.randn(1, 1, 28, 28))``. It runs
here on ``graphs.hybrid()``, the same graph built by hand (numpy only), and on the graph the
PyTorch bridge exports from the seed's §6 model. The printed numbers follow the documented
counting rules (docs/sdk.md explains each one that differs from the seed's printout).
"""

import contextlib
import io
import re

import pytest

from ..seed_texts import SEED_002_HYBRID
from . import graphs

SEED_7_8 = """
from talon import sdk

stats = sdk.analyze_graph(hybrid_graph)
print("=== Graph Analysis ===")
print(f" Parameters: {stats.total_params:,}")
print(f" Memory: {stats.total_bytes:,} bytes")
print(f" FLOPs: {stats.total_flops:,}")
print(f" Depth: {stats.depth}")
print(f" Type counts: {stats.type_counts}")
print()
prof = sdk.profile_graph(hybrid_graph)
print("=== Hardware Profile ===")
print(f" Weight memory: {prof.weight_memory:,} bytes")
print(f" Activation memory: {prof.activation_memory:,} bytes")
print(f" State memory: {prof.state_memory:,} bytes")
print(f" Total memory: {prof.total_memory:,} bytes")
print(f" MAC operations: {prof.mac_ops:,}")
print(f" Spike operations: {prof.spike_ops:,}")
print(f" Largest layer: {prof.largest_layer}")
lint_result = sdk.lint_graph(hybrid_graph)
print(f"Lint issues: {len(lint_result.issues)}")
for issue in lint_result.issues:
    print(f" [{issue.severity.value}] {issue.code}: {issue.message}")
print()
fp = sdk.fingerprint_graph(hybrid_graph)
print(f"Graph fingerprint: {fp[:32]}...")
"""

# Hand-computed (see tests/sdk/graphs.py:hybrid and docs/sdk.md "Seed 002 §7").
EXPECTED = """\
=== Graph Analysis ===
 Parameters: 201,898
 Memory: 808,872 bytes
 FLOPs: 628,480
 Depth: 8
 Type counts: {'Input': 1, 'Conv2d': 1, 'ReLU': 1, 'MaxPool2d': 1, 'Flatten': 1, 'Affine': 2, 'LIF': 1, 'Output': 1}

=== Hardware Profile ===
 Weight memory: 808,872 bytes
 Activation memory: 50,176 bytes
 State memory: 256 bytes
 Total memory: 859,304 bytes
 MAC operations: 314,240
 Spike operations: 64
 Largest layer: fc1
Lint issues: 0
"""


def test_seed_002_sections_7_and_8_run_unchanged():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(SEED_7_8, {"hybrid_graph": graphs.hybrid()})
    text = out.getvalue()
    assert text.startswith(EXPECTED + "\n")
    assert re.fullmatch(r"Graph fingerprint: [0-9a-f]{32}\.\.\.\n", text[len(EXPECTED) + 1 :])


SEED_6_MODEL = SEED_002_HYBRID


def test_seed_002_on_the_graph_the_bridge_exports():
    pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    from talon import sdk

    # Upstream snnTorch has no snntorch.export_talonir (the TALON fork's module), so the seed's
    # import reads from talon.bridge.snntorch, as in tests/bridge/test_seeds.py.
    namespace: dict = {}
    exec(SEED_6_MODEL, namespace)
    exported = namespace["hybrid_graph"]
    diff = sdk.compare_graphs(graphs.hybrid(), exported)
    assert diff.structural_match  # the hand-built graph is the exported one, up to the weights
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(SEED_7_8, namespace)
    assert out.getvalue().startswith(EXPECTED + "\n")


def test_the_same_snippets_through_the_t1c_alias():
    code = SEED_7_8.replace("from talon import sdk", "from t1c import sdk")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"hybrid_graph": graphs.hybrid()})
    assert out.getvalue().startswith(EXPECTED)
