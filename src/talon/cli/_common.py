"""Shared plumbing of the ``talon`` command: the group, exit codes, JSON and table output, error reporting.

A command module imports ``main`` from here and registers with ``@main.command()``; ``talon/cli/__init__.py``
imports every command module once.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

import click


class _Talon(click.Group):
    """Usage errors (unknown option, bad value, missing argument) as one ``error:`` line, exit 2;
    ``talon`` alone prints the command list (exit 0)."""

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
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
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


def _reports_errors(func):
    """Turn bad input (missing or damaged files, unknown nodes, invalid values) into exit code 2
    with one line on stderr instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from talon.sdk import TalonError  # imported on use: `talon --help` stays instant

        try:
            return func(*args, **kwargs)
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


def _table(title: str, *columns: str, right: tuple[str, ...] = ()):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", overflow="fold")
    return table


def _shape(shape) -> str:
    return "?" if shape is None else str(list(shape))


def _read(file: Path):
    from talon import sdk

    return sdk.read(file)
