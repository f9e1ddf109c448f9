"""``python -m bench``: run every ``bench_*`` module, print their tables, write docs/benchmarks.md.

Each module's ``main()`` returns its rows (``bench.common.Row``): our median time and the
reference's, measured side by side in one process. The host is shared and noisy, so the table
reports ratios; absolute times are indicative only.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import sys
from datetime import date
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bench.common import Row, fmt_time

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
PACKAGES = ("torch", "snntorch", "norse", "nir", "nirtorch", "jax", "spyx", "h5py", "numpy", "safetensors")


def _versions() -> str:
    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(out)


def write_doc(rows: list[Row], extra: list[str]) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Produced by `make bench` (`python -m bench`). Every row times talon and a reference on the same",
        "input in the same process (median of repeated runs); **ratio = reference time / talon time**,",
        "so above 1 talon is faster. The host is shared and noisy: compare ratios, not absolute times.",
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
    DOC.write_text("\n".join([*lines, "", *extra]) + "\n")


def main() -> None:
    here = Path(__file__).parent
    rows: list[Row] = []
    extra: list[str] = []
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        result = module.main()
        rows += [r for r in (result or []) if isinstance(r, Row)]
        sizes = getattr(module.main, "sizes", None)
        if sizes:
            extra += ["## File size against the raw bytes of the arrays", "",
                      "| model | raw bytes | .t1c | nir | safetensors |", "|---|---|---|---|---|"]  # fmt: skip
            for label, raw, *files in sizes:
                extra.append(f"| {label} | {raw:,} | " + " | ".join(f"{f:,} ({f / raw:.3f}×)" for f in files) + " |")
        extra += list(getattr(module.main, "markdown", []))
    write_doc(rows, extra)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
