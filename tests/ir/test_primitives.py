"""Every primitive: construction, validation, shape inference."""

import numpy as np
import pytest

from talon import ir
from talon.ir import ShapeError

from .examples import EXAMPLES, chain_graph


def test_every_registered_primitive_has_an_example():
    assert sorted(EXAMPLES) == ir.list_primitives()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_output_shape_is_inferred_in_a_graph(name):
    graph = chain_graph(name)
    _, shape, expected = EXAMPLES[name]
    node = graph.nodes["node"]
    expected = expected if isinstance(expected, list) else [expected]
    assert node.output_shapes() == expected
    assert node.input_shape == shape


@pytest.mark.parametrize(
    ("node", "shape", "expected"),
    [
        # non-square kernels, stride, padding, dilation, groups (PyTorch's formula)
        (ir.Conv2d(np.zeros((2, 1, 3, 5)), padding=0), (1, 10, 10), (2, 8, 6)),
        (ir.Conv2d(np.zeros((6, 2, 3, 3)), groups=3, padding=1), (6, 7, 7), (6, 7, 7)),
        (ir.Conv2d(np.zeros((4, 4, 3, 3)), dilation=2, stride=3), (4, 20, 11), (4, 6, 3)),
        (ir.Conv1d(np.zeros((8, 2, 4)), groups=2, stride=2), (4, 16), (8, 7)),
        (ir.MaxPool2d(kernel_size=2), (64, 32, 32), (64, 16, 16)),
        (ir.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True), (1, 6, 6), (1, 3, 3)),
        (ir.MaxPool2d(kernel_size=2, stride=2, padding=1, ceil_mode=True), (1, 5, 5), (1, 3, 3)),
        (ir.AvgPool2d(kernel_size=3, stride=1, padding=1), (2, 5, 4), (2, 5, 4)),
        (ir.Flatten(), (32, 8, 8), (2048,)),
        (ir.Flatten(start_dim=-2), (3, 4, 5), (3, 20)),
        (ir.Upsample(size=(7, 9), mode="bilinear", align_corners=True), (3, 2, 2), (3, 7, 9)),
        (ir.Upsample(scale_factor=1.5), (3, 5, 5), (3, 7, 7)),
    ],
)
def test_geometry(node, shape, expected):
    node.infer_types([shape])
    assert node.output_shape == expected


def test_input_and_output_forms():
    a = ir.Input(np.array([784]))
    b = ir.Input(input_type={"input": np.array([784])})
    assert a.input_type["input"].tolist() == b.output_type["output"].tolist() == [784]
    assert ir.Output(np.array([10])).output_type["output"].tolist() == [10]


def test_affine_types_come_from_the_weight():
    node = ir.Affine(weight=np.zeros((128, 784), np.float32), bias=np.zeros(128, np.float32))
    assert node.input_type["input"].tolist() == [784]
    assert node.output_type["output"].tolist() == [128]


def test_scalar_neuron_parameters_broadcast_to_the_layer():
    lif = ir.LIF(tau=np.full(64, 5.0, np.float32), r=1.0, v_leak=0.0, v_threshold=0.5)
    assert lif.r.shape == lif.v_threshold.shape == lif.v_reset.shape == (64,)
    assert np.all(lif.v_threshold == 0.5)
    # all scalars: the shape arrives with the graph
    g = ir.Graph(
        {"input": ir.Input(np.array([8])), "lif": ir.LIF(tau=10.0), "output": ir.Output(np.array([8]))},
        [("input", "lif"), ("lif", "output")],
    )
    assert g.nodes["lif"].tau.shape == (8,)


def test_per_channel_neuron_parameters_after_a_conv():
    g = ir.Graph(
        {
            "input": ir.Input(np.array([1, 8, 8])),
            "conv": ir.Conv2d(np.zeros((4, 1, 3, 3), np.float32), padding=1),
            "lif": ir.LIF(tau=np.full(4, 2.0), v_threshold=np.ones(4)),
            "output": ir.Output(np.array([4, 8, 8])),
        },
        [("input", "conv"), ("conv", "lif"), ("lif", "output")],
    )
    lif = g.nodes["lif"]
    assert lif.tau.shape == (4,) and lif.input_shape == (4, 8, 8)


def test_lif_beta_is_one_minus_inverse_tau():
    lif = ir.LIF(tau=np.array([10.0, np.inf]))
    assert lif.beta.tolist() == [0.9, 1.0]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: ir.Affine(np.zeros((3, 4)), np.zeros(2)), "bias has 2 entries"),
        (lambda: ir.Affine(np.zeros(3), None), "must have 2 dimensions"),
        (lambda: ir.Affine(np.array([["a"]]), None), "real numeric"),
        (lambda: ir.SpikingAffine(np.zeros((2, 2)), weight_bits=0), "weight_bits must be >= 1"),
        (lambda: ir.SpikingAffine(np.zeros((2, 2)), weight_bits=33), r"weight_bits must be in \[1, 32\]"),
        (lambda: ir.SpikingAffine(np.zeros((2, 2)), accumulator_bits=65), r"accumulator_bits must be in \[1, 64\]"),
        (lambda: ir.SpikingAffine(np.zeros((2, 2)), weight_bits=8, accumulator_bits=4), "must be >= weight_bits"),
        (lambda: ir.SpikingAffine(np.zeros((2, 2)), spike_mode="loud"), "spike_mode='loud' is not one of"),
        (lambda: ir.LIF(tau=np.zeros(3)), "tau must be > 0"),
        (lambda: ir.LIF(tau=np.ones(3), v_threshold=np.ones(4)), "parameter shapes differ"),
        (lambda: ir.LIF(tau=[1.0, np.nan]), "tau must be > 0"),
        (lambda: ir.LIF(tau=2.0, v_threshold=np.inf), "v_threshold must be finite"),
        (lambda: ir.LIF(tau=2.0, reset_timing="soon"), "reset_timing='soon'"),
        (lambda: ir.LIF(tau=2.0, spike_timing="pre"), "needs a delayed reset_timing"),
        (lambda: ir.LIF(tau=2.0, reset_mode="zero", v_reset=0.5), "contradicts a non-zero v_reset"),
        (lambda: ir.Delay(delay=[0.5]), "whole timesteps"),
        (lambda: ir.Delay(delay=[-1]), ">= 0"),
        (lambda: ir.Conv2d(np.zeros((3, 2, 3, 3)), groups=2), "not divisible by groups"),
        (lambda: ir.Conv2d(np.zeros((2, 2, 3, 3)), stride=0), "stride must be >= 1"),
        (lambda: ir.SDConv(np.zeros((3, 2, 3, 3))), r"\(C, 1, kH, kW\)"),
        (lambda: ir.SepConv2d(np.zeros((3, 1, 3, 3)), np.zeros((4, 2, 1, 1))), "pointwise_weight must be"),
        (lambda: ir.MaxPool2d(kernel_size=2, padding=2), "at most half the kernel"),
        (lambda: ir.Upsample(scale_factor=-1), "scale_factor must be positive"),
        (lambda: ir.Upsample(mode="nearest", align_corners=True), "only applies to mode='bilinear'"),
        (lambda: ir.Skip(skip_type="sideways"), "skip_type='sideways'"),
        (lambda: ir.ChannelSplit(split_sections=[]), "must not be empty"),
        (lambda: ir.GELU(approximate="erf"), "approximate must be"),
        (lambda: ir.BatchNorm1d(3, weight=np.ones(4)), "weight has 4 entries"),
        (lambda: ir.BatchNorm1d(3, weight=np.ones(3)), "give both weight and bias"),
        (lambda: ir.LayerNorm([4], np.ones(3)), "weight has shape"),
        (lambda: ir.Dropout(p=1.5), r"p must be in \[0, 1\]"),
        (lambda: ir.HybridRegion(mode="quantum"), "mode='quantum'"),
        (lambda: ir.Input(), "needs a shape"),
        (lambda: ir.Input(np.array([-3])), "negative sizes"),
        (lambda: ir.Affine(np.zeros((3, 4)), input_type={"input": np.array([5])}), "expects inputs of 4 features"),
        (lambda: ir.Affine(np.zeros((3, 4)), output_type={"output": np.array([5])}), "contradicts the output"),
    ],
)
def test_bad_parameters_raise_clear_errors(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    ("node", "shape", "message"),
    [
        (ir.Affine(np.zeros((3, 4))), (5,), "expects inputs of 4 features"),
        (ir.Conv2d(np.zeros((2, 3, 3, 3))), (4, 8, 8), "expects 3 input channels"),
        (ir.Conv2d(np.zeros((2, 3, 3, 3))), (3, 8), r"expects a \[C, H, W\] input"),
        (ir.Conv2d(np.zeros((2, 3, 5, 5))), (3, 3, 3), "smaller than the kernel span"),
        (ir.MaxPool2d(kernel_size=2), (4, 8), r"\[C, H, W\]"),
        (ir.Flatten(start_dim=3), (2, 3), "do not fit an input"),
        (ir.LIF(tau=np.ones(5)), (6,), "fit neither the input shape"),
        (ir.ReLU(features=10), (3, 3), "features=10 matches neither"),
        (ir.Softmax(dim=0), (3,), "dim=0 does not select a feature axis"),
        (ir.PReLU(weight=np.ones(3)), (4, 2), "3 weights do not match"),
        (ir.BatchNorm2d(4), (4, 3), "expects a rank 3 input"),
        (ir.LayerNorm([4]), (4, 3), "does not end with"),
        (ir.ChannelSplit(split_sections=(2, 2)), (5,), "sum to 4"),
    ],
)
def test_incompatible_input_shapes(node, shape, message):
    with pytest.raises(ShapeError, match=message):
        node.infer_types([shape])


def test_split_sections_keep_their_container_type():
    assert ir.ChannelSplit(split_sections=(16, 16)).split_sections == (16, 16)
    assert ir.ChannelSplit(split_sections=[32, 32]).split_sections == [32, 32]


def test_enums_compare_equal_to_strings():
    assert ir.Skip(skip_type="residual").skip_type == "residual"
    assert ir.SpikingAffine(np.zeros((1, 1)), spike_mode="RATE").spike_mode is ir.SpikeMode.RATE


def test_custom_node_registration_as_documented(monkeypatch):
    from dataclasses import dataclass

    import talon.ir.node as node_module

    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))

    @ir.register_node
    @dataclass(eq=False)
    class CustomNeuron(ir.Node):
        tau: np.ndarray
        custom_param: float = 1.0
        input_type: dict = None
        output_type: dict = None

    assert ir.str_to_node("CustomNeuron") is CustomNeuron
    node = CustomNeuron(np.ones(3), 2.0, input_type={"input": np.array([3])})
    assert node.custom_param == 2.0 and node.output_shape == (3,)
    assert "CustomNeuron" in ir.list_primitives()


def test_unknown_node_type():
    with pytest.raises(ValueError, match="unknown node type 'Nope'"):
        ir.str_to_node("Nope")
