"""``talon nir import|export``: NIR files to and from TALON IR ``.t1c`` files (``docs/nir.md``).

``--producer`` / ``--consumer`` take the framework names of ``talon.interop.nir.profiles.PROFILES``
(the registry ``read_nir(producer=)`` and ``write_nir(consumer=)`` use), read when a command's own
help or value needs them: ``talon -h`` does not import the NIR layer.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from talon.cli._common import _emit_json, _json_option, _one_line, _refuse_overwriting_inputs, _reports_errors, main


class _Frameworks(click.Choice):
    """The names of ``talon.interop.nir.profiles.PROFILES``, loaded on first use."""

    def __init__(self) -> None:  # click.Choice.__init__ would read the names now
        self.case_sensitive = False
        self._names: tuple[str, ...] | None = None

    @property
    def choices(self) -> tuple[str, ...]:
        if self._names is None:
            from talon.interop.nir.profiles import PROFILES

            self._names = tuple(PROFILES)
        return self._names


_file_argument = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


def _output(suffix: str):
    return click.option(
        "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
        help=f"The {suffix} file to write (atomically).",
    )  # fmt: skip


@main.group()
def nir() -> None:
    """NIR files: import one as a .t1c graph, export a .t1c graph as NIR."""


def _report(messages: list[str], as_json: bool, document: dict, lines: list[str]) -> None:
    """Print the result; the conversion's warnings go to stderr (or into the JSON document)."""
    if as_json:
        _emit_json({**document, "warnings": messages})
        return
    for message in messages:
        click.echo(f"warning: {message}", err=True)
    for line in lines:
        click.echo(line)


@nir.command("import")
@_file_argument
@_output(".t1c")
@click.option(
    "--producer", type=_Frameworks(),
    help="The framework that wrote FILE: read it as that framework runs it (its dt, comparison, reset and "
    "surrogate gradient; docs/nir.md). Default: NIR's own semantics.",
)  # fmt: skip
@click.option("--dt", type=float, help="Time step in seconds (default: the file's, else the producer's, else 1e-4).")
@click.option("--surrogate", help="The surrogate gradient of every spiking node, e.g. 'sigmoid(slope=5)'.")
@click.option("--require-dt", is_flag=True, help="Refuse a file that records no dt instead of assuming one.")
@click.option("--no-type-check", is_flag=True, help="Read a file whose declared shapes contradict its structure.")
@_json_option
@_reports_errors
def import_(
    file: Path,
    output: Path,
    producer: str | None,
    dt: float | None,
    surrogate: str | None,
    require_dt: bool,
    no_type_check: bool,
    as_json: bool,
) -> None:
    """Read the NIR file FILE into a TALON IR graph and write it to -o."""
    from talon import sdk
    from talon.interop.nir import read_nir

    _refuse_overwriting_inputs(output, file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read_nir(file, dt, type_check=not no_type_check, producer=producer, require_dt=require_dt,
                         surrogate=surrogate)  # fmt: skip
    sdk.write(output, graph)
    meta = graph.metadata.get("nir", {})
    document = {"file": str(file), "output": str(output), "producer": meta.get("producer"), "dt": meta.get("dt"),
                "nodes": len(graph.nodes), "edges": len(graph.edges)}  # fmt: skip
    lines = [f"✓ Read {file} ({document['nodes']} nodes, dt {document['dt']} s"
             + (f", as {producer} runs it)" if producer else ")"), f"✓ Saved to: {output}"]  # fmt: skip
    _report([_one_line(w.message) for w in caught], as_json, document, lines)


@nir.command("export")
@_file_argument
@_output(".nir")
@click.option(
    "--consumer", type=_Frameworks(),
    help="The framework that will read the file: write what it runs exactly as the graph does, or refuse "
    "naming the node and field (docs/nir.md). Default: NIR's own semantics.",
)  # fmt: skip
@click.option("--dt", type=float, help="Time step in seconds (default: the consumer's, else the graph's, else 1e-4).")
@click.option("--lossy", is_flag=True, help="Replace what NIR cannot state by its nearest form, warned and recorded.")
@_json_option
@_reports_errors
def export(file: Path, output: Path, consumer: str | None, dt: float | None, lossy: bool, as_json: bool) -> None:
    """Write the TALON IR graph FILE (.t1c) as a NIR file to -o."""
    from talon import sdk
    from talon.interop.nir import write_nir

    _refuse_overwriting_inputs(output, file)
    graph = sdk.read(file)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_nir(output, graph, dt, lossy, consumer=consumer)
    document = {"file": str(file), "output": str(output), "consumer": consumer, "nodes": len(graph.nodes)}
    lines = [f"✓ Wrote {output}" + (f" for {consumer}" if consumer else "")]
    _report([_one_line(w.message) for w in caught], as_json, document, lines)
