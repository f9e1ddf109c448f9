"""Compiled kernels through numba, when the ``fast`` extra is installed, and when to use them.

Contract: every compiled kernel has a numpy twin that returns identical results, and the caller
chooses between them. Call :func:`compiled` where the kernel is used, not at import time:
importing talon must not import numba; the compiled function is cached per kernel (and on disk).

Which one runs (read from the environment at every call, so a test can switch it):

* ``TALON_DISABLE_NUMBA=1``: always the numpy twin (numba is never imported);
* ``TALON_FORCE_NUMBA=1``: always the compiled kernel, whatever the size of the work (benches and
  tests of the kernels); :class:`MissingDependencyError` without the ``fast`` extra. When both are
  set, ``TALON_DISABLE_NUMBA`` wins;
* neither (the default): the size of the work decides, per kernel family (:class:`WorkThreshold`).

Why the size decides: starting numba costs about 0.5-1 s of CPU time per process (importing numba
and llvmlite, then initialising LLVM at the first kernel loaded from numba's disk cache; compiling
a kernel the first time on a machine takes seconds more), while the twins start at once. Once one
kernel has run, loading another from the cache costs 10-20 ms. A one-shot command on a small input
(``talon simulate`` of a small model, ``talon events info`` of a short recording) is quicker with
the twins; a large input or a long-running process earns the start-up back. The time loops (the
neuron loops of the CPU backend and of ``run_sequence``) measure their work as what the kernel
saves over the twin, from a cost model of each path (:class:`LoopCost`: a twin pays a dispatch cost
per step, both pay per element), against ``NUMBA_STARTUP_NS``. The thresholds and their
measurements: docs/backend.md §9.2 and each family's module.

A caller that knows the work of a whole run before it starts (``simulate``: its neuron loops run for
``T`` steps) declares it with :func:`planned_work`, so a long run starts numba at its first call
instead of running twins until the calls it has made so far add up to a start-up.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

DISABLE = "TALON_DISABLE_NUMBA"
FORCE = "TALON_FORCE_NUMBA"

_started = False  # a compiled kernel was handed out in this process: numba is imported and initialised
_foregone = 0.0  # twin work done so far that the compiled kernels would have saved, in start-up costs
_planned = 0.0  # work the running plan (planned_work) has declared and not yet done, in start-up costs


def numba_started() -> bool:
    """Whether this process has already started numba (then every family's ``warm_from`` applies)."""
    return _started


def twin_cost_so_far() -> float:
    """The work the twins did so far that compiled kernels would have saved, in numba start-ups
    (:class:`WorkThreshold`); numba is started when a call would bring it to 1."""
    return _foregone


@contextlib.contextmanager
def planned_work(share: float) -> Iterator[None]:
    """Declare the work of the run inside the ``with`` block before it starts, in numba start-ups:
    the sum of :meth:`WorkThreshold.share` over the calls it will make (work that cannot be known in
    advance, e.g. data-dependent, is left out: it is still counted call by call).

    Inside, a call runs compiled as soon as the twin work done so far plus what the plan has still
    to do reaches one start-up — at the run's first call when the run alone is worth starting numba
    for — where without the plan it would only be found out part-way, after twins did part of the
    run. A run declared below one start-up is dispatched as without a plan. The twin calls inside
    consume the plan (they are not counted twice); a nested plan is taken as part of the outer one.
    """
    global _planned
    if not share >= 0.0:  # NaN too
        raise ValueError(f"planned_work: the share must be >= 0, got {share!r}")
    outer, done_before = _planned, _foregone
    _planned = max(outer, float(share))
    try:
        yield
    finally:
        _planned = max(0.0, outer - (_foregone - done_before))


def planned_share() -> float:
    """The work the running plan (:func:`planned_work`) has still to do, in numba start-ups (0 outside one)."""
    return _planned


def _set(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0")


def mode() -> str:
    """``"twin"`` (``TALON_DISABLE_NUMBA`` set), ``"compiled"`` (``TALON_FORCE_NUMBA`` set) or ``"auto"``."""
    if _set(DISABLE):
        return "twin"
    return "compiled" if _set(FORCE) else "auto"


@functools.cache
def numba_installed() -> bool:
    """Whether numba can be imported, found without importing it."""
    return importlib.util.find_spec("numba") is not None


def numba_available() -> bool:
    """True when numba is installed and ``TALON_DISABLE_NUMBA`` is not set (does not import numba)."""
    return mode() != "twin" and numba_installed()


def _missing_numba() -> Exception:
    from talon.ir.errors import MissingDependencyError, install_hint

    return MissingDependencyError(f"{FORCE}=1 needs numba: " + install_hint("fast"))


def compiled(kernel: F) -> F | None:
    """``kernel`` compiled with ``numba.njit(cache=True, nogil=True)``, or None without numba or
    with ``TALON_DISABLE_NUMBA`` set (``TALON_FORCE_NUMBA`` without numba raises).

    The kernel must be written in numba's subset of Python (loops over numpy arrays). This does
    not look at the size of the work: callers ask their family's :class:`WorkThreshold` first.
    """
    if not numba_available():
        if mode() == "compiled":
            raise _missing_numba()
        return None
    global _started
    try:
        fn = _njit(kernel)
        _started = True
        return fn
    except ImportError:  # numba is installed but does not import (e.g. built for another numpy)
        if mode() == "compiled":
            raise
        return None


_helpers: list[Callable[..., Any]] = []  # marked by helper(), registered with numba at the first compile


def helper(fn: F) -> F:
    """Mark ``fn`` as a helper compiled into the kernels that call it (numba's ``register_jitable``).

    Returns ``fn`` itself, a plain Python function (the twins may call it too); it is registered
    with numba when the first kernel is compiled, so that importing a module of kernels does not
    import numba."""
    _helpers.append(fn)
    return fn


@functools.cache
def _njit(kernel):
    import numba
    from numba.extending import register_jitable

    while _helpers:
        register_jitable(_helpers.pop())
    return numba.njit(cache=True, nogil=True)(kernel)


class WorkThreshold:
    """When one family of compiled kernels is worth starting, by the size of the work of a call.

    ``work`` is the family's unit (events decoded, neuron-steps, candidates ...). In the default
    mode a call runs compiled when

    * numba is already started in this process (by any family: then loading one more cached
      kernel costs milliseconds) and ``work >= warm_from`` (the size from which the compiled kernel
      beats the twin per call); or
    * ``work / cold_from``, plus the same fraction of every earlier call (of at least its family's
      ``warm_from``) that ran a twin, of any family, reaches 1. ``cold_from`` is the size at which
      the twin costs as much as starting numba (import, loading the cached kernels) and running
      compiled, so the sum is the start-up cost the twins have spent so far: a process of many
      small calls, in one family or several, loses at most about one start-up (rent or buy).

    Inside :func:`planned_work`, the work the plan has still to do counts as well (instead of this
    call's alone): a run declared as worth a start-up starts numba at its first call.

    ``TALON_DISABLE_NUMBA`` / ``TALON_FORCE_NUMBA`` override the size (module docstring). Either
    path gives the same results, so the choice changes only the time.
    """

    def __init__(self, family: str, cold_from: int, warm_from: int) -> None:
        if not 0 <= warm_from <= cold_from:
            raise ValueError(f"{family}: need 0 <= warm_from <= cold_from, got {warm_from}, {cold_from}")
        self.family = family
        self.cold_from = cold_from
        self.warm_from = warm_from

    def share(self, work: int) -> float:
        """``work`` in numba start-ups, ``work / cold_from``; 0 below ``warm_from`` (such a call never
        runs compiled). What :func:`planned_work` adds up."""
        if work < self.warm_from:
            return 0.0
        return work / self.cold_from if self.cold_from else 1.0

    def use_compiled(self, work: int, count: bool = True) -> bool:
        """Whether a call of size ``work`` should run the compiled kernel (then call :func:`compiled`).

        ``count=False``: a declined call's work is not added to the history (its twin asks again
        for the same work in smaller calls, which count)."""
        global _foregone, _planned
        which = mode()
        if which == "twin":
            return False
        if which == "compiled":
            if not numba_installed():
                raise _missing_numba()
            return True
        if not numba_installed() or work < self.warm_from:
            return False
        share = self.share(work)
        if _started or _foregone + max(share, _planned) >= 1.0:
            return True
        if count:
            _foregone += share
            _planned = max(0.0, _planned - share)
        return False

    def __repr__(self) -> str:
        return f"WorkThreshold({self.family!r}, cold_from={self.cold_from}, warm_from={self.warm_from})"


# CPU time a new process spends starting numba: importing numba and llvmlite, initialising LLVM and
# loading its first kernel from numba's disk cache. Measured (bench/startup_costs.py, medians of 3
# new processes at load 12): 0.58 s with the float32 neuron loop, 0.52 s with run_sequence's
# kernels, 0.95 s with the integer engine's (neuron loop and quantization); then 10-20 ms per
# further family. Compiling the kernels the first time on a machine (an empty cache: 2-4 s, and
# ~2 s per further family) happens once and is not counted here.
NUMBA_STARTUP_NS = 600_000_000


@dataclass(frozen=True)
class LoopCost:
    """What each path of a compiled time loop costs, in nanoseconds of CPU time: a call over
    ``steps`` steps of ``elements`` elements each (``batch x neurons``) costs

        twin:   steps * (twin_step + twin_element * elements)
        kernel: steps * (kernel_step + kernel_element * elements)

    The twin (a numpy or PyTorch step loop) pays a fixed dispatch cost per step besides its cost per
    element; the kernel (one compiled call over the sequence) almost only the elements. A call's
    work for its family's :class:`WorkThreshold` (:meth:`threshold`) is :meth:`saving_ns`, what the
    kernel saves over the twin, and a start-up is ``NUMBA_STARTUP_NS``: a call runs compiled when
    numba is started and it saves anything (``warm_from`` 1 ns), or when the savings the twins
    forwent so far plus this call's (or the declared run's, :func:`planned_work`) pay for starting
    numba. Where the kernel is no quicker per element than the twin (``kernel_element >=
    twin_element``) wide enough steps save nothing and keep the twin, numba started or not.
    """

    family: str
    twin_step: float
    twin_element: float
    kernel_step: float
    kernel_element: float

    def twin_ns(self, steps: int, elements: int) -> float:
        return steps * (self.twin_step + self.twin_element * elements)

    def kernel_ns(self, steps: int, elements: int) -> float:
        return steps * (self.kernel_step + self.kernel_element * elements)

    def saving_ns(self, steps: int, elements: int) -> int:
        """``twin_ns - kernel_ns`` rounded (negative where the twin is quicker): the call's work."""
        return round(self.twin_ns(steps, elements) - self.kernel_ns(steps, elements))

    def crossover_elements(self) -> float | None:
        """The elements per step from which the kernel saves nothing (the twin is quicker per
        call, numba started or not); None when the kernel is quicker at every width."""
        gain = self.twin_element - self.kernel_element
        if gain >= 0:
            return None
        return max(0.0, (self.twin_step - self.kernel_step) / -gain)

    def cold_steps(self, elements: int) -> float:
        """The steps of ``elements`` each from which one call pays for starting numba (inf when it never does)."""
        per_step = self.saving_ns(1_000_000, elements) / 1_000_000
        return NUMBA_STARTUP_NS / per_step if per_step > 0 else float("inf")

    def threshold(self) -> WorkThreshold:
        """The family's :class:`WorkThreshold`, in nanoseconds saved: ``cold_from`` a start-up, ``warm_from`` 1."""
        return WorkThreshold(self.family, cold_from=NUMBA_STARTUP_NS, warm_from=1)
