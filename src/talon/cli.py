"""The ``talon`` (alias ``t1c``) command line."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="talon-toolchain", prog_name="talon")
def main() -> None:
    """talon: neuromorphic toolchain around TALON IR (.t1c files)."""


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("talon-demo"), show_default=True)
@click.option("--quick", is_flag=True, help="A seconds-long run (used by the tests).")
def demo(out: Path, quick: bool) -> None:
    """Run the end-to-end example and write its results to OUT."""
    from talon.demo import run

    raise SystemExit(run(out, quick=quick))
