"""Rich consoles that suit where the output goes: a terminal, or a pipe / file.

On a terminal rich uses the terminal's width and colours. Piped into a file or another program
there is no width to respect, so lines are never wrapped (a table keeps one row per line, for
``grep`` and friends) and no colour codes are written; ``COLUMNS`` still sets a width if given.

A pipe whose reader went away (``talon inspect m.t1c | head -1``) raises ``BrokenPipeError``, as
any other write does, instead of rich's own ``SystemExit(1)`` (exit 1 means "findings" to the
``talon`` command, which ends such a run quietly with exit 141).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
from collections.abc import Callable, Iterator

PIPE_WIDTH = 1000  # wide enough that no table or line of talon's output wraps


def console(*, stderr: bool = False):
    """A ``rich.console.Console`` for stdout (or stderr) that adapts to a pipe."""
    Console = _console_class()
    terminal = Console(highlight=False, stderr=stderr)
    if terminal.is_terminal or os.environ.get("COLUMNS"):
        return terminal
    return Console(highlight=False, stderr=stderr, width=PIPE_WIDTH, no_color=True)


@functools.cache
def _console_class():
    """rich's ``Console`` (imported on first use) with a closed pipe raised as ``BrokenPipeError``."""
    from rich.console import Console

    class PipeAwareConsole(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")

    return PipeAwareConsole


@contextlib.contextmanager
def layer_progress(description: str, *, disable: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (shown on a terminal only, removed when done) advanced by the
    CPU backend's ``progress(done, total)`` callback, one tick per layer of each run."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    stderr = console(stderr=True)
    disable = disable or not stderr.is_terminal  # nothing (not even a blank line) in a pipe or log
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("layers"))
    with Progress(*columns, TimeElapsedColumn(), console=stderr, transient=True, disable=disable) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
