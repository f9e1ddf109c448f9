"""talon -> NIR: ``to_nir`` and ``write_nir``.

Every node becomes the NIR primitive that computes exactly what it computes, or an exact
combination of primitives (``docs/nir.md`` has the full table):

* NIR primitives (Affine, Linear, Scale, Conv1d/2d, SumPool2d, AvgPool2d, Flatten, Delay,
  Threshold, LI, CubaLI, Integrator -> I, nested graphs) map one to one; time constants and gains
  are converted with ``dt`` (:mod:`.units`).
* LIF / IF / CubaLIF map to NIR's neurons when they have NIR's semantics: ``comparison='>'``,
  ``reset_mode='value'``, ``reset_timing='immediate'``, ``spike_timing='post'``. A neuron without
  reset (``reset_mode='none'``) is exactly a reset-free membrane and a pointwise spike:
  LI / I / CubaLI followed by Threshold (and a one-step Delay for ``spike_timing='pre'``).
* SpikingAffine, SConv and SDConv compute what Affine / Conv2d compute; their talon-only hints
  ride along in the NIR node's metadata (``talon_node``) and are restored by ``from_nir``.
  SepConv2d is its depthwise and its pointwise Conv2d.
* Skip (residual or passthrough), HybridRegion and Dropout are identities: they are removed and
  their inputs wired to their successors (NIR sums fan-in). Where removing one would change the
  order of a floating-point sum, or it sits on a cycle, it becomes an exact ``Scale(1)`` instead.

Anything else (subtractive or delayed reset, ``>=``, pre-update spikes, BatchNorm, AvgPool2d
with ``divisor_override``) raises :class:`~talon.ir.ConversionError` naming the node and the
behaviour, unless ``lossy=True``: then the nearest NIR equivalent is written, a
:class:`LossyConversionWarning` lists every change, and the change is recorded in the NIR
metadata (``talon_lossy``) of the node and of the graph. Nodes with no NIR counterpart at all
(MaxPool2d, activations, Concat, ChannelSplit, LayerNorm, Upsample ...) are refused even then.

``dt`` is written into the NIR graph's metadata (``"dt"``, seconds).
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np

from talon import ir
from talon.ir.paths import check_path

from . import profiles, reset_conventions, surrogate_conventions, units
from ._common import DEFAULT_DT, LossyConversionWarning, _broadcast, check_dt, import_nir, same_bits, unique_name
from .files import write_graph
from .metadata import to_nir_metadata
from .neuron_changes import (
    _GE_CHANGE,
    _exact_fix,
    _just_below,
)
from .neuron_lowering import NeuronLowering, _Lowered, _single
from .records import json_params, node_metadata_for_nir, padding_as_written, source_record

PathLike = str | os.PathLike

# every ghost primitive concatenates its primary and cheap halves; the decode is not a network
_GHOST_REASON = "NIR has no concatenation (a ghost convolution concatenates its primary and cheap halves)"
_DETECTION_REASONS = {
    ir.SGhostConv: _GHOST_REASON,
    ir.SGhostEncoderLite: _GHOST_REASON,
    ir.GhostBasicBlock1: _GHOST_REASON,
    ir.GhostBasicBlock2: _GHOST_REASON,
    ir.SDDetect: "NIR has no concatenation (the head concatenates its box and class branches)",
    ir.DFLDecode: "NIR has no softmax or sigmoid (DFL decode)",
    ir.Dist2BBox: "NIR has no anchor decode or reshape to box rows",
    ir.NMS: "NIR has no non-maximum suppression (post-processing, run it after the NIR graph)",
}


class NIRCompatibilityWarning(UserWarning):
    """The NIR file is correct, but nir's own reader (``nir.read`` with type checks, nir <= 1.0.8) rejects it."""


_IDENTITIES = (ir.HybridRegion, ir.Dropout)


def to_nir(graph: ir.Graph, dt: float | None = None, lossy: bool = False, *, consumer: str | None = None) -> Any:
    """Convert a talon graph into a ``nir.NIRGraph`` whose forward-Euler dynamics at ``dt`` are talon's.

    ``dt`` is the NIR time step in seconds (``None``: 1 for a consumer with its own time unit, Sinabs and
    Rockpool, and for Spyx; else the ``dt`` a graph read from NIR was converted with, ``metadata["nir"]["dt"]``,
    so NIR -> talon -> NIR keeps every parameter; else ``1e-4``, the snnTorch / Lava convention); it is recorded
    in the NIR graph's metadata.
    With ``lossy=False`` (the default) a node NIR cannot
    state exactly raises :class:`~talon.ir.ConversionError`; with ``lossy=True`` it is replaced
    by its nearest NIR equivalent, with a :class:`LossyConversionWarning` and a ``talon_lossy``
    metadata record. Needs the ``nir`` package (talon's ``nir`` extra).

    ``consumer`` (``"spikingjelly"``, ``"sinabs"``, ``"rockpool"``, ``"spyx"``; :mod:`.profiles`) writes what that
    framework will run exactly as this graph does, or refuses naming the node and the field it would
    misread (e.g. SpikingJelly spikes on ``>=``: a graph with ``comparison='>='`` exports to it).
    NIR has no field for the training convention of a reset: when the consumer's autograd differentiates
    it otherwise than a neuron's ``reset_gradient`` says (each of them trains ``'through'``), a
    :class:`~talon.interop.nir.reset_conventions.ResetGradientWarning` names the nodes (the same spikes,
    other gradients when the file is fine-tuned there). Nor for a surrogate gradient: a neuron whose
    ``surrogate`` is not the one the consumer's importer builds is named in a
    :class:`~talon.interop.nir.surrogate_conventions.SurrogateWarning`.
    """
    nir = import_nir()
    if not isinstance(graph, ir.Graph):
        raise TypeError(f"to_nir expects a talon.ir.Graph, got {type(graph).__name__}")
    profile = profiles.get_profile(consumer)
    if profile.own_dt and dt not in (None, 1, 1.0):
        raise ir.ConversionError(
            f"{profile.name} {profile.own_dt}: consumer={profile.name!r} writes the values it will run (with "
            f"dt=1), so drop dt={dt!r}"
        )
    if profile.writes_at and dt not in (None, profile.writes_at):
        raise ir.ConversionError(
            f"consumer={profile.name!r} writes at dt={profile.writes_at!r}, the dt its importer recomputes the decays "
            f"with by default (exactly talon's only there), so drop dt={dt!r}"
        )
    if dt is None:
        dt = 1.0 if profile.own_dt else profile.writes_at or _recorded_dt(graph) or DEFAULT_DT
    dt = check_dt(dt)
    graph.validate()  # nodes may have been edited since the graph was built
    checked = profiles.check_consumer(graph, profile)
    reset_conventions.warn_consumer(graph, profile.name, profile.version)  # the same spikes, other gradients?
    surrogate_conventions.warn_consumer(graph, profile.name, profile.version)
    graph = checked
    exporter = _Exporter(nir, dt, bool(lossy))
    result = exporter.graph(graph, "")
    if profile.name != "nir":
        result.metadata["talon_consumer"] = f"{profile.name} {profile.version}"
    if exporter.changes:
        result.metadata["talon_lossy"] = dict(exporter.changes)
        listing = "; ".join(f"{k}: {v}" for k, v in exporter.changes.items())
        warnings.warn(
            f"to_nir(lossy=True) changed {len(exporter.changes)} node(s): {listing}",
            LossyConversionWarning,
            stacklevel=2,
        )
    if exporter.nir_reader_problems:
        listing = "; ".join(exporter.nir_reader_problems)
        warnings.warn(
            f"the NIR graph is exact, but nir's own reader (nir.read with type_check=True, nir <= 1.0.8) will "
            f"reject the file because of its bugs: {listing}. talon.interop.nir.read_nir reads it; nir.read needs "
            "type_check=False.",
            NIRCompatibilityWarning,
            stacklevel=2,
        )
    return result


def _recorded_dt(graph: ir.Graph) -> float | None:
    """The ``dt`` a graph read from NIR was converted with (``metadata["nir"]["dt"]``), if it has one."""
    record = graph.metadata.get("nir")
    dt = record.get("dt") if isinstance(record, dict) else None
    return None if dt is None else float(dt)


def write_nir(
    path: PathLike,
    graph: ir.Graph,
    dt: float | None = None,
    lossy: bool = False,
    *,
    compression: str | None = "gzip",
    consumer: str | None = None,
) -> None:
    """Write ``graph`` as a NIR file (``to_nir``, then the file ``nir.write`` makes, atomically); ``consumer`` as in
    :func:`to_nir`."""
    check_path(path, "write_nir: the NIR file to write")
    write_graph(path, to_nir(graph, dt=dt, lossy=lossy, consumer=consumer), compression=compression)


# ------------------------------------------------------------------------------------------------


_REMOVED = None


class _Exporter(NeuronLowering):
    def __init__(self, nir, dt: float, lossy: bool):
        self.nir, self.dt, self.lossy = nir, dt, lossy
        self.changes: dict[str, str] = {}
        self.nir_reader_problems: list[str] = []

    # ---- graphs --------------------------------------------------------------------------------

    def graph(self, graph: ir.Graph, path: str):
        nir = self.nir
        for name in graph.nodes:
            if "/" in name:
                raise ir.ConversionError(
                    f"node {self._path(path, name)!r}: NIR stores node names as HDF5 group names, which cannot "
                    "contain '/'; rename the node"
                )
        taken = set(graph.nodes)
        removable = self._removable(graph)
        lowered: dict[str, _Lowered | None] = {}
        for name, node in graph.nodes.items():
            if name in removable:
                lowered[name] = _REMOVED
                continue
            lowered[name] = self.node(name, node, graph, path, taken)
        edges = self._rewire(graph, lowered, path)
        nodes: dict[str, Any] = {}
        for low in lowered.values():
            if low is not None:
                nodes.update(low.parts)
        if len(set(edges)) != len(edges):
            self.nir_reader_problems.append(f"{self._where(path)} has duplicate edges (nir >= 1.0.8 rejects them)")
        metadata = self._graph_metadata(graph.metadata)
        if list(nodes) != sorted(nodes):  # HDF5 lists a group's members by name
            metadata["talon_node_order"] = json.dumps(list(nodes))
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=False)

    def _graph_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        meta = dict(metadata)
        record = meta.get("nir")
        if isinstance(record, dict):
            record = {k: v for k, v in record.items() if k not in ("dt", "source")}
            if record:
                meta["nir"] = record
            else:
                del meta["nir"]
        out = to_nir_metadata(meta, reserved=("dt",))
        out["dt"] = np.float64(self.dt)
        return out

    def _removable(self, graph: ir.Graph) -> set[str]:
        """Identity nodes that can be dropped without changing any value or summation order.

        Dropping node R wires the sources of its value straight to its successors, where NIR sums
        them. That is exact when R passes on a single source, or when R's edge comes first into
        every successor ((a + b) + c keeps its order; c + (a + b) would not). R must not lie on a
        cycle (its edges could change which edge is recurrent). In a graph with cycles nothing is
        dropped: removing any node reorders the edges, and edge order decides which edge of a
        cycle is the recurrent one (docs/semantics.md §2).
        """
        out: set[str] = set()
        if not graph.is_dag:
            return out
        width: dict[str, int] = {}  # how many summed sources stand for a node's value once identities go

        def sources(name: str) -> int:
            return width.get(name, 1)

        for name in graph.topological_order():
            node = graph.nodes[name]
            residual = isinstance(node, ir.Skip) and node.skip_type in ("residual", "passthrough")
            if not (residual or isinstance(node, _IDENTITIES)):
                continue
            in_edges = graph.in_edges(name)  # Graph's edge index: O(fan-in), not a scan of every edge
            if not in_edges:  # (no node is on a cycle: the graph is a DAG)
                continue
            n = sum(sources(graph.edges[i][0]) for i in in_edges)
            if n > 1 and any(graph.in_edges(graph.edges[i][1])[0] != i for i in graph.out_edges(name)):
                continue  # keep the sum as a node (an exact Scale(1)) to keep its order
            out.add(name)
            width[name] = n
        return out

    def _rewire(self, graph: ir.Graph, lowered: dict[str, _Lowered | None], path: str) -> list[tuple[str, str]]:
        def sources(name: str, seen: frozenset) -> list[str]:
            low = lowered[name]
            if low is not None:
                return [low.exit]
            if name in seen:  # pragma: no cover - removable nodes are never on a cycle
                raise ir.ConversionError(f"{self._where(path)}: identity node {name!r} lies on a cycle")
            out = []
            for i in graph.in_edges(name):
                out += sources(graph.edges[i][0], seen | {name})
            return out

        edges: list[tuple[str, str]] = []
        for src, dst in graph.edges:
            low = lowered[dst]
            if low is None:
                continue
            for s in sources(src, frozenset()):
                edges.append((s, low.entry))
        for low in lowered.values():
            if low is not None:
                edges.extend(low.edges)
        return edges

    # ---- nodes ---------------------------------------------------------------------------------

    def node(self, name: str, node: ir.Node, graph: ir.Graph, path: str, taken: set[str]) -> _Lowered:
        nir = self.nir
        where = f"node {self._path(path, name)!r} ({type(node).__name__})"
        in_shape, out_shape = node.input_shape, node.output_shape
        if isinstance(node, ir.Graph):
            sub = self.graph(node, self._path(path, name))
            sub.metadata.pop("dt", None)
            return _single(name, sub)
        if not isinstance(node, (ir.Input, ir.Output)) and (in_shape is None or out_shape is None):
            raise ir.ConversionError(f"{where}: its shapes are unknown (is it connected?); NIR needs every shape")
        meta = node_metadata_for_nir(node.metadata)
        records: dict[str, Any] = {}

        def done(nir_node, shapes=(in_shape, out_shape)):
            return self._typed(nir_node, *shapes, meta, records)

        if isinstance(node, ir.Input):
            return _single(name, done(nir.Input(input_type=_ints(node.shape)), shapes=(node.shape, node.shape)))
        if isinstance(node, ir.Output):
            return _single(name, done(nir.Output(output_type=_ints(node.shape)), shapes=(node.shape, node.shape)))
        if isinstance(node, ir.Affine):  # SpikingAffine too
            if isinstance(node, ir.SpikingAffine):
                hints = {"spike_mode": node.spike_mode.value, "weight_bits": node.weight_bits}
                hints["accumulator_bits"] = node.accumulator_bits
                records["talon_node"] = json.dumps({"type": "SpikingAffine", "params": hints})
            self._check_dense(node, in_shape, where)
            return _single(name, done(nir.Affine(weight=node.weight, bias=node.bias)))
        if isinstance(node, ir.Linear):
            self._check_dense(node, in_shape, where)
            return _single(name, done(nir.Linear(weight=node.weight)))
        if isinstance(node, ir.Scale):
            scale = _broadcast(node.scale, in_shape)
            if not same_bits(scale, node.scale):
                records["talon_source"] = {"scale": node.scale}
            return _single(name, done(nir.Scale(scale=scale)))
        if isinstance(node, (ir.Conv1d, ir.Conv2d)):
            return _single(name, done(self._conv(node, in_shape, path, name, records)))
        if isinstance(node, ir.SepConv2d):
            return self._sepconv(name, node, in_shape, out_shape, meta, path, taken)
        if isinstance(node, ir.SumPool2d):
            k, s, p = node.kernel_size, node.stride, node.padding
            return _single(name, done(nir.SumPool2d(kernel_size=_ints(k), stride=_ints(s), padding=_ints(p))))
        if isinstance(node, ir.AvgPool2d):
            return self._avgpool(name, node, in_shape, out_shape, meta, path, taken, where)
        if isinstance(node, ir.Flatten):
            return _single(name, done(self._flatten(node, in_shape, records)))
        if isinstance(node, ir.Delay):
            delay = units.steps_to_delay(_broadcast(node.delay, in_shape), self.dt)
            original = source_record(node).get("delay")
            if original is not None:
                steps = units.delay_to_steps(original, self.dt)
                fits = steps is not None and np.shape(original) == tuple(in_shape)
                if fits and same_bits(_broadcast(steps, in_shape), _broadcast(node.delay.astype(np.int64), in_shape)):
                    delay = np.asarray(original)
            return _single(name, done(nir.Delay(delay=delay)))
        if isinstance(node, ir.Threshold):
            theta = _broadcast(node.threshold, in_shape)
            if node.comparison == ">=":
                theta = self._lossy_ge(name, path, where, theta, records)
            elif not same_bits(theta, node.threshold):
                records["talon_source"] = {"threshold": node.threshold}
            if node.surrogate != ir.DEFAULT_SURROGATE:
                records["talon_surrogate"] = node.surrogate  # training only; NIR has no field
            return _single(name, done(nir.Threshold(threshold=theta)))
        if isinstance(node, ir.LI) and node.integration == "euler":
            records["talon_integration"] = "euler"  # the same NIR equation; talon's evaluation order
        if isinstance(node, (ir.LIF, ir.IF, ir.CubaLIF)):
            return self._spiking(name, node, in_shape, meta, path, taken, where)
        if isinstance(node, (ir.LI, ir.CubaLI, ir.Integrator)):
            kind = {ir.LI: "LI", ir.CubaLI: "CubaLI", ir.Integrator: "I"}[type(node)]
            return _single(
                name, self._typed(self._membrane(kind, node, in_shape, records), in_shape, in_shape, meta, records)
            )
        if isinstance(node, (ir.Skip, *_IDENTITIES)):
            if isinstance(node, ir.Skip) and node.skip_type == "concatenate":
                raise ir.ConversionError(f"{where}: NIR has no concatenation (fan-in is always summed); cannot convert")
            # an identity that could not be removed: x * 1 == x bit for bit, and the sum happens here
            records["talon_node"] = json.dumps({"type": type(node).__name__, "params": json_params(node)})
            return _single(name, done(nir.Scale(scale=np.ones(in_shape, dtype=np.float32))))
        if isinstance(node, (ir.BatchNorm1d, ir.BatchNorm2d)):
            return self._batchnorm(name, node, in_shape, meta, path, where)
        reason = {
            ir.MaxPool2d: "NIR has no max pooling",
            ir.Concat: "NIR has no concatenation (fan-in is always summed)",
            ir.ChannelSplit: "NIR has no multi-output nodes",
            ir.LayerNorm: "NIR has no normalization",
            ir.Upsample: "NIR has no upsampling",
            **_DETECTION_REASONS,
        }.get(
            type(node),
            "NIR has no such primitive (only linear maps, convolutions, pooling, flatten, delay and neurons)",
        )
        raise ir.ConversionError(f"{where}: {reason}; it cannot be converted, even with lossy=True")

    def _typed(self, nir_node, in_shape, out_shape, meta: dict, records: dict):
        """Set NIR types from talon's shape inference (nir's own is wrong for some convolutions)."""
        nir_node.input_type = {"input": _ints(in_shape)}
        nir_node.output_type = {"output": _ints(out_shape)}
        nir_node.metadata = to_nir_metadata(meta, records=records)
        return nir_node

    def _check_dense(self, node, in_shape, where: str) -> None:
        if len(in_shape) != 1:
            raise ir.ConversionError(
                f"{where}: applied to a {list(in_shape)} input (on its last axis); NIR's Affine and Linear take "
                "1-d inputs. Flatten before it."
            )

    # ---- convolutions and pooling --------------------------------------------------------------

    def _conv(self, node, in_shape, path: str, name: str, records: dict):
        nir = self.nir
        if isinstance(node, (ir.SConv, ir.SDConv)):
            records["talon_node"] = json.dumps({"type": type(node).__name__})
        grouped = f"{type(node).__name__} {self._path(path, name)!r} has groups={node.groups}"
        if isinstance(node, ir.Conv1d):
            if node.groups > 1:
                self.nir_reader_problems.append(grouped)
            return nir.Conv1d(
                input_shape=int(in_shape[1]),
                weight=node.weight,
                stride=int(node.stride),
                padding=padding_as_written(node, int(node.padding)),
                dilation=int(node.dilation),
                groups=int(node.groups),
                bias=node.bias,
            )
        kh, kw = node.kernel_size
        if kh != kw:
            self.nir_reader_problems.append(f"Conv2d {self._path(path, name)!r} has a {kh}x{kw} kernel")
        if node.groups > 1:
            self.nir_reader_problems.append(grouped)
        return nir.Conv2d(
            input_shape=tuple(int(d) for d in in_shape[1:]),
            weight=node.weight,
            stride=_ints(node.stride),
            padding=padding_as_written(node, _ints(node.padding)),
            dilation=_ints(node.dilation),
            groups=int(node.groups),
            bias=node.bias,
        )

    def _sepconv(self, name, node: ir.SepConv2d, in_shape, out_shape, meta, path, taken) -> _Lowered:
        nir = self.nir
        c_in = int(node.depthwise_weight.shape[0])
        depth = ir.Conv2d(
            node.depthwise_weight, node.depthwise_bias, node.stride, node.padding, node.dilation, groups=c_in
        )
        depth.infer_types([tuple(in_shape)])
        mid = depth.output_shape
        point_name = unique_name(f"{name}_pointwise", taken)
        taken.add(point_name)
        if c_in > 1:
            self.nir_reader_problems.append(f"SepConv2d {self._path(path, name)!r} lowers to a grouped Conv2d")
        dw = nir.Conv2d(
            input_shape=tuple(int(d) for d in in_shape[1:]),
            weight=node.depthwise_weight,
            stride=_ints(node.stride),
            padding=_ints(node.padding),
            dilation=_ints(node.dilation),
            groups=c_in,
            bias=node.depthwise_bias,
        )
        pw = nir.Conv2d(
            input_shape=tuple(int(d) for d in mid[1:]),
            weight=node.pointwise_weight,
            stride=(1, 1),
            padding=(0, 0),
            dilation=(1, 1),
            groups=1,
            bias=node.pointwise_bias,
        )
        first = self._typed(dw, in_shape, mid, meta, {})
        second = self._typed(pw, mid, out_shape, {}, {})
        return _Lowered([(name, first), (point_name, second)], name, point_name, [(name, point_name)])

    def _avgpool(self, name, node: ir.AvgPool2d, in_shape, out_shape, meta, path, taken, where) -> _Lowered:
        nir = self.nir
        floor = ir.AvgPool2d(node.kernel_size, node.stride, node.padding)
        floor.infer_types([tuple(in_shape)])
        if tuple(floor.output_shape) != tuple(out_shape):
            raise ir.ConversionError(f"{where}: ceil_mode=True changes the output shape; NIR pools in floor mode")
        if not node.count_include_pad and any(node.padding):
            raise ir.ConversionError(
                f"{where}: count_include_pad=False with padding; NIR's AvgPool2d divides by the full window. "
                "It cannot be converted, even with lossy=True"
            )
        kernel, stride, pad = _ints(node.kernel_size), _ints(node.stride), _ints(node.padding)
        if node.divisor_override is None:
            return _single(name, self._typed(nir.AvgPool2d(kernel, stride, pad), in_shape, out_shape, meta, {}))
        change = (
            f"AvgPool2d divisor_override={node.divisor_override} -> SumPool2d then Scale(1/{node.divisor_override})"
        )
        self._lossy(name, path, where, [change])
        scale_name = unique_name(f"{name}_scale", taken)
        taken.add(scale_name)
        pool = self._typed(nir.SumPool2d(kernel, stride, pad), in_shape, out_shape, meta, {"talon_lossy": change})
        factor = np.full(out_shape, 1.0 / node.divisor_override, dtype=np.float32)
        scale = self._typed(nir.Scale(scale=factor), out_shape, out_shape, {}, {})
        return _Lowered([(name, pool), (scale_name, scale)], name, scale_name, [(name, scale_name)])

    def _flatten(self, node: ir.Flatten, in_shape, records: dict):
        n = len(in_shape)  # NIR dims exclude the batch like talon's; negative ones other than -1 are made positive
        start = node.start_dim + n if node.start_dim < 0 else node.start_dim
        end = node.end_dim + n if node.end_dim < -1 else node.end_dim
        if (start, end) != (node.start_dim, node.end_dim):
            records["talon_source"] = {"start_dim": np.int64(node.start_dim), "end_dim": np.int64(node.end_dim)}
        if (node.metadata.get("nir") or {}).get("flatten_batch_offset"):
            # read from a file whose dims count the batch (snnTorch/Norse style): write it back that way
            start, end = start + 1, end + 1 if end >= 0 else end
        return self.nir.Flatten(input_type=_ints(in_shape), start_dim=start, end_dim=end)

    def _batchnorm(self, name, node, in_shape, meta, path, where) -> _Lowered:
        nir = self.nir
        change = f"{type(node).__name__} folded into a per-channel affine map (equal up to float rounding)"
        if not self.lossy:
            raise ir.ConversionError(
                f"{where}: NIR has no normalization; folding it into a per-channel affine map is exact only up to "
                "float rounding. Pass lossy=True to accept that, or fold it into the preceding layer before exporting."
            )
        self._lossy(name, path, where, [change])
        dtype = node.running_mean.dtype if node.running_mean is not None else np.float32
        inv = 1.0 / np.sqrt(node.running_var.astype(np.float64) + node.eps)
        gain = inv * (node.weight.astype(np.float64) if node.weight is not None else 1.0)
        shift = (node.bias.astype(np.float64) if node.bias is not None else 0.0) - node.running_mean * gain
        gain, shift = gain.astype(dtype), np.asarray(shift).astype(dtype)
        c = node.num_features
        records = {"talon_lossy": change}
        if len(in_shape) == 1:
            lowered = nir.Affine(weight=np.diag(gain), bias=shift)
        elif len(in_shape) == 2:
            lowered = nir.Conv1d(int(in_shape[1]), gain.reshape(c, 1, 1), 1, 0, 1, c, shift)
            self.nir_reader_problems.append(
                f"{type(node).__name__} {self._path(path, name)!r} lowers to a grouped Conv1d"
            )
        else:
            kernel = gain.reshape(c, 1, 1, 1)
            lowered = nir.Conv2d(tuple(int(d) for d in in_shape[1:]), kernel, (1, 1), (0, 0), (1, 1), c, shift)
            self.nir_reader_problems.append(
                f"{type(node).__name__} {self._path(path, name)!r} lowers to a grouped Conv2d"
            )
        return _single(name, self._typed(lowered, in_shape, in_shape, meta, records))

    # ---- neurons -------------------------------------------------------------------------------

    def _lossy_ge(self, name, path, where, theta, records):
        self._lossy(name, path, where, [_GE_CHANGE])
        records["talon_lossy"] = _GE_CHANGE
        return _just_below(theta)

    def _lossy(self, name: str, path: str, where: str, changes: list[str]) -> None:
        if not changes:
            return
        if not self.lossy:
            fixes = ", ".join(dict.fromkeys(_exact_fix(c) for c in changes))
            raise ir.ConversionError(
                f"{where}: NIR cannot state {'; '.join(c.split(' -> ')[0] for c in changes)} (NIR neurons spike when "
                "v > v_threshold, reset v to v_reset in the same step and emit the spike of the updated state). "
                f"To export exactly, give the node NIR's behaviour ({fixes}; this changes when it spikes), or "
                "pass lossy=True to convert it anyway as: " + "; ".join(c.split(" -> ")[-1] for c in changes)
            )
        key = self._path(path, name)
        self.changes[key] = "; ".join(filter(None, [self.changes.get(key), *changes]))

    def _path(self, path: str, name: str) -> str:
        return f"{path}.{name}" if path else name

    def _where(self, path: str) -> str:
        return f"subgraph {path!r}" if path else "the graph"


def _ints(values) -> np.ndarray:
    return np.asarray(tuple(int(v) for v in np.asarray(values).reshape(-1)), dtype=np.int64)
