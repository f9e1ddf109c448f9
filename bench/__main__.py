"""``python -m bench [--update-docs] [TOPIC ...]``: run the ``bench_*`` modules and report.

Each module's ``main()`` returns its rows (``bench.common.Row``): our median time and the
reference's, measured side by side in one process. The host is shared and noisy, so the table
reports ratios; absolute times are indicative only.

The table is written to ``bench/results/latest.md`` (not tracked by git), so a run never dirties
the checkout; ``--update-docs`` also writes it to ``docs/benchmarks.md``. ``TOPIC`` limits the run
to some modules (``python -m bench bridge jax`` runs ``bench_bridge`` and ``bench_jax``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import sys
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.common import Row, fmt_time

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


def render(rows: list[Row], extra: list[str]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench BENCH_ARGS=--update-docs` (`python -m bench --update-docs`; a plain",
        "`make bench` writes the same table to the untracked `bench/results/latest.md`). Every row times",
        "talon and a reference on the same input in the same process, the runs interleaved (median of",
        "repeated runs);",
        "**ratio = reference time / talon time**, so above 1 talon is faster. The host is shared and",
        "noisy: compare ratios, not absolute times.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}, "
        f"{platform.system()}; measured {date.today().isoformat()}.",
        f"Libraries: {_versions()}.",
        "",
        "| benchmark | case | talon | reference | reference time | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}×"
        lines.append(
            f"| {r.benchmark} | {r.case} | {fmt_time(r.ours_s)} | {r.reference} | {fmt_time(r.reference_s)} | {ratio} |"
        )
    return "\n".join([*lines, "", *extra]) + "\n"


def _modules(topics: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))
    unknown = [t for t in topics if f"bench_{t}" not in names]
    if unknown:
        raise ValueError(f"no benchmark module for {unknown}; available: {[n[6:] for n in names]}")
    return [n for n in names if not topics or n[len("bench_") :] in topics]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("topics", nargs="*", help="run only these bench_<topic> modules")
    parser.add_argument("--update-docs", action="store_true", help=f"also write the table to {DOC.name}")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    extra: list[str] = []
    try:
        modules = _modules(args.topics)
    except ValueError as exc:
        parser.error(str(exc))
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        result = module.main()
        rows += [r for r in (result or []) if isinstance(r, Row)]
        sizes = getattr(module.main, "sizes", None)
        if sizes:
            extra += ["## File size against the raw bytes of the arrays", "",
                      "| model | raw bytes | .t1c | nir | safetensors |", "|---|---|---|---|---|"]  # fmt: skip
            for label, raw, *files in sizes:
                extra.append(f"| {label} | {raw:,} | " + " | ".join(f"{f:,} ({f / raw:.3f}×)" for f in files) + " |")
        extra += list(getattr(module.main, "markdown", []))
    text = render(rows, extra)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")
    if args.update_docs:
        DOC.write_text(text)
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
