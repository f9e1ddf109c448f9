"""One realistic instance of every primitive, with the input shape it gets and the output it must give."""

from __future__ import annotations

import numpy as np

from talon import ir

_rng = np.random.default_rng(0)


def f32(*shape):
    return _rng.standard_normal(shape).astype(np.float32)


# name -> (factory, input shape, expected output shape or list of output shapes)
EXAMPLES = {
    "Affine": (lambda: ir.Affine(f32(5, 7), f32(5)), (7,), (5,)),
    "SpikingAffine": (
        lambda: ir.SpikingAffine(f32(5, 7), f32(5), spike_mode="graded", weight_bits=4, accumulator_bits=12),
        (7,),
        (5,),
    ),
    "Linear": (lambda: ir.Linear(f32(3, 4)), (4,), (3,)),
    "Scale": (lambda: ir.Scale(f32(6)), (6,), (6,)),
    "Conv1d": (lambda: ir.Conv1d(f32(4, 3, 5), f32(4), stride=2, padding=1, dilation=2), (3, 20), (4, 7)),
    "Conv2d": (
        lambda: ir.Conv2d(f32(8, 2, 3, 5), f32(8), stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2),
        (4, 10, 12),
        (8, 8, 4),
    ),
    "SConv": (lambda: ir.SConv(f32(6, 3, 3, 3), f32(6), padding=1), (3, 8, 8), (6, 8, 8)),
    "SDConv": (lambda: ir.SDConv(f32(5, 1, 3, 3), f32(5), padding=(1, 1)), (5, 9, 9), (5, 9, 9)),
    "SepConv2d": (
        lambda: ir.SepConv2d(f32(3, 1, 3, 3), f32(7, 3, 1, 1), f32(3), f32(7), stride=2, padding=1),
        (3, 9, 9),
        (7, 5, 5),
    ),
    "MaxPool2d": (lambda: ir.MaxPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True), (4, 10, 10), (4, 6, 6)),
    "AvgPool2d": (lambda: ir.AvgPool2d(kernel_size=(2, 3), count_include_pad=False), (2, 8, 9), (2, 4, 3)),
    "SumPool2d": (lambda: ir.SumPool2d(kernel_size=2, stride=1), (2, 5, 5), (2, 4, 4)),
    "Upsample": (lambda: ir.Upsample(scale_factor=(2.0, 3.0)), (3, 4, 5), (3, 8, 15)),
    "Flatten": (lambda: ir.Flatten(start_dim=1), (2, 3, 4), (2, 12)),
    "LIF": (
        lambda: ir.LIF(tau=f32(6) ** 2 + 2, r=np.float32(1.0), v_leak=0.0, v_threshold=np.full(6, 0.5, np.float32)),
        (6,),
        (6,),
    ),
    "IF": (lambda: ir.IF(v_threshold=np.ones(4, np.float32), reset_mode="subtract"), (4,), (4,)),
    "CubaLIF": (
        lambda: ir.CubaLIF(tau_syn=np.full(3, 5.0), tau_mem=np.full(3, 10.0), r=10.0, w_in=5.0, comparison=">"),
        (3,),
        (3,),
    ),
    "CubaLI": (lambda: ir.CubaLI(tau_syn=np.full(3, 2.0), tau_mem=np.full(3, 4.0)), (3,), (3,)),
    "LI": (lambda: ir.LI(tau=np.full(4, 8.0, np.float32)), (4,), (4,)),
    "Integrator": (lambda: ir.Integrator(r=np.full(2, 0.5)), (2,), (2,)),
    "Threshold": (lambda: ir.Threshold(threshold=np.zeros(5, np.float32)), (5,), (5,)),
    "Delay": (lambda: ir.Delay(delay=np.array([0, 1, 3])), (3,), (3,)),
    "ReLU": (lambda: ir.ReLU(features=12, negative_slope=0.1), (12,), (12,)),
    "Sigmoid": (lambda: ir.Sigmoid(), (2, 3), (2, 3)),
    "Tanh": (lambda: ir.Tanh(features=4), (4, 2, 2), (4, 2, 2)),
    "Softmax": (lambda: ir.Softmax(dim=1), (10,), (10,)),
    "GELU": (lambda: ir.GELU(approximate="tanh"), (3,), (3,)),
    "ELU": (lambda: ir.ELU(alpha=0.5), (3,), (3,)),
    "PReLU": (lambda: ir.PReLU(weight=np.full(4, 0.25, np.float32)), (4, 3, 3), (4, 3, 3)),
    "BatchNorm1d": (lambda: ir.BatchNorm1d(4, f32(4), f32(4), f32(4), f32(4) ** 2), (4,), (4,)),
    "BatchNorm2d": (lambda: ir.BatchNorm2d(3, running_var=np.full(3, 2.0, np.float32), eps=1e-3), (3, 4, 4), (3, 4, 4)),
    "LayerNorm": (lambda: ir.LayerNorm([4, 2], f32(4, 2), f32(4, 2)), (3, 4, 2), (3, 4, 2)),
    "Dropout": (lambda: ir.Dropout(p=0.1), (7,), (7,)),
    "Skip": (lambda: ir.Skip(skip_type="passthrough"), (3, 2), (3, 2)),
    "ChannelSplit": (lambda: ir.ChannelSplit(split_sections=(2, 5)), (7, 3), [(2, 3), (5, 3)]),
    "Concat": (lambda: ir.Concat(dim=1), (4, 3), (4, 3)),
    "HybridRegion": (lambda: ir.HybridRegion(mode="ann", features=5, name="decoder"), (5,), (5,)),
    # ghost and detection primitives (docs/semantics.md §4.1)
    "SGhostConv": (
        lambda: ir.SGhostConv(f32(4, 3, 3, 3), f32(4, 1, 3, 3), f32(4), f32(4), primary_stride=2),
        (3, 9, 9),
        (8, 5, 5),
    ),
    "SGhostEncoderLite": (
        lambda: ir.SGhostEncoderLite(f32(8, 3, 3, 3), f32(4, 8, 1, 1), f32(4, 1, 3, 3), f32(8), f32(4), f32(4)),
        (3, 8, 8),
        (8, 4, 4),
    ),
    "GhostBasicBlock1": (
        lambda: ir.GhostBasicBlock1(
            f32(4, 6, 3, 3),
            f32(4, 1, 3, 3),
            f32(2, 4, 1, 1),
            f32(2, 1, 3, 3),
            f32(2, 6, 1, 1),
            f32(2, 1, 3, 3),
            cv0_primary_bias=f32(4),
        ),
        (6, 8, 8),
        (8, 4, 4),
    ),
    "GhostBasicBlock2": (
        lambda: ir.GhostBasicBlock2(f32(4, 8, 1, 1), f32(4, 1, 3, 3), f32(2, 4, 1, 1), f32(2, 1, 3, 3)),
        (8, 4, 4),
        (8, 4, 4),
    ),
    "SDDetect": (
        lambda: ir.SDDetect(
            f32(4, 8, 3, 3),
            f32(4, 4, 3, 3),
            f32(8, 4, 1, 1),
            f32(4, 8, 3, 3),
            f32(4, 4, 3, 3),
            f32(2, 4, 1, 1),
            num_classes=2,
            reg_max=2,
            stride=8,
        ),
        (8, 4, 4),
        (10, 4, 4),
    ),
    "DFLDecode": (lambda: ir.DFLDecode(reg_max=4), (18, 3, 3), (6, 3, 3)),
    "Dist2BBox": (lambda: ir.Dist2BBox(stride=16), (6, 3, 4), (12, 6)),
    "NMS": (lambda: ir.NMS(score_threshold=-1.0, iou_threshold=0.3, max_detections=4), (12, 6), (4, 6)),
}


def chain_graph(name: str) -> ir.Graph:
    """Input -> primitive -> Output(s): a graph exercising one primitive with its example input."""
    global _rng
    factory, shape, expected = EXAMPLES[name]
    # one generator per primitive, so a graph's parameters do not depend on which tests ran before
    _rng = np.random.default_rng(list(name.encode()))
    node = factory()
    outs = expected if isinstance(expected, list) else [expected]
    nodes = {"input": ir.Input(np.array(shape)), "node": node}
    edges = [("input", "node")]
    for i, out in enumerate(outs):
        nodes[f"output_{i}"] = ir.Output(np.array(out))
        edges.append(("node", f"output_{i}"))
    return ir.Graph(nodes, edges, metadata={"example": name})
