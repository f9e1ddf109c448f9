"""One-shot ``talon`` commands, each a new process, timed whole (interpreter start, imports, work).

The same command runs three ways, interleaved (a, b, c, a, b, c, ...), medians of ``REPEATS``:

* **dispatch** (ours, the default): per kernel family, the numpy twin for small work — numba is
  never imported — and the numba kernel above the family's threshold (``talon._compiled``);
* **forced numba** (``TALON_FORCE_NUMBA=1``): every compiled kernel whatever the size — what
  every command did before the dispatch, when numba was installed;
* **forced twin** (``TALON_DISABLE_NUMBA=1``): the numpy twins only, as without the ``fast`` extra.

numba's disk cache is filled before timing (one untimed run of each command with numba forced),
so "forced numba" pays importing numba and loading its cached kernels, not compiling them; the
first run on a new machine also compiles (seconds), see ``bench_event_io``'s first-read rows.
Inputs: a 64-32-10 and a 784-128-10 LIF MLP (``talon.examples.mlp_graph``) run for 100 steps, the
first also for 10 000 steps at int8 (above the fixed-point loop's threshold: the dispatch starts
numba), a 784-1024-1024-10 one run for 1000 steps; EVT 2.0 / 3.0 recordings of 5 k and 2 M events (``bench_event_io``'s
synthetic camera). Every command's stdout is checked to be the same three ways (``energy`` is
left out: it reports measured latency).

:func:`listings`: the listing commands on 3,000- and 30,000-node graphs (a chain of Affine(8→8) and
LIF(8) pairs), ours against the same command of the talon before long listings were summarized and
printed as plain text (commit ``LISTINGS_BEFORE``, extracted with ``git archive``; rows are left out
when git or that commit is not at hand), interleaved, ``COLUMNS=120``. The commands whose output
did not change (``analyze``, ``lint``, ``profile``, ``hash``, ``partition``) get absolute times only.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.common import Row, print_rows

REPEATS = 5
MODES = {
    "dispatch": {},
    "forced numba": {"TALON_FORCE_NUMBA": "1"},
    "forced twin": {"TALON_DISABLE_NUMBA": "1"},
}
LARGE = ["simulate", "large.t1c", "--steps", "1000"]
COMMANDS = {
    "simulate 64-32-10, 100 steps, fp32": ["simulate", "small.t1c", "--json"],
    "simulate 64-32-10, 100 steps, int8": ["simulate", "small.t1c", "--precision", "int8", "--json"],
    "simulate 784-128-10, 100 steps, int8": ["simulate", "mlp.t1c", "--precision", "int8", "--json"],
    "simulate 64-32-10, 10 000 steps, int8": ["simulate", "small.t1c", "--steps", "10000", "--precision", "int8"],
    "simulate 784-1024-1024-10, 1000 steps, fp32": [*LARGE, "--json"],
    "simulate 784-1024-1024-10, 1000 steps, int8": [*LARGE, "--precision", "int8", "--json"],
    "events info, EVT 3.0, 5 k events": ["events", "info", "small.raw", "--json"],
    "events info, EVT 3.0, 2 M events": ["events", "info", "large.raw", "--json"],
    "events info, EVT 2.0, 2 M events": ["events", "info", "large2.raw", "--json"],
}


def _inputs(folder: Path) -> None:
    from bench.bench_event_io import SENSOR, recording
    from talon import ir
    from talon.examples import mlp_graph
    from talon.io import write_raw

    ir.write(folder / "small.t1c", mlp_graph(0, (64, 32, 10)))
    ir.write(folder / "mlp.t1c", mlp_graph(0))
    ir.write(folder / "large.t1c", mlp_graph(0, (784, 1024, 1024, 10)))
    write_raw(folder / "small.raw", recording(5_000), version="3.0", sensor_size=SENSOR)
    large = recording()
    write_raw(folder / "large.raw", large, version="3.0", sensor_size=SENSOR)
    write_raw(folder / "large2.raw", large, version="2.0", sensor_size=SENSOR)


def _run(args: list[str], env: dict[str, str], folder: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "talon", *args], env=env, cwd=folder, capture_output=True, text=True, check=True
    )
    return time.perf_counter() - start, done.stdout


LISTINGS_BEFORE = "3b4f269815e12432990ad860ad679f3694b82cc7"
LISTING_SIZES = {3_000: 5, 30_000: 3}  # nodes: repeats
LISTING_COMMANDS = {  # case: (our arguments, the arguments of the version before)
    "inspect": (["inspect", "{f}"], ["inspect", "{f}"]),
    "inspect --all": (["inspect", "{f}", "--all"], ["inspect", "{f}"]),
    "analyze -v": (["analyze", "-v", "{f}"], ["analyze", "-v", "{f}"]),
}
UNCHANGED_COMMANDS = [["analyze", "{f}"], ["lint", "{f}"], ["profile", "{f}"], ["hash", "{f}"], ["partition", "{f}"]]


def chain_graph(n_nodes: int):
    """``input → (fc_k Affine(8→8) → lif_k LIF(8))… → output``: ``n_nodes`` nodes (rounded to even)."""
    import numpy as np

    from talon import ir
    from talon.examples import chain, leaky, uniform

    rng = np.random.default_rng(0)
    layers = []
    for k in range((n_nodes - 2) // 2):
        layers += [(f"fc{k}", ir.Affine(uniform(rng, (8, 8), 8), uniform(rng, 8, 8))), (f"lif{k}", leaky(8))]
    return chain([8], *layers)


def _before_source(folder: Path) -> Path | None:
    """The ``src`` folder of commit ``LISTINGS_BEFORE``, or None without git or that commit."""
    repo = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None:
        return None
    archive = folder / "before.tar"
    done = subprocess.run(
        ["git", "-C", str(repo), "archive", "-o", str(archive), LISTINGS_BEFORE, "src"], capture_output=True
    )
    if done.returncode != 0:
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "before", filter="data")
    return folder / "before" / "src"


def listings() -> list[Row]:
    """Listing commands on large graphs, ours against the version before (see the module docstring)."""
    from talon import ir

    env = {k: v for k, v in os.environ.items() if k not in ("TALON_FORCE_NUMBA", "TALON_DISABLE_NUMBA")}
    env["COLUMNS"] = "120"
    ours_env = {**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        before = _before_source(folder)
        before_env = None if before is None else {**env, "PYTHONPATH": str(before)}
        load = [os.getloadavg()[0]]
        for n_nodes, repeats in LISTING_SIZES.items():
            path = folder / f"chain{n_nodes}.t1c"
            ir.write(path, chain_graph(n_nodes))
            for case, (ours, theirs) in LISTING_COMMANDS.items():
                ours = [a.format(f=path.name) for a in ours]
                theirs = [a.format(f=path.name) for a in theirs]
                times: dict[str, list[float]] = {"ours": [], "before": []}
                for _ in range(repeats):
                    times["ours"].append(_run(ours, ours_env, folder)[0])
                    if before_env is not None:
                        times["before"].append(_run(theirs, before_env, folder)[0])
                reference = statistics.median(times["before"]) if times["before"] else None
                label = f"{case}, {n_nodes:,} nodes"
                rows.append(Row("cli listings", label, statistics.median(times["ours"]), "before (3b4f269)", reference))
                print(f"{label}: ours {rows[-1].ours_s:.2f} s, before {reference} s", file=sys.stderr, flush=True)
                load.append(os.getloadavg()[0])
            for args in UNCHANGED_COMMANDS:
                args = [a.format(f=path.name) for a in args]
                seconds = statistics.median(_run(args, ours_env, folder)[0] for _ in range(repeats))
                rows.append(Row("cli listings", f"{args[0]}, {n_nodes:,} nodes", seconds, "—", None))
                print(f"{args[0]}, {n_nodes:,} nodes: {seconds:.2f} s", file=sys.stderr, flush=True)
            load.append(os.getloadavg()[0])
    listings.markdown = [
        "Listing commands as new processes (`COLUMNS=120`) on chains of Affine(8→8)/LIF(8) pairs: ours "
        "against commit 3b4f269, which drew every row as a rich table (`inspect` now shows 50 rows and "
        "counts the rest; `inspect --all` and `analyze -v` print listings above 100 rows as aligned "
        "plain text). Median of "
        + ", ".join(f"{repeats} ({n:,} nodes)" for n, repeats in LISTING_SIZES.items())
        + " interleaved runs; rows without a reference give absolute times of unchanged commands. "
        f"Load average (1 min) during the runs: {min(load):.1f}–{max(load):.1f}."
    ]
    print_rows("CLI listings on large graphs", rows)
    return rows


def main() -> list[Row]:
    base = {k: v for k, v in os.environ.items() if k not in ("TALON_FORCE_NUMBA", "TALON_DISABLE_NUMBA")}
    base["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _inputs(folder)
        load = [os.getloadavg()[0]]
        for args in COMMANDS.values():  # fill numba's disk cache: timed runs load, never compile
            _run(args, {**base, **MODES["forced numba"]}, folder)
        for case, args in COMMANDS.items():
            times: dict[str, list[float]] = {mode: [] for mode in MODES}
            outputs: dict[str, set[str]] = {mode: set() for mode in MODES}
            for _ in range(REPEATS):
                for mode, extra in MODES.items():
                    seconds, out = _run(args, {**base, **extra}, folder)
                    times[mode].append(seconds)
                    outputs[mode].add(out)
            if len(set.union(*outputs.values())) != 1:
                raise AssertionError(f"{case}: the three modes printed different results")
            ours = statistics.median(times["dispatch"])
            for reference in ("forced numba", "forced twin"):
                rows.append(Row("cli one-shot", case, ours, reference, statistics.median(times[reference])))
            load.append(os.getloadavg()[0])
    main.markdown = [
        "Each row: `talon ...` as a new process with the default work-size dispatch (talon) against "
        "the same command with numba forced (what it did before) or the numpy twins forced; "
        f"median of {REPEATS} interleaved runs, numba's disk cache filled. Load average (1 min) "
        f"during the runs: {min(load):.1f}–{max(load):.1f}."
    ]
    print_rows("one-shot CLI processes", rows)
    listed = listings()
    main.markdown += listings.markdown
    return rows + listed


if __name__ == "__main__":
    main()
