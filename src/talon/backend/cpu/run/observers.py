"""Executor observers: spike trains, input activity of the weight layers, progress."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from talon import ir

from ...errors import BackendError
from ..kernels.kernel import Kernel
from ..lowering.program import Op

WEIGHT_NODES = (ir.Affine, ir.SpikingAffine, ir.Linear, ir.Conv1d, ir.Conv2d, ir.SConv, ir.SDConv, ir.SepConv2d)


class SpikeObserver:
    """Collects the spikes of every spiking node (LIF, IF, CubaLIF, Threshold).

    ``counts[path]`` the number of spikes (a multi-spike neuron's counts summed); ``fired[path]``
    which neurons spiked at least once. With ``keep_trains``, ``train(path)`` is an array
    ``[T, B, *shape]``: whether each neuron spiked (bool), or for a multi-spike neuron
    (``spike_mode='multi'``) how many times (int64), so that comparing two trains compares counts;
    a spike train is held packed, one bit per neuron and step (``trains[path]``: the pieces).

    ``compare_with`` (an observer that kept the trains of another run of the same program on the
    same inputs, cut into the same chunks): each piece of this run's trains is compared with the
    other's as it is produced, and the other's piece is released — ``equal[path]`` and
    ``compared[path]`` count the equal and all entries, without keeping this run's trains.
    """

    outputs_only = True  # in a cycle: observed once per chunk with the chunk's sequence (executor.Observer)

    def __init__(self, keep_trains: bool = False, compare_with: SpikeObserver | None = None) -> None:
        self.keep_trains = keep_trains
        self.compare_with = compare_with
        self.trains: dict[str, list[tuple[np.ndarray, tuple[int, ...]]]] = {}
        self.counts: dict[str, int] = {}
        self.fired: dict[str, np.ndarray] = {}
        self.equal: dict[str, int] = {}
        self.compared: dict[str, int] = {}

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
        if self.keep_trains or self.compare_with is not None:
            train = np.asarray(outputs[0]).astype(np.int64) if multi else z
            train = train if lead == 2 else train[None]
            if self.keep_trains:
                self.trains.setdefault(op.path, []).append(_pack(train))
            if self.compare_with is not None:
                other = self.compare_with.next_piece(op.path)
                self.equal[op.path] = self.equal.get(op.path, 0) + int(np.count_nonzero(other == train))
                self.compared[op.path] = self.compared.get(op.path, 0) + int(train.size)

    def train(self, path: str) -> np.ndarray:
        parts = [_unpack(*piece) for piece in self.trains[path]]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def next_piece(self, path: str) -> np.ndarray:
        """The oldest piece of ``path``'s train not yet read, unpacked; released from this observer."""
        return _unpack(*self.trains[path].pop(0))


def _pack(train: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """A bool train as bits (8 entries a byte); counts (int64) as they are."""
    if train.dtype == np.bool_:
        return np.packbits(train.reshape(-1)), train.shape
    return train, train.shape


def _unpack(data: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if data.dtype == np.uint8:
        return np.unpackbits(data, count=math.prod(shape)).reshape(shape).view(np.bool_)
    return data


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
