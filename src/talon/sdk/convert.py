"""Graph-to-graph conversions: SpikingAffine hints, simulated quantization, pruning, merging, batches.

Every function returns a new graph (new node objects; arrays that do not change are shared, not
copied) and leaves its input untouched. What a conversion did is recorded in the metadata.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talon import ir
from talon.ir import ConversionError, Graph, Node
from talon.ir.graph import check_edges, reachable

from ._common import GraphLike, jsonable, load_graph, rebuild, shallow_copy_node

__all__ = [
    "ConversionResult",
    "batch_convert",
    "convert_to_spiking",
    "merge_graphs",
    "prune_disconnected",
    "quantize_weights",
]

# The synaptic weight arrays quantize_weights touches, per node type (biases stay as they are).
_WEIGHT_FIELDS: tuple[tuple[type[Node], tuple[str, ...]], ...] = (
    (ir.Affine, ("weight",)),  # SpikingAffine too
    (ir.Linear, ("weight",)),
    (ir.Conv1d, ("weight",)),
    (ir.Conv2d, ("weight",)),  # SConv, SDConv too
    (ir.SepConv2d, ("depthwise_weight", "pointwise_weight")),
    # the ghost blocks and the detection head are convolutions (docs/detection.md): every kernel
    (ir.SGhostConv, ("primary_weight", "cheap_weight")),
    (ir.SGhostEncoderLite, ("conv1_weight", "ghost_primary_weight", "ghost_cheap_weight")),
    (ir.GhostBasicBlock1, tuple(f"{c}_{k}_weight" for c in ("cv0", "cv2", "cvres") for k in ("primary", "cheap"))),
    (ir.GhostBasicBlock2, tuple(f"{c}_{k}_weight" for c in ("cv0", "cv2") for k in ("primary", "cheap"))),
    (ir.SDDetect, tuple(f"{b}_w{i}" for b in ("cv2", "cv3") for i in range(3))),
)


def convert_to_spiking(
    graph: GraphLike, weight_bits: int = 8, accumulator_bits: int = 16, spike_mode: str = "binary"
) -> Graph:
    """Replace every Affine node (at every nesting level) by a SpikingAffine with these hints.

    The computation is unchanged (``y = W x + b`` with the same arrays); SpikingAffine nodes
    already present and Linear nodes are left alone. Records in ``graph.metadata``:
    ``converted_to_spiking``, ``spiking_config`` and ``converted_layers`` (the count).
    Invalid hints raise ``ValueError`` before anything is converted.
    """
    # One probe node validates the hints (and normalizes spike_mode) before any work is done.
    probe = ir.SpikingAffine(
        np.zeros((1, 1), np.float32), spike_mode=spike_mode, weight_bits=weight_bits, accumulator_bits=accumulator_bits
    )
    graph = load_graph(graph)
    converted: list[str] = []

    def replace(name: str, node: Node) -> Node | None:
        if type(node) is not ir.Affine:
            return None
        converted.append(name)
        return ir.SpikingAffine(
            node.weight,
            node.bias,
            spike_mode=probe.spike_mode,
            weight_bits=probe.weight_bits,
            accumulator_bits=probe.accumulator_bits,
            metadata=copy.deepcopy(node.metadata),
        )

    out = rebuild(graph, replace)
    out.metadata["converted_to_spiking"] = True
    out.metadata["spiking_config"] = {
        "weight_bits": probe.weight_bits,
        "accumulator_bits": probe.accumulator_bits,
        "spike_mode": probe.spike_mode.value,
    }
    out.metadata["converted_layers"] = len(converted)
    return out


def _quantize(w: np.ndarray, bits: int, per_channel: bool) -> tuple[np.ndarray, np.ndarray | np.float64]:
    qmax = 2 ** (bits - 1) - 1
    w64 = w.astype(np.float64)
    if per_channel and w.ndim > 1:
        amax = np.abs(w64).reshape(w.shape[0], -1).max(axis=1) if w.size else np.zeros(w.shape[0])
        scale = amax / qmax
        bshape = (w.shape[0],) + (1,) * (w.ndim - 1)
        s = scale.reshape(bshape)
    else:
        scale = np.float64(np.abs(w64).max() / qmax) if w.size else np.float64(0.0)
        s = scale
    safe = np.where(s > 0, s, 1.0)
    q = np.clip(np.rint(w64 / safe), -qmax, qmax)
    return (q * s).astype(w.dtype), scale


def quantize_weights(graph: GraphLike, bits: int = 8, per_channel: bool = True) -> Graph:
    """Simulated symmetric fixed-point quantization of the synaptic weights.

    For each weight array ``w`` (Affine, SpikingAffine, Linear, Conv1d, Conv2d, SConv, SDConv
    weights, both SepConv2d weights and every convolution kernel of the ghost blocks and SDDetect;
    biases and neuron parameters are not touched)::

        qmax  = 2**(bits - 1) - 1
        scale = max|w| / qmax            per output channel (axis 0) if per_channel, else per tensor
        w'    = clip(round(w / scale), -qmax, qmax) * scale      (computed in float64)

    ``w'`` keeps ``w``'s dtype, so memory does not shrink: the values are the dequantized ones a
    ``bits``-bit engine would use. Each changed node records ``metadata['quantization'] =
    {'bits', 'scheme': 'symmetric', 'per_channel', 'scales': {field: scale(s)}}`` and the graph
    ``metadata['quantized_weights'] = {'bits', 'per_channel', 'layers'}``. Integer weights raise
    :class:`ConversionError`; NaN or infinite parameters anywhere in the graph raise
    :class:`talon.ir.NonFiniteParameterError` naming each node and field (a NaN has no quantized value).
    """
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 32:
        raise ValueError(f"bits must be an integer in [2, 32], got {bits!r}")
    if not isinstance(per_channel, bool):
        raise TypeError(f"per_channel must be a bool, got {type(per_channel).__name__}")
    graph = load_graph(graph)
    ir.check_finite(graph, "quantize_weights")
    bits = int(bits)
    layers = 0

    def replace(name: str, node: Node) -> Node | None:
        nonlocal layers
        fields = next((f for t, f in _WEIGHT_FIELDS if isinstance(node, t)), None)
        if fields is None:
            return None
        new = shallow_copy_node(node)
        scales = {}
        for key in fields:
            w = getattr(node, key)
            if w.dtype.kind != "f":
                raise ConversionError(
                    f"node {name!r}: {key} has dtype {w.dtype}; quantize_weights simulates quantization of "
                    "float weights"
                )
            setattr(new, key, (q := _quantize(w, bits, per_channel))[0])
            scales[key] = q[1]
        new.metadata["quantization"] = {
            "bits": bits,
            "scheme": "symmetric",
            "per_channel": per_channel,
            "scales": scales,
        }
        layers += 1
        return new

    out = rebuild(graph, replace)
    out.metadata["quantized_weights"] = {"bits": bits, "per_channel": per_channel, "layers": layers}
    return out


def _live_nodes(graph: Graph) -> set[str]:
    return reachable(graph.edges, graph.input_nodes) & reachable(graph.edges, graph.output_nodes, reverse=True)


def prune_disconnected(graph: GraphLike) -> Graph:
    """Remove the nodes that are not on a path from an Input to an Output, with their edges.

    Input and Output nodes are kept. Subgraph nodes are kept or removed as a whole. The removed
    names are recorded in ``metadata['pruned_nodes']``. If removing them leaves a node with a
    wrong number of edges (a ChannelSplit losing a branch), ``GraphValidationError`` says which.
    """
    graph = load_graph(graph)
    check_edges(graph)
    live = _live_nodes(graph)
    pruned = [n for n, node in graph.nodes.items() if n not in live and not isinstance(node, (ir.Input, ir.Output))]
    if not pruned:  # the copy is the result: validate it once
        return rebuild(graph)
    base = rebuild(graph)
    removed = set(pruned)
    nodes = {n: node for n, node in base.nodes.items() if n not in removed}
    edges = [(s, d) for s, d in graph.edges if s in nodes and d in nodes]
    metadata = copy.deepcopy(graph.metadata)
    metadata["pruned_nodes"] = list(metadata.get("pruned_nodes", [])) + pruned
    try:
        return Graph(nodes, edges, metadata)
    except ir.GraphValidationError as exc:
        raise ir.GraphValidationError(f"pruning {', '.join(pruned)} leaves an invalid graph: {exc}") from None


def merge_graphs(*graphs: GraphLike, prefix: bool | Sequence[str] = True) -> Graph:
    """The disjoint union of ``graphs`` (node order: graph by graph).

    ``prefix=True`` renames node ``n`` of graph *i* to ``g{i}_n``; a sequence gives each graph's
    prefix; ``prefix=False`` keeps the names, which must then be distinct. The result's metadata
    lists each part's prefix and metadata under ``merged_graphs``.
    """
    if len(graphs) == 1 and isinstance(graphs[0], (list, tuple)):
        graphs = tuple(graphs[0])
    if not graphs:
        raise ValueError("merge_graphs needs at least one graph")
    loaded = [load_graph(g, f"graph {i}") for i, g in enumerate(graphs)]
    if prefix is True:
        prefixes = [f"g{i}_" for i in range(len(loaded))]
    elif prefix is False:
        prefixes = [""] * len(loaded)
    elif isinstance(prefix, Sequence) and not isinstance(prefix, str) and all(isinstance(p, str) for p in prefix):
        prefixes = list(prefix)
        if len(prefixes) != len(loaded):
            raise ValueError(f"{len(prefixes)} prefixes for {len(loaded)} graphs")
    else:
        raise TypeError("prefix must be True, False or a sequence of strings (one per graph)")
    nodes: dict[str, Node] = {}
    edges: list[tuple[str, str]] = []
    parts = []
    for i, (g, p) in enumerate(zip(loaded, prefixes, strict=True)):
        check_edges(g, f"graph {i}")
        copied = rebuild(g, validate=False)  # validated as part of the union
        for name, node in copied.nodes.items():
            new_name = f"{p}{name}"
            if new_name in nodes:
                raise ir.GraphValidationError(
                    f"graph {i}: node name {new_name!r} is already used by an earlier graph; use prefix=True"
                )
            nodes[new_name] = node
        edges += [(f"{p}{s}", f"{p}{d}") for s, d in g.edges]
        parts.append({"prefix": p, "metadata": copy.deepcopy(g.metadata)})
    try:
        return Graph(nodes, edges, {"merged_graphs": parts})
    except ir.GraphValidationError:
        for g in loaded:  # raise the invalid part's own error, naming its nodes as that graph does
            rebuild(g)
        raise


@dataclass
class ConversionResult:
    """One file of :func:`batch_convert`: ``success``, ``source``, ``destination`` (None if nothing
    was written), ``error`` (one line, None on success) and ``stats`` (``nodes``, ``edges``)."""

    success: bool
    source: str
    destination: str | None = None
    error: str | None = None
    stats: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(self.__dict__)


def _sources(sources: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    if isinstance(sources, (str, os.PathLike)):
        path = Path(sources)
        return sorted(path.glob("*.t1c")) if path.is_dir() else [path]
    try:
        return [Path(s) for s in sources]
    except TypeError:
        raise TypeError("sources must be a path, a folder of .t1c files or an iterable of paths") from None


def batch_convert(
    sources: str | os.PathLike | Iterable[str | os.PathLike],
    dest_dir: str | os.PathLike,
    processor: Callable[[Graph], Graph] | None = None,
    overwrite: bool = False,
) -> list[ConversionResult]:
    """Read each source ``.t1c`` file, apply ``processor`` (Graph -> Graph; None re-writes the
    graph as is, in the current format version) and write ``dest_dir/<name>.t1c``.

    ``sources`` is a path, a folder (its ``*.t1c`` files, sorted) or an iterable of paths. A file
    that cannot be read, processed or written gives a failed result with a one-line error; the
    others still run. An existing destination is refused unless ``overwrite``; two sources with
    the same file name never overwrite each other.
    """
    if processor is not None and not callable(processor):
        raise TypeError(f"processor must be a callable Graph -> Graph, got {type(processor).__name__}")
    dest = Path(dest_dir)
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"dest_dir {dest} exists and is not a folder")
    results: list[ConversionResult] = []
    written: set[Path] = set()
    for src in _sources(sources):
        target = dest / f"{src.stem}.t1c"
        result = ConversionResult(False, str(src))
        try:
            if target in written:
                raise FileExistsError(f"{target} was already written from another source of this batch")
            if target.exists() and not overwrite:
                raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
            graph = ir.read(src)
            if processor is not None:
                graph = processor(graph)
                if not isinstance(graph, Graph):
                    raise TypeError(f"processor returned {type(graph).__name__}, not a talon.ir.Graph")
            ir.write(target, graph)
            written.add(target)
            result = ConversionResult(
                True, str(src), str(target), stats={"nodes": len(graph.nodes), "edges": len(graph.edges)}
            )
        except (ir.TalonError, OSError, ValueError, TypeError, KeyError) as exc:
            result.error = " ".join(f"{type(exc).__name__}: {exc}".split())
        results.append(result)
    return results
