"""Golden cases: small graphs and input streams strong enough to make every neuron fire.

Inputs are multiples of 1/8 and weights multiples of 1/8, so every sum is exact in float32 and
an engine that follows ``docs/semantics.md`` reproduces the reference bit for bit (``exact``).
Cases with ``exact=False`` involve arithmetic whose rounding may legitimately differ (matmul
order, transcendental functions); they are compared within 1e-5 (absolute and relative:
float32 rounding accumulates in a membrane), spikes still exactly.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from talon import ir

T, B = 40, 3


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], ir.Graph]
    input_shape: tuple[int, ...]
    low: int = -4  # input values are integers in [low, high) divided by 8
    high: int = 16
    exact: bool = True

    def inputs(self, seed: int = 0) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return (rng.integers(self.low, self.high, (T, B, *self.input_shape)) / 8).astype(np.float32)


def chain(shape, *layers: tuple[str, ir.Node], out_shape=None) -> ir.Graph:
    nodes = {"input": ir.Input(np.array(shape))}
    edges, prev = [], "input"
    for name, node in layers:
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    nodes["output"] = ir.Output(np.array(out_shape or shape))
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges)


TAUS = np.array([2.0, 4.0, 8.0, np.inf])  # beta = 1/2, 3/4, 7/8, 1


def lif_layer(v_threshold=1.0, **dynamics) -> ir.LIF:
    return ir.LIF(tau=TAUS, r=np.array([2.0, 4.0, 8.0, 1.0]), v_leak=0.0, v_threshold=v_threshold, **dynamics)


def _dynamics_grid():
    for mode, timing, spike, cmp in itertools.product(
        ("value", "subtract", "none"),
        ("immediate", "delayed", "delayed_pre_decay"),
        ("post", "pre"),
        (">", ">="),
    ):
        if spike == "pre" and timing == "immediate":
            continue
        yield dict(reset_mode=mode, reset_timing=timing, spike_timing=spike, comparison=cmp)
    for cmp in (">", ">="):
        yield dict(reset_mode="subtract", reset_timing="snntorch_immediate", spike_timing="post", comparison=cmp)


def _name(d: dict) -> str:
    return f"{d['reset_mode']}-{d['reset_timing']}-{d['spike_timing']}-{'gt' if d['comparison'] == '>' else 'ge'}"


CASES: list[Case] = []

for dyn in _dynamics_grid():
    CASES.append(Case(f"lif[{_name(dyn)}]", lambda dyn=dyn: chain([4], ("lif", lif_layer(**dyn))), (4,)))
    CASES.append(
        Case(
            f"cubalif[{_name(dyn)}]",
            lambda dyn=dyn: chain(
                [2],
                ("neuron", ir.CubaLIF(tau_syn=[2.0, 4.0], tau_mem=[4.0, 2.0], r=[4.0, 2.0], w_in=[2.0, 4.0], **dyn)),
            ),
            (2,),
            low=-2,
            high=6,
        )
    )

CASES += [
    Case(
        "lif[euler-leak-and-v_reset]",
        lambda: chain(
            [3],
            (
                "lif",
                ir.LIF(
                    tau=[3.0, 25.0, 7.0],
                    r=[1.0, 1.0, 2.0],
                    v_leak=[0.25, 0.0, -0.125],
                    v_threshold=0.75,
                    v_reset=-0.5,
                    comparison=">",
                    integration="euler",
                ),
            ),
        ),
        (3,),
    ),
    Case(
        "li[euler]",
        lambda: chain([3], ("li", ir.LI(tau=[3.0, 10.0, 25.0], r=[1.0, 2.0, 1.0], v_leak=0.5, integration="euler"))),
        (3,),
    ),
    Case(
        "lif[leak-and-v_reset]",
        lambda: chain(
            [3],
            ("lif", ir.LIF(tau=[2.0, 4.0, 8.0], r=1.0, v_leak=0.25, v_threshold=0.75, v_reset=-0.5, comparison=">")),
        ),
        (3,),
    ),
    Case(
        "if[subtract-r-half]",
        lambda: chain([3], ("if", ir.IF(v_threshold=[1.0, 0.5, 2.0], r=0.5, reset_mode="subtract"))),
        (3,),
    ),
    Case(
        "if[spyx]",
        lambda: chain(
            [2], ("if", ir.IF(reset_mode="subtract", reset_timing="delayed", spike_timing="pre", comparison=">"))
        ),
        (2,),
    ),
    # v_init: a membrane that starts above, at and below the threshold (a pre spike at t = 0)
    Case(
        "lif[v_init-delayed-pre]",
        lambda: chain(
            [4],
            (
                "lif",
                lif_layer(
                    reset_mode="subtract", reset_timing="delayed", spike_timing="pre", v_init=[1.5, 1.0, -0.5, 0.25]
                ),
            ),
        ),
        (4,),
    ),
    Case("if[v_init=v_reset]", lambda: chain([3], ("if", ir.IF(v_threshold=1.0, v_reset=0.25, v_init=0.25))), (3,)),
    Case(
        "cubalif[v_init]",
        lambda: chain(
            [2],
            (
                "neuron",
                ir.CubaLIF(tau_syn=[2.0, 4.0], tau_mem=[4.0, 2.0], r=[4.0, 2.0], w_in=[2.0, 4.0], v_init=[0.75, -1.0]),
            ),
        ),
        (2,),
        low=-2,
        high=6,
    ),
    # spike_mode='multi' (several spikes per step, thresholds that do not divide evenly) and the
    # membrane floor v_min (negative inputs push the membranes onto it)
    Case(
        "lif[multi-spike-v_min]",
        lambda: chain(
            [4],
            (
                "lif",
                lif_layer(
                    [0.5, 0.75, 1.0, 0.375],
                    reset_mode="subtract",
                    spike_mode="multi",
                    v_min=[-0.5, -0.25, -1.0, -0.125],
                ),
            ),
        ),
        (4,),
        low=-12,
        high=20,
    ),
    Case(
        "if[multi-spike-v_min=-theta]",
        lambda: chain(
            [3],
            (
                "if",
                ir.IF(
                    v_threshold=[0.375, 0.75, 1.25],
                    r=[1.0, 0.5, 2.0],
                    reset_mode="subtract",
                    spike_mode="multi",
                    v_min=[-0.375, -0.75, -1.25],
                ),
            ),
        ),
        (3,),
        low=-10,
        high=24,
    ),
    Case(
        "cubalif[multi-spike-v_min]",
        lambda: chain(
            [2],
            (
                "neuron",
                ir.CubaLIF(
                    tau_syn=[2.0, 4.0],
                    tau_mem=[4.0, 2.0],
                    r=[4.0, 2.0],
                    w_in=[2.0, 4.0],
                    v_threshold=[0.25, 0.625],
                    reset_mode="subtract",
                    spike_mode="multi",
                    v_min=-0.5,
                ),
            ),
        ),
        (2,),
        low=-8,
        high=12,
    ),
    # Rockpool's LIFTorch: the input joins the synaptic current before the decay, multi-spike at most
    # max_spikes per step
    Case(
        "cubalif[input-first-synapse]",
        lambda: chain(
            [2],
            (
                "neuron",
                ir.CubaLIF(
                    tau_syn=[2.0, 4.0],
                    tau_mem=[4.0, 2.0],
                    r=[4.0, 2.0],
                    w_in=[2.0, 4.0],
                    synapse="input_first",
                    comparison=">",
                ),
            ),
        ),
        (2,),
        low=-2,
        high=8,
    ),
    Case(
        "cubalif[input-first-multi-max_spikes]",
        lambda: chain(
            [3],
            (
                "neuron",
                ir.CubaLIF(
                    tau_syn=[2.0, 4.0, 8.0],
                    tau_mem=[4.0, 2.0, 8.0],
                    r=[4.0, 2.0, 8.0],
                    w_in=[2.0, 4.0, 8.0],
                    v_threshold=[0.25, 0.375, 0.5],
                    synapse="input_first",
                    reset_mode="subtract",
                    spike_mode="multi",
                    max_spikes=3,
                ),
            ),
        ),
        (3,),
        low=-4,
        high=10,
    ),
    Case(
        "mlp[affine-if-multi-affine-lif-multi]",
        lambda: chain(
            [5],
            ("fc1", ir.Affine(np.round(np.random.default_rng(6).uniform(-1, 1.5, (4, 5)) * 8) / 8, np.full(4, 0.125))),
            ("if1", ir.IF(v_threshold=0.5, reset_mode="subtract", spike_mode="multi", v_min=-0.5)),
            ("fc2", ir.Linear(np.round(np.random.default_rng(7).uniform(-0.5, 1, (3, 4)) * 8) / 8)),
            ("lif2", ir.LIF(tau=np.full(3, 4.0), r=4.0, v_threshold=0.75, reset_mode="subtract", spike_mode="multi")),
            out_shape=[3],
        ),
        (5,),
        low=-8,
        high=16,
    ),
    Case("li", lambda: chain([3], ("li", ir.LI(tau=[2.0, 4.0, 8.0], r=[2.0, 1.0, 8.0], v_leak=0.5))), (3,)),
    Case(
        "cubali",
        lambda: chain([2], ("li", ir.CubaLI(tau_syn=[2.0, 4.0], tau_mem=[2.0, 8.0], r=[2.0, 1.0], w_in=[1.0, 4.0]))),
        (2,),
    ),
    Case("integrator", lambda: chain([2], ("int", ir.Integrator(r=[1.0, 0.5]))), (2,)),
    Case("threshold[gt]", lambda: chain([3], ("thr", ir.Threshold(threshold=[0.0, 0.5, 1.0]))), (3,)),
    Case("threshold[ge]", lambda: chain([3], ("thr", ir.Threshold(threshold=0.5, comparison=">="))), (3,)),
    Case("delay", lambda: chain([3], ("delay", ir.Delay(delay=[0, 1, 3]))), (3,)),
    Case(
        "mlp[affine-lif-affine-lif]",
        lambda: chain(
            [6],
            ("fc1", ir.Affine(np.round(np.random.default_rng(1).uniform(-1, 1, (5, 6)) * 8) / 8, np.full(5, 0.125))),
            ("lif1", ir.LIF(tau=np.full(5, 4.0), r=4.0, reset_mode="subtract", reset_timing="delayed", comparison=">")),
            ("fc2", ir.Linear(np.round(np.random.default_rng(2).uniform(-1, 2, (3, 5)) * 8) / 8)),
            ("lif2", ir.LIF(tau=np.full(3, 2.0), r=2.0)),
            out_shape=[3],
        ),
        (6,),
    ),
]


def _residual() -> ir.Graph:
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc": ir.Affine(np.eye(4) * 0.5, np.zeros(4)),
            "lif": ir.LIF(tau=np.full(4, 2.0), r=2.0),
            "skip": ir.Skip("residual"),
            "scale": ir.Scale(np.array([1.0, -1.0, 0.5, 2.0])),
            "relu": ir.ReLU(negative_slope=0.25),
            "output": ir.Output(np.array([4])),
        },
        [
            ("input", "fc"),
            ("fc", "lif"),
            ("lif", "skip"),
            ("input", "skip"),
            ("skip", "scale"),
            ("scale", "relu"),
            ("relu", "output"),
            ("input", "output"),  # a second edge into the Output: summed
        ],
    )


def _split_concat() -> ir.Graph:
    return ir.Graph(
        {
            "input": ir.Input(np.array([6])),
            "split": ir.ChannelSplit(split_sections=(2, 4)),
            "lif_a": ir.LIF(tau=np.full(2, 2.0), r=2.0, comparison=">"),
            "fc_b": ir.Linear(np.array([[1, 0.5, 0, 0], [0, 0, 1, -1]], dtype=np.float32)),
            "concat": ir.Concat(dim=1),
            "output": ir.Output(np.array([4])),
        },
        [
            ("input", "split"),
            ("split", "lif_a"),  # section 0 (2 channels)
            ("split", "fc_b"),  # section 1 (4 channels)
            ("fc_b", "concat"),
            ("lif_a", "concat"),
            ("concat", "output"),
        ],
    )


def _rleaky() -> ir.Graph:
    # snnTorch RLeaky: m = beta m + x + V s_prev - r theta; the recurrent edge w_rec -> lif is delayed
    v = np.array([[0, -0.5, 0.25], [0.5, 0, 0], [-1, 0.125, 0]], dtype=np.float32)
    return ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "lif": ir.LIF(tau=np.full(3, 4.0), r=4.0, reset_mode="subtract", reset_timing="delayed", comparison=">"),
            "w_rec": ir.Linear(v),
            "output": ir.Output(np.array([3])),
        },
        [("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
    )


def _cyclic_seed001() -> ir.Graph:
    rng = np.random.default_rng(3)
    return ir.Graph(
        {
            "input": ir.Input(np.array([4])),
            "fc1": ir.Affine(np.round(rng.uniform(-0.5, 1.5, (3, 4)) * 8) / 8, np.zeros(3)),
            "lif1": ir.LIF(tau=np.full(3, 4.0), r=4.0),
            "fc_fb": ir.Affine(np.round(rng.uniform(-1, 1, (4, 3)) * 8) / 8, np.zeros(4)),
            "output": ir.Output(np.array([3])),
        },
        [("input", "fc1"), ("fc1", "lif1"), ("lif1", "output"), ("lif1", "fc_fb"), ("fc_fb", "fc1")],
    )


def _subgraph() -> ir.Graph:
    return ir.Graph(
        {
            "input": ir.Input(np.array([3])),
            "rnn": _rleaky(),
            "flat": ir.Flatten(),
            "output": ir.Output(np.array([3])),
        },
        [("input", "rnn"), ("rnn", "flat"), ("flat", "output")],
    )


def _conv_per_channel() -> ir.Graph:
    rng = np.random.default_rng(4)
    return ir.Graph(
        {
            "input": ir.Input(np.array([1, 5, 5])),
            "conv": ir.Conv2d(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), padding=1),
            "lif": ir.LIF(tau=np.array([2.0, 8.0]), r=np.array([2.0, 8.0]), v_threshold=np.array([0.5, 1.0])),
            "flat": ir.Flatten(),
            "output": ir.Output(np.array([50])),
        },
        [("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "output")],
    )


def _grouped_conv_pools() -> ir.Graph:
    # weights and inputs multiples of 1/8, small: every sum is exact in float32 in any order
    rng = np.random.default_rng(5)
    return ir.Graph(
        {
            "input": ir.Input(np.array([4, 6, 6])),
            "conv": ir.Conv2d(rng.integers(-4, 5, (4, 2, 3, 3)) / 8, np.full(4, 0.125), padding=1, groups=2),
            "lif": ir.LIF(tau=np.array([2.0, 4.0, 8.0, 2.0]), r=np.array([2.0, 4.0, 8.0, 2.0]), comparison=">"),
            "sum": ir.SumPool2d(kernel_size=2, stride=2),
            "max": ir.MaxPool2d(kernel_size=2, stride=1, padding=1),
            "flat": ir.Flatten(),
            "output": ir.Output(np.array([64])),
        },
        [("input", "conv"), ("conv", "lif"), ("lif", "sum"), ("sum", "max"), ("max", "flat"), ("flat", "output")],
    )


CASES += [
    Case("graph[grouped-conv-sumpool-maxpool]", _grouped_conv_pools, (4, 6, 6), low=0, high=12),
    Case("graph[residual-skip-fan-in]", _residual, (4,)),
    Case("graph[split-concat]", _split_concat, (6,)),
    Case("graph[rleaky]", _rleaky, (3,)),
    Case("graph[cyclic-seed001]", _cyclic_seed001, (4,)),
    Case("graph[subgraph]", _subgraph, (3,)),
    Case("graph[conv-per-channel]", _conv_per_channel, (1, 5, 5), exact=False),
]

from .cases_detection import DETECTION_CASES  # noqa: E402  (imports Case and chain from here)

CASES += DETECTION_CASES

CASE_IDS = [c.name for c in CASES]
