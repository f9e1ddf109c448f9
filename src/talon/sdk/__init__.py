"""talon.sdk: analysis, static profile, lint, fingerprint and provenance, compare, convert, query.

Every function takes a :class:`talon.ir.Graph` or the path of a ``.t1c`` file. The SDK also
re-exports the public API of the other layers, like the original TALON ``talon.sdk``:

* ``talon.ir`` (every name in ``talon.ir.__all__``) directly;
* the PyTorch bridge, the NIR interop, the backend and the plots **lazily**: ``sdk.to_ir``
  imports ``talon.bridge`` (and torch) on first use, so ``from talon import sdk`` stays light. A
  missing optional dependency raises :class:`talon.ir.MissingDependencyError` naming the pip extra.

``__all__`` lists the lazy names whose layer and dependencies are installed, so
``from talon.sdk import *`` works (and imports them) wherever they can be imported.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from talon import ir as _ir

from ._common import GraphLike, UnknownNodeError, load_graph
from .analysis import GraphStats, LayerStats, analyze_graph, analyze_node, format_bytes, format_number, summarize
from .compare import GraphDiff, NodeDiff, assert_graphs_equal, compare_graphs, compare_nodes
from .convert import (
    ConversionResult,
    batch_convert,
    convert_to_spiking,
    merge_graphs,
    prune_disconnected,
    quantize_weights,
)
from .fingerprint import fingerprint_graph, get_stamp, stamp_graph, verify_fingerprint, verify_stamp
from .lint import CATALOGUE, LintIssue, LintResult, Severity, lint_graph
from .profile import HardwareProfile, format_profile, profile_graph
from .query import extract_subgraph, find_pattern, get_node_statistics, inspect_node, trace_path
from .version import __version__, get_dependency_versions, get_versions, info, list_primitives

__all__ = [
    "CATALOGUE",
    "ConversionResult",
    "GraphDiff",
    "GraphLike",
    "GraphStats",
    "HardwareProfile",
    "LayerStats",
    "LintIssue",
    "LintResult",
    "NodeDiff",
    "Severity",
    "UnknownNodeError",
    "__version__",
    "analyze_graph",
    "analyze_node",
    "assert_graphs_equal",
    "batch_convert",
    "compare_graphs",
    "compare_nodes",
    "convert_to_spiking",
    "extract_subgraph",
    "find_pattern",
    "fingerprint_graph",
    "format_bytes",
    "format_number",
    "format_profile",
    "get_dependency_versions",
    "get_node_statistics",
    "get_stamp",
    "get_versions",
    "info",
    "inspect_node",
    "lint_graph",
    "list_primitives",
    "load_graph",
    "merge_graphs",
    "profile_graph",
    "prune_disconnected",
    "quantize_weights",
    "stamp_graph",
    "summarize",
    "trace_path",
    "verify_fingerprint",
    "verify_stamp",
]

# talon.ir is light (numpy, h5py): re-export all of it, kept in step with ir.__all__.
_IR_EXPORTS = [n for n in _ir.__all__ if n != "__version__"]
globals().update({n: getattr(_ir, n) for n in _IR_EXPORTS})

# Lazily re-exported layers: module -> (pip extra or None, top-level modules it needs, names).
_LAZY_LAYERS: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {
    "talon.bridge": (
        "torch",
        ("torch",),
        (
            "to_ir",
            "torch_to_ir",
            "TALONExporter",
            "ir_to_torch",
            "from_ir",
            "load",
            "GraphExecutor",
            "LIFModule",
            "SkipModule",
            "ChannelSplitModule",
            "ConcatModule",
            "validate_graph",
            "has_cycles",
            "get_disconnected_nodes",
            "get_topological_order",
            "get_input_nodes",
            "get_output_nodes",
        ),
    ),
    "talon.interop.nir": ("nir", ("nir",), ("to_nir", "from_nir", "read_nir", "write_nir")),
    "talon.backend": (
        None,
        (),
        (
            "BackendBase",
            "get_backend",
            "register_backend",
            "list_backends",
            "query_backends",
            "CompileConfig",
            "HardwareDescriptor",
            "BackendCapabilities",
            "ValidationResult",
            "SimulationResult",
            "ProfileResult",
            "run_graph",
            "RunResult",
            "ENERGY_PRESETS",
            "get_energy_preset",
        ),
    ),
    # talon.viz needs numpy and h5py only; its matplotlib plots name the viz extra when drawn
    "talon.viz": (
        "viz",
        (),
        (
            "visualize",
            "export_html",
            "graph_to_dict",
            "render_html",
            "visualize_partitioned",
            "visualize_execution_schedule",
            "plot_events",
            "export_events_html",
            "plot_frames",
            "events_to_frames",
            "events_to_grid",
            "events_to_raster",
            "TONIC_AVAILABLE",
            "PIL_AVAILABLE",
            "plot_spikes_and_membranes",
            "plot_simulation",
        ),
    ),
}
_LAZY: dict[str, str] = {name: module for module, (_, _, names) in _LAZY_LAYERS.items() for name in names}
# Which pip extra provides a missing third-party module (by its top-level name).
_EXTRA_OF = {
    "torch": "torch",
    "snntorch": "snntorch",
    "norse": "norse",
    "nir": "nir",
    "nirtorch": "nir",
    "jax": "jax",
    "jaxlib": "jax",
    "flax": "jax",
    "spyx": "jax",
    "matplotlib": "viz",
}


def _spec_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package
        return False


def _available(module: str) -> bool:
    _, needs, _ = _LAZY_LAYERS[module]
    return _spec_exists(module) and all(_spec_exists(m) for m in needs)


def _import_layer(module: str, name: str) -> Any:
    extra, _, _ = _LAZY_LAYERS[module]
    if not _spec_exists(module):
        raise AttributeError(f"talon.sdk.{name} comes from {module}, which is not part of this talon installation")
    try:
        return importlib.import_module(module)
    except _ir.MissingDependencyError:
        raise
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing.startswith("talon") or (missing not in _EXTRA_OF and extra is None):
            raise
        pip_extra = _EXTRA_OF.get(missing, extra)
        raise _ir.MissingDependencyError(
            f"talon.sdk.{name} needs {missing or 'an optional dependency'} ({module}); "
            + _ir.errors.install_hint(pip_extra)
        ) from exc


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'talon.sdk' has no attribute {name!r}")
    layer = _import_layer(module, name)
    try:
        value = getattr(layer, name)
    except AttributeError:
        raise AttributeError(f"talon.sdk.{name}: {module} does not define {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ += _IR_EXPORTS
__all__ += [n for module, (_, _, names) in _LAZY_LAYERS.items() if _available(module) for n in names]
