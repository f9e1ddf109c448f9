"""The event dtype and the converters from the documented layouts."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon.io import (
    EVENT_DTYPE,
    EventFormatError,
    as_events,
    concatenate_events,
    make_events,
    polarity_sign,
    sort_events,
)


def test_dtype_is_tonics_dvsgesture_layout():
    tonic = pytest.importorskip("tonic")
    assert np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)]) == EVENT_DTYPE
    assert set(tonic.datasets.DVSGesture.dtype.names) == set(EVENT_DTYPE.names)
    for name in EVENT_DTYPE.names:
        assert tonic.datasets.DVSGesture.dtype[name] == EVENT_DTYPE[name]


def test_architecture_layout_int8_polarity_converts_exactly():
    arch = np.array([(5, 1, 2, 0), (9, 3, 4, 1)], dtype=[("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])
    ev = as_events(arch)
    assert ev.dtype == EVENT_DTYPE
    assert ev["t"].tolist() == [5, 9] and ev["x"].tolist() == [1, 3] and ev["y"].tolist() == [2, 4]
    assert ev["p"].tolist() == [False, True]


def test_h5_tutorial_layout_float_time_and_signed_polarity():
    tio = np.array([(5.0, 1, 2, -1), (9.0, 3, 4, 1)], dtype=[("t", "<f8"), ("x", "<i4"), ("y", "<i4"), ("p", "<i4")])
    ev = as_events(tio)
    assert ev["t"].tolist() == [5, 9] and ev["p"].tolist() == [False, True]
    assert polarity_sign(ev).tolist() == [-1, 1]


def test_column_mapping_with_alternative_names_and_no_y():
    ev = as_events({"x": [1, 2], "ts": [10, 20], "pol": [1, 0]})
    assert ev["y"].tolist() == [0, 0] and ev["t"].tolist() == [10, 20] and ev["p"].tolist() == [True, False]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"x": [1], "y": [1], "t": [1.5], "p": [1]}, "whole microseconds"),
        ({"x": [1], "y": [1], "t": [1], "p": [2]}, "neither"),
        ({"x": [-1], "y": [1], "t": [1], "p": [1]}, "outside the pixel range"),
        ({"x": [40000], "y": [1], "t": [1], "p": [1]}, "outside the pixel range"),
        ({"x": [1, 2], "y": [1], "t": [1, 2], "p": [1, 1]}, "different lengths"),
        ({"x": [1], "y": [1], "p": [1]}, "lack field"),
        ({"x": [1], "y": [1], "t": [1], "ts": [1], "p": [1]}, "several t fields"),
    ],
)
def test_inexact_conversions_are_refused(columns, message):
    with pytest.raises(EventFormatError, match=message):
        as_events(columns)


def test_sort_is_stable_and_make_events():
    ev = make_events([0, 1, 2, 3], [0, 0, 0, 0], [5, 1, 5, 1], [1, 1, 0, 0])
    s = sort_events(ev)
    assert s["t"].tolist() == [1, 1, 5, 5] and s["x"].tolist() == [1, 3, 0, 2]


@settings(max_examples=60)
@given(
    sizes=st.lists(st.integers(0, 40), max_size=12),
    steps=st.lists(st.sampled_from([1, 2, -1, -3]), min_size=12, max_size=12),
    seed=st.integers(0, 2**16),
)
def test_concatenate_events_equals_numpy_concatenate(sizes, steps, seed):
    """Parts of any length, contiguous or strided (every other event, reversed): the bytes of
    np.concatenate, which copies field by field; the shared helper copies each part's bytes at once."""
    rng = np.random.default_rng(seed)
    parts = []
    for size, step in zip(sizes, steps, strict=False):
        base = np.zeros(size * abs(step), EVENT_DTYPE)
        for name, high in (("x", 2**15), ("y", 2**15), ("t", 2**62), ("p", 2)):
            base[name] = rng.integers(0, high, base.size)
        parts.append(base[::step])
    joined = concatenate_events(parts)
    assert joined.dtype == EVENT_DTYPE and joined.flags.c_contiguous and joined.flags.writeable
    expected = np.concatenate(parts) if parts else np.zeros(0, EVENT_DTYPE)
    assert joined.tobytes() == expected.tobytes()


def test_concatenate_events_converts_other_layouts_and_refuses_what_as_events_refuses():
    legacy = np.array([(7.0, 3, 4, -1)], dtype=[("t", "<f8"), ("x", "<i4"), ("y", "<i4"), ("p", "<i4")])
    ev = make_events([1], [2], [5], [1])
    assert concatenate_events([ev, legacy]).tolist() == [(1, 2, 5, True), (3, 4, 7, False)]
    with pytest.raises(EventFormatError, match="whole microseconds"):
        concatenate_events([ev, {"x": [1], "y": [1], "t": [0.5], "p": [1]}])
