"""The fp32 reference of a reduced-precision ``simulate``, which its quantization report compares with.

Two ways to hold it, chosen by the number of chunks the run is cut into (:mod:`.run_memory`):

* :class:`HeldReference` — a run of one chunk: the reference runs first over all steps and keeps
  its graph outputs and packed spike trains (no more than the chunk's own layer outputs).
* :class:`LockstepReference` — a run of several chunks: the reference runs **in lockstep**, each
  chunk just before the reduced run's same chunk, on the same inputs (it is the reduced run's input
  source). Its spike trains of that chunk are compared as the reduced run produces its own and
  released; its graph outputs are kept only when the run keeps its own (the report then compares
  the whole arrays, exactly as a held reference), otherwise the output stream compares them chunk
  by chunk. Memory no longer grows with the run's length. A fixed-point run must calibrate on all
  steps before its first integer step, so it runs fp32 twice: once to calibrate (keeping nothing)
  and once in lockstep.

A float reduced precision (fp16) runs in lockstep whenever the run has several chunks: its fp32
engine is alive through the run either way. A fixed-point run does only when the reference it would
hold for all steps is larger than the fp32 kernels lockstep keeps alive through the integer run
(:func:`runs_in_lockstep`; it also costs the second fp32 run): on a 33.6 M-parameter conv SNN whose
fp32 kernels take ~0.4 GB, beyond about 60,000 steps x batch entries.

Either way the reference computes the same values, bit for bit (chunking is exact, docs/backend.md
§3.1), so the report does not depend on the way.
"""

from __future__ import annotations

import time

import numpy as np

from .engine import Engine
from .executor import Assembly, Trace
from .observers import SpikeObserver


def runs_in_lockstep(fixed_point: bool, steps: int, chunk: int, held_reference_bytes: int, engine: Engine) -> bool:
    """Whether the fp32 reference ``engine`` of a reduced-precision run of ``steps`` steps cut into
    chunks of ``chunk`` runs in lockstep (the module docstring's rule); ``held_reference_bytes``:
    what a reference held for all steps would take (``run_memory.held_bytes``)."""
    if chunk >= steps:
        return False
    if not fixed_point:
        return True
    from .program_cache import owned_bytes

    return held_reference_bytes > owned_bytes([engine.kernels])


class HeldReference:
    """A reference run over all steps before the reduced run: its ``trace`` (graph outputs) and ``spikes``."""

    seconds = 0.0  # time the reduced run spent running the reference (none: it ran before)

    def __init__(self, trace: Trace, spikes: SpikeObserver) -> None:
        self.trace, self.spikes = trace, spikes

    def inputs(self, source):
        """What the reduced run reads its inputs from: ``source`` itself."""
        return source

    def outputs_between(self, start: int, stop: int) -> dict[int, np.ndarray]:
        return {vid: a[start:stop] for vid, a in self.trace.values.items()}

    def finish(self) -> Trace:
        return self.trace


class LockstepReference:
    """The fp32 ``engine`` run chunk by chunk one chunk ahead of the reduced run that reads its inputs
    from this object (an input source keyed by Input name: each ``chunk(start, stop)`` first runs the
    reference over those steps). ``keep_outputs``: assemble the reference's graph outputs of all steps."""

    def __init__(self, engine: Engine, source, chunk_steps: int, observers=(), keep_outputs: bool = True) -> None:
        self.source = source
        self.steps, self.batch = source.steps, source.batch
        self.spikes = SpikeObserver(keep_trains=True)
        self.outputs = Assembly(self.steps) if keep_outputs else None
        self.current: dict[int, np.ndarray] = {}
        self.span = (0, 0)
        self.seconds = 0.0
        self.trace = Trace(values={})
        self._feed = _Feed(self.steps, self.batch)
        self._chunks = engine.executor.chunks(
            engine.source(self._feed), self.trace, observers=(self.spikes, *observers), chunk_steps=chunk_steps
        )

    def inputs(self, source):
        return self

    def chunk(self, start: int, stop: int):
        inputs = self.source.chunk(start, stop)
        begin = time.perf_counter()
        self._feed.inputs = {name: _read_only(x) for name, x in inputs.items()}  # shared with the reduced run
        t0, t1, kept, _ = next(self._chunks)
        if (t0, t1) != (start, stop):
            raise AssertionError(f"the reference ran steps {t0}..{t1} for the reduced run's {start}..{stop}")
        self.current, self.span = kept, (t0, t1)
        if self.outputs is not None:
            self.outputs.add(t0, t1, kept, {})
        self.seconds += time.perf_counter() - begin
        return inputs

    def outputs_between(self, start: int, stop: int) -> dict[int, np.ndarray]:
        if (start, stop) != self.span:
            raise AssertionError(f"the reference holds steps {self.span}, not {start}..{stop}")
        return self.current

    def finish(self) -> Trace:
        """The reference's trace once the reduced run is done (its graph outputs if kept)."""
        for _ in self._chunks:  # the generator ends (no chunk is left)
            raise AssertionError("the reduced run ended before its reference")
        self.current = {}
        self.trace.values = {} if self.outputs is None else self.outputs.values
        return self.trace


class _Feed:
    """The input source of the reference: the chunk the reduced run's source just produced."""

    def __init__(self, steps: int, batch: int) -> None:
        self.steps, self.batch = steps, batch
        self.inputs: dict[str, np.ndarray] = {}

    def chunk(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return self.inputs


def _read_only(x: np.ndarray) -> np.ndarray:
    view = np.asarray(x).view()
    view.flags.writeable = False
    return view
