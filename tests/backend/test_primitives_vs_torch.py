"""Every stateless primitive of the CPU backend against PyTorch (torch is only the oracle here).

Each primitive runs as ``Input -> node -> Output`` on a [T, B, *shape] input; the result must
equal ``torch.nn.functional`` applied to the T*B samples: bit for bit where PyTorch's float32
arithmetic is a single rounding of the same operation (ReLU, PReLU, MaxPool, Flatten, Scale,
Concat/Split, nearest Upsample), and within a few float32 ulps where the order of a sum or a
transcendental function may round differently.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from talon import ir
from talon.backend import get_backend

from .graphs import chain

torch = pytest.importorskip("torch")
F = torch.nn.functional
CPU = get_backend("cpu")
T, B = 2, 3


def run(node, shape, x=None, seed=0):
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.standard_normal((T, B, *shape)).astype(np.float32)
    graph = chain(shape, ("node", node))
    out = CPU.simulate(graph, {"input": x}).outputs["output"]
    return out, torch.from_numpy(x.reshape(T * B, *shape))


def same(ours, theirs, exact, rtol=2e-6, atol=2e-6):
    theirs = theirs.detach().numpy().reshape(ours.shape)
    if exact:
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def test_affine_linear_spiking_affine():
    rng = np.random.default_rng(1)
    w, b = f32(rng, 5, 7), f32(rng, 5)
    for node in (ir.Affine(w, b), ir.SpikingAffine(w, b, weight_bits=4), ir.Linear(w)):
        out, x = run(node, (7,))
        bias = torch.from_numpy(b) if not isinstance(node, ir.Linear) else None
        same(out, F.linear(x, torch.from_numpy(w), bias), exact=False)


def test_affine_on_leading_dims():
    rng = np.random.default_rng(2)
    w, b = f32(rng, 4, 6), f32(rng, 4)
    out, x = run(ir.Affine(w, b), (3, 6))
    same(out, F.linear(x, torch.from_numpy(w), torch.from_numpy(b)), exact=False)


@given(
    c_in_g=st.integers(1, 3), groups=st.integers(1, 3), c_out_g=st.integers(1, 3), kh=st.integers(1, 4),
    kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
    dh=st.integers(1, 2), dw=st.integers(1, 2), h=st.integers(1, 9), w=st.integers(1, 9),
)  # fmt: skip
def test_conv2d(c_in_g, groups, c_out_g, kh, kw, sh, sw, ph, pw, dh, dw, h, w):
    assume(h + 2 * ph >= dh * (kh - 1) + 1 and w + 2 * pw >= dw * (kw - 1) + 1)
    rng = np.random.default_rng(h * w)
    c_in, c_out = c_in_g * groups, c_out_g * groups
    weight, bias = f32(rng, c_out, c_in_g, kh, kw), f32(rng, c_out)
    node = ir.Conv2d(weight, bias, stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    out, x = run(node, (c_in, h, w))
    ref = F.conv2d(x, torch.from_numpy(weight), torch.from_numpy(bias), (sh, sw), (ph, pw), (dh, dw), groups)
    same(out, ref, exact=False, rtol=1e-5, atol=1e-5)


def test_conv1d_sconv_sdconv():
    rng = np.random.default_rng(3)
    w1, b1 = f32(rng, 4, 3, 5), f32(rng, 4)
    out, x = run(ir.Conv1d(w1, b1, stride=2, padding=1, dilation=2), (3, 20))
    same(out, F.conv1d(x, torch.from_numpy(w1), torch.from_numpy(b1), 2, 1, 2), exact=False, atol=1e-5)
    w2, b2 = f32(rng, 6, 3, 3, 3), f32(rng, 6)
    out, x = run(ir.SConv(w2, b2, padding=1), (3, 8, 8))
    same(out, F.conv2d(x, torch.from_numpy(w2), torch.from_numpy(b2), padding=1), exact=False, atol=1e-5)
    w3, b3 = f32(rng, 10, 1, 3, 3), f32(rng, 10)  # depth multiplier 2
    out, x = run(ir.SDConv(w3, b3, padding=(1, 1), groups=5), (5, 9, 9))
    same(out, F.conv2d(x, torch.from_numpy(w3), torch.from_numpy(b3), padding=1, groups=5), exact=False, atol=1e-5)


def test_sepconv2d():
    rng = np.random.default_rng(4)
    dw, pw, db, pb = f32(rng, 3, 1, 3, 3), f32(rng, 7, 3, 1, 1), f32(rng, 3), f32(rng, 7)
    out, x = run(ir.SepConv2d(dw, pw, db, pb, stride=2, padding=1), (3, 9, 9))
    mid = F.conv2d(x, torch.from_numpy(dw), torch.from_numpy(db), 2, 1, groups=3)
    same(out, F.conv2d(mid, torch.from_numpy(pw), torch.from_numpy(pb)), exact=False, atol=1e-5)


@given(
    k=st.integers(1, 4), s=st.none() | st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
    ceil=st.booleans(), h=st.integers(1, 10), w=st.integers(1, 10), include_pad=st.booleans(),
)  # fmt: skip
def test_pools(k, s, p, d, ceil, h, w, include_pad):
    assume(p <= k // 2 and h + 2 * p >= d * (k - 1) + 1 and w + 2 * p >= d * (k - 1) + 1)
    out, x = run(ir.MaxPool2d(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil), (2, h, w))
    same(out, F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), exact=True)
    if d == 1:
        node = ir.AvgPool2d(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=include_pad)
        out, x = run(node, (2, h, w))
        same(out, F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include_pad), exact=False)


def test_avgpool_divisor_override_and_sumpool():
    out, x = run(ir.AvgPool2d(kernel_size=3, stride=2, padding=1, divisor_override=5), (2, 7, 7))
    same(out, F.avg_pool2d(x, 3, 2, 1, divisor_override=5), exact=False)
    out, x = run(ir.SumPool2d(kernel_size=2, stride=1, padding=1), (2, 5, 5))
    same(out, F.avg_pool2d(x, 2, 1, 1, divisor_override=1), exact=False)  # a sum, zero padding


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        (dict(scale_factor=2.0), (2, 3, 4)),
        (dict(scale_factor=(1.5, 2.5)), (2, 5, 3)),
        (dict(scale_factor=0.7), (1, 9, 7)),
        (dict(size=(7, 5)), (2, 3, 4)),
        (dict(scale_factor=3.0), (2, 6)),
    ],
)
def test_upsample_nearest(kwargs, shape):
    out, x = run(ir.Upsample(**kwargs), shape)
    scale = kwargs.get("scale_factor")
    ref = torch.nn.Upsample(size=kwargs.get("size"), scale_factor=scale, mode="nearest")(x)
    same(out, ref, exact=True)


@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("kwargs", [dict(scale_factor=2.0), dict(scale_factor=(1.5, 0.75)), dict(size=(5, 9))])
def test_upsample_bilinear(kwargs, align):
    out, x = run(ir.Upsample(mode="bilinear", align_corners=align, **kwargs), (2, 4, 6))
    ref = torch.nn.Upsample(mode="bilinear", align_corners=align, **kwargs)(x)
    same(out, ref, exact=False, atol=1e-5)


def test_flatten_scale_dropout_hybrid():
    out, x = run(ir.Flatten(start_dim=1), (2, 3, 4))
    same(out, torch.flatten(x, 2), exact=True)
    rng = np.random.default_rng(5)
    s = f32(rng, 3, 4)
    out, x = run(ir.Scale(s), (2, 3, 4))
    same(out, x * torch.from_numpy(s), exact=True)
    for node in (ir.Dropout(p=0.3), ir.HybridRegion(mode="ann")):
        out, x = run(node, (5,))
        same(out, x, exact=True)


def test_activations():
    rng = np.random.default_rng(6)
    x = (3 * rng.standard_normal((T, B, 4, 5))).astype(np.float32)
    cases = [
        (ir.ReLU(), F.relu, True),
        (ir.ReLU(negative_slope=0.1), lambda t: F.leaky_relu(t, 0.1), True),
        (ir.Sigmoid(), torch.sigmoid, False),
        (ir.Tanh(), torch.tanh, False),
        (ir.GELU(), F.gelu, False),
        (ir.GELU(approximate="tanh"), lambda t: F.gelu(t, approximate="tanh"), False),
        (ir.ELU(alpha=0.7), lambda t: F.elu(t, 0.7), False),
        (ir.Softmax(dim=1), lambda t: F.softmax(t, 1), False),
        (ir.Softmax(dim=-1), lambda t: F.softmax(t, -1), False),
    ]
    for node, fn, exact in cases:
        out, xt = run(node, (4, 5), x)
        same(out, fn(xt), exact=exact)
    w = f32(rng, 4)
    out, xt = run(ir.PReLU(weight=w), (4, 5), x)
    same(out, F.prelu(xt, torch.from_numpy(w)), exact=True)


def test_normalization():
    rng = np.random.default_rng(7)
    c = 4
    mean, var = f32(rng, c), np.abs(f32(rng, c)) + 0.5
    w, b = f32(rng, c), f32(rng, c)
    for cls, shape in ((ir.BatchNorm2d, (c, 3, 3)), (ir.BatchNorm1d, (c, 5)), (ir.BatchNorm1d, (c,))):
        node = cls(num_features=c, weight=w, bias=b, running_mean=mean, running_var=var, eps=1e-3)
        out, x = run(node, shape)
        ref = F.batch_norm(x, *(torch.from_numpy(a) for a in (mean, var, w, b)), training=False, eps=1e-3)
        same(out, ref, exact=False)
    lw, lb = f32(rng, 3, 5), f32(rng, 3, 5)
    out, x = run(ir.LayerNorm((3, 5), lw, lb, eps=1e-4), (2, 3, 5))
    same(out, F.layer_norm(x, (3, 5), torch.from_numpy(lw), torch.from_numpy(lb), 1e-4), exact=False)


def test_threshold():
    x = np.array([-1.0, 0.0, 0.5, 0.75, 1.0], np.float32)
    x = np.broadcast_to(x, (T, B, 5)).copy()
    out, xt = run(ir.Threshold(threshold=np.full(5, 0.5, np.float32)), (5,), x)
    same(out, (xt > 0.5).float(), exact=True)
    out, xt = run(ir.Threshold(threshold=0.5, comparison=">="), (5,), x)
    same(out, (xt >= 0.5).float(), exact=True)


def test_routing_concat_split_skip():
    rng = np.random.default_rng(8)
    x = f32(rng, T, B, 6, 2)
    graph = ir.Graph(
        {
            "input": ir.Input(np.array([6, 2])),
            "split": ir.ChannelSplit(split_sections=[2, 3, 1]),
            "scale": ir.Scale(np.float32(2.0)),
            "cat": ir.Concat(dim=1),
            "dense": ir.Skip("concatenate"),
            "res": ir.Skip("residual"),
            "output": ir.Output(np.array([6, 2])),
            "extra": ir.Output(np.array([3, 2])),
        },
        [
            ("input", "split"),
            ("split", "cat"),  # section 0 (2 channels)
            ("split", "scale"),  # section 1 (3 channels)
            ("split", "cat"),  # section 2 (1 channel)
            ("scale", "dense"),
            ("cat", "dense"),  # dense = [2*s1, s0, s2]
            ("dense", "res"),
            ("input", "res"),
            ("res", "output"),
            ("scale", "extra"),
            ("cat", "extra"),
        ],
    )
    outs = CPU.simulate(graph, {"input": x}).outputs
    xt = torch.from_numpy(x.reshape(T * B, 6, 2))
    s0, s1, s2 = torch.split(xt, [2, 3, 1], dim=1)
    dense = torch.cat([s1 * 2, torch.cat([s0, s2], 1)], 1)
    same(outs["output"], dense + xt, exact=True)
    same(outs["extra"], s1 * 2 + torch.cat([s0, s2], 1), exact=True)  # two edges into an Output are summed
