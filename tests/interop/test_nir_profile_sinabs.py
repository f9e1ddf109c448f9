"""The Sinabs 3.1.3 profile against real Sinabs: its own models, exported by its NIR exporter, spike in
talon with ``producer="sinabs"`` exactly as Sinabs runs them (several spikes per step, the IF floor),
and talon graphs written with ``consumer="sinabs"`` run in Sinabs exactly as in talon, or are refused
naming the field. T = 150 steps, inputs strong enough that neurons fire several spikes per step."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.interop.nir import from_nir, read_nir, to_nir, write_nir

torch = pytest.importorskip("torch")
sl = pytest.importorskip("sinabs.layers")
sinabs_nir = pytest.importorskip("sinabs.nir")
nir = pytest.importorskip("nir")

T, B = 150, 2


def sinabs_run(net, x: np.ndarray) -> np.ndarray:
    """Run a Sinabs (Squeeze-layer) network on time-major ``x[T, B, ...]``; returns ``[T, B, ...]``."""
    for module in net.modules():
        if hasattr(module, "reset_states"):
            module.reset_states()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        y = net(torch.from_numpy(x).transpose(0, 1).reshape(B * T, *x.shape[2:]))
    y = y[0] if isinstance(y, tuple) else y
    return y.reshape(B, T, *y.shape[1:]).transpose(0, 1).numpy()


def sinabs_import(graph):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return sinabs_nir.from_nir(graph, batch_size=B)


def talon_runs(graph: ir.Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """The CPU backend and the PyTorch executor's run_sequence on the same input."""
    from talon.bridge import ir_to_torch

    cpu = next(iter(get_backend("cpu").simulate(graph, x).outputs.values()))
    with torch.no_grad():
        seq = ir_to_torch(graph).run_sequence(torch.from_numpy(x))[0].numpy()
    return {"cpu": cpu, "torch": seq}


def mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 5), sl.IAFSqueeze(batch_size=B, min_v_mem=-1.0),
        torch.nn.Linear(5, 4),
        sl.LIFSqueeze(tau_mem=torch.tensor([3.0, 7.5, 20.0, 1.7]), batch_size=B, norm_input=False,
                      spike_threshold=torch.full((4,), 0.8)),
    )  # fmt: skip


def conv_chain():
    torch.manual_seed(1)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), sl.IAFSqueeze(batch_size=B, min_v_mem=-1.0), sl.SumPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64, 10),
        sl.LIFSqueeze(tau_mem=torch.full((10,), 5.0), batch_size=B, norm_input=False,
                      spike_threshold=torch.full((10,), 1.0)),
    )  # fmt: skip


@pytest.mark.parametrize(("build", "shape"), [(mlp, (6,)), (conv_chain, (2, 8, 8))], ids=["mlp", "conv-chain"])
def test_sinabs_models_spike_in_talon_as_in_sinabs(build, shape):
    net = build()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                module.weight.mul_(4.0)  # strong drive: several spikes per step
    x = (np.random.default_rng(1).random((T, B, *shape)) * 2.0 - 0.4).astype(np.float32)
    own = sinabs_run(net, x)
    exported = sinabs_nir.to_nir(net, torch.zeros(B, *shape))  # its 0-d parameters defeat nir.write
    assert np.array_equal(sinabs_run(sinabs_import(exported), x), own)  # its importer runs its model
    graph = from_nir(exported, producer="sinabs")
    assert (own > 1).sum() > 100 and 0.1 < (own > 0).mean() < 0.9
    for engine, spikes in talon_runs(graph, x).items():
        assert np.array_equal(spikes, own), f"{engine}: {(spikes != own).sum()} of {own.size} differ"
    # the profile is what makes it exact: NIR's reading of the same file differs
    standard = from_nir(exported, dt=1.0)
    assert (talon_runs(standard, x)["cpu"] != own).sum() > 0.05 * own.size


def test_the_if_floor_matters():
    """An IF driven far below -θ: without Sinabs' floor at -θ the spikes differ."""
    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), sl.IAFSqueeze(batch_size=B, min_v_mem=-1.0))
    x = (np.random.default_rng(2).random((T, B, 3)) * 6.0 - 3.0).astype(np.float32)
    own = sinabs_run(net, x)
    graph = from_nir(sinabs_nir.to_nir(net, torch.zeros(B, 3)), producer="sinabs")
    assert np.array_equal(talon_runs(graph, x)["cpu"], own) and (own > 1).any()
    no_floor = ir.Graph({k: replace(n, v_min=None) if isinstance(n, ir.IF) else n for k, n in graph.nodes.items()},
                        graph.edges)  # fmt: skip
    assert (talon_runs(no_floor, x)["cpu"] != own).sum() > 0


def test_files_sinabs_would_drop_or_refuse_are_refused_by_name(tmp_path):
    g = nir.NIRGraph.from_list(
        nir.Linear(weight=np.ones((3, 4), np.float32)), nir.IF(r=np.ones(3), v_threshold=np.ones(3))
    )
    with pytest.raises(ir.ConversionError, match=r"\(Linear\): Sinabs 3.1.3's NIR importer has no mapping"):
        from_nir(g, producer="sinabs")
    lif = nir.NIRGraph.from_list(nir.LIF(tau=np.full(3, 4.0), r=np.ones(3), v_leak=np.full(3, 0.5),
                                         v_threshold=np.ones(3)))  # fmt: skip
    with pytest.raises(ir.ConversionError, match=r"\(LIF\): Sinabs' importer refuses a non-zero v_leak"):
        from_nir(lif, producer="sinabs")
    with pytest.raises(ir.ConversionError, match="reads time constants as timesteps whatever dt"):
        from_nir(lif, producer="sinabs", dt=1e-3)


def talon_graph(**lif_changes) -> ir.Graph:
    rng = np.random.default_rng(2)
    tau = np.array([2.5, 4.0, 10.0, 33.0])
    lif = dict(tau=tau, r=tau, v_threshold=1.0, reset_mode="subtract", spike_mode="multi") | lif_changes
    return ir.Graph(
        {
            "input": ir.Input(np.array([6])),
            "fc1": ir.Affine(rng.normal(0, 1.5, (5, 6)).astype(np.float32), rng.normal(0, 0.2, 5).astype(np.float32)),
            "if1": ir.IF(
                v_threshold=np.full(5, 0.75), reset_mode="subtract", spike_mode="multi", v_min=np.full(5, -0.75)
            ),
            "fc2": ir.Linear(rng.normal(0, 1.0, (4, 5)).astype(np.float32)),
            "lif": ir.LIF(**lif),
            "output": ir.Output(np.array([4])),
        },
        [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "lif"), ("lif", "output")],
    )


def test_talon_graphs_run_in_sinabs_exactly(tmp_path):
    graph = talon_graph()
    x = (np.random.default_rng(3).random((T, B, 6)) * 2 - 0.5).astype(np.float32)
    ours = talon_runs(graph, x)["cpu"]
    write_nir(tmp_path / "to_sinabs.nir", graph, consumer="sinabs")
    theirs = sinabs_run(sinabs_import(nir.read(tmp_path / "to_sinabs.nir")), x)
    assert np.array_equal(theirs, ours) and (ours > 1).sum() > 50
    # and back: the file read as Sinabs runs it is the same graph's spikes
    back = read_nir(tmp_path / "to_sinabs.nir", producer="sinabs")
    assert np.array_equal(talon_runs(back, x)["cpu"], ours)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(spike_mode="binary"), r"'spike_mode': it emits floor\(v/θ\) spikes"),
        (dict(r=np.ones(4)), "'r': it adds the input with gain 1"),
        (dict(v_leak=0.25), "'v_leak'"),
        (dict(v_min=-1.0), "'v_min': its LIF has no membrane floor"),
        (dict(integration="euler"), "'integration'"),
        (dict(max_spikes=2), "'max_spikes': its MultiSpike has no per-step bound"),
    ],
)
def test_talon_graphs_sinabs_would_misread_are_refused_naming_the_field(changes, match):
    with pytest.raises(ir.ConversionError, match=r"node 'lif' \(LIF\): Sinabs 3.1.3 would misread " + match):
        to_nir(talon_graph(**changes), consumer="sinabs")
    with pytest.raises(ir.ConversionError, match=r"so drop dt=0\.0001"):
        to_nir(talon_graph(), dt=1e-4, consumer="sinabs")
