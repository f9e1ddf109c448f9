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

Why the size decides: starting numba costs about half a second to a second and a half per process
(importing numba and llvmlite, then initialising LLVM at the first kernel loaded from numba's disk
cache; compiling a kernel the first time on a machine takes seconds more), while the twins start at
once. Once one kernel has run, loading another from the cache costs milliseconds. A one-shot
command on a small input (``talon simulate`` of a small model, ``talon events info`` of a short
recording) is quicker with the twins; a large input or a long-running process earns the start-up
back. The thresholds and their measurements: docs/backend.md §9.2 and each family's module.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

DISABLE = "TALON_DISABLE_NUMBA"
FORCE = "TALON_FORCE_NUMBA"

_started = False  # a compiled kernel was handed out in this process: numba is imported and initialised
_foregone = 0.0  # twin work done so far that the compiled kernels would have saved, in start-up costs


def numba_started() -> bool:
    """Whether this process has already started numba (then every family's ``warm_from`` applies)."""
    return _started


def twin_cost_so_far() -> float:
    """The work the twins did so far that compiled kernels would have saved, in numba start-ups
    (:class:`WorkThreshold`); numba is started when a call would bring it to 1."""
    return _foregone


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


@functools.cache
def _njit(kernel):
    import numba

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

    ``TALON_DISABLE_NUMBA`` / ``TALON_FORCE_NUMBA`` override the size (module docstring). Either
    path gives the same results, so the choice changes only the time.
    """

    def __init__(self, family: str, cold_from: int, warm_from: int) -> None:
        if not 0 <= warm_from <= cold_from:
            raise ValueError(f"{family}: need 0 <= warm_from <= cold_from, got {warm_from}, {cold_from}")
        self.family = family
        self.cold_from = cold_from
        self.warm_from = warm_from

    def use_compiled(self, work: int, count: bool = True) -> bool:
        """Whether a call of size ``work`` should run the compiled kernel (then call :func:`compiled`).

        ``count=False``: a declined call's work is not added to the history (its twin asks again
        for the same work in smaller calls, which count)."""
        global _foregone
        which = mode()
        if which == "twin":
            return False
        if which == "compiled":
            if not numba_installed():
                raise _missing_numba()
            return True
        if not numba_installed() or work < self.warm_from:
            return False
        share = work / self.cold_from if self.cold_from else 1.0
        if _started or _foregone + share >= 1.0:
            return True
        if count:
            _foregone += share
        return False

    def __repr__(self) -> str:
        return f"WorkThreshold({self.family!r}, cold_from={self.cold_from}, warm_from={self.warm_from})"
