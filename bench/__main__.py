"""``python -m bench [--update-docs [--allow-busy]] [TOPIC ...]``: run the ``bench_*`` modules and report.

Each module's ``main()`` returns its rows (``bench.common.Row``): our median time and the
reference's, measured side by side in one process. The host is shared and noisy, so the table
reports ratios; absolute times are indicative only.

The tables are written to ``bench/results/latest.md`` (not tracked by git), so a run never dirties
the checkout; ``--update-docs`` also writes them to ``docs/benchmarks.md``. ``TOPIC`` limits the run
to some modules (``python -m bench bridge jax`` runs ``bench_bridge`` and ``bench_jax``); their
sections replace the same sections of the page and the other sections are kept.

The load average is read before and after each module and recorded in its section
(``bench.load``). A module measured with the load above the core count gets a warning on stderr,
and ``--update-docs`` refuses to write such a run into the page unless ``--allow-busy`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import re
import sys
from collections.abc import Callable
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.common import Row, fmt_time
from bench.load import LoadMonitor

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"
RESULTS = HERE / "results" / "latest.md"
PACKAGES = ("torch", "snntorch", "norse", "nir", "nirtorch", "jax", "spyx", "h5py", "numpy", "safetensors")


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(out)


HEADER = """# Benchmarks

Produced by `make bench BENCH_ARGS=--update-docs` (`python -m bench --update-docs`; a plain
`make bench` writes the same tables to the untracked `bench/results/latest.md`). Every row times
talon and a reference on the same input in the same process, the runs interleaved (median of
repeated runs);
**ratio = reference time / talon time**, so above 1 talon is faster. The host is shared and
noisy: compare ratios, not absolute times. One section per `bench/bench_<topic>.py` module;
`python -m bench --update-docs TOPIC ...` re-measures those sections and keeps the others.

Each section records the 1-minute load average before and after its module ran. On a busy
machine — load above the number of cores — a ratio can be far off (a 2-thread PyTorch loop was
measured to vary up to 30× at load above 5 on 2 cores), so the run prints a `warning:` for each
such module, and `--update-docs` refuses to write a busy run into this page: it stops before
measuring when the machine is busy at the start (exit status 2) and leaves the page alone when it
became busy during the run (status 1; the tables are still in `bench/results/latest.md`). Check
`uptime` first; to record busy numbers anyway, say so: `python -m bench --update-docs --allow-busy`
(`make bench BENCH_ARGS="--update-docs --allow-busy"`).
"""


def _section(name: str, rows: list[Row], extra: list[str]) -> str:
    """One module's results between markers, so that a later partial run can replace it alone."""
    lines = [
        f"<!-- {name} -->",
        f"## {name[len('bench_') :]} (`bench/{name}.py`)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}, "
        f"{platform.system()}; measured {date.today().isoformat()}.",
        f"Libraries: {_versions()}.",
        "",
    ]
    if rows:
        lines += ["| benchmark | case | talon | reference | reference time | ratio |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}×"
        lines.append(
            f"| {r.benchmark} | {r.case} | {fmt_time(r.ours_s)} | {r.reference} | {fmt_time(r.reference_s)} | {ratio} |"
        )
    if extra:
        lines += ["", *extra]
    return "\n".join([*lines, f"<!-- /{name} -->"])


def _sections(text: str) -> dict[str, str]:
    """The module sections of a page written by :func:`render`, by module name, in page order."""
    found = re.finditer(r"^<!-- (bench_\w+) -->$.*?^<!-- /\1 -->$", text, flags=re.M | re.S)
    return {m.group(1): m.group(0) for m in found}


def render(sections: dict[str, str], previous: str = "") -> str:
    """The page: ``sections`` replace the same modules' sections of ``previous``; others are kept."""
    merged = {**_sections(previous), **sections}
    return HEADER + "".join(f"\n{merged[name]}\n" for name in sorted(merged))


def _modules(topics: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    unknown = [t for t in topics if f"bench_{t}" not in names]
    if unknown:
        raise ValueError(f"no benchmark module for {unknown}; available: {[n[6:] for n in names]}")
    return [n for n in names if not topics or n[len("bench_") :] in topics]


def _force_compiled_kernels() -> None:
    """The rows that time talon in-process measure the compiled kernels in their steady state, as in
    a long-running process where numba is started: the work-size dispatch (``talon._compiled``,
    docs/backend.md §9.2) would otherwise run the numpy twins until the process's twin work adds up
    to one numba start-up, and the timings would depend on what ran before. So ``TALON_FORCE_NUMBA=1``
    for the run, unless the caller set ``TALON_DISABLE_NUMBA`` / ``TALON_FORCE_NUMBA`` or numba is
    missing. ``bench_cli`` times the dispatch itself, in new processes with their own environment."""
    import importlib.util

    if "TALON_DISABLE_NUMBA" not in os.environ and importlib.util.find_spec("numba") is not None:
        os.environ.setdefault("TALON_FORCE_NUMBA", "1")


def _run_module(name: str) -> tuple[list[Row], list[str]]:
    """Run ``bench.<name>``: its rows and the extra markdown lines of its section."""
    module = importlib.import_module(f"bench.{name}")
    result = module.main()
    rows = [r for r in (result or []) if isinstance(r, Row)]
    extra: list[str] = []
    sizes = getattr(module.main, "sizes", None)
    if sizes:
        extra += ["### File size against the raw bytes of the arrays", "",
                  "| model | raw bytes | .t1c | nir | safetensors |", "|---|---|---|---|---|"]  # fmt: skip
        for label, raw, *files in sizes:
            extra.append(f"| {label} | {raw:,} | " + " | ".join(f"{f:,} ({f / raw:.3f}×)" for f in files) + " |")
    extra += list(getattr(module.main, "markdown", []))
    return rows, extra


def run(
    modules: list[str],
    *,
    update_docs: bool = False,
    allow_busy: bool = False,
    monitor: LoadMonitor | None = None,
    run_module: Callable[[str], tuple[list[Row], list[str]]] = _run_module,
    results: Path = RESULTS,
    doc: Path = DOC,
) -> int:
    """Run ``modules``, write their sections to ``results`` (and to ``doc`` with ``update_docs``);
    the exit status. The load average is read before and after each module (``monitor``) and
    recorded in its section; a module measured on a busy machine (load above the core count) is
    warned about on stderr. ``update_docs`` on a busy machine is refused — before measuring when
    the machine is busy at the start (status 2), after it when it became busy during the run
    (status 1: ``results`` is written, ``doc`` is not) — unless ``allow_busy``."""
    monitor = monitor or LoadMonitor()
    if update_docs and not allow_busy and (load := monitor.now()) > monitor.cores:
        print(
            f"error: the machine is busy (load average {load:.1f} above its {monitor.cores} cores): "
            f"not measuring for {doc.name}; wait for an idle machine, run without --update-docs, or pass "
            "--allow-busy to record busy numbers anyway",
            file=sys.stderr,
        )
        return 2
    sections: dict[str, str] = {}
    for name in modules:
        (rows, extra), load = monitor.around(name, lambda name=name: run_module(name))
        if load.busy:
            print(load.warning(), file=sys.stderr)
        sections[name] = _section(name, rows, [*extra, "", load.describe()] if extra else [load.describe()])
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(render(sections, results.read_text() if results.exists() else ""))
    print(f"wrote {results}")
    busy = [load.topic for load in monitor.busy_topics()]
    if busy:
        print(f"warning: measured on a busy machine: {', '.join(busy)} (see the warnings above)", file=sys.stderr)
    if not update_docs:
        return 0
    if busy and not allow_busy:
        print(
            f"error: not writing {doc.name}: {', '.join(busy)} ran on a busy machine (load above "
            f"{monitor.cores} cores); re-run them on an idle machine, or pass --allow-busy to record them anyway",
            file=sys.stderr,
        )
        return 1
    doc.write_text(render(sections, doc.read_text() if doc.exists() else ""))
    print(f"wrote {doc}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("topics", nargs="*", help="run only these bench_<topic> modules")
    parser.add_argument("--update-docs", action="store_true", help=f"also write the table to {DOC.name}")
    parser.add_argument(
        "--allow-busy",
        action="store_true",
        help=f"with --update-docs: write {DOC.name} even when the load average exceeded the core count",
    )
    args = parser.parse_args(argv)
    if args.allow_busy and not args.update_docs:
        parser.error("--allow-busy only applies with --update-docs")
    try:
        modules = _modules(args.topics)
    except ValueError as exc:
        parser.error(str(exc))
    _force_compiled_kernels()
    return run(modules, update_docs=args.update_docs, allow_busy=args.allow_busy)


if __name__ == "__main__":
    sys.exit(main())
