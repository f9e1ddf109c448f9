"""Every SDK and CLI result on a set of graphs, as JSON, compared between two versions of talon.

``python -m bench.sdk_outputs [COMMIT]`` writes the test graphs (``talon.examples.blocks_graph`` of
600 and 3,000 nodes, the SDK tests' small graphs, the hybrid example, the conformance suite's
graphs) to a temporary folder, then
runs :func:`dump` twice in new processes: once on this checkout's ``src`` and once on ``src`` of
``COMMIT`` (default ``main``, extracted with ``git archive``), and prints how many outputs differ
(exit status 1 if any). A speed-up must leave every output identical: analysis, lint (also on
broken graphs built with ``validate=False``), profile, fingerprints, comparisons, queries,
conversions (fingerprinted with metadata), ``ir.write``/``ir.read`` round trips and every listed
CLI command's stdout, exit code included. An exception is an output too (its type and message).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _broken_graphs():
    """Graphs built with ``validate=False`` that lint must report (nodes and edges from ``talon.ir``)."""
    from talon import ir

    rng = np.random.default_rng(0)

    def fc(n_out, n_in):
        return ir.Affine(rng.standard_normal((n_out, n_in)).astype(np.float32), np.zeros(n_out, np.float32))

    def lif(n, **kw):
        return ir.LIF(**{"tau": np.full(n, 5.0), "r": 5.0, "v_leak": 0.0, "v_threshold": 1.0, **kw})

    shape_error = ir.Graph(
        {"input": ir.Input(np.array([8])), "fc": fc(4, 8), "lif": lif(5), "output": ir.Output(np.array([5]))},
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
        validate=False,
    )
    dangling = ir.Graph(
        {"input": ir.Input(np.array([4])), "fc": fc(4, 4), "output": ir.Output(np.array([4]))},
        [("input", "fc"), ("fc", "output"), ("fc", "ghost")],
        validate=False,
    )
    loose = ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": fc(4, 4),
            "lonely": lif(4, v_threshold=-1.0),
            "dead": fc(2, 4),
            "class": lif(4, tau=np.full(4, 0.5)),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc"), ("fc", "class"), ("class", "output"), ("fc", "dead"), ("class", "class")],
        validate=False,
    )
    inner_bad = ir.Graph(
        {"input": ir.Input(np.array([4])), "fc": fc(3, 5), "output": ir.Output(np.array([3]))},
        [("input", "fc"), ("fc", "output")],
        validate=False,
    )
    nested_bad = ir.Graph(
        {"input": ir.Input(np.array([4])), "sub": inner_bad, "output": ir.Output(np.array([3]))},
        [("input", "sub"), ("sub", "output")],
        validate=False,
    )
    return {"shape_error": shape_error, "dangling": dangling, "loose": loose, "nested_bad": nested_bad}


def write_graphs(folder: Path) -> None:
    """The valid test graphs as ``.t1c`` files (this checkout's builders; both versions read them)."""
    sys.path.insert(0, str(REPO))
    from tests.conformance.cases import CASES
    from tests.sdk import graphs

    from talon import ir
    from talon.examples import blocks_graph, hybrid_graph

    built = {"blocks600": blocks_graph(600), "blocks3000": blocks_graph(3000), "hybrid": hybrid_graph(0)}
    built["blocks600b"] = blocks_graph(600, seed=1)
    for name in ("chain", "cnn", "residual", "recurrent", "hybrid", "nested"):
        built[f"tests_{name}"] = getattr(graphs, name)(0)
    for i, case in enumerate(CASES):  # the conformance suite's graphs (tests/conformance/cases.py)
        built[f"conformance{i:03d}"] = case.build()
    for name, graph in built.items():
        ir.write(folder / f"{name}.t1c", graph)


def _capture(fn):
    from talon.sdk._common import jsonable

    try:
        return json.dumps(jsonable(fn()), sort_keys=True)
    except Exception as exc:  # an error is an output too
        return json.dumps({"error": type(exc).__name__, "message": str(exc)})


def dump(folder: Path) -> dict[str, str]:
    """Every output on every graph of ``folder`` (plus the broken ones), by ``graph/function`` key."""
    from click.testing import CliRunner

    from talon import ir, sdk
    from talon.cli import main as cli

    fp = sdk.fingerprint_graph

    def full(g):
        return [fp(g, include_metadata=True), fp(g, include_weights=False), sdk.analyze_graph(g)]

    out: dict[str, str] = {}
    files = sorted(folder.glob("*.t1c"))
    graphs = {f.stem: ir.read(f) for f in files}
    graphs.update(_broken_graphs())
    runner = CliRunner()
    for name, g in graphs.items():
        nodes = list(g.nodes)
        leaf = next((n for n in reversed(nodes) if not isinstance(g.nodes[n], ir.Graph)), nodes[-1])
        sub = next((n for n, node in g.nodes.items() if isinstance(node, ir.Graph)), None)
        third = nodes[len(nodes) // 3]
        quarter, half = nodes[1 : max(2, len(nodes) // 4)], nodes[: max(2, len(nodes) // 2)]
        cases = {
            "analyze": lambda g=g: sdk.analyze_graph(g),
            "summarize": lambda g=g: sdk.summarize(g, verbose=True),
            "lint": lambda g=g: sdk.lint_graph(g),
            "lint_strict": lambda g=g: sdk.lint_graph(g, strict=True, large_model_params=100, high_tau=2.0),
            "profile": lambda g=g: sdk.profile_graph(g),
            "format_profile": lambda g=g: sdk.format_profile(sdk.profile_graph(g)),
            "fingerprints": lambda g=g: [fp(g), fp(g, include_weights=False), fp(g, True, True), fp(g, False, True)],
            "stamp": lambda g=g: {
                k: v for k, v in sdk.stamp_graph(g, notes="n").metadata["talon_stamp"].items() if k != "timestamp"
            },
            "stamped_graph": lambda g=g: full(sdk.stamp_graph(g)),
            "compare_self": lambda g=g: sdk.compare_graphs(g, g),
            "node_statistics": lambda g=g: sdk.get_node_statistics(g),
            "pattern": lambda g=g: sdk.find_pattern(g, "Affine->LIF|CubaLIF->*"),
            "inspect_leaf": lambda g=g, n=leaf: sdk.inspect_node(g, n),
            "inspect_sub": lambda g=g, n=sub: sdk.inspect_node(g, n) if n else None,
            "trace": lambda g=g, a=nodes[0], b=third: sdk.trace_path(g, a, b, limit=50),
            "extract": lambda g=g, sel=quarter: full(sdk.extract_subgraph(g, sel, add_boundaries=True)),
            "extract_plain": lambda g=g, sel=half: full(sdk.extract_subgraph(g, sel)),
            "spiking": lambda g=g: full(sdk.convert_to_spiking(g)),
            "quantize": lambda g=g: full(sdk.quantize_weights(g, 6)),
            "prune": lambda g=g: full(sdk.prune_disconnected(g)),
            "merge": lambda g=g: full(sdk.merge_graphs(g, g)),
            "topology": lambda g=g: (
                [g.recurrent_mask(), g.topological_order(), g.is_dag, sdk.depth_and_width(g)]
                if hasattr(sdk, "depth_and_width")
                else [g.recurrent_mask(), g.topological_order(), g.is_dag]
            ),
            "rebuilt": lambda g=g: full(ir.Graph(g.nodes, g.edges, g.metadata)),
        }
        for case, fn in cases.items():
            out[f"{name}/{case}"] = _capture(fn)
        path = folder / f"{name}.t1c"
        if not path.exists():
            continue
        other = folder / ("blocks600b.t1c" if name != "blocks600b" else "blocks600.t1c")
        commands = [
            ["analyze"], ["analyze", "-v"], ["analyze", "--json"], ["profile"], ["profile", "--json"],
            ["lint"], ["lint", "--strict", "--json"], ["validate", "--json"], ["validate"], ["hash"],
            ["hash", "--structure", "--json"], ["inspect"], ["inspect", "--all"], ["inspect", "--json"],
            ["node", leaf], ["node", leaf, "--json"], ["trace", nodes[0], third, "--limit", "50", "--json"],
        ]  # fmt: skip
        for args in commands:
            result = runner.invoke(cli, [args[0], str(path), *args[1:]])
            out[f"{name}/cli {' '.join(args)}"] = json.dumps([result.exit_code, result.output.replace(str(folder), "")])
        for args in (["compare", str(path), str(other)], ["compare", str(path), str(path), "--json"]):
            result = runner.invoke(cli, args)
            out[f"{name}/cli {' '.join(args[:1] + args[3:])}"] = json.dumps(
                [result.exit_code, result.output.replace(str(folder), "")]
            )
        for args in (["convert", "--spiking", "--prune"], ["convert", "--quantize", "8"], ["stamp", "--notes", "x"]):
            target = folder / "out" / f"{name}.t1c"
            target.parent.mkdir(exist_ok=True)
            result = runner.invoke(cli, [args[0], str(path), *args[1:], "-o", str(target)])
            written = _capture(lambda t=target: full(ir.read(t))) if target.exists() else None
            text = "\n".join(line for line in result.output.splitlines() if "timestamp" not in line)
            out[f"{name}/cli {' '.join(args)}"] = json.dumps([result.exit_code, text.replace(str(folder), ""), written])
            target.unlink(missing_ok=True)
        written = folder / "out" / f"{name}_rw.t1c"
        ir.write(written, g)
        out[f"{name}/write-read"] = _capture(lambda w=written: full(ir.read(w)))
        written.unlink()
    return out


def _source_of(commit: str, folder: Path) -> Path:
    archive = folder / "src.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), commit, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "before", filter="data")
    return folder / "before" / "src"


def _run_dump(src: Path, graphs: Path, target: Path) -> dict[str, str]:
    code = (
        "import json, sys; from pathlib import Path; from bench.sdk_outputs import dump; "
        "json.dump(dump(Path(sys.argv[1])), open(sys.argv[2], 'w'))"
    )
    env_path = f"{src}:{REPO}"
    env = {"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code, str(graphs), str(target)], check=True, env=env)
    return json.loads(target.read_text())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commit = argv[0] if argv else "main"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        graphs = folder / "graphs"
        graphs.mkdir()
        write_graphs(graphs)
        before = _run_dump(_source_of(commit, folder), graphs, folder / "before.json")
        after = _run_dump(REPO / "src", graphs, folder / "after.json")
    differ = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    for key in differ:
        print(f"differs: {key}\n  before: {before.get(key, '')[:400]}\n  after:  {after.get(key, '')[:400]}")
    print(f"{len(before.keys() | after.keys())} outputs, {len(differ)} differ (against {commit})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
