"""Runs a lowered :class:`~.program.Program` with one kernel per operation.

Components run in order (see :mod:`.program`): an acyclic operation over the whole sequence at
once, a cyclic component step by step. Every value is kept as a ``[T, B, *shape]`` array until
its last reader has run (values named in ``keep`` are kept to the end). Observers see each
operation's merged input and outputs (for activity counts and calibration); the wall time of every
operation is measured.

In fixed point a value may be held as int64 or, where its bound allows, as float32 integers (see
:func:`.fixed_engine.float32_storage`); ``integer_inputs`` names the operations that are handed
int64 (per op, the positions of those inputs; a conversion that is exact).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from .kernel import Kernel, StatefulKernel
from .program import Op, Program, ValueRef


class Observer(Protocol):
    """Sees every operation's merged input and outputs. An observer with a true ``outputs_only``
    attribute reads only the outputs: inside a cyclic component it is called once per operation
    after the last step, with the whole ``[T, B, ...]`` outputs (instead of once per step)."""

    def observe(self, op: Op, kernel: Kernel, x: Any, outputs: list[np.ndarray], lead: int) -> None:
        """``x``: the merged input ``[N, ...]`` (None for stateful kernels, and for an
        ``outputs_only`` observer); ``lead``: the number of leading axes of ``outputs`` (2 for a
        ``[T, B, ...]`` sequence, 1 for one step ``[B, ...]``)."""


@dataclass
class Trace:
    """What one run produced."""

    values: dict[int, np.ndarray]  # kept values, [T, B, *shape]
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # op path -> {"v": [T, B, ...]}
    seconds: dict[str, float] = field(default_factory=dict)  # op path -> wall time
    total_seconds: float = 0.0


class Executor:
    def __init__(
        self, program: Program, kernels: list[Kernel], dtype, integer_inputs: list[tuple[int, ...]] | None = None
    ) -> None:
        self.program = program
        self.kernels = kernels
        self.dtype = np.dtype(dtype)
        self.consumers = program.consumers()
        self.integer_inputs = integer_inputs or [()] * len(kernels)

    def run(
        self,
        inputs: dict[int, np.ndarray],
        *,
        keep: set[int] | None = None,
        record_states: bool = False,
        observers: tuple[Observer, ...] = (),
    ) -> Trace:
        """``inputs``: value id of each top-level Input -> ``[T, B, *shape]`` array."""
        program = self.program
        first = next(iter(inputs.values()))
        steps, batch = first.shape[:2]
        keep = set(program.outputs.values()) if keep is None else set(keep)
        remaining = {vid: len(readers) for vid, readers in self.consumers.items()}
        values: dict[int, np.ndarray] = {}
        trace = Trace(values={})
        start = time.perf_counter()
        with np.errstate(all="ignore"):  # inf / nan are reported through outputs_valid, not warnings
            self._run_components(inputs, keep, remaining, values, steps, batch, record_states, observers, trace)
        trace.total_seconds = time.perf_counter() - start
        trace.values = {vid: values[vid] for vid in keep if vid in values}
        return trace

    def _run_components(self, inputs, keep, remaining, values, steps, batch, record_states, observers, trace):
        program = self.program
        for component in program.components:
            if component.cyclic:
                self._run_cyclic(component.ops, values, inputs, steps, batch, record_states, observers, trace)
            else:
                op = program.ops[component.ops[0]]
                self._run_sequence(op, values, inputs, steps, batch, record_states, observers, trace)
            for op_index in component.ops:
                for vid in dict.fromkeys(r.value for r in program.ops[op_index].inputs):
                    remaining[vid] -= 1
                    if remaining[vid] == 0 and vid not in keep:
                        values.pop(vid, None)
                for vid in program.ops[op_index].outputs:
                    if remaining[vid] == 0 and vid not in keep:
                        values.pop(vid, None)  # nobody reads it

    # ---- helpers --------------------------------------------------------------------------

    def _zeros(self, vid: int, lead: tuple[int, ...], like: np.ndarray | None = None) -> np.ndarray:
        shape = self.program.values[vid].shape
        dtype = like.dtype if like is not None else self.dtype
        return np.zeros((*lead, *shape), dtype)

    def _sequence_input(self, ref: ValueRef, values: dict[int, np.ndarray]) -> np.ndarray:
        seq = values[ref.value]
        if not ref.delayed:
            return seq
        shifted = np.empty_like(seq)
        shifted[0] = 0
        shifted[1:] = seq[:-1]
        return shifted

    def _op_inputs_sequence(self, op: Op, values, inputs, steps, batch) -> list[np.ndarray]:
        if op.external:
            return [inputs[op.outputs[0]]]
        if not op.inputs:
            return [np.zeros((steps, batch, *op.in_shape), self.dtype)]
        return [self._sequence_input(ref, values) for ref in op.inputs]

    def _run_sequence(self, op, values, inputs, steps, batch, record, observers, trace) -> None:
        kernel = self.kernels[op.index]
        xs = self._op_inputs_sequence(op, values, inputs, steps, batch)
        if self.integer_inputs[op.index]:
            xs = _as_integers(xs, self.integer_inputs[op.index])
        t0 = time.perf_counter()
        if isinstance(kernel, StatefulKernel):
            outs, states = kernel.run(xs, record)
            x = None
            if record and states:
                trace.states[op.path] = states
        else:
            flat = [a.reshape(steps * batch, *a.shape[2:]) for a in xs]
            x = kernel.merge(flat)
            outs = [y.reshape(steps, batch, *y.shape[1:]) for y in kernel.forward(x)]
        trace.seconds[op.path] = trace.seconds.get(op.path, 0.0) + time.perf_counter() - t0
        for vid, y in zip(op.outputs, outs, strict=True):
            values[vid] = y
        for obs in observers:
            obs.observe(op, kernel, x, outs, 2)

    def _run_cyclic(self, op_indices, values, inputs, steps, batch, record, observers, trace) -> None:
        ops = [self.program.ops[i] for i in op_indices]
        kernels = [self.kernels[i] for i in op_indices]
        deferred = tuple(obs for obs in observers if getattr(obs, "outputs_only", False))
        observers = tuple(obs for obs in observers if not getattr(obs, "outputs_only", False))
        states = [k.init_state(batch) if isinstance(k, StatefulKernel) else None for k in kernels]
        buffers: dict[int, np.ndarray] = {}
        recorded: list[dict[str, np.ndarray] | None] = [None] * len(ops)
        clock = [0.0] * len(ops)
        for t in range(steps):
            for j, (op, kernel) in enumerate(zip(ops, kernels, strict=True)):
                xs = self._step_inputs(op, values, buffers, inputs, t, batch)
                if self.integer_inputs[op.index]:
                    xs = _as_integers(xs, self.integer_inputs[op.index])
                t0 = time.perf_counter()
                if isinstance(kernel, StatefulKernel):
                    outs, states[j] = kernel.step(xs, states[j])
                    x = None
                else:
                    x = kernel.merge(xs)
                    outs = kernel.forward(x)
                clock[j] += time.perf_counter() - t0
                for vid, y in zip(op.outputs, outs, strict=True):
                    if vid not in buffers:
                        buffers[vid] = np.empty((steps, *y.shape), y.dtype)
                    buffers[vid][t] = y
                if record and isinstance(kernel, StatefulKernel):
                    rec = kernel.recorded(states[j])
                    if rec:
                        if recorded[j] is None:
                            recorded[j] = {k: np.empty((steps, *a.shape), a.dtype) for k, a in rec.items()}
                        for k, a in rec.items():
                            recorded[j][k][t] = a
                for obs in observers:
                    obs.observe(op, kernel, x, outs, 1)
        values.update(buffers)
        for j, op in enumerate(ops):
            trace.seconds[op.path] = trace.seconds.get(op.path, 0.0) + clock[j]
            if recorded[j] is not None:
                trace.states[op.path] = recorded[j]
            if steps:
                for obs in deferred:
                    obs.observe(op, kernels[j], None, [buffers[vid] for vid in op.outputs], 2)

    def _step_inputs(self, op: Op, values, buffers, inputs, t: int, batch: int) -> list[np.ndarray]:
        if op.external:
            return [inputs[op.outputs[0]][t]]
        if not op.inputs:
            return [np.zeros((batch, *op.in_shape), self.dtype)]
        xs = []
        for ref in op.inputs:
            seq = buffers.get(ref.value)
            if seq is None:
                seq = values.get(ref.value)
            if ref.delayed:
                if t == 0 or seq is None:
                    like = seq if seq is not None else None
                    xs.append(self._zeros(ref.value, (batch,), like))
                else:
                    xs.append(seq[t - 1])
            else:
                xs.append(seq[t])
        return xs


def _as_integers(xs: list[np.ndarray], positions: tuple[int, ...]) -> list[np.ndarray]:
    """The fixed-point values at ``positions`` held as float32 integers, as int64 (exact)."""
    xs = list(xs)
    for k in positions:
        if xs[k].dtype != np.int64:
            xs[k] = xs[k].astype(np.int64)
    return xs
