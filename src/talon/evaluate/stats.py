"""What one shard measured, as sums that merge exactly.

Every field is an integer count (or a logical AND / OR), so merging shards in any grouping and
order gives the same totals bit for bit; every reported metric is computed once from the totals
(``talon.evaluate.result``). The only floating-point field, ``seconds``, is a measured wall time
and is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from talon.backend.cpu.run.observers import WEIGHT_NODES, ActivityObserver, SpikeObserver


def _add(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = out[k] + v if k in out else v
    return out


class SynapticObserver:
    """NeuroBench's synaptic-operation inputs: for every weight layer and every (step, sample) input, the
    non-zero count of each input element, split by whether that input was spiking (all values in
    {-1, 0, 1}: accumulates) or not (multiply-accumulates). Fixed point: spiking only at scale 1."""

    def __init__(self) -> None:
        self.ac: dict[int, np.ndarray] = {}
        self.mac: dict[int, np.ndarray] = {}

    def observe(self, op, kernel, x, outputs, lead: int) -> None:
        if x is None or not isinstance(op.node, WEIGHT_NODES):
            return
        rows = x.reshape(x.shape[0], -1)
        spiking = np.all((rows == 0) | (rows == 1) | (rows == -1), axis=1)
        fmt = getattr(kernel, "input_format", None)
        if fmt is not None and not (fmt.scalar and float(fmt.scale) == 1.0):
            spiking[:] = False
        nonzero = x != 0
        shape = x.shape[1:]
        ac = np.count_nonzero(nonzero[spiking], axis=0).astype(np.int64).reshape(shape)
        mac = np.count_nonzero(nonzero[~spiking], axis=0).astype(np.int64).reshape(shape)
        self.ac[op.index] = self.ac.get(op.index, 0) + ac
        self.mac[op.index] = self.mac.get(op.index, 0) + mac


@dataclass
class PrecisionStats:
    """Sums over the samples of a shard, for one precision."""

    samples: int = 0
    correct: int = 0
    confusion: np.ndarray | None = None  # [classes, classes] int64, rows = label, columns = prediction
    spikes: dict[str, int] = field(default_factory=dict)  # spiking node -> spikes
    nonzero: dict[int, np.ndarray] = field(default_factory=dict)  # weight op -> input non-zero counts
    binary: dict[int, bool] = field(default_factory=dict)  # weight op -> every input binary (profiler rule)
    synaptic_ac: dict[int, np.ndarray] = field(default_factory=dict)
    synaptic_mac: dict[int, np.ndarray] = field(default_factory=dict)
    output_equal: int = 0  # graph output elements equal to the reference's
    output_total: int = 0
    spikes_equal: int = 0  # spiking-node elements equal to the reference engine's
    spikes_total: int = 0
    seconds: float = 0.0  # measured wall time (not part of the exact totals)

    @classmethod
    def from_observers(
        cls, samples: int, activity: ActivityObserver, spikes: SpikeObserver, synaptic
    ) -> PrecisionStats:
        return cls(
            samples=samples,
            spikes=dict(spikes.counts),
            nonzero=dict(activity.nonzero),
            binary=dict(activity.binary),
            synaptic_ac=dict(synaptic.ac),
            synaptic_mac=dict(synaptic.mac),
        )

    def merge(self, other: PrecisionStats) -> PrecisionStats:
        confusion = (
            other.confusion
            if self.confusion is None
            else self.confusion
            if other.confusion is None
            else _padded_sum(self.confusion, other.confusion)
        )
        binary = dict(self.binary)
        for k, v in other.binary.items():
            binary[k] = binary.get(k, True) and v
        return PrecisionStats(
            samples=self.samples + other.samples,
            correct=self.correct + other.correct,
            confusion=confusion,
            spikes=_add(self.spikes, other.spikes),
            nonzero=_add(self.nonzero, other.nonzero),
            binary=binary,
            synaptic_ac=_add(self.synaptic_ac, other.synaptic_ac),
            synaptic_mac=_add(self.synaptic_mac, other.synaptic_mac),
            output_equal=self.output_equal + other.output_equal,
            output_total=self.output_total + other.output_total,
            spikes_equal=self.spikes_equal + other.spikes_equal,
            spikes_total=self.spikes_total + other.spikes_total,
            seconds=self.seconds + other.seconds,
        )

    def activity(self) -> ActivityObserver:
        """The merged counts as the profiler's observer (for its energy model)."""
        observer = ActivityObserver()
        observer.nonzero = dict(self.nonzero)
        observer.binary = dict(self.binary)
        return observer

    def spike_observer(self) -> SpikeObserver:
        observer = SpikeObserver()
        observer.counts = dict(self.spikes)
        return observer

    # ---- flat arrays for checkpoint files (npz, no pickle) ------------------------------------

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {
            f"{prefix}/scalars": np.array(
                [
                    self.samples,
                    self.correct,
                    self.output_equal,
                    self.output_total,
                    self.spikes_equal,
                    self.spikes_total,
                ],
                np.int64,
            ),
            f"{prefix}/seconds": np.array(self.seconds, np.float64),
        }
        if self.confusion is not None:
            out[f"{prefix}/confusion"] = self.confusion
        for i, (path, n) in enumerate(self.spikes.items()):
            out[f"{prefix}/spikes/{i}"] = np.array([n], np.int64)
            out[f"{prefix}/spikes_name/{i}"] = np.array(path)
        for name in ("nonzero", "synaptic_ac", "synaptic_mac"):
            for op, arr in getattr(self, name).items():
                out[f"{prefix}/{name}/{op}"] = np.asarray(arr, np.int64)
        for op, flag in self.binary.items():
            out[f"{prefix}/binary/{op}"] = np.array(flag)
        return out

    @classmethod
    def from_arrays(cls, arrays, prefix: str) -> PrecisionStats:
        s = arrays[f"{prefix}/scalars"]
        stats = cls(int(s[0]), int(s[1]), None, {}, {}, {}, {}, {}, int(s[2]), int(s[3]), int(s[4]), int(s[5]))
        stats.seconds = float(arrays[f"{prefix}/seconds"])
        if f"{prefix}/confusion" in arrays:
            stats.confusion = np.asarray(arrays[f"{prefix}/confusion"], np.int64)
        names = {}
        for key in arrays:
            if not key.startswith(prefix + "/"):
                continue
            kind, _, index = key[len(prefix) + 1 :].partition("/")
            if kind == "spikes_name":
                names[index] = str(arrays[key])
            elif kind in ("nonzero", "synaptic_ac", "synaptic_mac"):
                getattr(stats, kind)[int(index)] = np.asarray(arrays[key], np.int64)
            elif kind == "binary":
                stats.binary[int(index)] = bool(arrays[key])
        for index, path in sorted(names.items(), key=lambda kv: int(kv[0])):
            stats.spikes[path] = int(arrays[f"{prefix}/spikes/{index}"][0])
        return stats


def _padded_sum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(a.shape[0], b.shape[0])
    out = np.zeros((n, n), np.int64)
    out[: a.shape[0], : a.shape[1]] += a
    out[: b.shape[0], : b.shape[1]] += b
    return out


@dataclass
class ShardStats:
    """One shard's sums per precision (``precisions`` in the order evaluated)."""

    start: int
    stop: int
    precisions: dict[str, PrecisionStats]
    data_digest: str | None = None  # of the shard's samples and labels (checked when a checkpoint resumes)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"range": np.array([self.start, self.stop], np.int64), "precisions": np.array(list(self.precisions))}
        if self.data_digest is not None:
            out["data_digest"] = np.array(self.data_digest)
        for name, stats in self.precisions.items():
            out.update(stats.to_arrays(name))
        return out

    @classmethod
    def from_arrays(cls, arrays) -> ShardStats:
        start, stop = (int(v) for v in arrays["range"])
        names = [str(p) for p in arrays["precisions"]]
        digest = str(arrays["data_digest"]) if "data_digest" in arrays else None
        return cls(start, stop, {name: PrecisionStats.from_arrays(arrays, name) for name in names}, digest)


def merge_all(shards: list[ShardStats], precisions: list[str]) -> dict[str, PrecisionStats]:
    """Totals per precision, merged in shard order (any order gives the same integers)."""
    totals = {p: PrecisionStats() for p in precisions}
    for shard in sorted(shards, key=lambda s: s.start):
        for p in precisions:
            totals[p] = totals[p].merge(shard.precisions[p])
    return totals
