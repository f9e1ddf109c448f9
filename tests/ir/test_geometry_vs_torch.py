"""Shape inference agrees with PyTorch on random geometries (torch is only the oracle here)."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from talon import ir

torch = pytest.importorskip("torch")

small = st.integers(1, 4)


@given(
    c_in_per_group=small, groups=st.integers(1, 3), c_out_per_group=small,
    kh=st.integers(1, 5), kw=st.integers(1, 5), sh=small, sw=small, ph=st.integers(0, 3), pw=st.integers(0, 3),
    dh=st.integers(1, 3), dw=st.integers(1, 3), h=st.integers(1, 16), w=st.integers(1, 16),
)  # fmt: skip
def test_conv2d(c_in_per_group, groups, c_out_per_group, kh, kw, sh, sw, ph, pw, dh, dw, h, w):
    c_in, c_out = c_in_per_group * groups, c_out_per_group * groups
    assume(h + 2 * ph >= dh * (kh - 1) + 1 and w + 2 * pw >= dw * (kw - 1) + 1)
    conv = torch.nn.Conv2d(c_in, c_out, (kh, kw), (sh, sw), (ph, pw), (dh, dw), groups)
    node = ir.Conv2d(conv.weight.detach().numpy(), stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    node.infer_types([(c_in, h, w)])
    assert node.output_shape == tuple(conv(torch.zeros(1, c_in, h, w)).shape[1:])


@given(k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 2), d=st.integers(1, 2),
       n=st.integers(1, 20), groups=st.integers(1, 2))  # fmt: skip
def test_conv1d(k, s, p, d, n, groups):
    assume(n + 2 * p >= d * (k - 1) + 1)
    conv = torch.nn.Conv1d(2 * groups, 3 * groups, k, s, p, d, groups)
    node = ir.Conv1d(conv.weight.detach().numpy(), stride=s, padding=p, dilation=d, groups=groups)
    node.infer_types([(2 * groups, n)])
    assert node.output_shape == tuple(conv(torch.zeros(1, 2 * groups, n)).shape[1:])


@given(k=st.integers(1, 4), s=st.none() | st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       ceil=st.booleans(), h=st.integers(1, 12), w=st.integers(1, 12))  # fmt: skip
def test_pools(k, s, p, d, ceil, h, w):
    assume(p <= k // 2 and h + 2 * p >= d * (k - 1) + 1 and w + 2 * p >= d * (k - 1) + 1)
    x = torch.zeros(1, 2, h, w)
    mp = ir.MaxPool2d(kernel_size=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    mp.infer_types([(2, h, w)])
    assert mp.output_shape == tuple(torch.nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)(x).shape[1:])
    if d == 1:
        ap = ir.AvgPool2d(kernel_size=k, stride=s, padding=p, ceil_mode=ceil)
        ap.infer_types([(2, h, w)])
        assert ap.output_shape == tuple(torch.nn.AvgPool2d(k, s, p, ceil_mode=ceil)(x).shape[1:])


@given(factor=st.floats(0.5, 4.0).map(lambda f: round(f, 2)), h=st.integers(1, 9), w=st.integers(1, 9))
def test_upsample(factor, h, w):
    node = ir.Upsample(scale_factor=factor)
    assume(int(h * factor) >= 1 and int(w * factor) >= 1)
    node.infer_types([(1, h, w)])
    assert node.output_shape == tuple(torch.nn.Upsample(scale_factor=factor)(torch.zeros(1, 1, h, w)).shape[1:])


@given(dims=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_flatten(dims, data):
    n = len(dims)
    start = data.draw(st.integers(-n, n - 1))
    end = data.draw(st.integers(-n, n - 1))
    assume((start % n) <= (end % n))
    node = ir.Flatten(start_dim=start, end_dim=end)
    node.infer_types([tuple(dims)])
    # torch counts the batch dimension: IR dim k is torch dim k + 1 (negative dims are the same)
    t_start, t_end = (start + 1 if start >= 0 else start), (end + 1 if end >= 0 else end)
    expected = torch.zeros(1, *dims).flatten(t_start, t_end).shape[1:]
    assert node.output_shape == tuple(expected)
    assert np.prod(node.output_shape) == np.prod(dims)
