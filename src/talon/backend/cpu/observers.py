"""Executor observers: spike trains, input activity of the weight layers, progress."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from talon import ir

from ..errors import BackendError
from .kernel import Kernel
from .program import Op

WEIGHT_NODES = (ir.Affine, ir.SpikingAffine, ir.Linear, ir.Conv1d, ir.Conv2d, ir.SConv, ir.SDConv, ir.SepConv2d)


class SpikeObserver:
    """Collects the spikes of every spiking node (LIF, IF, CubaLIF, Threshold).

    ``trains[path]`` is an array ``[T, B, *shape]`` (kept only with ``keep_trains``): whether each
    neuron spiked (bool), or for a multi-spike neuron (``spike_mode='multi'``) how many times
    (int64), so that comparing two trains compares counts; ``counts[path]`` the number of spikes
    (a multi-spike neuron's counts summed); ``fired[path]`` which neurons spiked at least once.
    """

    outputs_only = True  # in a cycle: observed once with the whole sequence (executor.Observer)

    def __init__(self, keep_trains: bool = False) -> None:
        self.keep_trains = keep_trains
        self.trains: dict[str, list[np.ndarray] | np.ndarray] = {}
        self.counts: dict[str, int] = {}
        self.fired: dict[str, np.ndarray] = {}

    def observe(self, op: Op, kernel: Kernel, x, outputs, lead: int) -> None:
        if not kernel.spiking:
            return
        z = outputs[0] != 0
        # a multi-spike neuron (spike_mode='multi') emits a count per step: its spikes are the sum
        multi = getattr(kernel, "multi", False)
        if multi:
            total = np.sum(outputs[0], dtype=np.float64)
            if not np.isfinite(total):  # an infinite count: the membrane overflowed the compute dtype
                raise BackendError(
                    f"node {op.path!r}: the spike count of this multi-spike neuron (spike_mode='multi') became "
                    f"infinite — its membrane left the range of the compute dtype ({np.asarray(outputs[0]).dtype}; "
                    "float16 ends at 65504), so the run has no meaningful spike counts: bound the count with "
                    "max_spikes, or run at a wider precision"
                )
            count = int(total)
        else:
            count = np.count_nonzero(z)
        self.counts[op.path] = self.counts.get(op.path, 0) + int(count)
        any_fired = z.any(axis=tuple(range(lead)))
        self.fired[op.path] = self.fired.get(op.path, np.zeros_like(any_fired)) | any_fired
        if self.keep_trains:
            train = np.asarray(outputs[0]).astype(np.int64) if multi else z
            self.trains.setdefault(op.path, []).append(train if lead == 2 else train[None])

    def train(self, path: str) -> np.ndarray:
        parts = self.trains[path]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


class ActivityObserver:
    """For each weight layer: non-zero count of every input element, and whether the input was binary."""

    def __init__(self) -> None:
        self.nonzero: dict[int, np.ndarray] = {}  # op index -> int64 [*in_shape]
        self.binary: dict[int, bool] = {}
        self.samples: dict[int, int] = {}  # op index -> number of (step, batch) inputs seen

    def observe(self, op: Op, kernel: Kernel, x, outputs, lead: int) -> None:
        if x is None or not isinstance(op.node, WEIGHT_NODES):
            return
        counts = np.count_nonzero(x, axis=0).astype(np.int64)
        self.nonzero[op.index] = self.nonzero.get(op.index, 0) + counts
        binary = bool(np.all((x == 0) | (x == 1)))
        fmt = getattr(kernel, "input_format", None)
        if fmt is not None:  # fixed point: the integers are spikes only if the scale is 1
            binary = binary and fmt.scalar and float(fmt.scale) == 1.0
        self.binary[op.index] = self.binary.get(op.index, True) and binary
        self.samples[op.index] = self.samples.get(op.index, 0) + x.shape[0]


class ProgressObserver:
    """Calls ``callback(done, total)`` after every operation (a cyclic component's operations after
    its last step): ``total`` operations over all the runs this observer watches."""

    outputs_only = True

    def __init__(self, callback: Callable[[int, int], None], total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0

    def observe(self, op: Op, kernel: Kernel, x, outputs, lead: int) -> None:
        self.done += 1
        self.callback(self.done, self.total)
