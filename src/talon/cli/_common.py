"""Shared plumbing of the ``talon`` command: the group, exit codes, JSON and table output, error reporting.

A command module imports ``main`` from here and registers with ``@main.command()``; ``talon/cli/__init__.py``
imports every command module once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import click

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a process stopped by Ctrl-C
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE, as shells report a writer whose reader went away


def _stdout_closed() -> None:
    """The reader of stdout went away (``talon ... | head -1``): stop quietly, exit 141. Later
    writes (and the flush at exit) go to /dev/null instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor
        pass
    sys.exit(EXIT_PIPE_CLOSED)


class _Talon(click.Group):
    """Usage errors (unknown option, bad value, missing argument) as one ``error:`` line, exit 2;
    ``talon`` alone prints the command list (exit 0); a closed stdout ends quietly with exit 141,
    Ctrl-C with ``Aborted!`` and exit 130."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # click would exit 1, which means "findings" here
            _stdout_closed()

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare `talon`: the command list, not an error
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.UsageError as exc:
            sub = " ".join(exc.ctx.command_path.split()[1:]) if exc.ctx else ""  # 'events frames', not 'frames'
            hint = f" (see 'talon {sub} -h')" if sub else " (see 'talon -h')"
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_INTERRUPTED)
        try:
            sys.stdout.flush()  # a buffered report whose reader is gone fails here, not at exit
        except BrokenPipeError:
            _stdout_closed()
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Talon, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="talon-toolchain", prog_name="talon")
def main() -> None:
    """talon: neuromorphic toolchain around TALON IR (.t1c files)."""


EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2

_json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document to stdout.")
_file_argument = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _printable(text: Any, *, keep_newlines: bool = False) -> str:
    """``text`` with terminal control characters (ESC, newlines, bidi overrides …) shown as escapes,
    so a node name cannot move the cursor, recolour the terminal or forge an ``error:`` line.
    ``keep_newlines`` keeps the line structure of a multi-line report (its lines are escaped)."""
    if keep_newlines:
        return "\n".join(_printable(line) for line in str(text).split("\n"))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else f"\\u{ord(m.group()):04x}",
                        str(text))  # fmt: skip


def _one_line(exc: BaseException) -> str:
    text = " ".join(_printable(" ".join(str(exc).split())).split())
    return text or type(exc).__name__


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _refuse_overwriting_inputs(output: Path | None, *inputs: Any, option: str = "-o") -> None:
    """Exit 2 when ``output`` names one of the command's input files: writing an HTML page, a JSON
    descriptor or a result table there would destroy the input (checked before any work)."""
    if output is None:
        return
    target = Path(output).resolve()
    for item in inputs:
        if item is None or not isinstance(item, (str, Path)) or not Path(item).exists():
            continue
        if Path(item).resolve() == target:
            _fail(f"{option} {output} is an input of this command; writing there would destroy it: give another path")


def _graph_output(output: Path | None) -> None:
    """Exit 2, before any work, when ``-o`` names a file that is not a ``.t1c``: a typo there
    (``-o events.h5``, ``-o data.npz``) replaced a recording or a data set with a graph."""
    # an empty name ("-o ''") is left to the writer, which names it
    if output is not None and Path(output).name and Path(output).suffix.lower() != ".t1c":
        _fail(f"-o {output}: the graph is written as a .t1c file; give a path ending in .t1c")


def _reports_errors(func):
    """Turn bad input (missing or damaged files, unknown nodes, invalid values) into exit code 2
    with one line on stderr instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from talon.sdk import TalonError  # imported on use: `talon --help` stays instant

        try:
            return func(*args, **kwargs)
        except BrokenPipeError:  # stdout's reader went away: not bad input (_Talon.invoke)
            raise
        except (OSError, TalonError, ValueError, ArithmeticError) as exc:  # TalonError covers UnknownNodeError
            _fail(_one_line(exc))
        except MemoryError:
            _fail("not enough memory for this input (a shape, --steps or a delay is too large)")
        except RecursionError:
            _fail("the input nests too deeply to process")

    return wrapper


def _emit_json(document: Any) -> None:
    from talon.sdk._common import jsonable

    click.echo(json.dumps(jsonable(document, max_list=256), indent=2, allow_nan=False))


def _console():
    from talon._terminal import console

    return console()


def _text(value: Any):
    """A rich Text (no markup interpretation: node names may contain brackets)."""
    from rich.text import Text

    return Text(_printable(value))


@functools.cache
def _titled_table_class():
    """A rich ``Table`` whose title is a line of its own, wrapped at the console's width (rich wraps
    a table's title at the *table's* width: "model.t1c: 10 steps, fp32" over a two-column table
    became three lines on an 80-column terminal)."""
    from rich.table import Table
    from rich.text import Text

    class TitledTable(Table):
        def __init__(self, heading: str, **kwargs):
            super().__init__(**kwargs)
            self.heading = heading

        def __rich_console__(self, console, options):
            yield Text(self.heading, style="table.title", overflow="fold")
            yield from super().__rich_console__(console, options)

    return TitledTable


def _table(title: str, *columns: str, right: tuple[str, ...] = ()):
    """A rich table with ``columns`` (the ones in ``right`` right-aligned) under a ``title`` line;
    cells fold rather than being cut."""
    table = _titled_table_class()(_printable(title))
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    return table


RICH_TABLE_ROWS = 100
"""Tables up to this many rows are drawn by rich (boxes, wrapped cells); longer listings are
aligned plain text, one row per line, computed once (rich measures and renders every cell: about
a millisecond per row, 7-13 s for a 3,000-node ``inspect``)."""


def _listing(title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]], *, right: tuple[str, ...] = ()) -> None:
    """Print a table of ``rows`` (cells: any value, shown as ``_printable(str(value))``): a rich table
    up to :data:`RICH_TABLE_ROWS` rows, else aligned plain text (title, header, rule, one line per row)."""
    console = _console()
    if len(rows) <= RICH_TABLE_ROWS:
        table = _table(title, *columns, right=right)
        for row in rows:
            table.add_row(*(_text(cell) for cell in row))
        console.print(table)
        return
    from rich.cells import cell_len

    cells = [[_printable(cell) for cell in row] for row in rows]
    widths = [max([cell_len(col)] + [cell_len(row[i]) for row in cells]) for i, col in enumerate(columns)]
    flush = [col in right for col in columns]

    def line(row: list[str]) -> str:
        padded = (
            " " * (w - cell_len(c)) + c if r else c + " " * (w - cell_len(c))
            for c, w, r in zip(row, widths, flush, strict=True)
        )
        return "  ".join(padded).rstrip()

    out = [_printable(title), line(list(columns)), "  ".join("─" * w for w in widths)]
    out += [line(row) for row in cells]
    chunk = 2000  # a pipe's reader that goes away is noticed while writing, not after
    for start in range(0, len(out), chunk):
        click.echo("\n".join(out[start : start + chunk]))


def _plural(n: int, word: str) -> str:
    """``'1 core'``, ``'2 cores'``, ``'1,024 cores'``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _echo_report(text: str) -> None:
    """Print a multi-line text report. With a known width (a terminal, or ``COLUMNS``) a line wider
    than the console wraps at word boundaries with its indentation kept (continuations of a
    ``- item`` hang under the item's text), except column-aligned rows (three spaces or more inside),
    which wrapping would scramble; into a pipe every line stays whole, for ``grep``."""
    import textwrap

    from talon._terminal import PIPE_WIDTH

    width = _console().width
    out: list[str] = []
    for line in _printable(text, keep_newlines=True).split("\n"):
        if width >= PIPE_WIDTH or len(line) <= width or "   " in line.strip():  # a table row keeps its columns
            out.append(line)
            continue
        body = line.lstrip()
        hang = " " * (len(line) - len(body) + (2 if body.startswith("- ") else 4))
        out += textwrap.wrap(line, width, subsequent_indent=hang, break_long_words=False, break_on_hyphens=False)
    click.echo("\n".join(out))


def _shape(shape) -> str:
    return "?" if shape is None else str(list(shape))


@contextlib.contextmanager
def _working(message: str, *, disable: bool = False):
    """A transient spinner with ``message`` on stderr while the block runs: on a terminal only
    (nothing in a pipe, a log or with ``--json``). Reading, linting or partitioning a graph of tens
    of thousands of nodes takes seconds with nothing else on the screen."""
    from talon._terminal import console

    stderr = console(stderr=True)
    if disable or not stderr.is_terminal:
        yield
        return
    with stderr.status(_text(message), spinner="dots"):
        yield


def _read(file: Path):
    from talon import sdk

    return sdk.read(file)
