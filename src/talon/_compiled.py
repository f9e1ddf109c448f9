"""Compiled kernels through numba, when the ``fast`` extra is installed.

Contract: every compiled kernel has a numpy twin that returns identical results, and the caller
chooses between them with :func:`compiled`. Set ``TALON_DISABLE_NUMBA=1`` to force the numpy
twins (the tests run both). Call :func:`compiled` where the kernel is used, not at import time:
importing talon must not import numba; the compiled function is cached per kernel (and on disk).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@functools.cache
def numba_available() -> bool:
    """True when numba imports and ``TALON_DISABLE_NUMBA`` is not set."""
    if os.environ.get("TALON_DISABLE_NUMBA", "").strip() not in ("", "0"):
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def compiled(kernel: F) -> F | None:
    """``kernel`` compiled with ``numba.njit(cache=True, nogil=True)``, or None without numba.

    The kernel must be written in numba's subset of Python (loops over numpy arrays).
    """
    if not numba_available():
        return None
    import numba

    return numba.njit(cache=True, nogil=True)(kernel)
