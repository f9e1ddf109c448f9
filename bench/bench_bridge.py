"""PyTorch bridge: GraphExecutor against the native models, NIRTorch and the exporters.

* single step: executor(x, state) vs the snnTorch model's own step (MLP 784-256-10, CNN), batch 1 and 64;
* sequence: executor.run_sequence over T = 100 vs the snnTorch per-step loop and vs NIRTorch's
  ``nir_to_torch`` module of the same network (784-2048-10, batch 32), with the default exact
  products (checked bit-identical to the loop's spikes and membranes; its Linear layers run
  verified plans of many steps per GEMM, ``talon.bridge.sequence_gemm_plan``), with
  ``products="time_batched"``, and the default's first call of a shape (plans measured and
  verified: the one-time cost, like a compile);
* export: ``bridge.to_ir`` vs NIRTorch ``torch_to_nir`` and snnTorch ``export_to_nir`` on the MLP,
  and vs ``export_to_nir`` on the tutorial model (docs/snntorch.md's ``SNN``, 784-128-10, ``forward(x, mem1=None,
  mem2=None)``). snnTorch's exporter cannot type a graph with scalar ``beta``/``threshold`` (NIR
  type inference fails), so its side always gets the per-neuron variant; talon is timed on both.

``python -m bench.bench_bridge sequence`` runs only the sequence rows (also ``step``, ``export``).

Both sides of a row run in the same process with the same torch thread count (stated in the case),
interleaved, medians; the load average is printed with the table.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import torch

from bench.common import Row, median_times, print_rows


def _mlp(n_in: int, hidden: int, n_out: int, per_neuron: bool = False):
    import snntorch as snn
    from torch import nn

    def beta(n):  # snnTorch's NIR export needs per-neuron vectors (scalars break its type inference)
        return torch.full((n,), 0.9) if per_neuron else 0.9

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(n_in, hidden)
            self.lif1 = snn.Leaky(beta=beta(hidden), threshold=torch.ones(hidden) if per_neuron else 1.0,
                                  init_hidden=True)  # fmt: skip
            self.fc2 = nn.Linear(hidden, n_out)
            self.lif2 = snn.Leaky(beta=beta(n_out), threshold=torch.ones(n_out) if per_neuron else 1.0,
                                  init_hidden=True)  # fmt: skip

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))

    return MLP()


def _cnn():
    import snntorch as snn
    from torch import nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.lif1 = snn.Leaky(beta=0.9, init_hidden=True)
            self.pool = nn.MaxPool2d(2)
            self.flat = nn.Flatten()
            self.fc = nn.Linear(8 * 14 * 14, 10)
            self.lif2 = snn.Leaky(beta=0.9, init_hidden=True)

        def forward(self, x):
            return self.lif2(self.fc(self.flat(self.pool(self.lif1(self.conv(x))))))

    return CNN()


def _seed_snn(per_neuron: bool):
    """Seed 000's snnTorch model (its "snnTorch Export" block), optionally with per-neuron
    ``beta``/``threshold`` vectors of the same values (what snnTorch's own exporter needs)."""
    import snntorch as snn
    from torch import nn

    def leaky(n):
        if per_neuron:
            return snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n))
        return snn.Leaky(beta=0.9)

    class SNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 128)
            self.lif1 = leaky(128)
            self.fc2 = nn.Linear(128, 10)
            self.lif2 = leaky(10)

        def forward(self, x, mem1=None, mem2=None):
            if mem1 is None:
                mem1 = self.lif1.init_leaky()
            if mem2 is None:
                mem2 = self.lif2.init_leaky()
            cur1 = self.fc1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            return spk2, mem1, mem2

    return SNN()


def _threads() -> str:
    return f"{torch.get_num_threads()} torch thread(s)"


@contextlib.contextmanager
def _one_thread():
    """Both exporters are single-threaded Python; a 2-thread pool only adds the stalls of its
    parallel regions on a loaded host to the sample forward passes (of both sides alike)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _per_step(model, executor, x, steps: int) -> tuple[float, float]:
    from snntorch import utils

    def native():
        utils.reset(model)
        for _ in range(steps):
            model(x)

    def ours():
        state = None
        for _ in range(steps):
            _, state = executor(x, state)

    with torch.no_grad():
        t = median_times({"ours": ours, "native": native})
    return t["ours"] / steps, t["native"] / steps


def single_step() -> list[Row]:
    from talon import bridge

    rows = []
    for name, model, shape in (("MLP 784-256-10", _mlp(784, 256, 10), (784,)), ("CNN 1x28x28", _cnn(), (1, 28, 28))):
        for batch in (1, 64):
            x = torch.rand(batch, *shape)
            executor = bridge.ir_to_torch(bridge.to_ir(model, x), return_state=True)
            t_ours, t_ref = _per_step(model, executor, x, steps=50)
            rows.append(Row("bridge", f"{name} step, batch {batch}", t_ours, "snnTorch model step", t_ref))
    return rows


def sequence() -> list[Row]:
    from snntorch import utils
    from snntorch.export_nir import export_to_nir

    from talon import bridge
    from talon.bridge import sequence_gemm_plan

    model = _mlp(784, 2048, 10, per_neuron=True)
    xs = torch.rand(100, 32, 784)
    executor = bridge.ir_to_torch(bridge.to_ir(model, xs[0]), return_state=True)

    def snntorch_loop():
        utils.reset(model)
        for t in range(xs.shape[0]):
            model(xs[t])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir_graph = export_to_nir(model, xs[0], ignore_dims=[0])
        from snntorch.import_nir import import_from_nir

        nir_module = import_from_nir(nir_graph)

    def nirtorch_loop():
        state = None
        for t in range(xs.shape[0]):
            _, state = nir_module(xs[t], state)

    def ours():
        return executor.run_sequence(xs)

    def ours_time_batched():
        return executor.run_sequence(xs, products="time_batched")

    def ours_first_call():  # the Linear plans measured and verified again (first use of a shape)
        sequence_gemm_plan.clear_plans()
        return executor.run_sequence(xs)

    with torch.no_grad():
        utils.reset(model)
        reference = torch.stack([model(xs[t]) for t in range(xs.shape[0])])
        spikes, final = ours()
        exact = torch.equal(spikes, reference) and all(
            torch.equal(final[name], getattr(model, name).mem) for name in ("lif1", "lif2")
        )
        t = median_times(
            {"ours": ours, "ours_tb": ours_time_batched, "snn": snntorch_loop, "nir": nirtorch_loop}, repeats=15
        )
        first = median_times({"ours_first": ours_first_call, "snn": snntorch_loop}, repeats=5)
    t_snn, t_nir = t["snn"], t["nir"]
    per_step = "spikes and membranes equal the loop's bit for bit" if exact else "NOT bit-identical to the loop"
    case = "784-2048-10, T=100, batch 32: run_sequence"
    cases = (
        (f"{case} ({_threads()}; {per_step})", t["ours"]),
        (f"{case} products='time_batched' ({_threads()}; may differ in the last bit)", t["ours_tb"]),
    )
    rows = []
    for case, t_ours in cases:
        rows.append(Row("bridge", case, t_ours, "snnTorch per-step loop", t_snn))
        rows.append(Row("bridge", case, t_ours, "NIRTorch module (snnTorch import)", t_nir))
    first_case = (
        f"784-2048-10, T=100, batch 32: run_sequence, first call of a shape: Linear plans measured and verified "
        f"({_threads()})"
    )
    rows.append(Row("bridge", first_case, first["ours_first"], "snnTorch per-step loop", first["snn"]))
    return rows


def export() -> list[Row]:
    import nir
    import nirtorch
    import numpy as np
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    from talon import bridge

    model = _mlp(784, 256, 10, per_neuron=True)
    x = torch.rand(1, 784)
    sizes = {id(model.lif1): 256, id(model.lif2): 10}

    def leaky_to_nir(mod):  # what a NIRTorch user writes for snnTorch's Leaky
        n, beta = sizes[id(mod)], float(mod.beta[0])
        tau = np.full(n, 1e-4 / (1 - beta), np.float32)
        return nir.LIF(tau=tau, r=np.full(n, 1 / (1 - beta), np.float32), v_leak=np.zeros(n, np.float32),
                       v_threshold=np.ones(n, np.float32))  # fmt: skip

    with warnings.catch_warnings(), _one_thread():
        warnings.simplefilter("ignore")
        threads = _threads()
        t = median_times(
            {
                "ours": lambda: bridge.to_ir(model, x),
                "snn": lambda: export_to_nir(model, x, ignore_dims=[0]),
                "nirtorch": lambda: nirtorch.torch_to_nir(
                    model, {snn.Leaky: leaky_to_nir}, stateful_modules={snn.Leaky}
                ),
            },
            repeats=31,
        )
        seed, seed_per_neuron, seed_x = _seed_snn(per_neuron=False), _seed_snn(per_neuron=True), torch.randn(1, 784)
        s = median_times(
            {
                "ours": lambda: bridge.to_ir(seed, seed_x),
                "ours_per_neuron": lambda: bridge.to_ir(seed_per_neuron, seed_x),
                "snn": lambda: export_to_nir(seed_per_neuron, seed_x, ignore_dims=[0]),
            },
            repeats=31,
        )
    t_ours, t_snn, t_nirtorch = t["ours"], t["snn"], t["nirtorch"]
    mlp = f"export MLP 784-256-10 ({threads})"
    seed_case = f"export the tutorial SNN 784-128-10 of docs/snntorch.md ({threads})"
    return [
        Row("bridge", mlp, t_ours, "snnTorch export_to_nir", t_snn),
        Row("bridge", mlp, t_ours, "NIRTorch torch_to_nir", t_nirtorch),
        Row("bridge", seed_case + ", per-neuron beta", s["ours_per_neuron"], "snnTorch export_to_nir", s["snn"]),
        Row("bridge", seed_case + ", verbatim", s["ours"], "snnTorch export_to_nir (per-neuron beta)", s["snn"]),
    ]


PARTS = {"step": single_step, "sequence": sequence, "export": export}


def main(parts: tuple[str, ...] = tuple(PARTS)) -> list[Row]:
    """The rows of ``parts`` (all by default; ``python -m bench.bench_bridge sequence`` runs one)."""
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    rows = [row for part in parts for row in PARTS[part]()]
    load_after = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print_rows(f"PyTorch bridge (load average {load} before, {load_after} after)", rows)
    return rows


if __name__ == "__main__":
    import sys

    unknown = [p for p in sys.argv[1:] if p not in PARTS]
    if unknown:
        sys.exit(f"error: unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    main(tuple(sys.argv[1:]) or tuple(PARTS))
