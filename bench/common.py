"""Timing helpers shared by the benchmarks: medians of repeated runs and a printed table."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    """One comparison: our median time against a reference's, on the same input, same process."""

    benchmark: str
    case: str
    ours_s: float
    reference: str
    reference_s: float | None

    @property
    def ratio(self) -> float | None:
        """Reference time / our time (> 1: talon is faster)."""
        return None if self.reference_s is None else self.reference_s / self.ours_s


def median_time(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_times(
    fns: dict[str, Callable[[], object]],
    repeats: int = 7,
    warmup: int = 1,
    settle: float = 0.0,
    samples: dict[str, list[float]] | None = None,
) -> dict[str, float]:
    """Median time of each function, the runs interleaved (a, b, c, a, b, c, ...) so that load
    from other processes on a shared host falls on all of them alike and the ratios stay fair.

    ``settle`` seconds of sleep before each timed call keep one contender's leftover work off the
    next one's clock (after a call, torch's OpenMP/BLAS threads spin for ~0.1 s by default).
    ``samples``, when given, receives every timing (by name, in round order) for quartiles.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if settle:
                time.sleep(settle)
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    if samples is not None:
        samples.update(times)
    return {name: statistics.median(ts) for name, ts in times.items()}


def ratio_quartiles(reference: list[float], ours: list[float]) -> tuple[float, float, float]:
    """Quartiles (25 %, median, 75 %) of the per-round ratios reference / ours of interleaved timings."""
    ratios = [r / o for r, o in zip(reference, ours, strict=True)]
    q1, q2, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    return q1, q2, q3


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def print_rows(title: str, rows: list[Row]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for col in ("case", "talon", "reference", "reference time", "ratio (ref/talon)"):
        table.add_column(col)
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}×"
        table.add_row(r.case, fmt_time(r.ours_s), r.reference, fmt_time(r.reference_s), ratio)
    Console().print(table)
