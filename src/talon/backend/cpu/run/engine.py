"""A graph compiled for one precision: the lowered program, its kernels and an executor."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from ...config import CompileConfig
from ..formats.calibration import Calibration, CalibrationObserver, pool_slices
from ..kernels.build import FLOAT_DTYPES, fixed_kernels, float_kernels, integer_inputs
from ..lowering.program import Program
from .executor import ArraySource, Assembly, Executor, Observer, Sink, Trace


class Engine:
    def __init__(
        self, program: Program, config: CompileConfig, calibration: Calibration | None = None, graph=None
    ) -> None:
        self.program = program
        self.graph = graph  # the graph lowered to ``program`` (kept by compile, to check inputs against)
        self.config = config
        if config.is_fixed_point:
            if calibration is None:
                raise ValueError("a fixed-point engine needs a calibration")
            self.kernels = fixed_kernels(program, config, calibration)
            dtype = np.int64
            to_int = integer_inputs(program, self.kernels)
        else:
            self.kernels = float_kernels(program, config.precision, config.exact_accumulation)
            dtype = FLOAT_DTYPES[config.precision]
            to_int = None
        self.calibration = calibration
        self.executor = Executor(program, self.kernels, dtype, integer_inputs=to_int)

    def run(
        self,
        inputs,
        *,
        keep_all: bool = False,
        record_states: bool | Collection[str] = False,
        observers: tuple[Observer, ...] = (),
        chunk_steps: int | None = None,
        sink: Sink | None = None,
        keep: set[int] | None = None,
    ) -> Trace:
        """Run on ``inputs`` (``{Input name: [T, B, *shape]}``, or an input source keyed by name with
        ``steps``, ``batch`` and ``chunk(start, stop)``, e.g. :class:`~..stimulus.InputSource`).
        ``keep``: the value ids kept (default: the graph outputs; ``keep_all``: every value);
        ``record_states`` (True, or the op paths whose states are recorded), ``chunk_steps`` and
        ``sink``: see :meth:`.executor.Executor.run`."""
        if keep_all:
            keep = set(range(len(self.program.values)))
        return self.executor.run(
            self.source(inputs), keep=keep, record_states=record_states, observers=observers,
            chunk_steps=chunk_steps, sink=sink,
        )  # fmt: skip

    def source(self, inputs):
        """``inputs`` (arrays or a source keyed by Input name) as the executor reads them (by value id)."""
        if hasattr(inputs, "chunk"):
            return _ById(inputs, self.program.inputs)
        return ArraySource({self.program.inputs[name]: x for name, x in inputs.items()})


class _ById:
    """An input source keyed by Input name, seen by value id (what the executor reads)."""

    def __init__(self, source, ids: dict[str, int]) -> None:
        self.source, self.ids = source, ids
        self.steps, self.batch = source.steps, source.batch

    def chunk(self, start: int, stop: int) -> dict[int, np.ndarray]:
        return {self.ids[name]: x for name, x in self.source.chunk(start, stop).items()}


def calibrate(
    program: Program, inputs, observers=(), chunk_steps: int | None = None, *, engine: Engine | None = None,
    keep_outputs: bool = True,
) -> tuple[Calibration, Trace]:  # fmt: skip
    """Run fp32 on ``inputs`` (arrays or a source, as :meth:`Engine.run`) and measure the ranges the
    fixed-point formats need, chunk by chunk (``chunk_steps``): the ranges are maxima, so the
    chunks give the ranges of the whole run. The trace keeps the graph outputs (not the states;
    none with ``keep_outputs=False``). ``engine``: the fp32 engine of ``program`` to run (a new one
    if None; a reused one's SepConv depthwise maxima are reset first)."""
    engine = Engine(program, CompileConfig(precision="fp32")) if engine is None else engine
    for kernel in engine.kernels:
        if hasattr(kernel, "intermediate_amax"):
            kernel.intermediate_amax = 0.0  # a maximum over this run only
    calibration = Calibration()
    steps = inputs.steps if hasattr(inputs, "chunk") else next(iter(inputs.values())).shape[0]
    outputs = Assembly(steps)

    def sink(start, stop, values, states) -> None:
        calibration.add_states(states)
        if keep_outputs:
            outputs.add(start, stop, values, {})

    observers = (CalibrationObserver(calibration, measure_inputs=True), *observers)
    trace = engine.run(inputs, record_states=True, observers=observers, chunk_steps=chunk_steps, sink=sink)
    trace.values = outputs.values
    pool_slices(calibration, program.ops)
    return calibration, trace
