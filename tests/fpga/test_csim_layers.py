"""Exactness of the layers the four example networks do not reach: grouped / dilated Conv2d,
Conv1d, BatchNorm, LeakyReLU, PReLU, SumPool, Scale, Skip(concatenate) of different formats,
euler integration, v_init, delayed_pre_decay with 'pre' spikes, CubaLI, Integrator, value resets, two
Inputs and two Outputs (int8); a cycle through a recurrent subgraph and a Delay (int4)."""

import numpy as np

from talon import ir
from talon.backend import get_backend

from ..backend.test_simulate import _cyclic_with_subgraph_and_delay


def _layers_graph() -> ir.Graph:
    rng = np.random.default_rng(3)

    def u(*shape, gain=1.0):
        return (rng.uniform(-1, 1, shape) * gain).astype(np.float32)

    c = 6
    nodes = {
        "image": ir.Input(np.array([2, 10, 10])),
        "conv": ir.Conv2d(u(c, 1, 3, 3, gain=0.8), u(c, gain=0.1), padding=2, dilation=2, groups=2),
        "bn": ir.BatchNorm2d(
            c, weight=u(c) + 1.5, bias=u(c, gain=0.2), running_mean=u(c, gain=0.1), running_var=np.abs(u(c)) + 0.5
        ),
        "leaky": ir.ReLU(negative_slope=0.125),
        "sum": ir.SumPool2d(2),
        "scale": ir.Scale(np.array([0.5, -1.0, 0.75, 2.0, -0.25, 1.0]).reshape(c, 1, 1)),
        "lif": ir.LIF(
            tau=np.full((c, 5, 5), 3.0),
            r=3.0,
            v_leak=0.05,
            v_init=0.3,
            v_threshold=0.4,
            integration="euler",
            reset_mode="value",
            reset_timing="delayed_pre_decay",
            spike_timing="pre",
        ),
        "cat": ir.Skip(skip_type="concatenate"),
        "flatten": ir.Flatten(),
        "fc": ir.Linear(u(20, 2 * c * 25, gain=0.3)),
        "cubali": ir.CubaLI(tau_syn=np.full(20, 2.0), tau_mem=np.full(20, 3.0), w_in=2.0),
        "integ": ir.Integrator(r=0.5),
        "readout": ir.Affine(u(8, 20, gain=0.5), u(8, gain=0.1)),
        "if": ir.IF(v_threshold=np.full(8, 0.6), v_reset=0.1, comparison=">="),
        "signal": ir.Input(np.array([3, 16])),
        "conv1d": ir.Conv1d(u(4, 3, 3), u(4, gain=0.1), stride=2, padding=1),
        "prelu": ir.PReLU(weight=0.2),
        "flat1d": ir.Flatten(),
        "fc1d": ir.Affine(u(5, 32, gain=0.6), u(5, gain=0.1)),
        "thr": ir.Threshold(threshold=np.full(5, 0.1), comparison=">="),
        "out": ir.Output(np.array([8])),
        "out1d": ir.Output(np.array([5])),
    }
    edges = [
        ("image", "conv"), ("conv", "bn"), ("bn", "leaky"), ("leaky", "sum"), ("sum", "scale"), ("scale", "lif"),
        ("lif", "cat"), ("sum", "cat"), ("cat", "flatten"), ("flatten", "fc"), ("fc", "cubali"),
        ("cubali", "integ"), ("integ", "readout"), ("readout", "if"), ("if", "out"),
        ("signal", "conv1d"), ("conv1d", "prelu"), ("prelu", "flat1d"), ("flat1d", "fc1d"), ("fc1d", "thr"),
        ("thr", "out1d"),
    ]  # fmt: skip
    return ir.Graph(nodes, edges)


def _assert_identical(graph, inputs, precision):
    fpga = get_backend("fpga").simulate(graph, inputs, precision=precision, step_by_step=True)
    cpu = get_backend("cpu").simulate(graph, inputs, precision=precision, step_by_step=True)
    assert fpga.spike_counts == cpu.spike_counts and all(n > 0 for n in cpu.spike_counts.values()), cpu.spike_counts
    for name, y in cpu.outputs.items():
        np.testing.assert_array_equal(fpga.outputs[name], y, err_msg=name)
    for path, states in fpga.node_states.items():
        for key, ints in states.items():
            if key.endswith("_int"):
                np.testing.assert_array_equal(ints, cpu.node_states[path][key], err_msg=f"{path} {key}")


def test_every_other_layer_is_exact_at_int8():
    rng = np.random.default_rng(0)
    inputs = {
        "image": rng.random((50, 2, 2, 10, 10)).astype(np.float32),
        "signal": rng.normal(0, 1, (50, 2, 3, 16)).astype(np.float32),
    }
    _assert_identical(_layers_graph(), inputs, "int8")


def test_a_cycle_through_a_recurrent_subgraph_and_a_delay_is_exact_at_int4():
    x = (np.random.default_rng(0).integers(0, 9, (50, 2, 4)) / 8).astype(np.float32)
    _assert_identical(_cyclic_with_subgraph_and_delay(), {"input": x}, "int4")
