"""The whole-sequence schedules of :class:`.executor.JaxGraph` (``mode="fused"`` and
``"layerwise"``): units of the plan evaluated in order over all timesteps at once — a stateless
node applied to ``[T, B, ...]`` with time folded into the batch, a neuron or a cyclic component
scanned over time on its own — instead of the whole graph stepped together."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import layers
from .plan import BOUNDARY, DELAY, INPUT, NEURON


def port(value, port):
    return value if port is None else value[port]


def fold(fn, *seqs):
    """Apply a per-sample function to sequences ``[T, B, ...]`` by folding time into the batch."""
    t, b = seqs[0].shape[:2]
    out = fn(*(s.reshape((t * b, *s.shape[2:])) for s in seqs))
    if isinstance(out, (list, tuple)):
        return [o.reshape((t, b, *o.shape[1:])) for o in out]
    return out.reshape((t, b, *out.shape[1:]))


class WholeSequenceSchedules:
    """:class:`.executor.JaxGraph`'s ``_run_sequences`` and its helpers (a mixin: they read the
    graph's plan, node functions, parameters and Delays)."""

    def _run_sequences(self, units, params, state, inputs, record: bool, zero):
        """Evaluate ``units`` in order over the whole sequence: ``(path, False)`` applies one
        node to all timesteps at once, ``(paths, True)`` scans those nodes step by step."""
        length = next(iter(inputs.values())).shape[0]
        seqs: dict[str, Any] = {}
        final: dict[str, dict] = {"nodes": {}, "edges": {}}
        trace: dict[str, dict] = {}
        for comp, scanned in units:
            members = set(comp)
            external = {}
            for path in comp:
                for edge in self.plan.nodes[path].inputs:
                    if edge.src in members:
                        continue
                    seq = port(seqs[edge.src], edge.port)
                    if edge.recurrent:  # an edge closing a cycle of the parent graph crosses components
                        seq = self._edge_value(edge, seq)
                        final["edges"][edge.key] = seq[-1]
                        seq = jnp.concatenate([state["edges"][edge.key][None], seq[:-1]])
                    external[edge.key] = seq
            if scanned:
                self._scan_component(comp, params, state, external, seqs, final, trace, record, length, zero)
            else:
                self._sequence_node(comp[0], params, state, inputs, external, seqs, final, trace, record, zero)
        outputs = {p: seqs[p] for p in self.plan.outputs.values()}
        return outputs, final, (trace if record else None)

    def _sequence_node(self, path, params, state, inputs, external, seqs, final, trace, record, zero):
        flat = self.plan.nodes[path]
        if flat.kind == INPUT:
            seqs[path] = inputs[path]
            return
        incoming = [self._arrive(e, path, external[e.key]) for e in flat.inputs]
        if len(incoming) > 1:
            x = fold(lambda *xs: layers.merge(flat.node, list(xs), path, zero, self._plain[path]), *incoming)
        else:
            x = incoming[0]
        if flat.kind == NEURON:
            fn, p = self._fns[path], params[path]

            def body(carry, x_t):
                out, new = fn(p, carry, x_t, zero)
                return new, (out, new if record else None)

            final["nodes"][path], (seqs[path], states) = jax.lax.scan(body, state["nodes"][path], x)
            if record:
                trace[path] = states
        elif flat.kind == DELAY:
            seqs[path] = self._delay_sequence(path, state, x, final)
        elif flat.kind == BOUNDARY:
            seqs[path] = x
        else:
            seqs[path] = fold(lambda v: self._fns[path](params.get(path, {}), v), x)

    def _delay_sequence(self, path, state, x, final):
        depth = self._max_delay(path)
        if depth == 0:
            return x
        history = state["nodes"][path]["history"]  # history[k] = input at step -1-k
        padded = jnp.concatenate([history[::-1], x])
        t = x.shape[0]
        if self._uniform_delay(path):  # every element lags by `depth` steps: a slice
            out = padded[:t]
        else:
            index = np.arange(t).reshape((t,) + (1,) * (x.ndim - 1)) + depth - self._delays[path][None, None]
            out = jnp.take_along_axis(padded, jnp.broadcast_to(jnp.asarray(index), x.shape), axis=0)
        final["nodes"][path] = {"history": padded[-depth:][::-1]}
        return out

    def _scan_component(self, comp, params, state, external, seqs, final, trace, record, length, zero):
        members = set(comp)
        carry0 = {
            "nodes": {p: state["nodes"][p] for p in comp if p in state["nodes"]},
            "edges": {e.key: state["edges"][e.key] for e in self._internal(members)},
        }

        def body(carry, ext_t):
            values, node_state, edge_state = self._eval(comp, params, carry, {}, ext_t, zero)
            neurons = {p: s for p, s in node_state.items() if self.plan.nodes[p].kind == NEURON}
            return {"nodes": node_state, "edges": edge_state}, (values, neurons if record else None)

        carry, (values, neurons) = jax.lax.scan(body, carry0, external, length=length)
        seqs.update(values)
        final["nodes"].update(carry["nodes"])
        final["edges"].update(carry["edges"])
        if record:
            trace.update(neurons)

    def _internal(self, members: set[str]):
        """The recurrent edges between nodes of ``members``, in plan order."""
        inside = (self.plan.nodes[p] for p in self.plan.order if p in members)
        return [e for flat in inside for e in flat.inputs if e.recurrent and e.src in members]
