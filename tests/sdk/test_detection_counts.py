"""analyze / profile / lint know the ghost and detection types: parameters, MACs, memory, layers."""

from __future__ import annotations

import numpy as np

from talon import ir, sdk
from talon.backend import get_backend


def _graph():
    f = np.float32
    ghost = ir.SGhostConv(primary_weight=np.ones((4, 2, 3, 3), f), cheap_weight=np.ones((4, 1, 3, 3), f),
                          primary_stride=2)  # fmt: skip
    block = ir.GhostBasicBlock1(
        cv0_primary_weight=np.ones((4, 8, 3, 3), f), cv0_cheap_weight=np.ones((4, 1, 3, 3), f),
        cv2_primary_weight=np.ones((2, 4, 1, 1), f), cv2_cheap_weight=np.ones((2, 1, 3, 3), f),
        cvres_primary_weight=np.ones((2, 8, 1, 1), f), cvres_cheap_weight=np.ones((2, 1, 3, 3), f),
    )  # fmt: skip
    return ir.Graph(
        {
            "input": ir.Input(np.array([2, 8, 8])),
            "ghost": ghost,
            "block": block,
            "output": ir.Output(np.array([8, 2, 2])),
        },
        [("input", "ghost"), ("ghost", "block"), ("block", "output")],
    )


def test_macs_params_and_conv_layers_by_hand():
    graph = _graph()
    # SGhostConv: Cp Ho Wo (C_in k^2 + kc^2) = 4 * 4 * 4 * (2 * 9 + 9)
    ghost = 4 * 16 * 27
    # block on a 2x2 grid: cv0 4*4*(8*9+9), cv2 2*4*(4+9), cvres 2*4*(8+9), residual sum 4*4
    block = 4 * 4 * 81 + 2 * 4 * 13 + 2 * 4 * 17 + 4 * 4
    report = sdk.analyze_graph(graph)
    assert report.total_macs == ghost + block
    params = (4 * 2 * 9 + 4 + 4 * 9 + 4) + (4 * 8 * 9 + 4 + 4 * 9 + 4 + 2 * 4 + 2 + 2 * 9 + 2 + 2 * 8 + 2 + 2 * 9 + 2)
    assert report.total_params == params
    profile = sdk.profile_graph(graph)
    assert profile.conv_layers == 2 and profile.mac_ops == ghost + block
    assert sdk.lint_graph(graph).issues == []


def test_cpu_profiler_counts_the_ghost_macs():
    x = np.ones((3, 1, 2, 8, 8), np.float32)
    result = get_backend("cpu").profile(_graph(), {"input": x})
    assert result.mac_ops == 3 * sdk.analyze_graph(_graph()).total_macs
    assert result.energy_estimate_uj > 0
