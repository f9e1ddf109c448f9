"""Rich consoles that suit where the output goes: a terminal, or a pipe / file.

On a terminal rich uses the terminal's width and colours. Piped into a file or another program
there is no width to respect, so lines are never wrapped (a table keeps one row per line, for
``grep`` and friends) and no colour codes are written; ``COLUMNS`` still sets a width if given.
"""

from __future__ import annotations

import os

PIPE_WIDTH = 1000  # wide enough that no table or line of talon's output wraps


def console(*, stderr: bool = False):
    """A ``rich.console.Console`` for stdout (or stderr) that adapts to a pipe."""
    from rich.console import Console

    terminal = Console(highlight=False, stderr=stderr)
    if terminal.is_terminal or os.environ.get("COLUMNS"):
        return terminal
    return Console(highlight=False, stderr=stderr, width=PIPE_WIDTH, no_color=True)
