"""Calibration of the fixed-point formats from a floating-point run.

The fixed-point datapath needs, for the tensors it rescales, the range of their real values:
the inputs of the weight layers that are not already small integers, SepConv2d's depthwise
output, and the neuron states. They are measured (``max |x|`` over all steps, batch entries and
elements) on an fp32 simulation of the calibration inputs — by default the inputs of the
simulation itself (post-training quantization).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..kernels.float_neurons import SPIKING_NEURONS, neuron_coefficients
from ..kernels.float_ops import SepConv
from ..kernels.kernel import Kernel
from ..lowering.program import Op
from ..run.observers import WEIGHT_NODES
from .exact_sums import dyadic_exponent


@dataclass
class Calibration:
    value_amax: dict[int, float] = field(default_factory=dict)  # value id -> max |x|
    value_exponent: dict[int, int] = field(default_factory=dict)  # top-level inputs: k with x * 2**k integral
    merged_amax: dict[int, float] = field(default_factory=dict)  # op index -> max |merged input|
    intermediate_amax: dict[int, float] = field(default_factory=dict)  # SepConv2d depthwise output
    state_amax: dict[str, dict[str, float]] = field(default_factory=dict)  # op path -> {"v": .., "i": ..}
    weight_amax: dict[int, float] = field(default_factory=dict)  # op index -> max |w| of its sliced layer
    inner: dict[int, Calibration] = field(default_factory=dict)  # op index -> ranges inside an expanded node
    not_dyadic: set[int] = field(default_factory=set)  # top-level inputs with no exponent (in some chunk)

    def add_inputs(self, inputs: dict[int, np.ndarray]) -> None:
        """Widen the ranges of the top-level inputs by ``inputs`` (all steps at once, or one chunk
        of steps after another: ``max |x|`` and the exponent of the union are the largest seen)."""
        for vid, x in inputs.items():
            x = np.asarray(x)
            amax = _amax(x)
            self.value_amax[vid] = _widen(self.value_amax.get(vid), amax)
            exponent = dyadic_exponent(x, finite=bool(np.isfinite(amax)))  # max |x| is NaN / inf unless all are finite
            if exponent is None:
                self.not_dyadic.add(vid)
                self.value_exponent.pop(vid, None)
            elif vid not in self.not_dyadic:
                self.value_exponent[vid] = max(exponent, self.value_exponent.get(vid, 0))

    def add_states(self, states: dict[str, dict[str, np.ndarray]]) -> None:
        """Widen the neuron state ranges by recorded traces (all steps, or one chunk at a time)."""
        for path, st in states.items():
            old = self.state_amax.setdefault(path, {})
            for k, a in st.items():
                old[k] = _widen(old.get(k), _amax(a))


SLICE_KEY = "talon.slice"  # written by talon.graph's layer splitting


def pool_slices(cal: Calibration, ops: list[Op]) -> None:
    """Give the slices of a split layer (``metadata["talon.slice"]["of"]``, docs/mapping.md) the
    ranges of the whole layer: the maximum over its slices of every measured range, of the spiking
    neurons' thresholds and reset values, and of ``|weight|`` (for per-tensor weight scales), so the
    fixed-point formats of a partitioned graph are those of the unsplit one."""
    groups: dict[str, list[Op]] = {}
    for op in ops:
        info = op.node.metadata.get(SLICE_KEY)
        if isinstance(info, dict) and "of" in info:
            prefix = op.path[: len(op.path) - len(op.path.rsplit(".", 1)[-1])]
            groups.setdefault(prefix + str(info["of"]), []).append(op)
    for members in groups.values():
        merged = [cal.merged_amax[op.index] for op in members if op.index in cal.merged_amax]
        if merged:
            for op in members:
                cal.merged_amax[op.index] = max(merged)
        states = [cal.state_amax[op.path] for op in members if op.path in cal.state_amax]
        if states:
            pooled = {key: max(st.get(key, 0.0) for st in states) for key in states[0]}
            spiking = [op for op in members if isinstance(op.node, SPIKING_NEURONS)]
            for op in spiking:
                k = neuron_coefficients(op.node, tuple(op.node.input_shape))
                pooled["v"] = max(pooled.get("v", 0.0), _amax(k["theta"]), _amax(k["v_reset"]))
            for op in members:
                if op.path in cal.state_amax:
                    cal.state_amax[op.path] = dict(pooled)
        weights = [getattr(op.node, "weight", None) for op in members]
        if all(isinstance(w, np.ndarray) for w in weights):
            top_w = max(_amax(w) for w in weights)
            for op in members:
                cal.weight_amax[op.index] = top_w


def _widen(old: float | None, new: float) -> float:
    """The larger of two ranges; NaN (a NaN in the data) wins, as ``max |x|`` of the whole data would be NaN."""
    if old is None or new != new or new > old:
        return new
    return old


def _amax(x) -> float:
    """``max |x|`` (0 for an empty array; NaN if any is NaN) without allocating ``|x|``."""
    x = np.asarray(x)
    if not x.size:
        return 0.0
    if x.dtype == np.bool_:
        return float(x.any())
    return float(np.maximum(abs(float(x.max())), abs(float(x.min()))))


class CalibrationObserver:
    """Executor observer filling a :class:`Calibration` with the ranges the fixed-point kernels read:
    the merged input of every weight layer (the scale it rescales a wide input to), the top-level
    inputs (with ``measure_inputs``: :meth:`Calibration.add_inputs` at every chunk; else once, unless
    measured already: the same arrays), SepConv2d's
    depthwise output and the ranges inside expanded nodes. (The neuron states come from the
    recorded traces, :meth:`Calibration.add_states`.) Other values are not measured: no kernel
    reads their range, and each measurement is a pass over the whole sequence."""

    def __init__(self, calibration: Calibration, measure_inputs: bool = False) -> None:
        self.cal = calibration
        self.measure_inputs = measure_inputs  # widen the top-level inputs' ranges at every chunk

    def observe(self, op: Op, kernel: Kernel, x, outputs, lead: int) -> None:
        cal = self.cal
        if x is not None and not isinstance(x, list) and isinstance(op.node, WEIGHT_NODES):
            measured = None
            if len(op.inputs) == 1 and not op.inputs[0].delayed:  # x is that value: measured already?
                measured = cal.value_amax.get(op.inputs[0].value)
            amax = _amax(x) if measured is None else measured
            cal.merged_amax[op.index] = max(cal.merged_amax.get(op.index, 0.0), amax)
        if op.external and self.measure_inputs:
            cal.add_inputs(dict(zip(op.outputs, outputs, strict=True)))
        elif op.external:
            for vid, y in zip(op.outputs, outputs, strict=True):
                if vid not in cal.value_amax:
                    cal.value_amax[vid] = _amax(y)
        if isinstance(kernel, SepConv):
            cal.intermediate_amax[op.index] = kernel.intermediate_amax
        calibrate_inner = getattr(kernel, "calibrate_inner", None)
        if calibrate_inner is not None and x is not None:  # ghost blocks, SDDetect (fixed_detection.py)
            calibrate_inner(x, cal.inner.setdefault(op.index, Calibration()))
