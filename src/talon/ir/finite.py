"""Finiteness of node parameters: the one rule every entry point applies.

A parameter array is *finite* when it holds no NaN and no ±inf, except the time constants
(``tau``, ``tau_mem``, ``tau_syn``), where ``+inf`` means "no leak" (docs/semantics.md). A NaN
weight makes a neuron's membrane NaN, and ``NaN >= threshold`` is false: the neuron silently never
fires, so engines refuse such a graph; readers (``.t1c``, NIR, the PyTorch exporter) only warn, so
that a damaged file can still be opened, inspected and linted (``PARAM_NOT_FINITE``).

numpy only (``talon.ir`` never imports torch or jax).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator

import numpy as np

from .errors import GraphValidationError
from .graph import Graph
from .node import Node

#: Fields where ``+inf`` is a legal value (no leak).
INFINITE_OK = ("tau", "tau_mem", "tau_syn")


class NonFiniteParameterError(GraphValidationError):
    """A node has NaN or infinite parameter values that an engine cannot run."""


#: From this many elements on, a float32/float64 array is first checked with one dot product.
_DOT_CHECK_SIZE = 4096


def is_finite_param(field: str, arr: np.ndarray) -> bool:
    """False when the float array ``arr`` (parameter ``field``) holds NaN or ±inf (``+inf`` is
    allowed in :data:`INFINITE_OK`); integer and empty arrays are finite."""
    arr = np.asarray(arr)
    if arr.dtype.kind != "f" or arr.size == 0 or _all_finite(arr):
        return True
    return not (np.isnan(arr).any() or field not in INFINITE_OK or np.any(arr[np.isinf(arr)] < 0))


def _all_finite(arr: np.ndarray) -> bool:
    """Whether the float array ``arr`` holds no NaN and no ±inf. A large float32/float64 array is
    first summed as ``x·x`` (one BLAS dot, no temporary): every term is >= 0, NaN or +inf, so NaN and
    inf reach the sum and cannot cancel, and a finite sum proves every element finite; an infinite
    or NaN sum (also the overflow of large finite values) falls back to the element-wise test."""
    if arr.size >= _DOT_CHECK_SIZE and arr.dtype in (np.float32, np.float64) and arr.flags.c_contiguous:
        flat = arr.reshape(-1)
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow only sends it to the fallback
            total = np.dot(flat, flat)
        if math.isfinite(total):
            return True
    return bool(np.isfinite(arr).all())


def non_finite_fields(node: Node) -> list[str]:
    """The names of ``node``'s parameter arrays that are not :func:`is_finite_param`, in field
    order; ``[]`` when all are finite."""
    return [key for key, arr in node.arrays().items() if not is_finite_param(key, arr)]


def _leaves(graph: Graph, prefix: str = "") -> Iterator[tuple[str, Node]]:
    for name, node in graph.nodes.items():
        if isinstance(node, Graph):
            yield from _leaves(node, f"{prefix}{name}.")
        else:
            yield prefix + name, node


def iter_non_finite(nodes: Graph | Iterable[tuple[str, Node]]) -> Iterator[tuple[str, list[str]]]:
    """``(path, fields)`` for every node with non-finite parameters, in order; ``nodes`` is a
    graph (subgraph nodes named ``"sub.node"``) or ``(path, node)`` pairs (a lowered program)."""
    for path, node in _leaves(nodes) if isinstance(nodes, Graph) else nodes:
        if fields := non_finite_fields(node):
            yield path, fields


def describe_non_finite(path: str, fields: list[str]) -> str:
    """One finding as text: ``node 'fc': weight has NaN or infinite values``."""
    verb = "has" if len(fields) == 1 else "have"
    return f"node {path!r}: {', '.join(fields)} {verb} NaN or infinite values"


def non_finite_problems(nodes: Graph | Iterable[tuple[str, Node]]) -> list[str]:
    """One message per node with non-finite parameters (empty when all are finite); ``nodes`` as
    for :func:`iter_non_finite`."""
    return [describe_non_finite(path, fields) for path, fields in iter_non_finite(nodes)]


def _refuse(what: str, problems: list[str]) -> None:
    raise NonFiniteParameterError(
        f"{what} refuses {'; '.join(problems)} (a NaN membrane never reaches threshold and NaN has no "
        "integer form, so the result would be silently wrong): fix or retrain those parameters "
        "('talon lint' lists them)"
    )


def check_finite(nodes: Graph | Iterable[tuple[str, Node]], what: str = "talon") -> None:
    """Raise :class:`NonFiniteParameterError` naming every node and field with NaN or infinite
    values (``nodes`` as for :func:`iter_non_finite`); ``what`` says who refuses (``"the CPU backend"``)."""
    problems = non_finite_problems(nodes)
    if problems:
        _refuse(what, problems)


def check_finite_param(arr: np.ndarray, node: str, field: str, what: str = "talon") -> None:
    """:func:`check_finite` for one parameter array ``field`` of node ``node`` (a quantiser's input)."""
    if not is_finite_param(field, arr):
        _refuse(what, [describe_non_finite(node, [field])])


def warn_non_finite(graph: Graph, source: str, stacklevel: int = 3) -> None:
    """Warn (``UserWarning``) once per graph naming each node and field with non-finite values;
    ``source`` says what was read (a file name, ``"the exported model"``)."""
    problems = non_finite_problems(graph)
    if problems:
        warnings.warn(
            f"{source}: {'; '.join(problems)}; it can be inspected and linted, but engines refuse to run it",
            UserWarning,
            stacklevel=stacklevel,
        )
