"""The Rockpool 3.1.0 profile against real Rockpool: its LIFTorch (CubaLIF) models, exported by its NIR
exporter, spike in talon with ``producer="rockpool"`` exactly as Rockpool's importer runs the file
(several spikes per step, the input-first synaptic current, its derived dt), and talon graphs written
with ``consumer="rockpool"`` run in Rockpool exactly as in talon, or are refused naming the field."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.interop.nir import read_nir, to_nir, write_nir

torch = pytest.importorskip("torch")
pytest.importorskip("rockpool")
nir = pytest.importorskip("nir")

from rockpool.nn.combinators import Sequential  # noqa: E402
from rockpool.nn.modules import LIFTorch, LinearTorch  # noqa: E402
from rockpool.nn.modules.torch.nir import from_nir as rockpool_from_nir  # noqa: E402
from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir  # noqa: E402

T, B = 150, 2


def rockpool_run(net, x: np.ndarray) -> np.ndarray:
    """Run a Rockpool module on time-major ``x[T, B, N]`` (Rockpool is batch-major)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = net(torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))))
    return (y[0] if isinstance(y, tuple) else y).numpy().transpose(1, 0, 2)


def rockpool_import(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return rockpool_from_nir(nir.read(path, type_check=False))  # its own batch-axis Input needs this


def talon_runs(graph: ir.Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    from talon.bridge import ir_to_torch

    cpu = next(iter(get_backend("cpu").simulate(graph, x).outputs.values()))
    with torch.no_grad():
        seq = ir_to_torch(graph).run_sequence(torch.from_numpy(x))[0].numpy()
    return {"cpu": cpu, "torch": seq}


def read_rockpool_file(path) -> ir.Graph:
    with pytest.warns(UserWarning, match="leading batch axis"):
        return read_nir(path, type_check=False, producer="rockpool")


@pytest.mark.parametrize("layers", [1, 2], ids=["linear-cubalif", "two-layers"])
def test_rockpool_files_spike_in_talon_as_rockpool_runs_them(tmp_path, layers):
    torch.manual_seed(layers)
    modules = [LinearTorch((4, 3)), LIFTorch(3, tau_mem=torch.tensor([0.02, 0.005, 0.05]),
                                             tau_syn=torch.tensor([0.01, 0.002, 0.03]),
                                             threshold=torch.tensor([1.0, 0.5, 0.8]))]  # fmt: skip
    if layers == 2:
        modules += [LinearTorch((3, 2)), LIFTorch(2, tau_mem=0.01, tau_syn=0.004)]
    net = Sequential(*modules)
    with torch.no_grad():
        for module in modules:
            if isinstance(module, LinearTorch):
                module.weight.mul_(3.0)
    x = (np.random.default_rng(1).random((T, B, 4)) * 2 - 0.3).astype(np.float32)
    nir.write(tmp_path / "rockpool.nir", rockpool_to_nir(net))
    theirs = rockpool_run(rockpool_import(tmp_path / "rockpool.nir"), x)
    assert (theirs > 1).sum() > 50 and 0.1 < (theirs > 0).mean() < 0.9
    graph = read_rockpool_file(tmp_path / "rockpool.nir")
    for engine, spikes in talon_runs(graph, x).items():
        assert np.array_equal(spikes, theirs), f"{engine}: {(spikes != theirs).sum()} of {theirs.size} differ"
    # Rockpool's importer runs its own file at dt = tau_mem / (1 + r), not the model's dt = 1e-3: its run of
    # the original model differs; the profile follows what Rockpool runs from the file
    own = rockpool_run(net, x)
    assert (own != theirs).sum() > 0


def test_files_rockpool_cannot_run_are_refused_by_name():
    lif = nir.NIRGraph.from_list(nir.LIF(tau=np.full(3, 0.02), r=np.ones(3), v_leak=np.zeros(3),
                                         v_threshold=np.ones(3)))  # fmt: skip
    from talon.interop.nir import from_nir

    with pytest.raises(ir.ConversionError, match=r"\(LIF\): Rockpool 3.1.0's NIR importer crashes on a LIF"):
        from_nir(lif, producer="rockpool")
    if_graph = nir.NIRGraph.from_list(nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    with pytest.raises(ir.ConversionError, match=r"\(IF\): Rockpool 3.1.0's NIR importer has no IF"):
        from_nir(if_graph, producer="rockpool")
    with pytest.raises(ir.ConversionError, match="derives its dt from each CubaLIF"):
        from_nir(if_graph, producer="rockpool", dt=1e-3)


def talon_graph(**changes) -> ir.Graph:
    rng = np.random.default_rng(4)
    tm, ts = np.array([20.0, 5.0, 50.0]), np.array([10.0, 2.5, 30.0])
    fields = dict(tau_mem=tm, r=tm, tau_syn=ts, w_in=ts, v_threshold=np.array([1.0, 0.5, 0.8]), synapse="input_first",
                  reset_mode="subtract", spike_mode="multi", max_spikes=65536) | changes  # fmt: skip
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": ir.Linear(rng.normal(0, 1.5, (3, 4)).astype(np.float32)),
            "lif": ir.CubaLIF(**fields),
            "output": ir.Output(np.array([3])),
        },
        [("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )


def test_talon_graphs_run_in_rockpool_exactly(tmp_path):
    graph = talon_graph()
    x = (np.random.default_rng(4).random((T, B, 4)) * 2 - 0.3).astype(np.float32)
    ours = talon_runs(graph, x)["cpu"]
    write_nir(tmp_path / "to_rockpool.nir", graph, consumer="rockpool")
    theirs = rockpool_run(rockpool_from_nir(nir.read(tmp_path / "to_rockpool.nir")), x)
    assert np.array_equal(theirs, ours) and (ours > 1).sum() > 100
    back = read_nir(tmp_path / "to_rockpool.nir", producer="rockpool")
    assert np.array_equal(talon_runs(back, x)["cpu"], ours)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(synapse="decay"), "'synapse': its LIFTorch runs synapse='input_first'"),
        (dict(spike_mode="binary", reset_mode="subtract", max_spikes=None), "'spike_mode'"),
        (dict(max_spikes=None), "'max_spikes': its LIFTorch emits at most 65536"),
        (dict(w_in=np.ones(3)), "'w_in'"),
        (dict(r=np.ones(3)), "'r'"),
        (dict(v_min=-1.0), "'v_min'"),
    ],
)
def test_talon_graphs_rockpool_would_misread_are_refused_naming_the_field(changes, match):
    with pytest.raises(ir.ConversionError, match=r"node 'lif' \(CubaLIF\): Rockpool 3.1.0 would misread " + match):
        to_nir(talon_graph(**changes), consumer="rockpool")
