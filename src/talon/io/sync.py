"""Several event sources on one clock: offsets, drift, merging.

A source's clock maps to the reference clock as ``t_ref = round(t * (1 + drift_ppm * 1e-6)) + offset_us``
(integer microseconds; with zero drift the mapping is exact). :func:`estimate_offset` finds the
offset from timestamps of the same physical moments (e.g. a shared trigger) seen by both clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .events import EventFormatError, as_events, concatenate_events, first_unsorted


def align_timestamps(events, offset_us: int = 0, drift_ppm: float = 0.0) -> np.ndarray:
    """A copy of ``events`` with ``t`` mapped to the reference clock (module docstring)."""
    events = as_events(events, copy=True)
    if int(offset_us) != offset_us:
        raise EventFormatError(f"offset_us must be whole microseconds, got {offset_us!r}")
    t = events["t"]
    if drift_ppm:
        t = np.round(t * (1.0 + float(drift_ppm) * 1e-6)).astype(np.int64)
    events["t"] = t + int(offset_us)
    return events


def estimate_offset(reference_t, source_t) -> int:
    """Median of ``reference_t - source_t`` over matching timestamps (e.g. the same triggers on both clocks)."""
    ref, src = np.asarray(reference_t, dtype=np.int64), np.asarray(source_t, dtype=np.int64)
    if ref.shape != src.shape or ref.ndim != 1 or ref.size == 0:
        raise EventFormatError("estimate_offset needs two equally long, non-empty 1-D timestamp lists")
    return int(np.round(np.median(ref - src)))


def merge_events(*streams, return_source: bool = False):
    """One time-sorted stream from several time-sorted ones; ties keep the order of the arguments.

    With ``return_source=True`` also returns the index of each event's stream (uint16, or uint32
    past 65,536 streams).
    """
    arrays = [as_events(s) for s in streams]
    for k, arr in enumerate(arrays):
        bad = first_unsorted(arr["t"])
        if bad is not None:
            raise EventFormatError(f"stream {k} is not time-sorted (event {bad}); sort it first")
    merged = concatenate_events(arrays)
    order = np.argsort(merged["t"], kind="stable")
    if return_source:
        index_dtype = np.uint16 if len(arrays) <= 1 << 16 else np.uint32
        source = np.repeat(np.arange(len(arrays), dtype=index_dtype), [len(a) for a in arrays])
        return merged[order], source[order]
    return merged[order]


@dataclass
class SensorSync:
    """Named sources with their clock offset and drift; ``merge`` puts their events on the reference clock."""

    offsets_us: dict[str, int] = field(default_factory=dict)
    drifts_ppm: dict[str, float] = field(default_factory=dict)

    def add_source(self, name: str, offset_us: int = 0, drift_ppm: float = 0.0) -> None:
        self.offsets_us[name] = int(offset_us)
        self.drifts_ppm[name] = float(drift_ppm)

    def align(self, name: str, events) -> np.ndarray:
        if name not in self.offsets_us:
            raise EventFormatError(f"unknown source {name!r}; known sources: {sorted(self.offsets_us)}")
        return align_timestamps(events, self.offsets_us[name], self.drifts_ppm.get(name, 0.0))

    def merge(self, streams: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str], np.ndarray]:
        """``(events, source names, source index per event)`` of all streams on the reference clock."""
        names = list(streams)
        merged, source = merge_events(*(self.align(n, streams[n]) for n in names), return_source=True)
        return merged, names, source
