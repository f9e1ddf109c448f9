"""Fine-tuning an imported graph with standard PyTorch tooling: gradients, torch.compile, DDP."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from talon import bridge, ir


def snn_graph(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([10])),
            "fc1": ir.Affine((rng.standard_normal((16, 10)) * 0.6).astype(np.float32), np.zeros(16, np.float32)),
            "lif1": ir.LIF(tau=np.full(16, 5.0), r=5.0, reset_mode="subtract", comparison=">"),
            "fc2": ir.Affine((rng.standard_normal((4, 16)) * 0.6).astype(np.float32), np.zeros(4, np.float32)),
            "lif2": ir.LIF(tau=np.full(4, 5.0), r=5.0),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
    )


def spike_count_loss(executor, xs, target):
    out, _ = executor.run_sequence(xs)
    return torch.nn.functional.cross_entropy(out.sum(0), target)


def test_surrogate_gradients_reach_every_layer():
    executor = bridge.ir_to_torch(snn_graph(), return_state=True)
    xs = torch.rand(30, 8, 10) * 2
    loss = spike_count_loss(executor, xs, torch.randint(0, 4, (8,)))
    loss.backward()
    for name in ("fc1", "fc2"):
        grad = executor.module_of(name).weight.grad
        assert grad is not None and torch.count_nonzero(grad) > 0, name


def test_fine_tuning_lowers_the_loss_and_reexports():
    torch.manual_seed(0)
    executor = bridge.ir_to_torch(snn_graph(), return_state=True)
    xs = torch.rand(20, 16, 10) * 2
    target = torch.randint(0, 4, (16,))
    optimizer = torch.optim.Adam(executor.parameters(), lr=0.05)
    first = spike_count_loss(executor, xs, target).item()
    for _ in range(15):
        optimizer.zero_grad()
        loss = spike_count_loss(executor, xs, target)
        loss.backward()
        optimizer.step()
    assert spike_count_loss(executor, xs, target).item() < first
    trained = bridge.to_ir(executor, xs[0])
    assert not np.array_equal(trained.nodes["fc1"].weight, snn_graph().nodes["fc1"].weight)


def test_torch_compile_gives_the_same_steps():
    executor = bridge.ir_to_torch(snn_graph(1), return_state=True)
    compiled = torch.compile(executor)
    xs = torch.rand(6, 2, 10) * 2
    s_eager = s_comp = None
    with torch.no_grad():
        for t in range(6):
            a, s_eager = executor(xs[t], s_eager)
            b, s_comp = compiled(xs[t], s_comp)
            assert torch.equal(a, b)
            assert torch.equal(s_eager["lif1"], s_comp["lif1"])


def _ddp_worker(rank: int, world: int, store: str, result_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.manual_seed(rank)  # different data on each replica
    executor = bridge.ir_to_torch(snn_graph(2), return_state=True)
    model = torch.nn.parallel.DistributedDataParallel(executor)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        xs = torch.rand(10, 4, 10) * 2
        target = torch.randint(0, 4, (4,))
        optimizer.zero_grad()
        state, total = None, 0
        for t in range(xs.shape[0]):
            out, state = model(xs[t], state)
            total = total + out
        torch.nn.functional.cross_entropy(total, target).backward()
        optimizer.step()
    flat = torch.cat([p.detach().reshape(-1) for p in executor.parameters()])
    torch.save(flat, os.path.join(result_dir, f"rank{rank}.pt"))
    # both ranks finish before either tears gloo down: a rank destroying its group while the other
    # is still in its last collective aborted it once ("terminate called without an active exception")
    dist.barrier()
    dist.destroy_process_group()


def test_distributed_data_parallel_keeps_replicas_in_sync(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    a, b = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    start = torch.cat([p.detach().reshape(-1) for p in bridge.ir_to_torch(snn_graph(2)).parameters()])
    assert torch.equal(a, b)
    assert not torch.equal(a, start)  # the replicas trained (on different data) and stayed identical


def test_symbolic_trace_keeps_the_surrogate_gradient():
    """torch.fx inlines autograd.Functions; spike() is fx.wrap-ped so a traced neuron keeps it."""
    from talon.bridge.spike import spike

    lif = bridge.LIFModule(tau=np.full(3, 4.0), r=4.0, v_threshold=0.5)
    traced = torch.fx.symbolic_trace(lif)
    assert any(n.op == "call_function" and n.target is spike for n in traced.graph.nodes)
    x = torch.tensor([[0.2, 0.6, 1.5]], requires_grad=True)
    v = torch.zeros(1, 3)  # tracing specialises the `state is None` branch: pass the state
    (traced(x, v)[0].sum()).backward()
    traced_grad = x.grad.clone()
    x.grad = None
    (lif(x, v)[0].sum()).backward()
    assert torch.equal(traced_grad, x.grad) and torch.count_nonzero(x.grad) == 3
