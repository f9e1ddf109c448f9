"""Framework profiles: a NIR file spikes in talon as its framework runs it, and a file for a framework is
exact or refused by name. Real SpikingJelly, Sinabs and Rockpool on inputs that make every layer fire."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend import get_backend
from talon.interop.nir import MissingDtWarning, read_nir, write_nir

T, B = 60, 4


def simulate(graph: ir.Graph, x: np.ndarray) -> np.ndarray:
    result = get_backend("cpu").simulate(graph, x)
    (out,) = result.outputs.values()
    return out


# ---- SpikingJelly ---------------------------------------------------------------------------------

sj = pytest.importorskip("spikingjelly.activation_based")


def sj_run(net, x: np.ndarray) -> np.ndarray:
    from spikingjelly.activation_based import functional

    net.eval()
    with torch.no_grad():
        functional.reset_net(net)
        return torch.stack([net(torch.from_numpy(x[t])) for t in range(len(x))]).numpy()


def sj_run_imported(net, x: np.ndarray) -> np.ndarray:
    """A network from SpikingJelly's NIR importer (a nirtorch executor: ``(output, state)`` per step)."""
    from spikingjelly.activation_based import functional

    net.eval()
    outputs, state = [], None
    with torch.no_grad():
        functional.reset_net(net)
        for t in range(len(x)):
            y = net(torch.from_numpy(x[t]), state) if state is not None else net(torch.from_numpy(x[t]))
            if isinstance(y, tuple):
                y, state = y
            outputs.append(y)
    return torch.stack(outputs).numpy()


def sj_export(net, x: np.ndarray, path) -> None:
    import nir
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    nir.write(path, export_to_nir(net, torch.from_numpy(x[0]), dt=1e-4))


def integer_mlp():
    """Integer weights on binary inputs: membranes land exactly on the threshold, where >= and > differ."""
    from spikingjelly.activation_based import layer, neuron

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        layer.Linear(12, 16, bias=False), neuron.IFNode(v_threshold=2.0),
        layer.Linear(16, 6, bias=False), neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=2.0),
    )  # fmt: skip
    with torch.no_grad():
        for lin in (net[0], net[2]):
            lin.weight.copy_(torch.randint(-1, 3, lin.weight.shape).float())
    return net


def test_spikingjelly_files_spike_as_spikingjelly_runs_them(tmp_path):
    rng = np.random.default_rng(0)
    x = (rng.random((T, B, 12)) < 0.5).astype(np.float32)
    net = integer_mlp()
    expected = sj_run(net, x)
    sj_export(net, x, tmp_path / "sj.nir")
    graph = read_nir(tmp_path / "sj.nir", producer="spikingjelly")
    assert graph.metadata["nir"]["producer"] == "spikingjelly 2.0.0"
    ours = simulate(graph, x)
    assert 0.05 < expected.mean() < 0.9
    np.testing.assert_array_equal(ours, expected)
    # NIR's own semantics (v > θ) give other spikes on this model: the profile is what makes it exact
    with pytest.warns(MissingDtWarning, match=r"records no dt; time constants are converted with dt=0.0001"):
        standard = read_nir(tmp_path / "sj.nir")
    assert np.count_nonzero(simulate(standard, x) != expected) > 0


def test_spikingjelly_lif_decay_input_and_a_conv_chain(tmp_path):
    from spikingjelly.activation_based import layer, neuron

    torch.manual_seed(1)
    net = torch.nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1), neuron.IFNode(),
        layer.AvgPool2d(2), layer.Flatten(),
        layer.Linear(4 * 4 * 4, 10), neuron.LIFNode(tau=3.0, decay_input=True),
        layer.Linear(10, 5), neuron.LIFNode(tau=2.5, decay_input=False),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(5.0)  # every spiking layer fires 18-37 % of the time
        net[4].weight.mul_(15.0)
        net[6].weight.mul_(10.0)
    rng = np.random.default_rng(1)
    x = (rng.random((T, B, 2, 8, 8)) < 0.4).astype(np.float32)
    expected = sj_run(net, x)
    sj_export(net, x, tmp_path / "conv.nir")
    ours = simulate(read_nir(tmp_path / "conv.nir", producer="spikingjelly"), x)
    assert 0.05 < expected.mean() < 0.9
    np.testing.assert_array_equal(ours, expected)


def test_talon_graphs_export_to_spikingjelly_exactly_or_refuse_by_field(tmp_path):
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    rng = np.random.default_rng(2)
    w1 = rng.integers(-1, 3, (16, 12)).astype(np.float32)
    w2 = rng.integers(-1, 3, (6, 16)).astype(np.float32)

    def graph(comparison=">=", v_reset=0.0, v_init=None):
        return ir.Graph(
            {
                "input": ir.Input(np.array([12])),
                "fc1": ir.Linear(weight=w1),
                "if1": ir.IF(v_threshold=np.full(16, 2.0, np.float32), r=np.ones(16, np.float32),
                             v_reset=np.full(16, v_reset, np.float32), comparison=comparison, v_init=v_init),
                "fc2": ir.Linear(weight=w2),
                "lif2": ir.LIF(tau=np.full(6, 2.0, np.float32), r=np.ones(6, np.float32),
                               v_threshold=np.full(6, 2.0, np.float32), v_reset=np.zeros(6, np.float32),
                               comparison=comparison),
                "output": ir.Output(np.array([6])),
            },
            [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "lif2"), ("lif2", "output")],
        )  # fmt: skip

    x = (rng.random((T, B, 12)) < 0.5).astype(np.float32)
    import nir

    # SpikingJelly starts the membrane at v_reset: a graph whose v_init is its v_reset runs identically
    for g in (graph(), graph(v_reset=0.25, v_init=0.25), graph(v_reset=-0.5, v_init=-0.5)):
        write_nir(tmp_path / "to_sj.nir", g, consumer="spikingjelly")
        net = import_from_nir(nir.read(tmp_path / "to_sj.nir"), dt=1e-4)
        expected = simulate(g, x)
        assert 0.05 < expected.mean() < 0.9
        np.testing.assert_array_equal(sj_run_imported(net, x), expected)
    # ... and the same graph starting at 0 spikes differently (the v_init case is not vacuous)
    assert np.count_nonzero(simulate(graph(v_reset=-0.5), x) != simulate(graph(v_reset=-0.5, v_init=-0.5), x)) > 0

    with pytest.raises(ir.ConversionError, match=r"node 'if1' \(IF\): SpikingJelly would misread 'comparison'"):
        write_nir(tmp_path / "gt.nir", graph(comparison=">"), consumer="spikingjelly")
    with pytest.raises(
        ir.ConversionError, match=r"node 'if1' \(IF\): SpikingJelly would misread 'v_init': it starts the membrane at "
        r"v_reset=0.5, this node at 0.0; set v_init=v_reset"
    ):  # fmt: skip
        write_nir(tmp_path / "vr.nir", graph(v_reset=0.5), consumer="spikingjelly")
    with pytest.raises(ir.ConversionError, match=r"node 'if1' \(IF\): SpikingJelly would misread 'v_init'"):
        write_nir(tmp_path / "vi.nir", graph(v_reset=0.5, v_init=0.25), consumer="spikingjelly")
    with pytest.raises(ir.ConversionError, match=r"node 'if1' \(IF\): SpikingJelly would misread 'v_init'"):
        write_nir(tmp_path / "vz.nir", graph(v_init=0.25), consumer="spikingjelly")


def test_spikingjelly_files_with_a_nonzero_reset_start_there(tmp_path):
    """SpikingJelly starts every membrane at v_reset: read as v_init = v_reset, its spikes are identical."""
    from spikingjelly.activation_based import layer, neuron

    torch.manual_seed(3)
    net = torch.nn.Sequential(
        layer.Linear(8, 10, bias=False), neuron.IFNode(v_reset=0.25),
        layer.Linear(10, 6, bias=False), neuron.LIFNode(tau=2.0, v_reset=-0.25, decay_input=True),
        layer.Linear(6, 5, bias=False), neuron.LIFNode(tau=4.0, v_reset=0.5, decay_input=False),
    )  # fmt: skip
    with torch.no_grad():
        for lin, gain in ((net[0], 1.0), (net[2], 3.0), (net[4], 6.0)):  # every layer fires ~26 %
            lin.weight.copy_(torch.randint(-1, 3, lin.weight.shape).float() / 4 * gain)
    rng = np.random.default_rng(3)
    x = (rng.random((T, B, 8)) < 0.5).astype(np.float32)
    expected = sj_run(net, x)
    sj_export(net, x, tmp_path / "reset.nir")
    graph = read_nir(tmp_path / "reset.nir", producer="spikingjelly")
    starts = {name: node.v_init for name, node in graph.nodes.items() if isinstance(node, (ir.IF, ir.LIF))}
    assert [float(np.unique(v)[0]) for v in starts.values()] == [0.25, -0.25, 0.5]
    assert 0.05 < expected.mean() < 0.9
    np.testing.assert_array_equal(simulate(graph, x), expected)
    # every layer fires, and starting at 0 (NIR's reading) gives other spikes
    for name in starts:
        graph.nodes[name] = replace(graph.nodes[name], v_init=None)
    assert np.count_nonzero(simulate(graph, x) != expected) > 0


# ---- Rockpool's batch axis (the profiles: test_nir_profile_sinabs.py, test_nir_profile_rockpool.py) ----


def test_rockpool_batch_axis_is_refused_or_dropped_with_a_warning(tmp_path):
    import nir
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir as rockpool_to_nir

    net = Sequential(LinearTorch((4, 3)), LIFTorch(3))
    nir.write(tmp_path / "rockpool.nir", rockpool_to_nir(net))
    # NIR's semantics: the batch axis Rockpool writes on Input is refused, or dropped with a warning
    with pytest.raises(ir.ConversionError, match="not consistent"):
        read_nir(tmp_path / "rockpool.nir", dt=1e-3)
    with pytest.warns(UserWarning, match=r"declares \[1, 4\] with a leading batch axis"):
        graph = read_nir(tmp_path / "rockpool.nir", dt=1e-3, type_check=False)
    assert graph.nodes["input"].shape == (4,)


# ---- dt ---------------------------------------------------------------------------------------------


def test_a_file_without_dt_warns_or_is_refused(tmp_path):
    net = torch.nn.Sequential(sj.layer.Linear(4, 3), sj.neuron.LIFNode(tau=2.0))
    sj_export(net, np.ones((1, 1, 4), np.float32), tmp_path / "nodt.nir")
    with pytest.warns(MissingDtWarning, match="Pass dt="):
        read_nir(tmp_path / "nodt.nir")
    with pytest.raises(ir.ConversionError, match="records no dt; pass dt="):
        read_nir(tmp_path / "nodt.nir", require_dt=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingDtWarning)  # an explicit dt, or the producer's convention: no warning
        assert read_nir(tmp_path / "nodt.nir", dt=1e-4).metadata["nir"]["dt"] == 1e-4
        assert read_nir(tmp_path / "nodt.nir", producer="spikingjelly").metadata["nir"]["dt"] == 1e-4
    with pytest.raises(ValueError, match="unknown framework profile 'lava'"):
        read_nir(tmp_path / "nodt.nir", producer="lava")


def test_snntorch_files_read_with_its_dt_convention(tmp_path):
    import nir
    from snntorch.export_nir import export_to_nir

    from .test_nir_frameworks import _FeedForward, quiet

    nir.write(tmp_path / "snn.nir", quiet(export_to_nir, _FeedForward(), torch.zeros(1, 4), ignore_dims=[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", MissingDtWarning)
        graph = read_nir(tmp_path / "snn.nir", producer="snntorch")
    assert graph.metadata["nir"]["dt"] == 1e-4 and graph.metadata["nir"]["producer"] == "snntorch 1.0.0"
    with pytest.warns(MissingDtWarning):
        standard = read_nir(tmp_path / "snn.nir")
    assert [type(n) for n in standard.nodes.values()] == [type(n) for n in graph.nodes.values()]


# ---- v_init: NIR has no initial state ----------------------------------------------------------------


@pytest.mark.parametrize("reset_mode", ["value", "none"])
def test_nir_export_refuses_a_nonzero_v_init_by_node(reset_mode):
    from talon.interop.nir import LossyConversionWarning, to_nir

    def graph(v_init):
        lif = ir.LIF(tau=np.full(3, 4.0), r=4.0, comparison=">", reset_mode=reset_mode, v_init=v_init)
        return ir.Graph({"input": ir.Input(np.array([3])), "lif": lif, "output": ir.Output(np.array([3]))},
                        [("input", "lif"), ("lif", "output")])  # fmt: skip

    with pytest.raises(ir.ConversionError, match=r"node 'lif' \(LIF\): NIR cannot state v_init .*v_init=None"):
        to_nir(graph([0.0, 0.5, 0.0]))
    with pytest.warns(LossyConversionWarning, match=r"lif: v_init .* -> the membrane starts at 0"):
        to_nir(graph([0.0, 0.5, 0.0]), lossy=True)
    to_nir(graph(0.0))  # a membrane that starts at 0 is NIR's
