"""Every stateless primitive of the JAX engine against PyTorch (the oracle of docs/semantics.md §4)."""

import numpy as np
import pytest

from talon import ir

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
F = torch.nn.functional

from talon.interop.jax import JaxGraph  # noqa: E402

RNG = np.random.default_rng(0)


def w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def t(a):
    return torch.from_numpy(np.asarray(a))


# (id, node, input shape, torch oracle on a batch)
CASES = [
    ("affine", ir.Affine(w(5, 7), w(5)), (7,), lambda x, n: F.linear(x, t(n.weight), t(n.bias))),
    ("linear", ir.Linear(w(5, 7)), (3, 7), lambda x, n: F.linear(x, t(n.weight))),
    ("scale", ir.Scale(w(3, 4)), (3, 4), lambda x, n: x * t(n.scale)),
    (
        "conv1d",
        ir.Conv1d(w(6, 2, 3), w(6), stride=2, padding=1, dilation=2, groups=2),
        (4, 11),
        lambda x, n: F.conv1d(x, t(n.weight), t(n.bias), 2, 1, 2, 2),
    ),
    (
        "conv2d",
        ir.Conv2d(w(4, 3, 3, 2), w(4), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
        (3, 9, 8),
        lambda x, n: F.conv2d(x, t(n.weight), t(n.bias), (2, 1), (1, 2), (1, 2)),
    ),
    (
        "sdconv",
        ir.SDConv(w(6, 1, 3, 3), padding=1, groups=3),
        (3, 6, 6),
        lambda x, n: F.conv2d(x, t(n.weight), t(n.bias), 1, 1, 1, 3),
    ),
    (
        "sepconv",
        ir.SepConv2d(w(3, 1, 3, 3), w(5, 3, 1, 1), w(3), w(5), stride=2, padding=1),
        (3, 7, 7),
        lambda x, n: F.conv2d(
            F.conv2d(x, t(n.depthwise_weight), t(n.depthwise_bias), 2, 1, 1, 3),
            t(n.pointwise_weight),
            t(n.pointwise_bias),
        ),
    ),
    (
        "maxpool-ceil-dilation",
        ir.MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True),
        (2, 8, 9),
        lambda x, n: F.max_pool2d(x, 3, 2, 1, (1, 2), ceil_mode=True),
    ),
    (
        "avgpool-ceil-include-pad",
        ir.AvgPool2d(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        (2, 8, 7),
        lambda x, n: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
    ),
    (
        "avgpool-exclude-pad",
        ir.AvgPool2d(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), count_include_pad=False, ceil_mode=True),
        (2, 7, 6),
        lambda x, n: F.avg_pool2d(x, (3, 2), (2, 1), (1, 1), ceil_mode=True, count_include_pad=False),
    ),
    (
        "avgpool-divisor",
        ir.AvgPool2d(kernel_size=2, divisor_override=3),
        (2, 6, 6),
        lambda x, n: F.avg_pool2d(x, 2, divisor_override=3),
    ),
    (
        "sumpool",
        ir.SumPool2d(kernel_size=3, stride=2, padding=2),
        (2, 7, 8),
        lambda x, n: F.avg_pool2d(F.pad(x, (2, 2, 2, 2)), 3, 2, divisor_override=1),
    ),
    ("flatten", ir.Flatten(start_dim=1, end_dim=2), (2, 3, 4), lambda x, n: torch.flatten(x, 2, 3)),
    (
        "upsample-nearest-scale",
        ir.Upsample(scale_factor=(1.5, 2.5)),
        (2, 5, 3),
        lambda x, n: F.interpolate(x, scale_factor=(1.5, 2.5), mode="nearest"),
    ),
    (
        "upsample-nearest-size",
        ir.Upsample(size=(7, 5)),
        (2, 3, 4),
        lambda x, n: F.interpolate(x, size=(7, 5), mode="nearest"),
    ),
    (
        "upsample-bilinear",
        ir.Upsample(scale_factor=1.7, mode="bilinear"),
        (2, 4, 5),
        lambda x, n: F.interpolate(x, scale_factor=1.7, mode="bilinear"),
    ),
    (
        "upsample-bilinear-aligned",
        ir.Upsample(size=(6, 9), mode="bilinear", align_corners=True),
        (2, 4, 5),
        lambda x, n: F.interpolate(x, size=(6, 9), mode="bilinear", align_corners=True),
    ),
    ("relu", ir.ReLU(), (5,), lambda x, n: F.relu(x)),
    ("leaky-relu", ir.ReLU(negative_slope=0.2), (5,), lambda x, n: F.leaky_relu(x, 0.2)),
    ("prelu", ir.PReLU(weight=w(3)), (3, 4), lambda x, n: F.prelu(x, t(n.weight))),
    ("sigmoid", ir.Sigmoid(), (5,), lambda x, n: torch.sigmoid(x)),
    ("tanh", ir.Tanh(), (5,), lambda x, n: torch.tanh(x)),
    ("softmax", ir.Softmax(dim=1), (4, 3), lambda x, n: F.softmax(x, dim=1)),
    ("gelu", ir.GELU(), (5,), lambda x, n: F.gelu(x)),
    ("gelu-tanh", ir.GELU(approximate="tanh"), (5,), lambda x, n: F.gelu(x, approximate="tanh")),
    ("elu", ir.ELU(alpha=0.7), (5,), lambda x, n: F.elu(x, 0.7)),
    (
        "batchnorm2d",
        ir.BatchNorm2d(3, weight=w(3), bias=w(3), running_mean=w(3), running_var=np.abs(w(3)) + 0.1),
        (3, 4, 4),
        lambda x, n: F.batch_norm(x, t(n.running_mean), t(n.running_var), t(n.weight), t(n.bias), eps=n.eps),
    ),
    (
        "batchnorm1d-no-affine",
        ir.BatchNorm1d(4, running_mean=w(4), running_var=np.abs(w(4)) + 0.1),
        (4,),
        lambda x, n: F.batch_norm(x, t(n.running_mean), t(n.running_var), eps=n.eps),
    ),
    (
        "layernorm",
        ir.LayerNorm((3, 4), weight=w(3, 4), bias=w(3, 4)),
        (2, 3, 4),
        lambda x, n: F.layer_norm(x, (3, 4), t(n.weight), t(n.bias), n.eps),
    ),
    ("dropout", ir.Dropout(p=0.3), (5,), lambda x, n: x),
    ("hybrid-region", ir.HybridRegion(mode="ann"), (5,), lambda x, n: x),
    ("threshold", ir.Threshold(threshold=w(5)), (5,), lambda x, n: (x > t(n.threshold)).float()),
]


@pytest.mark.parametrize(("node", "shape", "oracle"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_stateless_node_matches_torch(node, shape, oracle):
    node.infer_types([shape])
    graph = ir.Graph(
        {"input": ir.Input(np.array(shape)), "node": node, "output": ir.Output(np.array(node.output_shape))},
        [("input", "node"), ("node", "output")],
    )
    x = RNG.standard_normal((2, 3, *shape)).astype(np.float32)
    model = JaxGraph(graph)
    y, _ = model.run(model.params, x)
    want = oracle(torch.from_numpy(x.reshape(6, *shape)), graph.nodes["node"]).numpy().reshape(2, 3, *node.output_shape)
    np.testing.assert_allclose(np.asarray(y), want, rtol=2e-5, atol=2e-6)


def test_fan_in_merges_follow_edge_order():
    """Concat and Skip(concatenate) take their inputs in edge order; a ChannelSplit sends section i along edge i."""
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([2, 3])),
            "split": ir.ChannelSplit(split_sections=[1, 1], dim=1),
            "neg": ir.Scale(np.float32(-1.0)),
            "cat": ir.Concat(dim=-1),
            "skip": ir.Skip("concatenate"),
            "output": ir.Output(np.array([2, 6])),
        },
        [
            ("input", "split"),
            ("split", "neg"),  # section 0
            ("split", "cat"),  # section 1
            ("neg", "cat"),
            ("cat", "skip"),
            ("cat", "skip"),
            ("skip", "output"),
        ],
    )
    x = RNG.standard_normal((1, 2, 2, 3)).astype(np.float32)
    model = JaxGraph(graph)
    y, _ = model.run(model.params, x)
    cat = np.concatenate([x[:, :, 1:2], -x[:, :, 0:1]], axis=-1)  # [T, B, 1, 6]
    np.testing.assert_array_equal(np.asarray(y), np.concatenate([cat, cat], axis=2))


def test_every_registered_primitive_has_an_implementation():
    from talon.interop.jax import layers, neurons

    handled = (
        *(cls for cls, _ in layers._BUILDERS),
        *layers._ELEMENTWISE,
        *neurons.STATEFUL,
        ir.Delay,
        ir.Threshold,
    )
    missing = [name for name in ir.list_primitives() if not issubclass(ir.str_to_node(name), handled)]
    assert missing == [], f"the JAX engine does not implement {missing}"
