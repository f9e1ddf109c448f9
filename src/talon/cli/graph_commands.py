"""Commands on one or two `.t1c` files: information, analysis, checks, fingerprints, inspection, conversion."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import click

from talon.cli._common import (
    EXIT_FINDINGS,
    _console,
    _echo_report,
    _emit_json,
    _fail,
    _file_argument,
    _graph_output,
    _json_option,
    _listing,
    _printable,
    _read,
    _reports_errors,
    _shape,
    _table,
    _text,
    _working,
    main,
)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("talon-demo"), show_default=True)
@click.option("--quick", is_flag=True, help="A seconds-long run (used by the tests).")
def demo(out: Path, quick: bool) -> None:
    """Run the end-to-end example and write its results to OUT."""
    from talon.demo import run

    raise SystemExit(run(out, quick=quick))


# ---- information ----------------------------------------------------------------------------------


@main.command()
@_json_option
def info(as_json: bool) -> None:
    """Versions of talon's components and dependencies."""
    from talon import sdk

    versions, deps = sdk.get_versions(), sdk.get_dependency_versions()
    if as_json:
        _emit_json({"talon": sdk.__version__, "components": versions, "dependencies": deps})
        return
    table = _table(f"talon {sdk.__version__}", "component", "version")
    for key, value in {**versions, **deps}.items():
        table.add_row(_text(key), _text(value or "not installed"))
    _console().print(table)


@main.command()
@_json_option
def primitives(as_json: bool) -> None:
    """List the TALON IR primitives."""
    from talon import sdk

    rows = []
    for name in sdk.list_primitives():
        cls = sdk.str_to_node(name)
        paragraph = (cls.__doc__ or "").strip().split("\n\n")[0]
        summary = " ".join(paragraph.replace("``", "").split())
        rows.append({"name": name, "family": cls.__module__.rsplit(".", 1)[-1], "summary": summary})
    if as_json:
        _emit_json(rows)
        return
    table = _table(f"{len(rows)} TALON IR primitives", "primitive", "family", "summary")
    for row in rows:
        table.add_row(_text(row["name"]), _text(row["family"]), _text(row["summary"]))
    _console().print(table)


# ---- analysis -------------------------------------------------------------------------------------


@main.command()
@_file_argument
@click.option("-v", "--verbose", is_flag=True, help="Add one row per layer.")
@_json_option
@_reports_errors
def analyze(file: Path, verbose: bool, as_json: bool) -> None:
    """Graph structure and statistics: parameters, memory, MACs/FLOPs, depth, layer types."""
    from talon import sdk

    with _working(f"analyzing {file}", disable=as_json):
        stats = sdk.analyze_graph(_read(file))
    if as_json:
        doc = stats.to_dict()
        if not verbose:
            doc.pop("layers")
        _emit_json({"file": str(file), **doc})
        return
    n = sdk.format_number
    console = _console()
    console.print(_text(f"TALON IR Graph Summary: {file}"), overflow="fold")  # a long path folds
    click.echo(
        f"Nodes: {stats.node_count:,}  |  Edges: {stats.edge_count:,}  |  Depth: {stats.depth:,}  |  "
        f"Width: {stats.width:,}"
        + (f"  |  Recurrent edges: {stats.recurrent_edge_count:,}" if stats.recurrent_edge_count else "")
    )
    click.echo(
        f"Parameters: {stats.total_params:,}  |  Memory: {sdk.format_bytes(stats.total_bytes)}  |  "
        f"MACs: {n(stats.total_macs)}  |  FLOPs: {n(stats.total_flops)}"
    )
    from talon.sdk.analysis import model_line

    for line in model_line(stats):
        click.echo(line)
    if stats.spiking_neurons:
        click.echo(f"SNN: {stats.lif_count:,} LIF layer(s), {stats.spiking_neurons:,} spiking neurons")
    per_type: dict[str, list[int]] = {}
    for layer in stats.layers:
        entry = per_type.setdefault(layer.node_type, [0, 0, 0, 0])
        entry[0] += 1
        entry[1] += layer.params
        entry[2] += layer.bytes
        entry[3] += layer.macs
    table = _table("Layer types", "type", "count", "params", "memory", "MACs", right=("count", "params", "MACs"))
    for t, (count, params, nbytes, macs) in per_type.items():
        table.add_row(_text(t), str(count), f"{params:,}", sdk.format_bytes(nbytes), f"{macs:,}")
    console.print(table)
    if verbose:
        rows = [
            (layer.name, layer.node_type, _shape(layer.input_shape), _shape(layer.output_shape),
             f"{layer.params:,}", f"{layer.macs:,}")
            for layer in stats.layers
        ]  # fmt: skip
        columns = ("name", "type", "input", "output", "params", "MACs")
        _listing("Layers", columns, rows, right=("params", "MACs"))
    if stats.uncounted:
        click.echo(_printable(f"Not counted (unknown shape or type): {', '.join(stats.uncounted)}"))


@main.command()
@_file_argument
@_json_option
@_reports_errors
def profile(file: Path, as_json: bool) -> None:
    """Static hardware profile: memory, MAC and spike operations, warnings, recommendations."""
    from talon import sdk

    with _working(f"profiling {file}", disable=as_json):
        result = sdk.profile_graph(_read(file))
    if as_json:
        _emit_json({"file": str(file), **result.to_dict()})
        return
    _echo_report(sdk.format_profile(result))


# ---- checks ---------------------------------------------------------------------------------------


def _print_issues(issues, console) -> None:
    for issue in issues:
        where = f" ({issue.node})" if issue.node else ""
        _print_indented(console, f"[{issue.code}]{where} {issue.message}", 2)
        if issue.suggestion:
            _print_indented(console, f"hint: {issue.suggestion}", 6)


def _print_indented(console, text: str, indent: int) -> None:
    """``text`` wrapped at the console's width, every line indented (rich's own wrapping would
    start the continuation lines at column 0)."""
    import textwrap

    from rich.text import Text

    width = max(20, console.width - indent)
    for line in textwrap.wrap(_printable(text), width, break_long_words=False, break_on_hyphens=False) or [""]:
        console.print(Text(" " * indent + line), soft_wrap=True)


@main.command()
@_file_argument
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@_json_option
@_reports_errors
def lint(file: Path, strict: bool, as_json: bool) -> None:
    """Lint a graph for problems (codes in docs/lint.md). Exit 1 if there are errors."""
    from talon.sdk.lint import lint_file

    with _working(f"linting {file}", disable=as_json):
        _, result = lint_file(file, strict=strict)
    if as_json:
        _emit_json({"file": str(file), **result.to_dict()})
    else:
        console = _console()
        if result.is_valid:
            console.print(_text(f"✓ Graph is valid ({file})"))
        else:
            console.print(_text(f"✗ Graph has {len(result.errors)} error(s) ({file})"))
        for title, issues in (("Errors", result.errors), ("Warnings", result.warnings), ("Info", result.infos)):
            if issues:
                console.print(_text(f"{title}: {len(issues)}"))
                _print_issues(issues, console)
    if not result.is_valid:
        raise SystemExit(EXIT_FINDINGS)


@main.command()
@_file_argument
@_json_option
@_reports_errors
def validate(file: Path, as_json: bool) -> None:
    """Quick validity check: the file reads (format, graph validation) and lints without errors."""
    from talon import sdk
    from talon.sdk.lint import lint_file

    with _working(f"validating {file}", disable=as_json):
        graph, result = lint_file(file)
        errors = result.errors
    doc = {
        "file": str(file),
        "valid": not errors,
        "format_version": int(sdk.read_version(file)),
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "errors": [e.to_dict() for e in errors],
    }
    if as_json:
        _emit_json(doc)
    else:
        console = _console()
        if errors:
            console.print(_text(f"✗ Invalid: {file} ({len(errors)} error(s))"))
            _print_issues(errors, console)
        else:
            console.print(
                _text(
                    f"✓ Valid: {file} ({doc['nodes']} nodes, {doc['edges']} edges, "
                    f".t1c format version {doc['format_version']})"
                )
            )
    if errors:
        raise SystemExit(EXIT_FINDINGS)


@main.command()
@click.argument("file_a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("file_b", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--atol", type=click.FloatRange(min=0), default=1e-6, show_default=True, help="Absolute tolerance.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-5, show_default=True, help="Relative tolerance.")
@_json_option
@_reports_errors
def compare(file_a: Path, file_b: Path, atol: float, rtol: float, as_json: bool) -> None:
    """Compare two graphs (structure, values, metadata). Exit 1 unless they are equivalent."""
    from rich.panel import Panel
    from rich.text import Text

    from talon import sdk

    with _working(f"comparing {file_a} and {file_b}", disable=as_json):
        diff = sdk.compare_graphs(_read(file_a), _read(file_b), atol=atol, rtol=rtol)
    if as_json:
        _emit_json({"file_a": str(file_a), "file_b": str(file_b), **diff.to_dict()})
    else:
        if diff.identical:
            head = "✓ Graphs are identical"
        elif diff.equivalent:
            head = "≈ Graphs are equivalent within tolerance"
        else:
            head = "✗ Graphs differ"
        lines = [head] + ([] if diff.identical else [diff.summary])
        for title, names in (("Added nodes", diff.nodes_added), ("Removed nodes", diff.nodes_removed)):
            if names:
                lines.append(f"{title}: {', '.join(names)}")
        modified = [d for d in diff.node_diffs if d.status == "modified"]
        if modified:
            lines.append(f"Modified nodes: {len(modified)}")
            for d in modified:
                lines.append(f"{d.name}:")
                lines += [f"  - {c}" for c in d.changes]
        for title, edges in (("Edges added", diff.edges_added), ("Edges removed", diff.edges_removed)):
            if edges:
                lines.append(f"{title}: {', '.join(f'{s} -> {d}' for s, d in edges)}")
        lines.append(f"Max weight difference: {diff.max_weight_diff:.2e}")
        text = Text("\n".join(_printable(line) for line in lines))
        _console().print(Panel(text, title="Graph Comparison", expand=False))
    if not diff.equivalent:
        raise SystemExit(EXIT_FINDINGS)


# ---- fingerprint and provenance ------------------------------------------------------------------


def _check_hash(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise click.BadParameter(
            f"{value!r} is not a fingerprint: HASH is 64 hexadecimal digits, as 'talon hash FILE' prints"
        )
    return value


@main.command("hash")
@_file_argument
@click.option("--structure", is_flag=True, help="Structure only (array values excluded).")
@click.option("--metadata", is_flag=True, help="Include graph and node metadata (the stamp never counts).")
@click.option(
    "--verify", "expected", metavar="HASH", callback=lambda ctx, param, value: _check_hash(value),
    help="Exit 1 unless the fingerprint equals HASH (64 hexadecimal digits, as 'talon hash' prints).",
)  # fmt: skip
@click.option("--check-stamp", is_flag=True, help="Exit 1 unless the graph still matches its own stamp.")
@_json_option
@_reports_errors
def hash_(file: Path, structure: bool, metadata: bool, expected: str | None, check_stamp: bool, as_json: bool) -> None:
    """Deterministic SHA-256 fingerprint of a graph (docs/sdk.md gives the canonical form)."""
    from talon import sdk

    with _working(f"hashing {file}", disable=as_json):
        graph = _read(file)
        fingerprint = sdk.fingerprint_graph(graph, include_weights=not structure, include_metadata=metadata)
    doc: dict[str, Any] = {
        "file": str(file),
        "fingerprint": fingerprint,
        "include_weights": not structure,
        "include_metadata": metadata,
    }
    ok = True
    if expected is not None:
        doc["matches"] = sdk.verify_fingerprint(graph, expected, not structure, metadata)
        ok &= doc["matches"]
    if check_stamp:
        if metadata:
            raise click.UsageError("--check-stamp compares fingerprints without metadata; drop --metadata")
        if sdk.get_stamp(graph) is None:
            _fail(f"{file} has no provenance stamp to check: add one with 'talon stamp {file}', "
                  "or compare with a known fingerprint: --verify HASH")  # fmt: skip
        doc["matches_stamp"] = sdk.verify_fingerprint(graph, None, not structure)
        ok &= doc["matches_stamp"]
    if as_json:
        _emit_json(doc)
    else:
        click.echo(fingerprint)
        if "matches" in doc:
            click.echo("✓ fingerprint matches" if doc["matches"] else f"✗ fingerprint differs from {expected}")
        if "matches_stamp" in doc:
            click.echo("✓ graph matches its stamp" if doc["matches_stamp"] else "✗ graph changed since it was stamped")
    if not ok:
        raise SystemExit(EXIT_FINDINGS)


@main.command()
@_file_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: FILE).")
@click.option("--notes", help="Free text recorded in the stamp.")
@click.option("--git-commit", help="Source commit of the model.")
@click.option("--run-id", "training_run_id", help="Training run identifier.")
@_json_option
@_reports_errors
def stamp(
    file: Path,
    output: Path | None,
    notes: str | None,
    git_commit: str | None,
    training_run_id: str | None,
    as_json: bool,
) -> None:
    """Add a provenance stamp (fingerprints, versions, time, notes) to a graph."""
    from talon import sdk

    _graph_output(output)
    stamped = sdk.stamp_graph(_read(file), notes=notes, git_commit=git_commit, training_run_id=training_run_id)
    target = output or file
    sdk.write(target, stamped)
    record = sdk.get_stamp(stamped)
    if as_json:
        _emit_json({"file": str(file), "output": str(target), "stamp": record})
        return
    click.echo(f"✓ Stamped {file}")
    click.echo(f"  fingerprint: {record['fingerprint_full']}")
    click.echo(f"  timestamp:   {record['timestamp']}")
    click.echo(f"✓ Saved to: {target}")


# ---- inspection -----------------------------------------------------------------------------------


def _node_doc(name: str, node) -> dict[str, Any]:
    from talon import sdk
    from talon.sdk._common import enum_value

    doc: dict[str, Any] = {"name": name, "type": type(node).__name__}
    if isinstance(node, sdk.Graph):
        doc["graph"] = _graph_doc(node)
        return doc
    params: dict[str, Any] = {}
    for key, value in node.stored_params().items():
        if hasattr(value, "dtype") and hasattr(value, "shape"):
            params[key] = {"dtype": value.dtype.name, "shape": list(value.shape)}
        else:
            params[key] = enum_value(value)
    doc.update(
        params=params,
        input_type={k: list(map(int, v)) for k, v in (node.input_type or {}).items()},
        output_type={k: list(map(int, v)) for k, v in (node.output_type or {}).items()},
        metadata=node.metadata,
    )
    return doc


def _graph_doc(graph) -> dict[str, Any]:
    return {
        "nodes": [_node_doc(n, node) for n, node in graph.nodes.items()],
        "edges": [list(e) for e in graph.edges],
        "recurrent_edges": [list(e) for e in graph.recurrent_edges],
        "metadata": graph.metadata,
    }


INSPECT_ROWS = 50


@main.command()
@_file_argument
@click.option(
    "--limit", type=click.IntRange(min=1), default=INSPECT_ROWS, show_default=True,
    help="Show at most this many nodes and edges (the rest are counted).",
)  # fmt: skip
@click.option("--all", "show_all", is_flag=True, help="Show every node and edge.")
@_json_option
@_reports_errors
def inspect(file: Path, limit: int, show_all: bool, as_json: bool) -> None:
    """Nodes and edges of a graph (--json: a full dump without array values)."""
    from talon import sdk
    from talon.ir.counting import count_node

    with _working(f"reading {file}", disable=as_json):
        graph = _read(file)
    if as_json:
        _emit_json({"file": str(file), "format_version": int(sdk.read_version(file)), **_graph_doc(graph)})
        return
    shown = len(graph.nodes) if show_all else min(limit, len(graph.nodes))
    rows = []
    for i, (name, node) in enumerate(itertools.islice(graph.nodes.items(), shown)):
        if isinstance(node, sdk.Graph):
            kind, params = f"Graph ({len(node.nodes)} nodes)", "-"
        else:
            kind, params = type(node).__name__, f"{count_node(node).params:,}"
        rows.append((i, name, kind, _shape(node.input_shape), _shape(node.output_shape), params))
    columns = ("#", "name", "type", "input", "output", "params")
    _listing(f"{file}: {len(graph.nodes):,} nodes", columns, rows, right=("#", "params"))
    _more(len(graph.nodes) - shown, "node")
    n_edges = len(graph.edges) if show_all else min(limit, len(graph.edges))
    recurrent = graph.recurrent_mask()
    rows = [
        (i, s, d, _shape(graph.edge_shape(i)), "yes" if recurrent[i] else "")
        for i, (s, d) in enumerate(graph.edges[:n_edges])
    ]
    _listing(f"{len(graph.edges):,} edges", ("#", "from", "to", "shape", "recurrent"), rows, right=("#",))
    _more(len(graph.edges) - n_edges, "edge")
    if graph.metadata:
        _console().print(_text(f"metadata keys: {', '.join(map(str, graph.metadata))}"))


def _more(hidden: int, what: str) -> None:
    if hidden > 0:
        plural = "s" if hidden != 1 else ""
        click.echo(f"… {hidden:,} more {what}{plural} (--all shows every one, --json dumps them all)")


@main.command()
@_file_argument
@click.argument("name")
@_json_option
@_reports_errors
def node(file: Path, name: str, as_json: bool) -> None:
    """Details of one node (NAME; outer.inner reaches into a subgraph)."""
    from rich.tree import Tree

    from talon import sdk

    details = sdk.inspect_node(_read(file), name)
    if as_json:
        _emit_json({"file": str(file), **details})
        return
    tree = Tree(_text(f"Node: {details['name']} ({details['type']})"))
    tree.add(_text(f"Inputs: {', '.join(details['inputs']) or '-'}"))
    tree.add(_text(f"Outputs: {', '.join(details['outputs']) or '-'}"))
    if details["recurrent_inputs"]:
        tree.add(_text(f"Recurrent inputs (previous step): {', '.join(details['recurrent_inputs'])}"))
    shapes = details["shapes"]
    tree.add(_text(f"Shapes: input {shapes['input_type']}, output {shapes['output_type']}"))
    for key, st in details["parameters"].items():
        stats = (
            f"mean={st['mean']:.4g}, std={st['std']:.4g}, min={st['min']:.4g}, max={st['max']:.4g}"
            if st["mean"] is not None
            else "no finite values"
        )
        extra = f", {st['nonfinite']} non-finite" if st["nonfinite"] else ""
        tree.add(_text(f"{key}: {st['shape']} {st['dtype']}, {stats}{extra}"))
    for key, value in details["attributes"].items():
        tree.add(_text(f"{key}: {value!r}"))
    if details["metadata"]:
        tree.add(_text(f"metadata keys: {', '.join(map(str, details['metadata']))}"))
    _console().print(tree)


@main.command()
@_file_argument
@click.argument("source")
@click.argument("target")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True, help="Refuse more paths.")
@_json_option
@_reports_errors
def trace(file: Path, source: str, target: str, limit: int, as_json: bool) -> None:
    """Every path from SOURCE to TARGET (exit 1 when there is none)."""
    from talon import sdk

    paths = sdk.trace_path(_read(file), source, target, limit=limit)
    if as_json:
        _emit_json({"file": str(file), "source": source, "target": target, "paths": paths})
    elif paths:
        click.echo(f"{len(paths)} path(s) from {_printable(source)} to {_printable(target)}:")
        for p in paths:
            click.echo("  " + " → ".join(map(_printable, p)))
    else:
        click.echo(f"No path from {_printable(source)} to {_printable(target)}")
    if not paths:
        raise SystemExit(EXIT_FINDINGS)


# ---- conversion -----------------------------------------------------------------------------------


@main.command()
@_file_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output file.")
@click.option("--spiking", is_flag=True, help="Affine -> SpikingAffine with hardware hints.")
@click.option(
    "--weight-bits", type=click.IntRange(1, 32), help="SpikingAffine weight_bits hint (with --spiking; default 8)."
)
@click.option(
    "--accumulator-bits", type=click.IntRange(1, 64),
    help="SpikingAffine accumulator_bits hint, at least --weight-bits (with --spiking; default 16).",
)  # fmt: skip
@click.option(
    "--spike-mode",
    type=click.Choice(["binary", "graded", "rate", "temporal"]),
    help="SpikingAffine spike_mode (with --spiking; default binary).",
)
@click.option(
    "--quantize", "quantize_bits", type=click.IntRange(2, 32), metavar="BITS",
    help="Simulated symmetric BITS-bit weights (2 to 32).",
)  # fmt: skip
@click.option("--per-tensor", is_flag=True, help="One quantization scale per tensor (default: per output channel).")
@click.option("--prune", is_flag=True, help="Remove nodes not on an Input-to-Output path.")
@_json_option
@_reports_errors
def convert(
    file: Path,
    output: Path,
    spiking: bool,
    weight_bits: int | None,
    accumulator_bits: int | None,
    spike_mode: str | None,
    quantize_bits: int | None,
    per_tensor: bool,
    prune: bool,
    as_json: bool,
) -> None:
    """Convert a graph: prune, then SpikingAffine, then quantize; write the result to -o."""
    from talon import sdk

    if not (spiking or quantize_bits is not None or prune):
        raise click.UsageError("nothing to do: give --spiking, --quantize BITS and/or --prune")
    _graph_output(output)
    hints = {"weight_bits": weight_bits, "accumulator_bits": accumulator_bits, "spike_mode": spike_mode}
    if not spiking and any(v is not None for v in hints.values()):
        raise click.UsageError("--weight-bits/--accumulator-bits/--spike-mode are SpikingAffine hints: add --spiking")
    if per_tensor and quantize_bits is None:
        raise click.UsageError("--per-tensor applies to --quantize BITS")
    if (weight_bits or 8) > (accumulator_bits or 16):
        raise click.UsageError(
            f"--accumulator-bits ({accumulator_bits or 16}) must be at least --weight-bits ({weight_bits or 8})"
        )
    graph = _read(file)
    report: dict[str, Any] = {"file": str(file), "output": str(output)}
    messages = []
    if prune:
        before = len(graph.nodes)
        graph = sdk.prune_disconnected(graph)
        report["pruned_nodes"] = before - len(graph.nodes)
        n = report["pruned_nodes"]
        messages.append(f"✓ Pruned {n} disconnected node{'s' if n != 1 else ''}")
    if spiking:
        kwargs = {k: v for k, v in hints.items() if v is not None}
        graph = sdk.convert_to_spiking(graph, **kwargs)
        report["converted_layers"] = graph.metadata["converted_layers"]
        report["spiking_config"] = graph.metadata["spiking_config"]
        n = report["converted_layers"]
        messages.append(f"✓ Converted {n} Affine layer{'s' if n != 1 else ''} to SpikingAffine")
    if quantize_bits is not None:
        graph = sdk.quantize_weights(graph, bits=quantize_bits, per_channel=not per_tensor)
        report["quantized_layers"] = graph.metadata["quantized_weights"]["layers"]
        scope = "per tensor" if per_tensor else "per channel"
        messages.append(f"✓ Quantized {report['quantized_layers']} layer(s) to {quantize_bits}-bit weights ({scope})")
    sdk.write(output, graph)
    if as_json:
        _emit_json(report)
        return
    for message in messages:
        click.echo(message)
    click.echo(f"✓ Saved to: {output}")
