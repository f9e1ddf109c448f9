"""Limits that keep a small hostile file from becoming a large allocation or a deep recursion.

**Decoded-bytes budget.** Reading one file (``ir.read``, ``read_nir``) may allocate at most
``max_bytes`` bytes of arrays: the declared size of every dataset it reads, every constant
("fill") array it expands and every scalar parameter a neuron layer broadcasts to its shape are
charged *before* the allocation, and going over raises :class:`BudgetExceededError` naming the
array. The default is :func:`default_budget` — ``max(256 MiB, 4 × the file's size)``: an
uncompressed file decodes to about its own size, so only compressed or broadcast data can reach
the limit; pass ``max_bytes=`` to read larger ones.

Outside a read there is no budget, but an allocation the machine cannot make is still reported
as a :class:`~talon.ir.ShapeError` naming the layer, never as a raw ``MemoryError``.

**Nesting.** Subgraphs, metadata values and NIR groups may nest at most :data:`MAX_NESTING`
levels (a deeper or cyclic structure is refused by name rather than overflowing the stack).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterable, Iterator

from .errors import TalonError

MIN_BUDGET = 256 << 20
FILE_SIZE_FACTOR = 4
MAX_NESTING = 64
MAX_DIM = (1 << 63) - 1  # a shape dimension must fit int64


class BudgetExceededError(TalonError, ValueError):
    """Reading a file would allocate more than its decoded-bytes budget (``max_bytes``)."""


def default_budget(file_size: int) -> int:
    """The default ``max_bytes`` for a file of ``file_size`` bytes: ``max(256 MiB, 4 × file_size)``."""
    return max(MIN_BUDGET, FILE_SIZE_FACTOR * int(file_size))


class ByteBudget:
    """Bytes one read may still allocate; :meth:`charge` before every allocation."""

    def __init__(self, limit: int, source: str):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"max_bytes must be a non-negative int, got {limit!r}")
        self.limit, self.used, self.source = limit, 0, source

    def charge(self, nbytes: int, what: str) -> None:
        self.used += int(nbytes)
        if self.used > self.limit:
            raise BudgetExceededError(
                f"{what} needs {int(nbytes):,} bytes, which takes reading {self.source} past its budget of "
                f"{self.limit:,} decoded bytes; if the file is trusted, pass a larger max_bytes"
            )


_active: contextvars.ContextVar[ByteBudget | None] = contextvars.ContextVar("talon_byte_budget", default=None)


@contextlib.contextmanager
def active_budget(budget: ByteBudget) -> Iterator[ByteBudget]:
    """Make ``budget`` the one :func:`charge` uses (node constructors run inside a read)."""
    token = _active.set(budget)
    try:
        yield budget
    finally:
        _active.reset(token)


def charge(nbytes: int, what: str) -> None:
    """Charge ``nbytes`` to the active read's budget (no-op outside a read)."""
    budget = _active.get()
    if budget is not None:
        budget.charge(nbytes, what)


def element_count(shape: Iterable[int], where: str) -> int:
    """The number of elements of ``shape`` (exact Python int; every dimension must fit int64)."""
    dims = list(shape)
    for d in dims:
        if not 0 <= d <= MAX_DIM:
            raise ValueError(f"{where}: shape dimension {d} is out of range (0 .. 2**63-1)")
    return math.prod(dims)
