"""Graph outputs handed to the caller chunk by chunk instead of kept (``simulate(on_outputs=...)``).

A run of many steps whose graph outputs are themselves too large to hold (``talon simulate -o``
writes them to a file as they come) gives each chunk's outputs to a callback
``on_outputs(start, stop, {output name: float32 [stop - start, B, *shape]})`` and keeps nothing of
them. What the result reports about the outputs is accumulated on the way: ``outputs_valid``
(every value finite) and, at a reduced precision, the error against the fp32 reference's outputs
of the same chunk (:mod:`.reference_run`: held, or computed in lockstep just before) — the largest
absolute difference exactly, the RMS and relative errors from float64 sums of squares added chunk
by chunk (equal to the whole-array figures up to the rounding of those sums).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..lowering.program import Program

OnOutputs = Callable[[int, int, dict[str, np.ndarray]], None]


class OutputStream:
    """The executor's sink (``executor.Sink``) for a run whose graph outputs go to ``on_outputs``.

    ``reference(start, stop)``: the fp32 run's outputs ``{value id: [stop - start, B, ...]}`` of
    those steps, to measure the error against."""

    def __init__(
        self, program: Program, on_outputs: OnOutputs, reference: Callable[[int, int], dict[int, np.ndarray]] | None
    ) -> None:
        self.program, self.on_outputs, self.reference = program, on_outputs, reference
        self.valid = True
        names = list(program.outputs)
        self.max_abs = dict.fromkeys(names, 0.0)
        self.sum_sq = dict.fromkeys(names, 0.0)  # sum (y - y_fp32)**2
        self.ref_sq = dict.fromkeys(names, 0.0)  # sum y_fp32**2
        self.size = dict.fromkeys(names, 0)

    def __call__(self, start: int, stop: int, values: dict[int, np.ndarray], states) -> None:
        outputs = {name: np.asarray(values[vid], np.float32) for name, vid in self.program.outputs.items()}
        self.valid = self.valid and all(not y.size or np.isfinite(y.min() + y.max()) for y in outputs.values())
        if self.reference is not None:
            reference = self.reference(start, stop)
            for name, vid in self.program.outputs.items():
                ref = np.asarray(reference[vid], np.float64)
                diff = outputs[name].astype(np.float64) - ref
                if diff.size:
                    self.max_abs[name] = max(self.max_abs[name], float(np.abs(diff).max()))
                self.sum_sq[name] += float(np.sum(diff**2))
                self.ref_sq[name] += float(np.sum(ref**2))
                self.size[name] += diff.size
        self.on_outputs(start, stop, outputs)

    def errors(self) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        """Per output: ``(max |y - y_fp32|, rmse, ||y - y_fp32|| / ||y_fp32||)`` (``QuantizationReport``'s)."""
        rmse = {n: math.sqrt(self.sum_sq[n] / self.size[n]) if self.size[n] else 0.0 for n in self.size}
        rel = {}
        for name in self.size:
            err, norm = math.sqrt(self.sum_sq[name]), math.sqrt(self.ref_sq[name])
            rel[name] = 0.0 if err == 0 else (err / norm if norm else float("inf"))
        return dict(self.max_abs), rmse, rel
