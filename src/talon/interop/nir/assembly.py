"""Placing converted NIR nodes in a validated talon graph (the second half of :mod:`.importer`).

Each NIR node is first converted to a :class:`Spec` (how to build the talon node, the shape
annotations the file declares). Assembly then adds the Input / Output nodes nir >= 1.0.6 would
add, builds the graph (a consistent file in one validation; otherwise probe graphs that try the
Flatten batch offsets and check the declared shapes, see :meth:`Assembler._assemble`) and attaches
the records of what the import changed.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon import ir
from talon.ir.budget import BudgetExceededError

from . import units
from ._common import NIRFormatError, _broadcast, fmt_shape, same_bits, unique_name
from .records import merge_record


@dataclass
class Spec:
    """One NIR node, converted but not yet placed in a validated graph."""

    name: str
    nir_type: str
    build: Callable[[bool], ir.Node]  # argument: use the Flatten batch offset
    metadata: dict[str, Any]
    record: dict[str, Any] = field(default_factory=dict)
    annotation: tuple[int, ...] | None = None  # declared input shape to check, if any
    annotation_field: str = ""
    offset_possible: bool = False
    input_shape: tuple[int, ...] | None = None  # an Input node's declared shape
    # talon field -> (NIR field, unit kind, the NIR value), for the source record
    neuron_source: dict[str, tuple[str, str, np.ndarray]] = field(default_factory=dict)
    # the node the validating ``build(False)`` made; the first probe graph takes it (see ``fresh``)
    built: ir.Node | None = None

    def fresh(self, offset: bool) -> ir.Node:
        """The node for a graph: the one built while validating (once, never placed in a graph
        before), else a new one, so that no node carries types from a probe that failed."""
        node, self.built = self.built, None
        return node if node is not None and not offset else self.build(offset)


class Assembler:
    """Graph assembly of the importer (``dt``, ``type_check``, ``where`` and ``label`` are the importer's)."""

    dt: float
    type_check: bool
    where: str

    label: Callable[[str, str], str]  # "file: node 'name' of subgraph 'path'"

    def _add_boundaries(self, specs: dict[str, Spec], edges: list[tuple[str, str]], path: str) -> None:
        """Give root nodes an Input and leaf nodes an Output, as nir >= 1.0.6 does on construction."""
        has_in = {d for _, d in edges}
        has_out = {s for s, _ in edges}
        for name in list(specs):
            spec = specs[name]
            if spec.nir_type != "Input" and name not in has_in:
                shape = self._fixed_input_shape(spec)
                if shape is None:
                    raise NIRFormatError(
                        f"{self.label(name, path)} ({spec.nir_type}) has no incoming edge and no Input node, and its "
                        "input shape is not fixed by its parameters; add an Input node"
                    )
                new = unique_name(f"input_{name}", specs)
                specs[new] = Spec(new, "Input", const(lambda s=shape: ir.Input(np.array(s, dtype=np.int64))), {})
                edges.append((new, name))
            if spec.nir_type != "Output" and name not in has_out:
                new = unique_name(f"output_{name}", specs)
                specs[new] = Spec(new, "Output", const(lambda: ir.Output(np.array([0]))), {})
                specs[new].annotation = None
                edges.append((name, new))

    def _fixed_input_shape(self, spec: Spec):
        node = spec.built if spec.built is not None else spec.build(False)
        if isinstance(node, ir.Graph):
            return node.nodes[node.input_nodes[0]].shape if len(node.input_nodes) == 1 else None
        if spec.annotation is not None:
            return spec.annotation
        return node.input_shape

    def _assemble(
        self, specs: dict[str, Spec], edges: list[tuple[str, str]], path: str, batch_dropped: bool = False
    ) -> ir.Graph:
        direct = None if batch_dropped else self._direct(specs, edges)
        if direct is not None:
            return self._finish(specs, direct, path)
        flattens = [n for n, s in specs.items() if s.offset_possible]
        if len(flattens) <= 6:
            candidates = [set(c) for k in range(len(flattens) + 1) for c in itertools.combinations(flattens, k)]
        else:
            candidates = [set(), set(flattens)]
        first_error: Exception | None = None
        fallback = None
        for offsets in candidates:
            probe_nodes = {}
            for name, spec in specs.items():
                probe_nodes[name] = ir.Skip("residual") if spec.nir_type == "Output" else spec.fresh(name in offsets)
            try:
                probe = ir.Graph(probe_nodes, list(edges))
            except BudgetExceededError:
                raise
            except (ir.GraphValidationError, ValueError) as exc:
                first_error = first_error or exc
                continue
            mismatches = self._mismatches(specs, probe)
            if not mismatches:
                fallback = (offsets, probe, [])
                break
            if fallback is None:
                fallback = (offsets, probe, mismatches)
        if fallback is None:
            if not self.type_check and not batch_dropped and self._drop_batch_axes(specs, path):
                return self._assemble(specs, edges, path, batch_dropped=True)
            where = f"{self.where}: subgraph {path!r}" if path else self.where
            raise ir.ConversionError(f"{where}: the NIR graph is not consistent: {first_error}") from None
        offsets, probe, mismatches = fallback
        for name, declared, actual, what in mismatches:
            message = (
                f"{self.label(name, path)} ({specs[name].nir_type}) declares {what} {fmt_shape(declared)} but the "
                f"graph gives it {fmt_shape(actual)}"
            )
            if self.type_check:
                raise ir.ConversionError(
                    f"{message}; the file's shape annotations contradict its structure. Read it with "
                    "read_nir(..., type_check=False) (talon nir import --no-type-check) to use the shapes the "
                    "structure implies."
                )
            warnings.warn(f"{message}; using {fmt_shape(actual)} (type_check=False)", stacklevel=5)
            specs[name].record["type_check"] = f"declared {what} {fmt_shape(declared)} replaced by {fmt_shape(actual)}"
        nodes = {}
        for name, spec in specs.items():
            if spec.nir_type == "Output":
                shape = probe.nodes[name].output_shape
                node = spec.build(False) if shape is None else ir.Output(np.array(shape, dtype=np.int64))
            else:  # the probe's node: in the final graph it meets the same shapes and infers the same types
                node = probe.nodes[name]
            if name in offsets:
                spec.record["flatten_batch_offset"] = True
            nodes[name] = node
        try:
            graph = ir.Graph(nodes, list(edges))
        except (ir.GraphValidationError, ValueError) as exc:
            where = f"{self.where}: subgraph {path!r}" if path else self.where
            raise ir.ConversionError(f"{where}: {exc}") from None
        return self._finish(specs, graph, path)

    def _direct(self, specs: dict[str, Spec], edges: list[tuple[str, str]]) -> ir.Graph | None:
        """The graph of a consistent file in one validation, or None (then the probes above decide).

        This is the first probe's candidate (no Flatten batch offsets) with the declared Output
        shapes in place: the graph validates exactly when every Output's declared shape is the one
        the structure gives it, and with no other annotation contradicted it is the graph the probes
        would build. Output nodes added by ``_add_boundaries`` have no declared shape: they need the probe.
        """
        if any(spec.nir_type == "Output" and spec.annotation is None for spec in specs.values()):
            return None
        nodes = {name: spec.fresh(False) for name, spec in specs.items()}
        try:
            graph = ir.Graph(nodes, list(edges))
        except BudgetExceededError:
            raise
        except (ir.GraphValidationError, ValueError):
            return None
        return None if self._mismatches(specs, graph) else graph

    def _finish(self, specs: dict[str, Spec], graph: ir.Graph, path: str) -> ir.Graph:
        """Records (source values, fixes) and metadata onto the nodes of the assembled graph."""
        for name, spec in specs.items():
            node = graph.nodes[name]
            self._check_vector_layout(spec, node, self.label(name, path))
            self._source_record(spec, node)
            if spec.record:
                spec.metadata = merge_record(spec.metadata, spec.record)
            node.metadata = spec.metadata
        return graph

    def _drop_batch_axes(self, specs: dict[str, Spec], path: str) -> bool:
        """Rockpool writes Input shapes with a leading batch axis of 1 (``[1, N]``): under type_check=False,
        drop it (with a warning) when the graph does not fit otherwise. Whether anything was dropped."""
        dropped = False
        for name, spec in specs.items():
            shape = spec.input_shape
            if spec.nir_type != "Input" or shape is None or len(shape) < 2 or shape[0] != 1:
                continue
            spec.input_shape = shape[1:]
            spec.build = const(lambda s=shape[1:]: ir.Input(np.array(s, dtype=np.int64)))
            spec.built = None
            spec.record["type_check"] = f"leading batch axis of {fmt_shape(shape)} dropped"
            warnings.warn(
                f"{self.label(name, path)} (Input) declares {fmt_shape(shape)} with a leading batch axis (as Rockpool "
                f"writes); using {fmt_shape(shape[1:])} (type_check=False)",
                stacklevel=6,
            )
            dropped = True
        return dropped

    def _mismatches(self, specs: dict[str, Spec], probe: ir.Graph):
        out = []
        for name, spec in specs.items():
            node = probe.nodes[name]
            if spec.nir_type == "Output":
                declared, actual, what = spec.annotation, node.output_shape, "shape"
            elif spec.annotation is not None:
                declared, actual, what = spec.annotation, node.input_shape, spec.annotation_field
            else:
                continue
            if declared is not None and actual is not None and tuple(declared) != tuple(actual):
                out.append((name, declared, actual, what))
        return out

    @staticmethod
    def _check_vector_layout(spec: Spec, node: ir.Node, label: str) -> None:
        """Refuse a neuron parameter whose layout a square layer makes ambiguous.

        NIR gives neuron parameters the layer's shape. A 1-D parameter of length ``C`` on a layer
        ``[C, ..., C]`` can mean one value per channel (talon's reading of a ``(C,)`` parameter) or,
        broadcast as numpy and PyTorch do (nirtorch, snnTorch, Norse), one value per position of the
        last axis: the two give different models, so the file must say which by the full shape."""
        shape = node.input_shape
        if not shape or len(shape) < 2 or shape[0] != shape[-1]:
            return
        for nir_field, _kind, original in spec.neuron_source.values():
            if original is not None and original.ndim == 1 and original.size == shape[0] > 1:
                raise ir.ConversionError(
                    f"{label} ({spec.nir_type}): {nir_field} has shape {fmt_shape(original.shape)} on a layer of "
                    f"shape {fmt_shape(shape)}, which reads both as one value per channel (talon) and as one "
                    "value per position of the last axis (numpy/PyTorch broadcasting, as nirtorch, snnTorch and "
                    f"Norse run it). Write {nir_field} at the layer's full shape: per channel "
                    f"np.broadcast_to(p[:, {', '.join(['None'] * (len(shape) - 1))}], {tuple(shape)}), per last-axis "
                    f"position np.broadcast_to(p, {tuple(shape)})."
                )

    def _source_record(self, spec: Spec, node: ir.Node) -> None:
        """Keep the NIR value of each neuron field that converting back would not reproduce.

        0-d NIR parameters are not kept: they are written back as full arrays (nir >= 1.0.8 cannot
        infer types from 0-d parameters, and ``nir.write`` cannot compress 0-d datasets).
        """
        source = {}
        for talon_field, (nir_field, kind, original) in spec.neuron_source.items():
            if original is None or original.ndim == 0:
                continue
            back = units.to_nir(_broadcast(getattr(node, talon_field), original.shape), kind, self.dt)
            if not same_bits(back, original):
                source[nir_field] = original
        if source:
            spec.record["source"] = {**spec.record.get("source", {}), **source}

    # ---- nodes ---------------------------------------------------------------------------------


def const(make: Callable[[], ir.Node]) -> Callable[[bool], ir.Node]:
    return lambda _offset: make()
