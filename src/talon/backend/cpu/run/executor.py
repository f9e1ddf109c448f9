"""Runs a lowered :class:`~..lowering.program.Program` with one kernel per operation, in chunks of steps.

Components run in order (see :mod:`..lowering.program`): an acyclic operation over a sequence of steps at
once, a cyclic component step by step. A run of ``T`` steps is cut into consecutive **chunks** of
at most ``chunk_steps`` steps (one chunk of ``T`` by default); every component runs over one chunk
before the next chunk starts, and what links the chunks is carried from one to the next: each
stateful kernel's state (membranes, currents, a Delay's last inputs) and the last step of every
value read through a delayed edge. A node's output at ``t`` depends only on inputs at steps
``<= t``, so the chunked run computes the same values, bit for bit, as one call over all ``T``
steps, while only one chunk of every layer's output exists at a time.

Within a chunk every value is kept as a ``[c, B, *shape]`` array until its last reader has run.
The values named in ``keep`` (the graph outputs by default) and the recorded states are the run's
result: assembled into ``[T, B, ...]`` arrays in :attr:`Trace.values` / :attr:`Trace.states`, or
handed chunk by chunk to a ``sink`` (then nothing is assembled and memory does not grow with
``T``). Observers see each operation's merged input and outputs (for activity counts and
calibration) once per chunk; the wall time of every operation is measured.

In fixed point a value may be held as int64 or, where its bound allows, as float32 integers (see
:func:`..kernels.build.float32_storage`); ``integer_inputs`` names the operations that are handed
int64 (per op, the positions of those inputs; a conversion that is exact).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..kernels.kernel import Kernel, StatefulKernel
from ..lowering.program import Op, Program, ValueRef


class Observer(Protocol):
    """Sees every operation's merged input and outputs, once per chunk. An observer with a true
    ``outputs_only`` attribute reads only the outputs: inside a cyclic component it is called once
    per operation after the chunk's last step, with the whole ``[c, B, ...]`` outputs (instead of
    once per step)."""

    def observe(self, op: Op, kernel: Kernel, x: Any, outputs: list[np.ndarray], lead: int) -> None:
        """``x``: the merged input ``[N, ...]`` (None for stateful kernels, and for an
        ``outputs_only`` observer); ``lead``: the number of leading axes of ``outputs`` (2 for a
        ``[c, B, ...]`` sequence, 1 for one step ``[B, ...]``)."""


#: ``sink(start, stop, values, states)``: the kept values ``{value id: [stop - start, B, ...]}`` and
#: recorded states ``{op path: {"v": [stop - start, B, ...]}}`` of steps ``start .. stop - 1``.
Sink = Callable[[int, int, dict[int, np.ndarray], dict[str, dict[str, np.ndarray]]], None]


class InputSource(Protocol):
    """The inputs of a run, produced chunk by chunk (e.g. a seeded stimulus drawn as it is needed)."""

    steps: int
    batch: int

    def chunk(self, start: int, stop: int) -> Mapping[Any, np.ndarray]:
        """The inputs of steps ``start .. stop - 1``, ``{key: [stop - start, B, *shape]}``; called
        with consecutive ranges from 0."""


class ArraySource:
    """Inputs given as whole ``[T, B, ...]`` arrays (or broadcast views of them)."""

    def __init__(self, arrays: Mapping[Any, np.ndarray]) -> None:
        self.arrays = dict(arrays)
        first = next(iter(self.arrays.values()))
        self.steps, self.batch = int(first.shape[0]), int(first.shape[1])

    def chunk(self, start: int, stop: int) -> dict[Any, np.ndarray]:
        if start == 0 and stop == self.steps:
            return {k: np.ascontiguousarray(a) for k, a in self.arrays.items()}
        return {k: np.ascontiguousarray(a[start:stop]) for k, a in self.arrays.items()}


@dataclass
class Trace:
    """What one run produced."""

    values: dict[int, np.ndarray]  # kept values, [T, B, *shape] (empty when a sink took them)
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # op path -> {"v": [T, B, ...]}
    seconds: dict[str, float] = field(default_factory=dict)  # op path -> wall time
    total_seconds: float = 0.0
    chunks: int = 0  # the number of chunks the run was cut into


def chunk_bounds(steps: int, chunk_steps: int | None) -> list[tuple[int, int]]:
    """The ``(start, stop)`` of each chunk of a run of ``steps`` steps cut every ``chunk_steps``."""
    size = steps if not chunk_steps or chunk_steps >= steps else int(chunk_steps)
    return [(t, min(t + size, steps)) for t in range(0, steps, max(size, 1))]


class _Carry:
    """What links one chunk to the next: kernel states and the last step of delayed-edge values."""

    def __init__(self) -> None:
        self.states: dict[int, dict[str, np.ndarray]] = {}  # op index -> kernel state
        self.last: dict[int, np.ndarray] = {}  # value id -> its value at the previous chunk's last step
        self.next_last: dict[int, np.ndarray] = {}


class Executor:
    def __init__(
        self, program: Program, kernels: list[Kernel], dtype, integer_inputs: list[tuple[int, ...]] | None = None
    ) -> None:
        self.program = program
        self.kernels = kernels
        self.dtype = np.dtype(dtype)
        self.consumers = program.consumers()
        self.integer_inputs = integer_inputs or [()] * len(kernels)
        self.delayed_values = {ref.value for op in program.ops for ref in op.inputs if ref.delayed}

    def run(
        self,
        inputs: dict[int, np.ndarray] | InputSource,
        *,
        keep: set[int] | None = None,
        record_states: bool | Collection[str] = False,
        observers: tuple[Observer, ...] = (),
        chunk_steps: int | None = None,
        sink: Sink | None = None,
    ) -> Trace:
        """``inputs``: value id of each top-level Input -> ``[T, B, *shape]`` array, or an
        :class:`InputSource` keyed by value id. ``chunk_steps``: the most steps run at once (None:
        all). ``record_states``: record every stateful operation's state (True), or only those of
        the operation paths given. ``sink``: receives the kept values and recorded states chunk by
        chunk (see :data:`Sink`); without one they are assembled in the returned :class:`Trace`."""
        source = inputs if hasattr(inputs, "chunk") else ArraySource(inputs)
        trace = Trace(values={})
        assembled = Assembly(source.steps) if sink is None else None
        start = time.perf_counter()
        for t0, t1, kept, states in self.chunks(source, trace, keep=keep, record_states=record_states,
                                                observers=observers, chunk_steps=chunk_steps):  # fmt: skip
            if sink is not None:
                sink(t0, t1, kept, states)
            else:
                assembled.add(t0, t1, kept, states)
            del kept, states
        trace.total_seconds = time.perf_counter() - start
        if assembled is not None:
            trace.values, trace.states = assembled.values, assembled.states
        return trace

    def chunks(
        self,
        source: InputSource,
        trace: Trace,
        *,
        keep: set[int] | None = None,
        record_states: bool | Collection[str] = False,
        observers: tuple[Observer, ...] = (),
        chunk_steps: int | None = None,
    ) -> Iterator[tuple[int, int, dict[int, np.ndarray], dict[str, dict[str, np.ndarray]]]]:
        """Run chunk after chunk, yielding ``(start, stop, kept values, recorded states)`` of each
        as soon as it is computed (what :meth:`run` hands to its sink): the caller may interleave
        another run with this one, e.g. a reference in lockstep. ``trace`` collects the operations'
        wall times and the number of chunks."""
        program = self.program
        keep = set(program.outputs.values()) if keep is None else set(keep)
        record = record_states if isinstance(record_states, bool) else frozenset(record_states)
        bounds = chunk_bounds(source.steps, chunk_steps)
        trace.chunks = len(bounds)
        carry = _Carry()
        for t0, t1 in bounds:
            values: dict[int, np.ndarray] = {}
            states: dict[str, dict[str, np.ndarray]] = {}
            chunk_inputs = source.chunk(t0, t1)
            with np.errstate(all="ignore"):  # inf / nan are reported through outputs_valid, not warnings
                self._run_components(
                    chunk_inputs, keep, values, t1 - t0, source.batch, record, observers, trace, states, carry
                )
            carry.last, carry.next_last = carry.next_last, {}
            kept = {vid: values[vid] for vid in keep if vid in values}
            del values, chunk_inputs
            yield t0, t1, kept, states
            del kept, states

    def _run_components(self, inputs, keep, values, steps, batch, record_states, observers, trace, states, carry):
        program = self.program
        remaining = {vid: len(readers) for vid, readers in self.consumers.items()}
        for component in program.components:
            if component.cyclic:
                self._run_cyclic(component.ops, values, inputs, steps, batch, record_states, observers, trace, states,
                                 carry)  # fmt: skip
            else:
                op = program.ops[component.ops[0]]
                self._run_sequence(op, values, inputs, steps, batch, record_states, observers, trace, states, carry)
            for op_index in component.ops:
                for vid in program.ops[op_index].outputs:
                    if vid in self.delayed_values and vid in values:  # read at the next chunk's first step
                        carry.next_last[vid] = values[vid][-1].copy()
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

    def _sequence_input(self, ref: ValueRef, values: dict[int, np.ndarray], carry: _Carry) -> np.ndarray:
        seq = values[ref.value]
        if not ref.delayed:
            return seq
        shifted = np.empty_like(seq)
        last = carry.last.get(ref.value)
        shifted[0] = 0 if last is None else last
        shifted[1:] = seq[:-1]
        return shifted

    def _op_inputs_sequence(self, op: Op, values, inputs, steps, batch, carry) -> list[np.ndarray]:
        if op.external:
            return [inputs[op.outputs[0]]]
        if not op.inputs:
            return [np.zeros((steps, batch, *op.in_shape), self.dtype)]
        return [self._sequence_input(ref, values, carry) for ref in op.inputs]

    def _state(self, kernel: StatefulKernel, op: Op, batch: int, carry: _Carry) -> dict[str, np.ndarray]:
        state = carry.states.get(op.index)
        if state is None:
            state = carry.states[op.index] = kernel.init_state(batch)
        return state

    def _run_sequence(self, op, values, inputs, steps, batch, record, observers, trace, states, carry) -> None:
        kernel = self.kernels[op.index]
        record = _records(record, op)
        xs = self._op_inputs_sequence(op, values, inputs, steps, batch, carry)
        if self.integer_inputs[op.index]:
            xs = _as_integers(xs, self.integer_inputs[op.index])
        t0 = time.perf_counter()
        if isinstance(kernel, StatefulKernel):
            outs, recorded = kernel.run(xs, record, self._state(kernel, op, batch, carry))
            x = None
            if record and recorded:
                states[op.path] = recorded
        else:
            flat = [a.reshape(steps * batch, *a.shape[2:]) for a in xs]
            x = kernel.merge(flat)
            outs = [y.reshape(steps, batch, *y.shape[1:]) for y in kernel.forward(x)]
        trace.seconds[op.path] = trace.seconds.get(op.path, 0.0) + time.perf_counter() - t0
        for vid, y in zip(op.outputs, outs, strict=True):
            values[vid] = y
        for obs in observers:
            obs.observe(op, kernel, x, outs, 2)

    def _run_cyclic(self, op_indices, values, inputs, steps, batch, record, observers, trace, states, carry) -> None:
        ops = [self.program.ops[i] for i in op_indices]
        kernels = [self.kernels[i] for i in op_indices]
        deferred = tuple(obs for obs in observers if getattr(obs, "outputs_only", False))
        observers = tuple(obs for obs in observers if not getattr(obs, "outputs_only", False))
        kernel_states = [
            self._state(k, op, batch, carry) if isinstance(k, StatefulKernel) else None
            for op, k in zip(ops, kernels, strict=True)
        ]
        buffers: dict[int, np.ndarray] = {}
        recorded: list[dict[str, np.ndarray] | None] = [None] * len(ops)
        clock = [0.0] * len(ops)
        for t in range(steps):
            for j, (op, kernel) in enumerate(zip(ops, kernels, strict=True)):
                xs = self._step_inputs(op, values, buffers, inputs, t, batch, carry)
                if self.integer_inputs[op.index]:
                    xs = _as_integers(xs, self.integer_inputs[op.index])
                t0 = time.perf_counter()
                if isinstance(kernel, StatefulKernel):
                    outs, kernel_states[j] = kernel.step(xs, kernel_states[j])
                    x = None
                else:
                    x = kernel.merge(xs)
                    outs = kernel.forward(x)
                clock[j] += time.perf_counter() - t0
                for vid, y in zip(op.outputs, outs, strict=True):
                    if vid not in buffers:
                        buffers[vid] = np.empty((steps, *y.shape), y.dtype)
                    buffers[vid][t] = y
                if _records(record, op) and isinstance(kernel, StatefulKernel):
                    rec = kernel.recorded(kernel_states[j])
                    if rec:
                        if recorded[j] is None:
                            recorded[j] = {k: np.empty((steps, *a.shape), a.dtype) for k, a in rec.items()}
                        for k, a in rec.items():
                            recorded[j][k][t] = a
                for obs in observers:
                    obs.observe(op, kernel, x, outs, 1)
        values.update(buffers)
        for j, op in enumerate(ops):
            if kernel_states[j] is not None:
                carry.states[op.index] = kernel_states[j]
            trace.seconds[op.path] = trace.seconds.get(op.path, 0.0) + clock[j]
            if recorded[j] is not None:
                states[op.path] = recorded[j]
            if steps:
                for obs in deferred:
                    obs.observe(op, kernels[j], None, [buffers[vid] for vid in op.outputs], 2)

    def _step_inputs(self, op: Op, values, buffers, inputs, t: int, batch: int, carry: _Carry) -> list[np.ndarray]:
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
                    last = carry.last.get(ref.value) if t == 0 else None
                    if last is not None:  # the previous chunk's last step
                        xs.append(last)
                    else:
                        xs.append(self._zeros(ref.value, (batch,), seq))
                else:
                    xs.append(seq[t - 1])
            else:
                xs.append(seq[t])
        return xs


class Assembly:
    """The kept values and recorded states of every chunk, put together as ``[T, B, ...]`` arrays
    (a run of one chunk keeps its arrays as they are)."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.values: dict[int, np.ndarray] = {}
        self.states: dict[str, dict[str, np.ndarray]] = {}

    def _put(self, store: dict, key, start: int, stop: int, a: np.ndarray) -> None:
        if start == 0 and stop == self.steps:
            store[key] = a
            return
        if key not in store:
            store[key] = np.empty((self.steps, *a.shape[1:]), a.dtype)
        store[key][start:stop] = a

    def add(self, start, stop, values, states) -> None:
        for vid, a in values.items():
            self._put(self.values, vid, start, stop, a)
        for path, recorded in states.items():
            target = self.states.setdefault(path, {})
            for name, a in recorded.items():
                self._put(target, name, start, stop, a)


def _records(record: bool | frozenset[str], op: Op) -> bool:
    """Whether ``op``'s states are recorded: all operations' (True), none (False) or the paths given."""
    return record if isinstance(record, bool) else op.path in record


def _as_integers(xs: list[np.ndarray], positions: tuple[int, ...]) -> list[np.ndarray]:
    """The fixed-point values at ``positions`` held as float32 integers, as int64 (exact)."""
    xs = list(xs)
    for k in positions:
        if xs[k].dtype != np.int64:
            xs[k] = xs[k].astype(np.int64)
    return xs
