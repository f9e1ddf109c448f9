"""Small graphs with hand-computable numbers, shared by the SDK and CLI tests.

Every weight is float32 and every neuron parameter float64 unless stated; the expected numbers in
the tests are worked out by hand from these definitions.
"""

from __future__ import annotations

import numpy as np

from talon import ir


def _w(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def chain(seed: int = 0) -> ir.Graph:
    """Input[8] -> fc1 Affine(8->4) -> lif1 LIF(4) -> fc2 Affine(4->2) -> Output[2].

    params: fc1 32+4, lif1 5*4 (tau r v_leak v_threshold v_reset), fc2 8+2  -> 66
    bytes:  fc1 36*4, lif1 20*8 (float64), fc2 10*4                         -> 344
    MACs:   32 + 8 = 40
    """
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([8])),
            "fc1": ir.Affine(_w(rng, 4, 8), _w(rng, 4)),
            "lif1": ir.LIF(tau=np.full(4, 5.0), r=5.0, v_leak=0.0, v_threshold=1.0),
            "fc2": ir.Affine(_w(rng, 2, 4), _w(rng, 2)),
            "output": ir.Output(np.array([2])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "output")],
        metadata={"name": "chain"},
    )


def cnn(seed: int = 0) -> ir.Graph:
    """Input[2,8,8] -> conv Conv2d(2->4, 3x3, pad 1) -> lif LIF per channel (4,) -> pool AvgPool2d(2)
    -> flat Flatten -> fc Affine(64->3) -> Output[3].

    conv MACs 4*8*8*2*9 = 4608; pool 4*4*4 outputs * 4 = 256; fc 64*3 = 192  -> 5056
    params: conv 72+4, lif 5*4 (per-channel), fc 192+3 -> 291
    neurons: 4*8*8 = 256 (state 1 each)
    """
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([2, 8, 8])),
            "conv": ir.Conv2d(_w(rng, 4, 2, 3, 3), _w(rng, 4), padding=1),
            "lif": ir.LIF(tau=np.full(4, 4.0), r=4.0, v_threshold=np.full(4, 0.5)),
            "pool": ir.AvgPool2d(kernel_size=2),
            "flat": ir.Flatten(),
            "fc": ir.Affine(_w(rng, 3, 64), _w(rng, 3)),
            "output": ir.Output(np.array([3])),
        },
        [("input", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "flat"), ("flat", "fc"), ("fc", "output")],
    )


def residual(seed: int = 0) -> ir.Graph:
    """Input[4,6,6] -> c1 Conv2d(4->4, 3x3, pad 1) -> relu -> c2 Conv2d(4->4, 3x3, pad 1) -> add Skip(residual)
    <- input;  add -> Output[4,6,6].

    c1, c2 MACs 4*6*6*4*9 = 5184 each; the residual sum adds 4*6*6 = 144  -> 10512
    depth: input c1 relu c2 add output = 5 edges; width: input and c1..output are alone per level -> 1
    """
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([4, 6, 6])),
            "c1": ir.Conv2d(_w(rng, 4, 4, 3, 3), _w(rng, 4), padding=1),
            "relu": ir.ReLU(),
            "c2": ir.Conv2d(_w(rng, 4, 4, 3, 3), _w(rng, 4), padding=1),
            "add": ir.Skip(skip_type="residual"),
            "output": ir.Output(np.array([4, 6, 6])),
        },
        [("input", "c1"), ("c1", "relu"), ("relu", "c2"), ("c2", "add"), ("input", "add"), ("add", "output")],
    )


def recurrent(seed: int = 0) -> ir.Graph:
    """Input[3] -> fc_in Affine(3->5) -> lif CubaLIF(5) -> fc_out Affine(5->2) -> Output[2], with
    lif -> w_rec Linear(5->5) -> lif closing a cycle (w_rec -> lif is the recurrent edge).

    MACs: fc_in 15, w_rec 25, fc_out 10, lif sums 2 edges: 5  -> 55
    state: CubaLIF 2*5 values + the recurrent edge's buffer 5 values = 15 values = 60 bytes
    depth 4 (input fc_in lif fc_out output; w_rec is at level 3 beside fc_out) -> width 2
    """
    rng = np.random.default_rng(seed)
    return ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "fc_in": ir.Affine(_w(rng, 5, 3), _w(rng, 5)),
            "lif": ir.CubaLIF(tau_syn=np.full(5, 2.0), tau_mem=np.full(5, 4.0), r=4.0, w_in=2.0),
            "w_rec": ir.Linear(_w(rng, 5, 5)),
            "fc_out": ir.Affine(_w(rng, 2, 5), _w(rng, 2)),
            "output": ir.Output(np.array([2])),
        },
        [
            ("input", "fc_in"),
            ("fc_in", "lif"),
            ("lif", "w_rec"),
            ("w_rec", "lif"),
            ("lif", "fc_out"),
            ("fc_out", "output"),
        ],
    )


def hybrid(seed: int = 0) -> ir.Graph:
    """The seed 002 §6 HybridSNN as ``export_to_ir(HybridSNN(), torch.randn(1, 1, 28, 28))`` gives it.

    conv1 Conv2d(1->16, 3x3, padding 1) -> relu -> pool MaxPool2d(2) -> flatten -> fc1 Affine(3136->64)
    -> lif LIF(64) (snnTorch Leaky(beta=0.9): tau = r = 1/(1-0.9) in float64, subtract reset, '>',
    delayed reset) -> fc2 Affine(64->10) -> Output[10]. Weights are PyTorch's default uniform init.
    """
    rng = np.random.default_rng(seed)

    def uniform(fan_in, *shape):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    tau = 1.0 / (1.0 - 0.9)
    return ir.Graph(
        {
            "input": ir.Input(np.array([1, 28, 28])),
            "conv1": ir.Conv2d(uniform(9, 16, 1, 3, 3), uniform(9, 16), padding=1),
            "relu": ir.ReLU(),
            "pool": ir.MaxPool2d(kernel_size=2),
            "flatten": ir.Flatten(),
            "fc1": ir.Affine(uniform(3136, 64, 3136), uniform(3136, 64)),
            "lif": ir.LIF(
                tau=np.full(64, tau),
                r=np.full(64, tau),
                v_leak=0.0,
                v_threshold=1.0,
                reset_mode="subtract",
                reset_timing="delayed",
                comparison=">",
            ),
            "fc2": ir.Affine(uniform(64, 10, 64), uniform(64, 10)),
            "output": ir.Output(np.array([10])),
        },
        [
            ("input", "conv1"),
            ("conv1", "relu"),
            ("relu", "pool"),
            ("pool", "flatten"),
            ("flatten", "fc1"),
            ("fc1", "lif"),
            ("lif", "fc2"),
            ("fc2", "output"),
        ],
    )


def nested(seed: int = 0) -> ir.Graph:
    """Input[3] -> fc Affine(3->4) -> rnn (subgraph: Input[4] -> lif LIF(4) -> w Linear(4->4) -> lif,
    lif -> Output[4]) -> out_fc Affine(4->2) -> Output[2]."""
    rng = np.random.default_rng(seed)
    inner = ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "lif": ir.LIF(tau=np.full(4, 3.0)),
            "w": ir.Linear(_w(rng, 4, 4)),
            "output": ir.Output(np.array([4])),
        },
        [("input", "lif"), ("lif", "w"), ("w", "lif"), ("lif", "output")],
    )
    return ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "fc": ir.Affine(_w(rng, 4, 3), _w(rng, 4)),
            "rnn": inner,
            "out_fc": ir.Affine(_w(rng, 2, 4), _w(rng, 2)),
            "output": ir.Output(np.array([2])),
        },
        [("input", "fc"), ("fc", "rnn"), ("rnn", "out_fc"), ("out_fc", "output")],
    )
