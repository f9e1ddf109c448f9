"""The membrane of a neuron whose output is its previous step's spike, updated in place in the scan.

A spiking neuron with ``spike_timing='pre'`` (Spyx's ``LIF``, snnTorch's ``Leaky`` exported with
its delayed reset) outputs ``z_prev = spike(v)``, the spike of the membrane it starts the step
with, and computes its next membrane from the same ``v``. XLA on CPU makes two kernels of it —
the spike for the product that reads it, and the update (which recomputes the comparison) — and,
not knowing which of the two runs first, copies ``v`` out of the loop carry every step so that
the update can write the carry in place: a ``[B, *shape]`` copy per layer and step (two
``[32, 256]`` copies per step in the benchmark MLP, a ``[16, 16, 16, 8]`` one in the SCNN; Spyx's
compiled ``run`` has the same copies).

In the step-wise scan such a neuron's update is taken out of the topological pass
(``make_step(...)(…, defer=True)`` returns the spike and a function of the rounding zero that
computes the new state) and made at the end of the step with a zero that waits for the values
of the nodes reading the spike (:func:`.delay_carry.wait_for`; a matrix product cannot be
recomputed inside the update's kernel, so XLA must run the spike and the product first), or
for the new state of a deferred neuron reading the spike directly. The update is then the last
reader of ``v`` and writes the carry in place. (A neuron whose spikes only leave the step as an
output keeps its copy: the scan stacks the output outside the step, where nothing can wait for
it; the benchmark models' last layers are LI or small.) Nothing else in the step
reads the new membrane (the output is ``z_prev``), so evaluating it last changes no value: the
same operations on the same operands, the same bits.
"""

from __future__ import annotations

from .plan import BOUNDARY


def deferred_updates(plan, deferrable: set[str], see_through: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """``{neuron: [readers]}``: for each neuron of ``deferrable`` (its output does not depend on
    its update within the step), the nodes reading its output in the same step, directly or
    through Boundaries and the one-input nodes of ``see_through``: elementwise or moving ones (a
    pool written as sliced sums, a ``Flatten``) that XLA may recompute inside the update's own
    kernel from the membrane, so that waiting for them would order nothing. A neuron nothing
    reads in the step is left out (there is nothing to wait for: its spikes only leave the step
    as an output).

    The update waits for each reader's value, or, for a reader that is itself deferrable (its
    value is its own previous spike, whatever it reads), for that reader's new state — so the
    deferred updates are made in reverse plan order."""
    nodes = plan.nodes
    out: dict[str, list[str]] = {}
    for neuron in plan.order:
        if neuron not in deferrable:
            continue
        passes = {neuron}  # the neuron and the Boundaries passing its value on unchanged
        for path in plan.order:
            ins = [e.src for e in nodes[path].inputs if not e.recurrent]
            passing = nodes[path].kind == BOUNDARY or path in see_through
            if passing and ins and all(s in passes for s in ins):
                passes.add(path)
        readers = [
            p for p in plan.order
            if p not in passes and any(e.src in passes for e in nodes[p].inputs if not e.recurrent)
        ]  # fmt: skip
        if readers:
            out[neuron] = readers
    return out
