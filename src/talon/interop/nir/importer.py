"""NIR -> talon: ``from_nir`` and ``read_nir``.

Every NIR 1.0.x primitive maps to one talon node with the same name; nested NIR graphs become
nested talon graphs. NIR's continuous-time parameters are converted with ``dt`` (see
:mod:`.units`), and NIR's neuron semantics are stated explicitly: ``comparison='>'``,
``reset_mode='value'`` (to ``v_reset``), ``reset_timing='immediate'``, ``spike_timing='post'``.

Shapes are inferred by talon from the Input shapes and the parameters, never taken from nir's
own inference (nir 1.0.8 gets non-square and grouped convolutions wrong). The shape
*annotations* a file carries (Output shapes, Conv ``input_shape``, Flatten ``input_type``) are
checked against the inferred shapes: a mismatch is an error, unless ``type_check=False``, which
uses the inferred shape, warns and records the fix in the node's ``metadata["nir"]``.

Like nir >= 1.0.6, a node without incoming edges that is not an Input gets an Input node
``input_<name>`` in front of it, and a node without outgoing edges that is not an Output gets an
Output node ``output_<name>``.

Records kept in talon metadata (``metadata["nir"]``), so that writing the graph back gives the
same NIR file: ``source`` (the NIR value of a field whose conversion does not invert exactly,
e.g. a 0-d parameter or a float that ``x / dt * dt`` does not reproduce), ``flatten_batch_offset``,
``unknown_fields`` and ``type_check``; the graph's ``metadata["nir"]["dt"]`` is the time step used.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from typing import Any

import numpy as np

from talon import ir
from talon.ir.budget import BudgetExceededError, active_budget
from talon.ir.node import as_tuple
from talon.ir.paths import check_path
from talon.ir.serialization import collector_paused

from . import profiles, surrogate_conventions, units
from ._common import (
    DEFAULT_DT,
    MissingDtWarning,
    NIRFormatError,
    _broadcast,
    _shape,
    check_dt,
    same_bits,
)
from .assembly import Assembler, Spec, const
from .edge_ends import check_edge_ends
from .files import object_to_dict, parse_edges, read_dict_budgeted
from .metadata import from_nir_metadata
from .records import merge_record, node_order
from .units import NEURON_FIELDS, OPTIONAL_NEURON_FIELDS

PathLike = str | os.PathLike

KNOWN_FIELDS: dict[str, set[str]] = {
    "Input": {"shape"},
    "Output": {"shape"},
    "Affine": {"weight", "bias"},
    "Linear": {"weight"},
    "Scale": {"scale"},
    "Conv1d": {"input_shape", "weight", "stride", "padding", "dilation", "groups", "bias"},
    "Conv2d": {"input_shape", "weight", "stride", "padding", "dilation", "groups", "bias"},
    "SumPool2d": {"kernel_size", "stride", "padding"},
    "AvgPool2d": {"kernel_size", "stride", "padding"},
    "Flatten": {"input_type", "start_dim", "end_dim"},
    "Delay": {"delay"},
    "NIRGraph": {"nodes", "edges"},
    **{t: set(f) for t, f in NEURON_FIELDS.items()},
}

# talon classes that compute exactly what a NIR primitive computes, restored from the
# ``talon_node`` record talon writes into the NIR node's metadata.
RESTORABLE = {
    "Affine": {"SpikingAffine"},
    "Conv2d": {"SConv", "SDConv"},
    "Scale": {"Skip", "HybridRegion", "Dropout"},  # written as Scale(1) where they could not be removed
}

_NEURON_CLASSES = {
    "LIF": ir.LIF,
    "LI": ir.LI,
    "IF": ir.IF,
    "I": ir.Integrator,
    "CubaLI": ir.CubaLI,
    "CubaLIF": ir.CubaLIF,
    "Threshold": ir.Threshold,
}
_NIR_SPIKING = {"reset_mode": "value", "reset_timing": "immediate", "spike_timing": "post", "comparison": ">"}


def read_nir(
    path: PathLike,
    dt: float | None = None,
    *,
    type_check: bool = True,
    integration: str | None = None,
    producer: str | None = None,
    require_dt: bool = False,
    max_bytes: int | None = None,
    surrogate: str | None = None,
) -> ir.Graph:
    """Read a NIR file (any nir version) into a talon graph.

    ``dt`` is the time step in seconds used to convert time constants; ``None`` takes the ``dt``
    recorded in the file's metadata (talon writes it) and otherwise ``1e-4``. ``type_check=False``
    reads files whose shape annotations contradict their structure (e.g. the NIR paper's
    ``lif_rockpool.nir``), using the shapes the structure implies; dangling edges and parameters
    that do not fit are refused either way. The ``nir`` package is not needed.

    ``integration`` is the evaluation order of LIF and LI updates (``docs/semantics.md`` §3.1):
    ``"decay"`` (``β·v + g·x``, snnTorch's), ``"euler"`` (``v + dt/τ·((v_leak − v) + r·x)``,
    Norse's and NIR's forward Euler); the value is the same, float32 rounding differs. ``None``
    uses what talon recorded when it wrote the file, else ``"decay"``.

    A file that records no ``dt`` (Sinabs, Rockpool, Spyx and SpikingJelly write none) is read
    with the producer's convention, else ``1e-4`` with a :class:`MissingDtWarning`;
    ``require_dt=True`` refuses it instead. ``producer`` (``"spikingjelly"``, ``"sinabs"``,
    ``"rockpool"``, ``"norse"``, ``"spyx"``, ``"snntorch"``; :mod:`.profiles`) restates how that
    framework runs what it wrote, so the graph gives that framework's spikes, or refuses naming what
    talon cannot state. Sinabs and Rockpool have their own time units (``dt`` must be left out);
    Norse and Spyx run a file at the ``dt`` given to their importer (``dt=``, default 1e-3 for
    Norse, 1 for Spyx), whatever the file records.

    NIR carries no surrogate gradient. With ``producer``, the spiking neurons train with the one that
    framework's importer builds (:mod:`.surrogate_conventions`), and a
    :class:`~talon.interop.nir.surrogate_conventions.SurrogateWarning` says that the model's own, if
    it was another, is not in the file; ``surrogate`` (a TALON IR surrogate text, ``'sigmoid(slope=5)'``)
    states it instead, for every LIF, IF, CubaLIF and Threshold.

    ``max_bytes`` bounds what reading may allocate — datasets, and parameters broadcast to layer
    shapes — checked before allocating (default: ``talon.ir.budget.default_budget`` of the file size).
    Only regular files and plain in-file datasets are read (``talon.ir.hdf5_guard``).
    """
    path = check_path(path, "read_nir: the NIR file to read")
    profiles.get_profile(producer)  # an unknown name is the caller's error, not the file's
    if dt is not None:
        check_dt(dt, "read_nir: dt")
    surrogate = _checked_surrogate(surrogate, "read_nir")
    with collector_paused():  # a read makes many objects and no cycles (see talon.ir.serialization)
        tree, _version, budget = read_dict_budgeted(path, max_bytes=max_bytes)
        with active_budget(budget), _stray_errors_name(str(path)):
            return import_graph(tree, dt, type_check=type_check, where=str(path), integration=integration,
                                producer=producer, require_dt=require_dt, surrogate=surrogate)  # fmt: skip


def _checked_surrogate(surrogate: Any, where: str) -> str | None:
    return None if surrogate is None else ir.canonical_surrogate(surrogate, f"{where}: surrogate")


@contextlib.contextmanager
def _stray_errors_name(where: str):
    """Any error a malformed graph provokes below the checks becomes a NIRFormatError naming ``where``."""
    try:
        yield
    except BudgetExceededError as exc:
        raise NIRFormatError(f"{where}: {exc}") from None
    except (ir.TalonError, FileNotFoundError):
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError, RecursionError,
            MemoryError) as exc:  # fmt: skip
        raise NIRFormatError(f"{where}: malformed NIR graph ({type(exc).__name__}: {exc})") from None


def from_nir(
    source: Any,
    dt: float | None = None,
    *,
    type_check: bool = True,
    integration: str | None = None,
    producer: str | None = None,
    require_dt: bool = False,
    surrogate: str | None = None,
) -> ir.Graph:
    """Convert a ``nir.NIRGraph`` (or a path to a ``.nir`` file, or a NIR dict) into a talon graph.

    See :func:`read_nir` for ``dt``, ``type_check``, ``integration``, ``producer``, ``require_dt`` and
    ``surrogate``.
    Raises :class:`~talon.ir.ConversionError` (or its subclass ``NIRFormatError``) naming the node at fault.
    """
    if not isinstance(type_check, bool):
        raise TypeError(f"type_check must be True or False, got {type_check!r}")
    surrogate = _checked_surrogate(surrogate, "from_nir")
    options = dict(type_check=type_check, integration=integration, producer=producer, require_dt=require_dt,
                   surrogate=surrogate)  # fmt: skip
    if isinstance(source, (str, os.PathLike)):
        return read_nir(source, dt, **options)
    if isinstance(source, dict):
        if source.get("type") != "NIRGraph":
            raise NIRFormatError(f"from_nir expects a NIR graph dict with type 'NIRGraph', got {source.get('type')!r}")
        profiles.get_profile(producer)
        with _stray_errors_name("NIR graph"):
            return import_graph(source, dt, where="NIR graph", **options)
    if type(source).__module__.split(".")[0] == "nir" and type(source).__name__ == "NIRGraph":
        return import_graph(object_to_dict(source), dt, where="NIR graph", **options)
    raise TypeError(
        f"from_nir expects a nir.NIRGraph, a NIR dict or a path to a .nir file, got {type(source).__name__}"
    )


def import_graph(
    tree: dict[str, Any],
    dt: float | None,
    *,
    type_check: bool,
    where: str,
    integration: str | None = None,
    producer: str | None = None,
    require_dt: bool = False,
    surrogate: str | None = None,
) -> ir.Graph:
    """Convert a NIR graph dict (see :mod:`.files`) into a validated talon graph."""
    profile = profiles.get_profile(producer)
    metadata, records = from_nir_metadata(tree.get("metadata"), f"{where}: graph metadata", reserved=("dt",))
    file_dt = records.pop("dt", None)
    if file_dt is not None:
        try:
            file_dt = check_dt(file_dt, f"{where}: metadata 'dt'")
        except ValueError as exc:
            raise NIRFormatError(str(exc)) from None
    if profile.own_dt:  # the framework has its own time unit: the file's values are read as they are
        if dt is not None and dt != 1.0:
            raise ir.ConversionError(
                f"{where}: {profile.name} {profile.own_dt}; producer={profile.name!r} restates the file's own "
                f"values, so drop dt={dt!r}"
            )
        dt, file_dt = None, 1.0
    framework_dt = None
    if profile.runs_at:  # the framework runs the file at its importer's dt: read the values as they are
        framework_dt = profile.runs_at if dt is None else check_dt(dt)
        dt, file_dt = None, 1.0
    if dt is None and file_dt is None:
        assumed = profile.default_dt or DEFAULT_DT
        if require_dt:
            raise NIRFormatError(f"{where}: the file records no dt; pass dt= (seconds per step of the model)")
        if profile.default_dt is None:
            warnings.warn(
                f"{where}: the file records no dt; time constants are converted with dt={assumed!r} s. Pass dt= "
                "(seconds per step of the model that wrote it) or producer= (its framework's convention)",
                MissingDtWarning,
                stacklevel=3,
            )
        dt = assumed
    elif dt is None:
        dt = file_dt
    else:
        dt = check_dt(dt)
        if file_dt is not None and file_dt != dt:
            warnings.warn(
                f"{where}: the graph records dt={file_dt!r} s but dt={dt!r} s was asked for; time constants "
                f"are converted with dt={dt!r}",
                stacklevel=3,
            )
    if integration is not None:
        integration = ir.Integration(integration).value  # raises ValueError naming the choices
    graph = _Importer(dt, type_check, where, integration).graph(tree, "", metadata, records)
    fresh: dict[str, Any] = {"dt": dt}
    if isinstance(records.get("talon_lossy"), dict):
        fresh["lossy"] = records["talon_lossy"]
    if profile.name != "nir":
        graph = profiles.restate(graph, profile, where, framework_dt)
        fresh["producer"] = f"{profile.name} {profile.version}"
        if framework_dt is not None:
            fresh["dt"] = framework_dt
    graph = surrogate_conventions.apply(graph, profile.name, profile.version, surrogate, stacklevel=4)
    graph.metadata = merge_record(graph.metadata, fresh)
    units.warn_short_time_constants(graph, fresh["dt"], where, stacklevel=4)
    ir.warn_non_finite(graph, where, stacklevel=4)  # readable and lintable; engines refuse it
    return graph


# ------------------------------------------------------------------------------------------------


class _Importer(Assembler):
    def __init__(self, dt: float, type_check: bool, where: str, integration: str | None = None):
        self.dt, self.type_check, self.where = dt, type_check, where
        self.integration = integration

    def label(self, name: str, path: str) -> str:
        return f"{self.where}: node {name!r}" + (f" of subgraph {path!r}" if path else "")

    # ---- graphs --------------------------------------------------------------------------------

    def graph(self, tree: dict[str, Any], path: str, metadata: dict, records: dict) -> ir.Graph:
        where = f"{self.where}: subgraph {path!r}" if path else self.where
        nodes_raw = tree.get("nodes")
        if not isinstance(nodes_raw, dict):
            raise NIRFormatError(f"{where}: a NIRGraph needs a 'nodes' group")
        edges = parse_edges(tree.get("edges"), where)
        check_edge_ends(edges, nodes_raw, where)
        order = node_order(records.get("talon_node_order"), nodes_raw)
        specs: dict[str, Spec] = {}
        for name in order:
            raw = nodes_raw[name]
            if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
                raise NIRFormatError(f"{self.label(name, path)} has no 'type'")
            specs[name] = self.node(name, raw, path)
        self._add_boundaries(specs, edges, path)
        graph = self._assemble(specs, edges, path)
        graph.metadata = merge_record(metadata, {})
        return graph

    def node(self, name: str, raw: dict[str, Any], path: str) -> Spec:
        kind = raw["type"]
        label = self.label(name, path)
        metadata, records = from_nir_metadata(raw.get("metadata"), f"{label}: metadata")
        spec_metadata = metadata
        if kind not in KNOWN_FIELDS:
            known = ", ".join(sorted(KNOWN_FIELDS))
            raise ir.ConversionError(
                f"{label} has NIR type {kind!r}, which is not a NIR 1.0 primitive talon knows ({known})"
            )
        unknown = {k: v for k, v in raw.items() if k not in KNOWN_FIELDS[kind] | {"type", "metadata"}}
        record: dict[str, Any] = {}
        if unknown:
            warnings.warn(
                f"{label} ({kind}) has fields unknown to NIR 1.0: {', '.join(sorted(unknown))}; talon does not "
                "interpret them (they are kept in metadata['nir']['unknown_fields'])",
                stacklevel=4,
            )
            record["unknown_fields"] = unknown
        try:
            spec = self._convert(name, kind, raw, label, path, records)
            if spec.built is None:  # construct once here, so that bad parameters are reported with this node's name
                spec.built = spec.build(False)
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, ir.ConversionError):
                raise
            raise ir.ConversionError(f"{label} ({kind}): {exc}") from None
        if isinstance(records.get("talon_lossy"), str):
            record["lossy"] = records["talon_lossy"]
        spec.metadata = spec_metadata
        spec.record.update(record)
        return spec

    def _convert(self, name: str, kind: str, raw: dict, label: str, path: str, records: dict) -> Spec:
        def need(key: str) -> Any:
            if key not in raw or raw[key] is None:
                raise NIRFormatError(f"{label} ({kind}) has no {key!r}")
            return raw[key]

        if kind == "NIRGraph":
            meta, sub_records = from_nir_metadata(raw.get("metadata"), f"{label}: metadata")
            sub = self.graph(raw, f"{path}.{name}" if path else name, meta, sub_records)
            return Spec(name, kind, const(lambda: sub), {})
        if kind == "Input":
            shape = _shape(need("shape"), label)
            return Spec(name, kind, const(lambda: ir.Input(np.array(shape, dtype=np.int64))), {}, input_shape=shape)
        if kind == "Output":
            shape = _shape(need("shape"), label)
            return Spec(name, kind, const(lambda: ir.Output(np.array(shape, dtype=np.int64))), {}, annotation=shape)
        if kind in ("Affine", "Linear"):
            weight = np.asarray(need("weight"))
            if weight.ndim != 2:
                raise ir.ConversionError(
                    f"{label} ({kind}) has a weight of shape {list(weight.shape)}; talon supports 2-d (out, in) "
                    "weights only"
                )
            if kind == "Linear":
                return Spec(name, kind, const(lambda: ir.Linear(weight)), {})
            bias = raw.get("bias")
            restored = self._restored(records, kind, label)
            cls = ir.SpikingAffine if restored and restored["type"] == "SpikingAffine" else ir.Affine
            params = restored["params"] if restored else {}
            return Spec(
                name, kind, const(lambda: cls(weight, None if bias is None else np.asarray(bias), **params)), {}
            )
        if kind == "Scale":
            scale = np.asarray(need("scale"))
            restored = self._restored(records, kind, label)
            if restored and np.all(scale == 1):
                cls = {"Skip": ir.Skip, "HybridRegion": ir.HybridRegion, "Dropout": ir.Dropout}[restored["type"]]
                params = restored["params"]
                return Spec(name, kind, const(lambda: cls(**params)), {})
            kept = (records.get("talon_source") or {}).get("scale")
            if kept is not None and same_bits(_broadcast(kept, scale.shape), scale):
                scale = np.asarray(kept)
            return Spec(name, kind, const(lambda: ir.Scale(scale)), {})
        if kind in ("Conv1d", "Conv2d"):
            return self._conv(name, kind, raw, need, label, records)
        if kind in ("SumPool2d", "AvgPool2d"):
            cls = ir.SumPool2d if kind == "SumPool2d" else ir.AvgPool2d
            k, s, p = need("kernel_size"), need("stride"), need("padding")
            built = cls(kernel_size=k, stride=s, padding=p)  # validate now, with the node's name in the error
            return Spec(name, kind, const(lambda: cls(kernel_size=k, stride=s, padding=p)), {}, built=built)
        if kind == "Flatten":
            return self._flatten(name, raw, label, records)
        if kind == "Delay":
            delay = np.asarray(need("delay"))
            steps = units.delay_to_steps(delay, self.dt)
            if steps is None:
                raise ir.ConversionError(
                    f"{label} (Delay): the delays {np.unique(delay)[:8].tolist()} s are not whole multiples of "
                    f"dt={self.dt} s; talon delays count timesteps. Convert with a dt that divides every delay."
                )
            spec = Spec(name, kind, const(lambda: ir.Delay(steps)), {})
            exact = same_bits(units.steps_to_delay(steps, self.dt), delay)  # what writing back gives
            if delay.ndim and not exact:  # 0-d delays are written back full size (see _source_record)
                spec.record["source"] = {"delay": delay}
            return spec
        return self._neuron(name, kind, raw, need, label, records)

    def _restored(self, records: dict, nir_type: str, label: str) -> dict | None:
        text = records.get("talon_node")
        if text is None:
            return None
        try:
            doc = json.loads(text)
            if doc["type"] in RESTORABLE.get(nir_type, ()) and isinstance(doc.get("params", {}), dict):
                return {"type": doc["type"], "params": doc.get("params", {})}
        except (TypeError, ValueError, KeyError):
            pass
        warnings.warn(f"{label}: ignoring an unusable 'talon_node' record {text!r}", stacklevel=6)
        return None

    def _conv(self, name, kind, raw, need, label, records) -> Spec:
        ndim = 1 if kind == "Conv1d" else 2
        weight = np.asarray(need("weight"))
        if weight.ndim != ndim + 2:
            raise ir.ConversionError(f"{label} ({kind}) needs a {ndim + 2}-d weight, got shape {list(weight.shape)}")
        groups = int(np.asarray(raw.get("groups", 1)).reshape(()))
        stride = raw.get("stride", 1)
        dilation = raw.get("dilation", 1)
        padding = raw.get("padding", 0)
        bias = raw.get("bias")
        record: dict[str, Any] = {}
        if isinstance(padding, str):
            pad_text = padding
            dil = as_tuple(dilation, ndim, "dilation", label)
            if pad_text == "valid":
                padding = 0
            elif pad_text == "same":
                strides = as_tuple(stride, ndim, "stride", label)
                spans = [d * (k - 1) for d, k in zip(dil, weight.shape[2:], strict=True)]
                if any(s != 1 for s in strides) or any(span % 2 for span in spans):
                    raise ir.ConversionError(
                        f"{label} ({kind}): padding='same' with stride {list(strides)} and kernel span "
                        f"{[s + 1 for s in spans]} needs asymmetric padding, which talon convolutions do not have"
                    )
                padding = tuple(span // 2 for span in spans)
            else:
                raise NIRFormatError(f"{label} ({kind}): padding must be 'same', 'valid' or integers, got {pad_text!r}")
            record["source"] = {"padding": pad_text}
        restored = self._restored(records, kind, label) if kind == "Conv2d" else None
        if restored:
            cls = {"SConv": ir.SConv, "SDConv": ir.SDConv}[restored["type"]]
        else:
            cls = ir.Conv1d if ndim == 1 else ir.Conv2d
        params = dict(weight=weight, bias=None if bias is None else np.asarray(bias), stride=stride, padding=padding)
        params.update(dilation=dilation, groups=groups)

        def build(_offset: bool) -> ir.Node:
            return cls(**params)

        node = build(False)
        annotation = None
        input_shape = raw.get("input_shape")
        if input_shape is not None:
            spatial = [int(d) for d in np.asarray(input_shape).reshape(-1)]
            annotation = (node.in_channels, *spatial)
        return Spec(name, kind, build, {}, record, annotation=annotation, annotation_field="input_shape", built=node)

    def _flatten(self, name, raw, label, records) -> Spec:
        start = int(np.asarray(raw.get("start_dim", 1)).reshape(()))
        end = int(np.asarray(raw.get("end_dim", -1)).reshape(()))
        declared = raw.get("input_type")
        if isinstance(declared, dict):  # a NIR dict of an in-memory node may keep the port dict
            declared = declared.get("input")
        annotation = None if declared is None else _shape(declared, label)
        kept = records.get("talon_source") or {}
        if annotation is not None and "start_dim" in kept and "end_dim" in kept:
            n = len(annotation)
            k_start, k_end = int(kept["start_dim"]), int(kept["end_dim"])
            if (k_start + n if k_start < 0 else k_start, k_end + n if k_end < -1 else k_end) == (start, end):
                return Spec(
                    name,
                    "Flatten",
                    const(lambda: ir.Flatten(k_start, k_end)),
                    {},
                    annotation=annotation,
                    annotation_field="input_type",
                )

        def build(offset: bool) -> ir.Node:
            if offset:
                return ir.Flatten(start_dim=start - 1, end_dim=end - 1 if end > 0 else end)
            return ir.Flatten(start_dim=start, end_dim=end)

        possible = start >= 1 and end != 0
        return Spec(
            name, "Flatten", build, {}, annotation=annotation, annotation_field="input_type", offset_possible=possible
        )

    def _neuron(self, name, kind, raw, need, label, records) -> Spec:
        cls = _NEURON_CLASSES[kind]
        restore = records.get("talon_source") or {}
        kwargs: dict[str, Any] = {}
        source: dict[str, tuple[str, str, np.ndarray]] = {}
        layer_shapes: dict[str, tuple[int, ...]] = {}  # restored field -> the NIR array's shape
        for nir_field, (talon_field, conv) in NEURON_FIELDS[kind].items():
            if nir_field in OPTIONAL_NEURON_FIELDS and raw.get(nir_field) is None:
                continue
            original = np.asarray(need(nir_field))
            if original.dtype.kind not in "fiub":
                raise NIRFormatError(f"{label} ({kind}): {nir_field} is not numeric (dtype {original.dtype})")
            value = units.to_talon(original, conv, self.dt)
            kept = restore.get(talon_field)
            if kept is not None:
                kept = np.asarray(kept)
                try:
                    back = units.to_nir(_broadcast(kept, original.shape), conv, self.dt)
                except ValueError:
                    back = None
                if back is not None and same_bits(back, original):
                    value = kept  # the exact talon value this NIR value was written from
                    layer_shapes[talon_field] = original.shape
            kwargs[talon_field] = value
            source[talon_field] = (nir_field, conv, original)
        _unify_restored_shapes(kwargs, layer_shapes)
        if kind in ("LIF", "LI"):
            recorded = records.get("talon_integration")
            recorded = recorded.decode() if isinstance(recorded, bytes) else recorded
            kwargs["integration"] = self.integration or recorded or "decay"
        if kind in ("LIF", "IF", "CubaLIF"):
            kwargs.update(_NIR_SPIKING)
            recorded = records.get("talon_reset_gradient")  # talon's training convention (NIR has none)
            if recorded is not None:
                kwargs["reset_gradient"] = recorded.decode() if isinstance(recorded, bytes) else recorded
        elif kind == "Threshold":
            kwargs["comparison"] = ">"
        if kind in ("LIF", "IF", "CubaLIF", "Threshold"):
            recorded = records.get("talon_surrogate")  # talon's surrogate gradient (NIR has none)
            if recorded is not None:
                kwargs["surrogate"] = recorded.decode() if isinstance(recorded, bytes) else recorded
        built = cls(**kwargs)  # validate now, so that errors name this node
        return Spec(name, kind, lambda _offset: cls(**kwargs), {}, neuron_source=source, built=built)


def _unify_restored_shapes(kwargs: dict[str, Any], layer_shapes: dict[str, tuple[int, ...]]) -> None:
    """Broadcast the restored talon values to their NIR shape when the node's fields would otherwise
    have two shapes: a per-channel talon parameter ``(C,)`` is restored as written, but a field that
    was not recorded (a lossy threshold just below ``v_threshold``, the zero ``v_reset`` of a
    subtractive reset) comes as NIR's full ``[C, H, W]`` array, and the node would be refused. The
    values are the restored ones; only their layout changes."""
    shapes = {np.shape(v) for v in kwargs.values() if np.ndim(v) > 0 and np.size(v) > 1}
    if len(shapes) <= 1:
        return
    for name, shape in layer_shapes.items():
        kwargs[name] = _broadcast(np.asarray(kwargs[name]), shape).copy()
