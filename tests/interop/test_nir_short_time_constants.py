"""A NIR time constant shorter than one step at the ``dt`` it is read with: ``beta = 1 - dt/tau < 0``.

The conversion is exact (forward Euler at ``dt``), so the graph is read, with a
``ShortTimeConstantWarning`` naming each such node; a run whose state then overflows is refused by the
fixed-point path naming the node, where it used to compute scales of NaN."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest

from talon.backend import BackendError, get_backend
from talon.interop.nir import ShortTimeConstantWarning, read_nir


def _write(path, tau_lif: float, tau_li: float):
    ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
    inner = nir.NIRGraph(
        nodes={"input": nir.Input(np.array([3])), "li": nir.LI(np.full(3, tau_li, np.float32), ones, zeros),
               "output": nir.Output(np.array([3]))},
        edges=[("input", "li"), ("li", "output")],
    )  # fmt: skip
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(np.array([3])),
            "fc": nir.Affine(np.eye(3, dtype=np.float32) * 2, zeros),
            "lif": nir.LIF(np.full(3, tau_lif, np.float32), ones, zeros, ones, zeros),
            "sub": inner,
            "output": nir.Output(np.array([3])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "sub"), ("sub", "output")],
    )
    nir.write(path, graph)
    return path


def test_each_time_constant_below_one_step_is_named_and_the_graph_is_read_exactly(tmp_path):
    path = _write(tmp_path / "short.nir", tau_lif=5e-5, tau_li=5e-4)
    with pytest.warns(ShortTimeConstantWarning) as record:
        graph = read_nir(path, dt=1e-4)
    assert len(record) == 1
    message = str(record[0].message)
    assert "'lif' tau = 5e-05 s = 0.5 steps (beta = -1)" in message and "'sub.li'" not in message
    assert "at dt=0.0001 s" in message and "Pass the dt the model was run at" in message
    assert record[0].filename == __file__  # points at the caller's line
    assert float(graph.nodes["lif"].tau[0]) == np.float32(5e-5) / 1e-4  # read as the file says
    both = r"'lif' tau = .* = 0\.05 steps.*; 'sub\.li' tau = .* = 0\.5 steps"
    with pytest.warns(ShortTimeConstantWarning, match=both):
        read_nir(path, dt=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ShortTimeConstantWarning)
        read_nir(path, dt=5e-5)  # tau = 1 step exactly: beta = 0, no memory, but not below one step


def test_an_int8_run_of_a_state_that_overflows_is_refused_naming_the_node(tmp_path):
    """LI at dt = 10 tau: beta = -9, |v| grows ~9x per step and passes float32's range within 60 steps;
    the fp32 calibration range is inf, which has no fixed-point scale."""
    with pytest.warns(ShortTimeConstantWarning):
        graph = read_nir(_write(tmp_path / "short.nir", tau_lif=1e-3, tau_li=1e-5), dt=1e-4)
    x = (np.random.default_rng(0).random((60, 2, 3)) * 2).astype(np.float32)
    cpu = get_backend("cpu")
    with np.errstate(all="ignore"):
        assert not np.isfinite(cpu.simulate(graph, x).outputs["output"]).all()  # the float model overflows
    with pytest.raises(BackendError, match=r"node 'sub\.li': its membrane v reached (inf|nan) in the fp32 calibration"):
        cpu.simulate(graph, x, precision="int8")
