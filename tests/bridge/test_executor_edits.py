"""Editing an imported executor's neuron buffers (threshold balancing, calibrated decays): the
executor computes with the edit, re-exporting writes it into the node exactly (or refuses naming
the node), and ``state_dict`` carries it."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from talon import bridge, ir


def _snn_executor():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), snn.Leaky(beta=0.8, threshold=1.0, init_hidden=True), nn.Linear(16, 4))
    graph = bridge.to_ir(model, torch.randn(1, 10))
    return graph, bridge.ir_to_torch(graph)


def _run(executor, xs):
    with torch.no_grad():
        seq, _ = executor.run_sequence(xs)
        state, stepped = {}, []
        executor.return_state = True
        for x in xs:
            out, state = executor(x, state)
            stepped.append(out)
        executor.return_state = False
    assert torch.equal(seq, torch.stack(stepped))  # run_sequence and stepping honour the edit alike
    return seq


def test_edited_buffers_are_exported_exactly_and_the_reexport_runs_like_the_executor(tmp_path):
    graph, executor = _snn_executor()
    xs = torch.randn(40, 3, 10) * 3
    before = _run(executor, xs)
    lif = executor.module_of("1")
    assert lif._unit_gain and lif._no_drive  # snnTorch's Leaky: U = beta U + x
    with torch.no_grad():  # threshold balancing per neuron, a new decay, gain and drive
        lif.v_th.copy_(torch.linspace(0.5, 2.5, 16))
        lif.beta.fill_(0.5)
        lif.gain.fill_(1.5)
        lif.drive.fill_(0.01)
    edited = _run(executor, xs)
    assert not torch.equal(edited, before)
    again = bridge.to_ir(executor, torch.randn(1, 10))
    node = again.nodes["1"]
    assert np.array_equal(node.v_threshold, torch.linspace(0.5, 2.5, 16).numpy().astype(np.float64))
    assert np.all(1.0 - 1.0 / node.tau == 0.5) and np.all(node.r / node.tau == 1.5)
    ir.write(tmp_path / "edited.t1c", again)
    reimported = bridge.ir_to_torch(tmp_path / "edited.t1c")
    assert torch.equal(_run(reimported, xs), edited)
    # the untouched nodes are the original arrays
    assert np.array_equal(again.nodes["0"].weight, graph.nodes["0"].weight)


def test_an_untouched_executor_reexports_its_neuron_node_as_it_was():
    graph, executor = _snn_executor()
    assert bridge.to_ir(executor, torch.randn(1, 10)).nodes["1"] is graph.nodes["1"]
    assert executor.module_of("1").to_node() is graph.nodes["1"]
    # a cast is not an edit: the float32 coefficients in float64 are still the node's
    assert bridge.to_ir(executor.double(), torch.randn(1, 10, dtype=torch.float64)).nodes["1"] is graph.nodes["1"]


def test_an_edit_without_exact_parameters_is_refused_naming_the_node():
    _, executor = _snn_executor()
    with torch.no_grad():
        executor.module_of("1").beta.fill_(1.5)  # a decay above 1 has no time constant
    with pytest.raises(ir.ConversionError, match=r"node '1': .*no exact tau: a decay of 1\.5"):
        bridge.to_ir(executor, torch.randn(1, 10))


def test_cuba_euler_threshold_and_delay_edits_are_exported():
    rng = np.random.default_rng(1)
    n = 6
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([n])),
            "fc": ir.Affine(rng.standard_normal((n, n)).astype(np.float32), np.zeros(n, np.float32)),
            "cuba": ir.CubaLIF(
                tau_mem=np.full(n, 4.0),
                tau_syn=np.full(n, 2.0),
                r=np.full(n, 4.0),
                v_leak=np.zeros(n),
                v_threshold=np.ones(n),
                w_in=np.full(n, 2.0),
            ),
            "euler": ir.LIF(
                tau=np.full(n, 3.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n), integration="euler"
            ),
            "delay": ir.Delay(delay=np.array([0, 1, 2, 2, 1, 0])),
            "thr": ir.Threshold(threshold=np.full(n, 0.5)),
            "output": ir.Output(np.array([n])),
        },
        [("input", "fc"), ("fc", "cuba"), ("cuba", "euler"), ("euler", "delay"), ("delay", "thr"), ("thr", "output")],
    )
    executor = bridge.ir_to_torch(graph)
    with torch.no_grad():
        executor.module_of("cuba").alpha.fill_(0.25)
        executor.module_of("cuba").syn_gain.fill_(0.5)
        executor.module_of("euler").k.fill_(0.5)
        executor.module_of("euler").v_th.fill_(0.75)
        executor.module_of("delay").index.copy_(torch.tensor([1, 0, 0, 1, 2, 2]))
        executor.module_of("thr").threshold.fill_(0.25)
    again = executor.to_graph()
    assert np.all(again.nodes["cuba"].tau_syn == 4 / 3) and np.all(again.nodes["cuba"].w_in == 0.5 * 4 / 3)
    assert np.all(again.nodes["euler"].tau == 2.0) and again.nodes["euler"].integration == "euler"
    assert again.nodes["delay"].delay.tolist() == [1, 0, 0, 1, 2, 2]
    assert np.all(again.nodes["thr"].threshold == 0.25)
    xs = torch.randn(30, 2, n) * 2
    with torch.no_grad():
        edited = executor.run_sequence(xs)[0]
        assert torch.equal(bridge.ir_to_torch(again).run_sequence(xs)[0], edited)
        assert not torch.equal(bridge.ir_to_torch(graph).run_sequence(xs)[0], edited) and edited.sum() > 0


def test_the_buffers_are_in_the_state_dict_and_old_state_dicts_still_load():
    _, executor = _snn_executor()
    with torch.no_grad():
        executor.module_of("1").v_th.fill_(2.5)
    saved = executor.state_dict()
    assert {"n_1.beta", "n_1.gain", "n_1.drive", "n_1.v_th", "n_1.v_rst"} <= set(saved)
    assert torch.all(saved["n_1.v_th"] == 2.5)
    _, fresh = _snn_executor()
    fresh.load_state_dict(saved)
    assert torch.all(fresh.module_of("1").v_th == 2.5)
    # a state_dict saved when the coefficients were not persistent (weights only) loads strictly
    old = {k: v for k, v in saved.items() if k.startswith(("n_0.", "n_2."))}
    _, other = _snn_executor()
    other.load_state_dict(old)
    assert torch.all(other.module_of("1").v_th == 1.0)
