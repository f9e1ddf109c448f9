"""How busy the machine was while a benchmark topic ran: the load average before and after it.

Every row of a benchmark is a ratio of two timings interleaved in one process, which cancels load
that falls on both alike — but not all of it: with more runnable processes than cores, a
contender can lose its core for a whole timed run, and a 2-thread PyTorch loop (the snnTorch
reference) was measured to vary up to 30× at load above 5 on 2 cores. So the harness reads the
1-minute load average (``os.getloadavg``) before and after each topic, records it with the topic's
section, warns when it exceeded the number of cores, and does not write a busy run into
``docs/benchmarks.md`` unless told to (``--allow-busy``).

The load source and the core count are parameters, so the rules can be tested without a machine
in any particular state.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

LoadSource = Callable[[], float]


def one_minute_load() -> float:
    """The 1-minute load average: runnable (and uninterruptible) processes, averaged."""
    return os.getloadavg()[0]


def core_count() -> int:
    """The machine's CPU cores (the load average counts the whole machine's runnable processes)."""
    return os.cpu_count() or 1


@dataclass(frozen=True)
class TopicLoad:
    """The load average before and after one topic ran, and the cores it is compared with."""

    topic: str
    before: float
    after: float
    cores: int

    @property
    def peak(self) -> float:
        return max(self.before, self.after)

    @property
    def busy(self) -> bool:
        """More load than cores at either end: the timings may be far off (some runs lost their core)."""
        return self.peak > self.cores

    def describe(self) -> str:
        """One markdown line for the topic's section."""
        line = f"Load average (1 min) before → after: {self.before:.2f} → {self.after:.2f}, on {self.cores} cores."
        if self.busy:
            line += " **Measured on a busy machine** (load above the core count): the ratios may be far off."
        return line

    def warning(self) -> str:
        return (
            f"warning: {self.topic} ran on a busy machine: load average {self.before:.1f} → {self.after:.1f} "
            f"is above the {self.cores} cores, so its ratios may be far off (a 2-thread PyTorch loop varies up to "
            "30× at load above 5); re-run it on an idle machine"
        )


class LoadMonitor:
    """Reads the load around each topic (:meth:`around`) and keeps what it read."""

    def __init__(self, source: LoadSource = one_minute_load, cores: int | None = None) -> None:
        self.source = source
        self.cores = core_count() if cores is None else cores
        if self.cores < 1:
            raise ValueError(f"cores must be >= 1, got {self.cores}")
        self.readings: list[TopicLoad] = []

    def now(self) -> float:
        return float(self.source())

    def around(self, topic: str, run: Callable[[], object]) -> tuple[object, TopicLoad]:
        """``run()``'s result and the load before and after it."""
        before = self.now()
        result = run()
        reading = TopicLoad(topic, before, self.now(), self.cores)
        self.readings.append(reading)
        return result, reading

    def busy_topics(self) -> list[TopicLoad]:
        return [r for r in self.readings if r.busy]
