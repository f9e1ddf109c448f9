"""``talon demo``: the end-to-end example a new user runs first.

Current scope (the IR foundation): build the 784-128-10 spiking network of the TALON tutorials
as TALON IR, write it as ``.t1c``, read it back and prove the round trip is bit-exact.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from talon import ir


def seed_snn(seed: int = 0) -> ir.Graph:
    """The tutorials' 784-128-10 SNN (snnTorch ``Leaky(beta=0.9)`` layers) with seeded weights."""
    rng = np.random.default_rng(seed)
    beta = np.float32(0.9)
    tau = 1.0 / (1.0 - np.float64(beta))  # float64 so that 1 - 1/tau gives beta back exactly

    def dense(n_out: int, n_in: int) -> ir.Affine:
        bound = 1.0 / np.sqrt(n_in)
        return ir.Affine(
            rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32),
            rng.uniform(-bound, bound, n_out).astype(np.float32),
        )

    def leaky(n: int) -> ir.LIF:
        return ir.LIF(
            tau=np.full(n, tau), r=np.full(n, tau), v_leak=0.0, v_threshold=1.0,
            reset_mode="subtract", reset_timing="delayed", comparison=">",
        )  # fmt: skip

    return ir.Graph(
        {
            "input": ir.Input(np.array([784])),
            "fc1": dense(128, 784),
            "lif1": leaky(128),
            "fc2": dense(10, 128),
            "lif2": leaky(10),
            "output": ir.Output(np.array([10])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
        metadata={"source": "talon demo", "neuron": "snnTorch Leaky(beta=0.9), subtract reset"},
    )


def run(out: Path, *, quick: bool = False) -> int:
    """Run the demo; returns the process exit code (0 when every check passed)."""
    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    graph = seed_snn()

    table = Table(title="TALON IR graph")
    for col in ("node", "type", "input", "output", "parameters"):
        table.add_column(col)
    for name, node in graph.nodes.items():
        n_params = sum(a.size for a in node.arrays().values())
        table.add_row(
            name, type(node).__name__, str(list(node.input_shape)), str(list(node.output_shape)), f"{n_params:,}"
        )
    console.print(table)

    path = out / "seed_snn.t1c"
    t0 = time.perf_counter()
    ir.write(path, graph)
    t1 = time.perf_counter()
    back = ir.read(path)
    t2 = time.perf_counter()
    differences = ir.graph_differences(graph, back)
    console.print(
        f"wrote {path} ({path.stat().st_size:,} bytes) in {1e3 * (t1 - t0):.1f} ms, "
        f"read it in {1e3 * (t2 - t1):.1f} ms; format version {ir.read_version(path)}"
    )
    if differences:
        console.print("[red]round trip differs:[/red]", *differences, sep="\n  ")
        return 1
    console.print("[green]round trip is bit-exact[/green] (arrays, node order, shapes, metadata)")
    console.print(f"files written: {path}")
    return 0
