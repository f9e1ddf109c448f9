"""The Norse 1.1.0 profile against real Norse: its own LIFBox / IAF model, exported by its NIR exporter, spikes
in talon with ``producer="norse"`` exactly as Norse's importer runs the file (at the dt given to it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from talon import ir
from talon.backend import get_backend
from talon.interop.nir import from_nir, to_nir

torch = pytest.importorskip("torch")
norse = pytest.importorskip("norse.torch")
nir = pytest.importorskip("nir")

from norse.torch.utils.export_nir import to_nir as norse_to_nir  # noqa: E402
from norse.torch.utils.import_nir import from_nir as norse_from_nir  # noqa: E402

T, B = 150, 2


def norse_run(module, x: np.ndarray) -> np.ndarray:
    outputs, state = [], None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(len(x)):
            y, state = module(torch.from_numpy(x[t]), state)
            outputs.append(y)
    return torch.stack(outputs).numpy()


def norse_model():
    torch.manual_seed(0)
    lif = norse.LIFBoxParameters(tau_mem_inv=torch.tensor([100.0, 50.0, 200.0, 37.0]),
                                 v_th=torch.tensor([0.5, 0.4, 0.6, 0.3]), v_leak=torch.zeros(4))  # fmt: skip
    net = norse.SequentialState(
        torch.nn.Linear(5, 4), norse.LIFBoxCell(lif),
        torch.nn.Linear(4, 3), norse.IAFCell(norse.IAFParameters(v_th=torch.tensor([1.0, 0.8, 1.5]))),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.abs_().mul_(0.6)
        net[2].weight.abs_().mul_(0.5)
    return net


@pytest.mark.parametrize("dt", [1e-3, 5e-4])
def test_norse_files_spike_in_talon_as_norse_runs_them(dt):
    net = norse_model()
    x = (np.random.default_rng(1).random((T, B, 5)) * 2 - 0.3).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = norse_to_nir(net, torch.zeros(5), dt=1e-3)
        theirs = norse_run(norse_from_nir(exported, dt=dt), x)
    assert 0.1 < (theirs > 0).mean() < 0.9
    graph = from_nir(exported, producer="norse", dt=None if dt == 1e-3 else dt)
    assert graph.metadata["nir"]["dt"] == dt
    ours = next(iter(get_backend("cpu").simulate(graph, x).outputs.values()))
    assert np.array_equal(ours, theirs), f"{(ours != theirs).sum()} of {ours.size} differ"
    standard = from_nir(exported, dt=dt, integration="euler")  # NIR's semantics: '>' and v_reset, but NIR's r, tau
    assert (next(iter(get_backend("cpu").simulate(standard, x).outputs.values())) != theirs).sum() > 0


def test_what_norse_runs_differently_is_refused_by_name():
    leak = nir.NIRGraph.from_list(nir.LIF(tau=np.full(3, 0.01), r=np.ones(3), v_leak=np.full(3, 0.1),
                                          v_threshold=np.ones(3)))  # fmt: skip
    with pytest.raises(ir.ConversionError, match=r"\(LIF\): Norse computes \(x \+ v_leak\) - v"):
        from_nir(leak, producer="norse")
    cuba = nir.NIRGraph.from_list(nir.CubaLIF(tau_syn=np.full(3, 0.005), tau_mem=np.full(3, 0.01), r=np.ones(3),
                                              v_leak=np.zeros(3), v_threshold=np.ones(3)))  # fmt: skip
    with pytest.raises(ir.ConversionError, match=r"\(CubaLIF\): Norse runs it as an Euler leaky-integrator synapse"):
        from_nir(cuba, producer="norse")
    graph = from_nir(nir.NIRGraph.from_list(nir.IF(r=np.ones(3), v_threshold=np.ones(3))), producer="norse")
    with pytest.raises(ir.ConversionError, match="consumer='norse' is not profiled"):
        to_nir(graph, consumer="norse")
