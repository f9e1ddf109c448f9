"""The NIR nodes of talon's neurons, a part of the NIR export (:mod:`.exporter`).

A neuron becomes the NIR neuron with the same fields (``LIF``, ``IF``, ``CubaLIF``; a membrane
without spikes ``LI``, ``I``, ``CubaLI``), its values converted with ``dt`` and broadcast to the
layer. What NIR cannot state (``>=``, a subtractive or delayed reset, pre-update spikes, a start
off zero, multi-spike) is refused, or with ``lossy=True`` changed and recorded; a neuron that
never resets is its membrane followed by a ``Threshold`` (exact). Values whose NIR form does not
convert back exactly keep the talon value in the node's ``talon_source`` record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon import ir

from . import units
from ._common import _broadcast, same_bits, unique_name
from .neuron_changes import _GE_CHANGE, _V_INIT_CHANGE, _compare, _just_below, _starts_off_zero, multi_spike_changes
from .records import source_record


@dataclass
class _Lowered:
    """The NIR node(s) standing for one talon node."""

    parts: list[tuple[str, Any]]  # (NIR name, NIR node) in order
    entry: str
    exit: str
    edges: list[tuple[str, str]] = field(default_factory=list)


def _single(name: str, nir_node) -> _Lowered:
    return _Lowered([(name, nir_node)], name, name)


class NeuronLowering:
    """:class:`.exporter._Exporter`'s neuron methods (a mixin: they use its ``nir`` module, ``dt``,
    ``_typed`` and ``_lossy``)."""

    def _fields(
        self, kind: str, node: ir.Node, shape, records: dict, skip: tuple[str, ...] = ()
    ) -> dict[str, np.ndarray]:
        """NIR values of a neuron's fields (broadcast to the layer, converted with dt).

        A field imported from NIR whose original value cannot be regenerated (``metadata['nir']
        ['source']``) is written as that original when it still converts to the node's value; a
        field whose NIR value does not convert back exactly keeps the talon value in the NIR
        node's ``talon_source`` record (``from_nir`` restores it).
        """
        shape = tuple(shape)
        spec = units.NEURON_FIELDS[kind]
        talon = {f: np.asarray(getattr(node, t)) for f, (t, _) in spec.items()}
        out = {f: units.to_nir(_broadcast(talon[f], shape), conv, self.dt) for f, (_, conv) in spec.items()}
        restored = {}
        for nir_field, original in source_record(node).items():
            if nir_field not in spec or nir_field in skip or original is None:
                continue
            original = np.asarray(original)
            back = units.to_talon(original, spec[nir_field][1], self.dt)
            if original.shape == shape and same_bits(back, _broadcast(talon[nir_field], shape)):
                restored[nir_field] = original
        out.update(restored)
        kept = {}
        for nir_field, (talon_field, conv) in spec.items():
            if nir_field not in skip and not same_bits(units.to_talon(out[nir_field], conv, self.dt), talon[nir_field]):
                kept[talon_field] = talon[nir_field]
        if kept:
            records["talon_source"] = {**records.get("talon_source", {}), **kept}
        return out

    def _membrane(self, kind: str, node: ir.Node, shape, records: dict):
        nir = self.nir
        f = self._fields(kind, node, shape, records)
        if kind == "LI":
            return nir.LI(tau=f["tau"], r=f["r"], v_leak=f["v_leak"])
        if kind == "CubaLI":
            return _keep_w_in(
                nir.CubaLI(tau_syn=f["tau_syn"], tau_mem=f["tau_mem"], r=f["r"], v_leak=f["v_leak"], w_in=f["w_in"]), f
            )
        return nir.I(r=f["r"])

    def _spiking(self, name, node, shape, meta, path, taken, where) -> _Lowered:
        nir = self.nir
        kind = {ir.LIF: "LIF", ir.IF: "IF", ir.CubaLIF: "CubaLIF"}[type(node)]
        theta = _broadcast(node.v_threshold, shape)
        if node.reset_mode == "none":
            return self._reset_free(name, node, kind, shape, theta, meta, path, taken, where)
        records: dict[str, Any] = {}
        if kind == "LIF" and node.integration == "euler":
            records["talon_integration"] = "euler"  # the same NIR equation; talon's evaluation order
        if node.reset_gradient != ir.ResetGradient.DETACHED:
            records["talon_reset_gradient"] = node.reset_gradient.value  # training only; NIR has no field
        if node.surrogate != ir.DEFAULT_SURROGATE:
            records["talon_surrogate"] = node.surrogate  # training only; NIR has no field
        changes = []
        skip: list[str] = []
        if node.comparison == ">=":
            changes.append(_GE_CHANGE)
            skip.append("v_threshold")
        if node.reset_mode == "subtract":
            changes.append("reset by subtraction (v - v_threshold) -> reset to v_reset = 0")
            skip.append("v_reset")
        if node.reset_timing != "immediate":
            changes.append(f"reset_timing={node.reset_timing.value!r} -> the reset is applied in the step of the spike")
        if node.spike_timing == "pre":
            changes.append("spike_timing='pre' -> spikes are emitted from the updated state (one step earlier)")
        if _starts_off_zero(node):
            changes.append(_V_INIT_CHANGE)
        changes += multi_spike_changes(node)
        if changes:
            self._lossy(name, path, where, changes)
            records["talon_lossy"] = "; ".join(changes)
        f = self._fields(kind, node, shape, records, skip=tuple(skip))
        if node.comparison == ">=":
            f["v_threshold"] = _just_below(f["v_threshold"])
        if node.reset_mode == "subtract":
            f["v_reset"] = np.zeros_like(f["v_reset"])
        if kind == "LIF":
            out = nir.LIF(
                tau=f["tau"], r=f["r"], v_leak=f["v_leak"], v_threshold=f["v_threshold"], v_reset=f["v_reset"]
            )
        elif kind == "IF":
            out = nir.IF(r=f["r"], v_threshold=f["v_threshold"], v_reset=f["v_reset"])
        else:
            out = _keep_w_in(
                nir.CubaLIF(
                    tau_syn=f["tau_syn"],
                    tau_mem=f["tau_mem"],
                    r=f["r"],
                    v_leak=f["v_leak"],
                    v_threshold=f["v_threshold"],
                    v_reset=f["v_reset"],
                    w_in=f["w_in"],
                ),
                f,
            )
        return _single(name, self._typed(out, shape, shape, meta, records))

    def _reset_free(self, name, node, kind, shape, theta, meta, path, taken, where) -> _Lowered:
        """A neuron that never resets is its membrane (LI / I / CubaLI) followed by Threshold (exact)."""
        nir = self.nir
        membrane_kind = {"LIF": "LI", "IF": "I", "CubaLIF": "CubaLI"}[kind]
        records: dict[str, Any] = {}
        if kind == "LIF" and node.integration == "euler":
            records["talon_integration"] = "euler"  # kept by the LI that carries the membrane
        membrane = self._typed(self._membrane(membrane_kind, node, shape, records), shape, shape, meta, records)
        parts = [(name, membrane)]
        threshold_records: dict[str, Any] = {}
        if node.surrogate != ir.DEFAULT_SURROGATE:
            threshold_records["talon_surrogate"] = node.surrogate  # the Threshold spikes; NIR has no field
        changes = ([_V_INIT_CHANGE] if _starts_off_zero(node) else []) + multi_spike_changes(node)
        if node.comparison == ">=":
            changes.append(_GE_CHANGE)
            theta = _just_below(theta)
        pre = node.spike_timing == "pre"
        if pre and np.any(_compare(np.zeros((), theta.dtype), theta, node.comparison)):
            changes.append(
                "spike_timing='pre' with a threshold at or below 0 (spike at t=0) -> spike from the updated state"
            )
            pre = False
        if changes:
            self._lossy(name, path, where, changes)
            threshold_records["talon_lossy"] = "; ".join(changes)
        spike_name = unique_name(f"{name}_threshold", taken)
        taken.add(spike_name)
        threshold = self._typed(nir.Threshold(threshold=theta), shape, shape, {}, threshold_records)
        parts.append((spike_name, threshold))
        edges = [(name, spike_name)]
        exit_name = spike_name
        if pre:  # the spike of the state before the update is the threshold of the previous step
            delay_name = unique_name(f"{name}_delay", taken)
            taken.add(delay_name)
            delay = nir.Delay(delay=np.full(shape, self.dt, dtype=np.float64))
            parts.append((delay_name, self._typed(delay, shape, shape, {}, {})))
            edges.append((spike_name, delay_name))
            exit_name = delay_name
        return _Lowered(parts, name, exit_name, edges)


def _keep_w_in(node, fields: dict):
    """``node`` with the ``w_in`` talon wrote. NIR's CubaLI / CubaLIF rebuild it as
    ``ones_like(v_leak) * w_in``, which takes ``v_leak``'s dtype: a float32 ``w_in`` next to a float64
    ``v_leak`` became float64, so the import no longer recognised the recorded talon value (a
    per-channel CubaLIF after a convolution came back with parameters of two shapes and was refused).
    ``fields["w_in"]`` is already broadcast to the layer, so only the dtype is restored."""
    node.w_in = fields["w_in"]
    return node
