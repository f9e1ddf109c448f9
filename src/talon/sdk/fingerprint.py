"""Fingerprints of a graph or ``.t1c`` file, and provenance stamps.

The fingerprint is :func:`talon.ir.fingerprint.graph_fingerprint` — SHA-256 over the canonical
form (version 1) that module's docstring and ``docs/sdk.md`` describe. A stamp
(:func:`stamp_graph`) records a graph's fingerprints and provenance under
``graph.metadata["talon_stamp"]``, which no fingerprint includes.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hmac
import re
from typing import Any

from talon.ir import Graph
from talon.ir.fingerprint import CANONICAL_VERSION, STAMP_KEY, graph_fingerprint, graph_fingerprints

from ._common import GraphLike, load_graph, rebuild

__all__ = [
    "CANONICAL_VERSION",
    "STAMP_KEY",
    "fingerprint_graph",
    "get_stamp",
    "stamp_graph",
    "verify_fingerprint",
    "verify_stamp",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def fingerprint_graph(graph: GraphLike, include_weights: bool = True, include_metadata: bool = False) -> str:
    """SHA-256 (64 hex digits) of the canonical form of ``graph`` (or ``.t1c`` file): see
    :func:`talon.ir.fingerprint.graph_fingerprint`.

    ``include_weights=False`` gives the structure hash, which ignores array values;
    ``include_metadata=True`` adds graph and node metadata (the stamp is always left out).
    """
    return graph_fingerprint(load_graph(graph), include_weights, include_metadata)


def _check_storable(value: Any, field: str) -> None:
    from talon.ir.codec import encode  # the .t1c encoder decides what a stamp may hold

    try:
        encode(value, [], f"stamp field {field!r}")
    except TypeError as exc:
        raise TypeError(f"{exc}; a stamp must survive ir.write") from None


def stamp_graph(
    graph: GraphLike,
    notes: str | None = None,
    git_commit: str | None = None,
    training_run_id: str | None = None,
    calibration_config: dict | None = None,
    quantization_config: dict | None = None,
    **extra: Any,
) -> Graph:
    """A copy of ``graph`` whose ``metadata['talon_stamp']`` records its provenance.

    The stamp holds ``fingerprint_full`` and ``fingerprint_structure`` (of the graph without the
    stamp), ``fingerprint_version``, ``timestamp`` (UTC, ISO 8601), ``sdk_versions`` and the
    user fields given here (``extra`` keyword arguments are kept under ``extra``). The input graph
    is not modified (the copy has new node objects and metadata; arrays are shared). The stamp
    survives ``ir.write`` / ``ir.read``; a new stamp replaces an old one.
    """
    from .version import get_versions

    graph = load_graph(graph)
    fields = {
        "notes": notes,
        "git_commit": git_commit,
        "training_run_id": training_run_id,
        "calibration_config": calibration_config,
        "quantization_config": quantization_config,
    }
    for key in ("notes", "git_commit", "training_run_id"):
        if fields[key] is not None and not isinstance(fields[key], str):
            raise TypeError(f"{key} must be a string, got {type(fields[key]).__name__}")
    for key in ("calibration_config", "quantization_config"):
        if fields[key] is not None and not isinstance(fields[key], dict):
            raise TypeError(f"{key} must be a dict, got {type(fields[key]).__name__}")
    full, structure = graph_fingerprints(graph)  # one walk for both
    stamp = {
        "fingerprint_full": full,
        "fingerprint_structure": structure,
        "fingerprint_version": CANONICAL_VERSION,
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "sdk_versions": get_versions(),
        **{k: copy.deepcopy(v) for k, v in fields.items() if v is not None},
    }
    if extra:
        stamp["extra"] = copy.deepcopy(extra)
    _check_storable(stamp, STAMP_KEY)
    stamped = rebuild(graph)
    stamped.metadata[STAMP_KEY] = stamp
    return stamped


def get_stamp(graph: GraphLike) -> dict | None:
    """The provenance stamp of ``graph`` (a copy), or None if it has none."""
    stamp = load_graph(graph).metadata.get(STAMP_KEY)
    return copy.deepcopy(stamp) if isinstance(stamp, dict) else None


def verify_fingerprint(
    graph: GraphLike,
    expected_hash: str | None = None,
    include_weights: bool = True,
    include_metadata: bool = False,
) -> bool:
    """Whether ``graph`` has the fingerprint ``expected_hash``.

    With ``expected_hash=None`` the graph is checked against its own stamp (``fingerprint_full``,
    or ``fingerprint_structure`` when ``include_weights=False``): True means it has not changed
    since it was stamped. Raises ``ValueError`` for a malformed hash or a missing stamp.
    """
    graph = load_graph(graph)
    if expected_hash is None:
        stamp = get_stamp(graph)
        if stamp is None:
            raise ValueError("the graph has no provenance stamp; pass expected_hash or stamp it (sdk.stamp_graph)")
        expected_hash = stamp.get("fingerprint_full" if include_weights else "fingerprint_structure")
        if include_metadata:
            raise ValueError("a stamp records fingerprints without metadata; pass include_metadata=False")
    if not isinstance(expected_hash, str) or not _HEX64.fullmatch(expected_hash.lower()):
        raise ValueError(f"expected_hash must be 64 hexadecimal digits (SHA-256), got {expected_hash!r}")
    actual = fingerprint_graph(graph, include_weights, include_metadata)
    return hmac.compare_digest(actual, expected_hash.lower())


def verify_stamp(graph: GraphLike) -> bool:
    """Whether the weights and structure of ``graph`` still match its stamp (ValueError if unstamped)."""
    return verify_fingerprint(graph) and verify_fingerprint(graph, include_weights=False)
