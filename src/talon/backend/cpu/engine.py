"""A graph compiled for one precision: the lowered program, its kernels and an executor."""

from __future__ import annotations

import numpy as np

from ..config import CompileConfig
from .calibration import Calibration, CalibrationObserver, pool_slices
from .executor import Executor, Observer, Trace
from .fixed_engine import fixed_kernels, integer_inputs
from .float_engine import FLOAT_DTYPES, float_kernels
from .program import Program


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
        inputs: dict[str, np.ndarray],
        *,
        keep_all: bool = False,
        record_states: bool = False,
        observers: tuple[Observer, ...] = (),
    ) -> Trace:
        by_id = {self.program.inputs[name]: x for name, x in inputs.items()}
        keep = set(range(len(self.program.values))) if keep_all else None
        return self.executor.run(by_id, keep=keep, record_states=record_states, observers=observers)


def calibrate(program: Program, inputs: dict[str, np.ndarray], observers=()) -> tuple[Calibration, Trace]:
    """Run fp32 on ``inputs`` and measure the ranges the fixed-point formats need."""
    engine = Engine(program, CompileConfig(precision="fp32"))
    calibration = Calibration()
    calibration.add_inputs({program.inputs[name]: x for name, x in inputs.items()})
    trace = engine.run(inputs, record_states=True, observers=(CalibrationObserver(calibration), *observers))
    calibration.add_states(trace.states)
    pool_slices(calibration, program.ops)
    return calibration, trace
