"""Every parameter a node holds costs core memory: ghost blocks and the detection head as
convolution layers, Scale / normalisation / PReLU parameters per element (talon.graph.resources)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from talon import ir
from talon.graph import HardwareSpec, MappingError, allocate, partition
from talon.graph.resources import node_cost

RNG = np.random.default_rng(0)


def f(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _sd_detect() -> ir.SDDetect:
    return ir.SDDetect(
        f(5, 6, 3, 3), f(5, 5, 3, 3), f(8, 5, 1, 1), f(4, 6, 3, 3), f(4, 4, 3, 3), f(3, 4, 1, 1),
        num_classes=3, reg_max=2, cv2_b2=f(8), cv3_b2=f(3),
    )  # fmt: skip


def _nodes() -> dict[str, ir.Node]:
    """Nodes with parameters that are neither a dense/conv weight layer nor a neuron, on a [6, 8, 8] input."""
    cases = {
        "SGhostConv": ir.SGhostConv(f(8, 6, 3, 3), f(8, 1, 3, 3), f(8), f(8)),
        "SGhostEncoderLite": ir.SGhostEncoderLite(
            f(8, 6, 3, 3), f(4, 8, 1, 1), f(4, 1, 3, 3), f(8), f(4), f(4), stride=2
        ),
        "GhostBasicBlock1": ir.GhostBasicBlock1(
            f(4, 6, 3, 3),
            f(4, 1, 3, 3),
            f(2, 4, 3, 3),
            f(2, 1, 3, 3),
            f(2, 6, 1, 1),
            f(2, 1, 3, 3),
            f(4),
            f(4),
            f(2),
            f(2),
            f(2),
            f(2),
            stride=2,
        ),
        "GhostBasicBlock2": ir.GhostBasicBlock2(f(4, 6, 1, 1), f(4, 1, 3, 3), f(2, 4, 1, 1), f(2, 1, 3, 3), f(4), f(4)),
        "SDDetect": _sd_detect(),
        "Scale": ir.Scale(f(6, 8, 8)),
        "BatchNorm2d": ir.BatchNorm2d(
            num_features=6, weight=f(6), bias=f(6), running_mean=f(6), running_var=np.ones(6, np.float32)
        ),
        "LayerNorm": ir.LayerNorm(normalized_shape=[8], weight=f(8), bias=f(8)),
        "PReLU": ir.PReLU(weight=f(6)),
    }
    for node in cases.values():
        node.infer_types([(6, 8, 8)])
    return cases


@pytest.mark.parametrize("kind", list(_nodes()))
def test_every_parameter_array_costs_core_memory(kind):
    node = _nodes()[kind]
    arrays = node.arrays()
    n_params = sum(a.size for a in arrays.values())
    cost = node_cost(node, 8, 24)
    if kind.startswith(("SGhost", "Ghost", "SD")):  # convolution layers: kernels are synapses
        kernels = [a for a in arrays.values() if a.ndim == 4]
        assert cost.synapses == sum(a.size for a in kernels)
        assert cost.fan_in == max(math.prod(a.shape[1:]) for a in kernels)
        assert cost.weight_bytes == n_params  # 8-bit weights and biases
        assert node_cost(node, 32, 32).weight_bytes == 4 * n_params
    else:  # per-element parameters at the state width
        assert (cost.neurons, cost.synapses, cost.weight_bytes) == (0, 0, 0)
        assert cost.state_bytes == math.ceil(n_params * 24 / 8)


def test_a_ghost_block_larger_than_a_core_does_not_fit():
    ghost = ir.SGhostConv(f(64, 64, 3, 3), f(64, 1, 3, 3), f(64), f(64))  # 150,272 bytes of fp32 parameters
    graph = ir.Graph(
        {"input": ir.Input(np.array([64, 8, 8])), "ghost": ghost,
         "lif": ir.LIF(tau=np.full(128, 4.0), r=np.full(128, 4.0), v_threshold=1.0),
         "output": ir.Output(np.array([128, 8, 8]))},
        [("input", "ghost"), ("ghost", "lif"), ("lif", "output")],
    )  # fmt: skip
    spec = HardwareSpec(max_neurons_per_core=100_000, num_cores=4, sram_bytes_per_core=40_000)
    whole = allocate(graph, spec)
    assert whole.total_weight_bytes == sum(a.nbytes for a in ghost.arrays().values())
    with pytest.raises(MappingError, match=r"node 'ghost' \(SGhostConv\) needs 3\.76x a core's SRAM bytes"):
        partition(graph, spec)


def test_normalisation_parameters_are_budgeted_on_their_core():
    scale = ir.Scale(f(2000))
    graph = ir.Graph(
        {"input": ir.Input(np.array([2000])), "scale": scale, "output": ir.Output(np.array([2000]))},
        [("input", "scale"), ("scale", "output")],
    )
    spec = HardwareSpec(num_cores=4, sram_bytes_per_core=4096)  # 8,000 bytes of fp32 scales do not fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = allocate(graph, spec)
    assert result.total_state_bytes == 8000 and not result.fits_hardware
    with pytest.raises(MappingError, match=r"'scale' \(Scale\) needs 1\.95x a core's SRAM bytes"):
        partition(graph, spec)
