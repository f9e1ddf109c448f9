"""``talon demo``: the end-to-end example a new user runs first.

On scikit-learn's bundled handwritten digits (8×8 images, no download): train a small snnTorch
SNN on rate-coded input, export it to TALON IR, write and read ``digits_snn.t1c``, prove that the
imported executor gives the same spikes as snnTorch on the whole test split, analyze / lint /
profile the graph, simulate it on the CPU backend in fp32 and int8, exchange it through NIR, and
plot a spike raster. A step that fails, or cannot run because an optional dependency is missing
(the row names the extra to install), makes the demo exit with 1 and an ``error:`` line on
stderr: a demo that did not run does not report success. ``--quick`` trains briefly on a subset
(seconds; used by the tests).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from talon._terminal import console as terminal_console
from talon.ir.errors import install_hint

T_STEPS = 25
SEED = 0


@dataclass
class Report:
    """What the demo measured, step by step, and the files it wrote."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (step, result, status)
    files: list[Path] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    failed: bool = False

    def add(self, step: str, result: str, ok: bool | None = True) -> None:
        """Record a step: ``ok`` True (done), False (failed) or None (could not run); only True succeeds."""
        self.rows.append((step, result, {True: "ok", False: "FAILED", None: "NOT RUN"}[ok]))
        self.failed |= ok is not True


def _missing(*modules: str) -> list[str]:
    """The modules (dotted names allowed) that cannot be imported here."""
    gone = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a missing parent package
            found = False
        if not found:
            gone.append(name)
    return gone


def load_digits_split(quick: bool):
    """Digits scaled to [0, 1], a stratified 80/20 split (seeded)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=SEED, stratify=y)
    if quick:
        x_tr, y_tr, x_te, y_te = x_tr[:300], y_tr[:300], x_te[:100], y_te[:100]
    return x_tr, y_tr, x_te, y_te


def rate_code(x: np.ndarray, steps: int, seed: int):
    """Bernoulli rate coding: at each step a pixel spikes with probability = its intensity."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    probs = torch.from_numpy(x).expand(steps, *x.shape)
    return torch.bernoulli(probs, generator=gen)


def build_model(hidden: int = 128):
    import snntorch as snn
    from torch import nn

    # Reset to zero in the same step: the neuron every NIR framework can represent exactly (snnTorch's
    # default, subtraction one step late, is exact in TALON IR but not expressible in NIR).
    def leaky():
        return snn.Leaky(beta=0.9, reset_mechanism="zero", reset_delay=False, init_hidden=True)

    class DigitsSNN(nn.Module):
        """64 → 128 LIF → 10 LIF (snnTorch Leaky, beta 0.9, immediate reset to zero)."""

        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, hidden)
            self.lif1 = leaky()
            self.fc2 = nn.Linear(hidden, 10)
            self.lif2 = leaky()

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    return DigitsSNN()


def snntorch_spikes(model, spikes):
    """Run the snnTorch model over ``spikes`` [T, N, 64]; output spikes [T, N, 10]."""
    import torch
    from snntorch import utils

    utils.reset(model)
    return torch.stack([model(spikes[t]) for t in range(spikes.shape[0])])


def train(model, x_tr, y_tr, epochs: int, console: Console) -> None:
    import torch
    from rich.progress import Progress

    torch.manual_seed(SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    n, batch = len(x_tr), 64
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("training the snnTorch SNN", total=epochs * ((n + batch - 1) // batch))
        for epoch in range(epochs):
            order = np.random.default_rng(SEED + epoch).permutation(n)
            spikes = rate_code(x_tr, T_STEPS, seed=1000 + epoch)
            for start in range(0, n, batch):
                idx = torch.from_numpy(order[start : start + batch])
                counts = snntorch_spikes(model, spikes[:, idx]).sum(0)
                loss = torch.nn.functional.cross_entropy(counts, torch.from_numpy(y_tr[idx.numpy()]).long())
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                progress.advance(task)


def accuracy(output_spikes, labels: np.ndarray) -> float:
    counts = np.asarray(output_spikes).sum(0)
    return float((counts.argmax(-1) == labels).mean())


def run(out: Path, *, quick: bool = False) -> int:
    """Run every step; returns the exit code (0 when nothing failed)."""
    console = terminal_console()
    out.mkdir(parents=True, exist_ok=True)
    report = Report()
    missing = _missing("torch", "snntorch", "sklearn")
    if missing:
        needs = f"needs {', '.join(missing)}: pip install -e '.[snntorch,dev]' in the talon checkout (docs/install.md)"
        report.add("train + export", needs, None)
        return _finish(console, report, out)
    ctx: dict[str, Any] = {}
    for step in (_step_train, _step_export, _step_parity, _step_sdk, _step_backend, _step_nir, _step_plot):
        try:
            step(ctx, report, out, quick, console)
        except Exception as exc:  # a broken step is reported, the others still run
            report.add(step.__name__.removeprefix("_step_"), f"{type(exc).__name__}: {exc}", False)
    return _finish(console, report, out)


def _step_train(ctx, report: Report, out: Path, quick: bool, console: Console) -> None:
    import torch

    x_tr, y_tr, x_te, y_te = load_digits_split(quick)
    torch.manual_seed(SEED)
    model = build_model()
    t0 = time.perf_counter()
    train(model, x_tr, y_tr, epochs=1 if quick else 12, console=console)
    model.eval()
    test_spikes = rate_code(x_te, T_STEPS, seed=7)
    with torch.no_grad():
        ref = snntorch_spikes(model, test_spikes)
    acc = accuracy(ref.numpy(), y_te)
    ctx.update(model=model, test_spikes=test_spikes, y_te=y_te, reference=ref)
    report.values.update(test_accuracy=acc, train_seconds=time.perf_counter() - t0, test_samples=len(y_te))
    report.add("train (snnTorch)", f"{len(y_tr)} digits, {T_STEPS} steps; test accuracy {acc:.1%} on {len(y_te)}")


def _step_export(ctx, report: Report, out: Path, quick: bool, console: Console) -> None:
    from talon import bridge, ir

    graph = bridge.to_ir(ctx["model"], ctx["test_spikes"][0, :1])
    path = out / "digits_snn.t1c"
    ir.write(path, graph)
    back = ir.read(path)
    differences = ir.graph_differences(graph, back)
    ctx.update(graph=back)
    report.files.append(path)
    report.values["t1c_bytes"] = path.stat().st_size
    report.add("export + .t1c", f"{len(graph.nodes)} nodes → {path.name} ({path.stat().st_size:,} B), read back "
               f"{'bit-exact' if not differences else 'DIFFERENT'}", not differences)  # fmt: skip


def _step_parity(ctx, report: Report, out: Path, quick: bool, console: Console) -> None:
    import torch

    from talon import bridge

    executor = bridge.ir_to_torch(ctx["graph"], return_state=True)
    with torch.no_grad():
        ours, _ = executor.run_sequence(ctx["test_spikes"])
    agreement = float((ours == ctx["reference"]).float().mean())
    ctx.update(executor=executor)
    report.values["executor_spike_agreement"] = agreement
    report.add("import + parity", f"GraphExecutor vs snnTorch on the test split: {agreement:.2%} of spikes equal",
               agreement == 1.0)  # fmt: skip


def _step_sdk(ctx, report: Report, out: Path, quick: bool, console: Console) -> None:
    from talon import sdk

    stats = sdk.analyze_graph(ctx["graph"])
    lint = sdk.lint_graph(ctx["graph"])
    prof = sdk.profile_graph(ctx["graph"])
    console.print(sdk.summarize(ctx["graph"]))
    report.values.update(params=stats.total_params, macs=prof.mac_ops, lint_issues=len(lint.issues))
    report.add("analyze, lint, profile", f"{stats.total_params:,} parameters, {prof.mac_ops:,} MACs/step, "
               f"{len(lint.issues)} lint issues, fingerprint {sdk.fingerprint_graph(ctx['graph'])[:12]}",
               len(lint.issues) == 0)  # fmt: skip


def _step_backend(ctx, report: Report, out: Path, quick: bool, console: Console) -> None:
    if _missing("talon.backend"):
        report.add("CPU backend", "talon.backend is not installed in this build", None)
        return
    from talon.backend import get_backend

    cpu = get_backend("cpu")
    x = ctx["test_spikes"].numpy()
    for precision in ("fp32", "int8"):
        result = cpu.simulate(ctx["graph"], inputs={"input": x}, n_steps=x.shape[0], precision=precision)
        outputs = np.asarray(result.outputs["output"])
        acc = accuracy(outputs, ctx["y_te"])
        agree = float((outputs == ctx["reference"].numpy()).mean())
        report.values[f"backend_{precision}_accuracy"] = acc
        report.values[f"backend_{precision}_spike_agreement"] = agree
        report.add(f"CPU backend {precision}", f"test accuracy {acc:.1%}; {agree:.2%} of spikes equal to snnTorch's",
                   agree == 1.0 if precision == "fp32" else True)  # fmt: skip
    prof = cpu.profile(ctx["graph"], inputs={"input": x[:, :1]}, n_steps=x.shape[0], energy_preset="45nm_cmos")
    report.values["energy_uj_per_inference"] = prof.energy_estimate_uj
    report.add("energy (45 nm CMOS)", f"{prof.energy_estimate_uj:.4f} µJ per inference ({x.shape[0]} steps)")


def _step_nir(ctx, report: Report, out: Path, quick: bool, console: Console) -> None:
    if _missing("nir", "talon.interop.nir"):
        report.add("NIR exchange", "needs nir: " + install_hint("nir"), None)
        return
    import warnings

    import torch

    from talon import bridge, ir
    from talon.interop.nir import LossyConversionWarning, read_nir, write_nir

    path = out / "digits_snn.nir"
    try:
        write_nir(path, ctx["graph"])
        exact = True
    except ir.ConversionError:
        # snnTorch's default Leaky resets by subtraction, one step late; NIR neurons reset to v_reset at once.
        # An exact export is refused; lossy=True writes NIR's reset and records the change in the file.
        report.add("NIR (exact)", "refused: NIR cannot state snnTorch's subtractive, delayed reset", True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LossyConversionWarning)
            write_nir(path, ctx["graph"], lossy=True)
        exact = False
    back = read_nir(path)
    with torch.no_grad():
        spikes, _ = bridge.ir_to_torch(back, return_state=True).run_sequence(ctx["test_spikes"])
    agreement = float((spikes == ctx["reference"]).float().mean())
    report.files.append(path)
    report.values["nir_exact"] = exact
    report.values["nir_spike_agreement"] = agreement
    if exact:
        report.add(
            "NIR write + read", f"{path.name}; re-imported graph gives {agreement:.2%} equal spikes", agreement == 1
        )
    else:
        changed = ", ".join(back.metadata["nir"]["lossy"])
        report.add(
            "NIR write + read (lossy)",
            f"{path.name}; NIR's immediate reset to 0 in {changed} (recorded); {agreement:.2%} equal spikes",
            True,
        )


def _step_plot(ctx, report: Report, out: Path, quick: bool, console: Console) -> None:
    if _missing("matplotlib"):
        report.add("plot", "needs matplotlib: " + install_hint("viz"), None)
        return
    import torch

    from talon.viz.raster import plot_spikes_and_membranes

    executor = ctx["executor"]
    sample = ctx["test_spikes"][:, :1]
    lif1, fc1 = executor.module_of("lif1"), executor.module_of("fc1")  # the hidden layer, stepped alone
    state, hidden_state, hidden, mem, outs = None, None, [], [], []
    with torch.no_grad():
        for t in range(sample.shape[0]):
            y, state = executor(sample[t], state)
            z, hidden_state = lif1(fc1(sample[t]), hidden_state)
            hidden.append(z[0])
            mem.append(state["lif2"][0].clone())
            outs.append(y[0])
    path = plot_spikes_and_membranes(
        {"input": sample[:, 0].numpy(), "lif1": torch.stack(hidden).numpy(), "lif2": torch.stack(outs).numpy()},
        {"lif2": torch.stack(mem).numpy()},
        out / "raster.png",
        title=f"digit {int(ctx['y_te'][0])}: talon GraphExecutor",
    )
    report.files.append(path)
    report.add("plot", f"spike raster and membranes → {path.name}")


def _finish(console: Console, report: Report, out: Path) -> int:
    table = Table(title="talon demo")
    for col in ("step", "result", "status"):
        table.add_column(col)
    for row in report.rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    summary = out / "summary.json"
    summary.write_text(json.dumps({"steps": report.rows, "values": report.values}, indent=2, default=float))
    report.files.append(summary)
    console.print("files written:", *[f"  {p}" for p in report.files], sep="\n")
    if report.failed:
        not_done = [step for step, _, status in report.rows if status != "ok"]
        print(f"error: the demo did not complete: {', '.join(not_done)} (see the table above)", file=sys.stderr)
        return 1
    return 0
