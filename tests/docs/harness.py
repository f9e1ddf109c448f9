"""Run the fenced blocks of a Markdown page as a test: the docs are code.

The rules every page of ``README.md`` and ``docs/`` follows (also in ``docs/contributing.md``):

1. Each page runs on its own, top to bottom, in a fresh temporary working directory. Its
   ```` ```python ```` blocks run in order in **one namespace per page** (a fresh module), so a
   block may use what an earlier block of the same page defined, never another page's names.
   Blocks are complete: imports included, no ``...`` elisions.
2. A ```` ```text ```` block directly after a python block (only blank lines between) is that
   block's **expected stdout**, compared exactly after stripping trailing whitespace of every
   line and blank lines at both ends. ``...`` stands for any text: inside a line it matches any
   characters of that line, on a line of its own any number of whole lines (doctest's
   ELLIPSIS). Use it only for what cannot be deterministic (measured times, temporary paths,
   versions) and say so in the prose; pin seeds and round everything else.
   A python block without a text block after it may print anything.
3. A ```` ```console ```` block runs its ``$ command`` lines one by one with ``bash`` in the same
   temporary directory, with the Python environment's ``bin`` folder (``talon``, ``python``) first
   on ``PATH``. The lines after a command, up to the next ``$``, are its expected output: stdout
   and stderr together, as a terminal shows them, compared as in rule 2. ``$?`` carries the
   previous command's exit status (``$ echo $?`` works). A command that exits non-zero fails the
   page unless the page shows the status: the command line contains ``$?`` or the next command
   starts with ``echo $?``.
4. ```` ```bash ````, ```` ```sh ```` and ```` ```shell ```` blocks look runnable but are not run:
   each must be written as ``console`` or be exempted (rule 6). An unlabelled block directly after
   a python block is refused: label it ``text`` (expected output) or with another language.
5. Every other language (``json``, ``yaml``, ``text`` elsewhere, an unlabelled block of
   equations or pseudo-code, ...) is shown, not run.
6. ``<!-- not-run: <reason> -->`` on the line before a block (blank lines allowed between)
   exempts it; the reason is required. Use it rarely: installing, ``make`` itself.

A python block that needs an optional dependency that is not installed
(``talon.ir.MissingDependencyError`` or a ``ModuleNotFoundError`` for a third-party package)
skips the page; in CI, where every dependency is installed, a skip is a failure
(``tests/conftest.py``).

A failure names the page, the block number (1-based, counting every fenced block of the page)
and the line of the Markdown file; Python tracebacks point at the page's own lines.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path

from tests.subprocesses import child_env

PROJECT = Path(__file__).resolve().parents[2]

RUNNABLE_SHELLS = ("bash", "sh", "shell", "zsh")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:(?P<reason>.*?)-->\s*$")


class PageError(AssertionError):
    """A page that does not run as written; the message says where and why."""


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    number: int  # 1-based, among every fenced block of the page
    language: str  # first word of the info string, lower case; "" when unlabelled
    body: str
    line: int  # 1-based line of the opening fence in the page
    not_run: str | None  # the reason given by <!-- not-run: reason -->, else None
    follows: int | None  # number of the block directly before (only blank lines between), else None

    @property
    def body_line(self) -> int:
        """The page line of the body's first line."""
        return self.line + 1


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT))
    except ValueError:
        return str(path)


def discover_pages(root: Path = PROJECT) -> list[Path]:
    """``README.md`` and every ``*.md`` under ``docs/`` (recursively), in a stable order."""
    pages = [root / "README.md"] if (root / "README.md").exists() else []
    return pages + sorted((root / "docs").rglob("*.md"))


def parse_blocks(text: str, page: str = "<page>") -> list[Block]:
    """Every fenced block of a Markdown text, in order (indented fences inside list items too)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    last_end: int | None = None  # index of the closing fence of the previous block
    pending_reason: str | None = None
    while i < len(lines):
        line = lines[i]
        marker = _NOT_RUN.match(line)
        if marker:
            pending_reason = marker.group("reason").strip()
            if not pending_reason:
                raise PageError(f"{page}, line {i + 1}: '<!-- not-run: -->' needs a reason")
            i += 1
            continue
        opening = _FENCE.match(line)
        if not opening:
            if line.strip():
                pending_reason = None
            i += 1
            continue
        indent, fence = len(opening.group("indent")), opening.group("fence")
        language = (opening.group("info").strip().split() or [""])[0].lower()
        body, j = [], i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing
                and closing.group("fence")[0] == fence[0]
                and len(closing.group("fence")) >= len(fence)
                and not closing.group("info").strip()
            ):
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j].lstrip())
            j += 1
        else:
            raise PageError(f"{page}, line {i + 1}: the block opened here is never closed")
        between = lines[last_end + 1 : i] if last_end is not None else None
        follows = blocks[-1].number if between is not None and all(not s.strip() for s in between) else None
        blocks.append(Block(len(blocks) + 1, language, "\n".join(body), i + 1, pending_reason, follows))
        pending_reason, last_end, i = None, j, j + 1
    return blocks


# ---- comparing output -----------------------------------------------------------------------------


def _normalise(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def output_matches(expected: str, actual: str) -> bool:
    """Rule 2: exact after normalising whitespace, with ``...`` as a wildcard."""
    want, got = _normalise(expected), _normalise(actual)
    if not any("..." in line for line in want):
        return want == got
    pattern = []
    for line in want:
        if line.strip() == "...":
            pattern.append(r"(?:[^\n]*\n)*?")
        else:
            pattern.append("[^\n]*?".join(re.escape(part) for part in line.split("...")) + r"\n")
    return re.fullmatch("".join(pattern), "".join(line + "\n" for line in got)) is not None


def _difference(expected: str, actual: str) -> str:
    import difflib

    diff = difflib.unified_diff(_normalise(expected), _normalise(actual), "expected (page)", "actual", lineterm="")
    return "\n".join(diff)


# ---- running a page -------------------------------------------------------------------------------


class _Skip(Exception):
    """An optional dependency of the page is not installed."""


def _optional_dependency_missing(exc: BaseException) -> bool:
    if isinstance(exc, ModuleNotFoundError):
        return not (exc.name or "").startswith(("talon", "t1c"))
    return type(exc).__name__ == "MissingDependencyError"


def _page_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the page's own frames on (the harness's frames are noise)."""
    frames = traceback.extract_tb(exc.__traceback__)
    start = next((k for k, f in enumerate(frames) if f.filename == filename), 0)
    lines = traceback.format_list(frames[start:]) + traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def _run_python(block: Block, module: types.ModuleType, where: str, filename: str) -> str:
    source = "\n" * (block.body_line - 1) + block.body  # tracebacks then give the page's line numbers
    try:
        code = compile(source, filename, "exec")
    except SyntaxError as exc:
        raise PageError(f"{where}: does not compile: {exc.msg} (line {exc.lineno})") from None
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            exec(code, module.__dict__)
    except Exception as exc:
        if _optional_dependency_missing(exc):
            raise _Skip(f"{where}: {type(exc).__name__}: {exc}") from exc
        raise PageError(f"{where}: raised\n{_page_traceback(exc, filename)}\n--- printed before ---\n"
                        f"{buffer.getvalue()}") from None  # fmt: skip
    return buffer.getvalue()


@dataclass(frozen=True)
class Command:
    line: int  # page line of the "$ " line
    command: str
    expected: str


def console_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    current: list | None = None
    for k, text in enumerate(block.body.split("\n")):
        if text.startswith("$ ") or text == "$":
            if current:
                commands.append(Command(current[0], current[1], "\n".join(current[2])))
            current = [block.body_line + k, text[2:].strip(), []]
        elif current is None:
            if text.strip():
                raise PageError(f"line {block.body_line + k}: a console block starts with a '$ command' line")
        else:
            current[2].append(text)
    if current:
        commands.append(Command(current[0], current[1], "\n".join(current[2])))
    return commands


def _environment() -> dict[str, str]:
    # the talon under test wins (tests/subprocesses.py), as it does for the python blocks of the test run
    env = child_env(COLUMNS=None, LINES=None, FORCE_COLOR=None, CLICOLOR_FORCE=None)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.update(NO_COLOR="1", TERM="dumb", PYTHONHASHSEED="0")
    return env


def _run_console(block: Block, where: str, cwd: Path) -> None:
    try:
        commands = console_commands(block)
    except PageError as exc:
        raise PageError(f"{where}, {exc}") from None
    env, status = _environment(), 0
    for k, command in enumerate(commands):
        shown = "$?" in command.command or (k + 1 < len(commands) and commands[k + 1].command.startswith("echo $?"))
        proc = subprocess.run(
            ["bash", "-c", f"(exit {status}); {command.command}"],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
        )  # fmt: skip
        status = proc.returncode
        at = f"{where}, line {command.line}: $ {command.command}"
        if status != 0 and not shown:
            raise PageError(f"{at}\nexited with status {status} (show it with '$ echo $?' if intended):\n{proc.stdout}")
        if not output_matches(command.expected, proc.stdout):
            raise PageError(f"{at}\nprinted something else:\n{_difference(command.expected, proc.stdout)}")


def run_page(path: Path, workdir: Path) -> int:
    """Run every block of the page at ``path`` in ``workdir``; return how many blocks ran.

    Raises ``PageError`` (an AssertionError) naming page, block and line at the first failure,
    and ``_Skip`` when an optional dependency is missing.
    """
    page = relative(path)
    blocks = parse_blocks(path.read_text(encoding="utf-8"), page)
    module = types.ModuleType("docs_page_" + re.sub(r"\W", "_", page))
    module.__file__ = str(workdir / "page.py")
    sys.modules[module.__name__] = module
    previous_cwd = Path.cwd()
    os.chdir(workdir)
    ran = 0
    try:
        for index, block in enumerate(blocks):
            where = f"{page}, block {block.number} ({block.language or 'unlabelled'}, line {block.line})"
            if block.not_run is not None:
                continue
            if block.language in RUNNABLE_SHELLS:
                raise PageError(
                    f"{where}: a {block.language} block is not run; write it as a 'console' block "
                    "('$ command' lines and their output) or precede it by '<!-- not-run: reason -->'"
                )
            previous = blocks[index - 1] if index else None
            after_python = block.follows is not None and previous is not None and previous.language == "python"
            if block.language == "" and after_python and previous.not_run is None:
                raise PageError(f"{where}: an unlabelled block right after a python block; label it 'text' if it is "
                                "that block's output, or give it another language")  # fmt: skip
            if block.language == "python":
                printed = _run_python(block, module, where, str(path.resolve()))
                following = blocks[index + 1] if index + 1 < len(blocks) else None
                shows_output = (
                    following is not None
                    and following.language == "text"
                    and following.follows == block.number
                    and following.not_run is None
                )
                if shows_output and not output_matches(following.body, printed):
                    raise PageError(
                        f"{where}: printed something else than block {following.number} (line {following.line}):\n"
                        f"{_difference(following.body, printed)}"
                    )
                ran += 1
            elif block.language == "console":
                _run_console(block, where, workdir)
                ran += 1
    finally:
        os.chdir(previous_cwd)
        sys.modules.pop(module.__name__, None)
    return ran


def show_outputs(path: Path) -> None:
    """Print what each python block of a page prints (to write its ``text`` blocks)."""
    import tempfile

    page = relative(path)
    blocks = parse_blocks(path.read_text(encoding="utf-8"), page)
    module = types.ModuleType("docs_page_show")
    sys.modules[module.__name__] = module
    previous_cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as work:
        os.chdir(work)
        try:
            for block in blocks:
                if block.language == "python" and block.not_run is None:
                    where = f"{page}, block {block.number} (line {block.line})"
                    printed = _run_python(block, module, where, str(path.resolve()))
                    print(f"--- {where} ---\n{printed}", end="", file=sys.__stdout__)
        finally:
            os.chdir(previous_cwd)


if __name__ == "__main__":  # python -m tests.docs.harness docs/page.md: the printed output of each python block
    for argument in sys.argv[1:]:
        show_outputs(Path(argument))
