"""Frames and voxel grids against tonic; rasters and grids worked out by hand."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon.io import EVENT_DTYPE, EventFormatError, events_to_frames, events_to_grid, events_to_raster, events_to_voxel

tonic_transforms = pytest.importorskip("tonic.transforms")

SENSOR = (34, 20, 2)


def random_events(n, seed, sensor=SENSOR, span=100_000, ties=False):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["x"] = rng.integers(0, sensor[0], n)
    ev["y"] = rng.integers(0, sensor[1], n)
    ev["t"] = np.sort(rng.integers(0, span // 50 if ties else span, n)) * (50 if ties else 1)
    ev["p"] = rng.random(n) < 0.5
    return ev


FRAME_CASES = [
    dict(time_window=3000),
    dict(time_window=3000, overlap=1000, include_incomplete=True),
    dict(time_window=2500, start_time=-5000, end_time=120_000),
    dict(time_window=500_000),  # one window longer than the recording
    dict(event_count=333),
    dict(event_count=333, overlap=33, include_incomplete=True),
    dict(event_count=10_000),  # more than the events
    dict(n_time_bins=7),
    dict(n_time_bins=7, overlap=0.3),
    dict(n_event_bins=9),
    dict(n_event_bins=9, overlap=0.2),
]


@pytest.mark.parametrize("kwargs", FRAME_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()))
@pytest.mark.parametrize("seed", [0, 1])
def test_frames_equal_tonic_toframe(kwargs, seed):
    ev = random_events(5000, seed, ties=seed == 1)
    ours = events_to_frames(ev, SENSOR, **kwargs)
    theirs = tonic_transforms.ToFrame(sensor_size=SENSOR, **kwargs)(ev.copy())
    assert ours.dtype == theirs.dtype == np.int16
    np.testing.assert_array_equal(ours, theirs)
    assert ours.sum() > 0


@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 2**16),
    mode=st.sampled_from(["time_window", "event_count", "n_time_bins", "n_event_bins"]),
    value=st.integers(1, 40),
)
def test_frames_equal_tonic_on_random_streams(n, seed, mode, value):
    ev = random_events(n, seed, span=20_000)
    kwargs = {mode: value * (500 if mode == "time_window" else 1)}
    np.testing.assert_array_equal(
        events_to_frames(ev, SENSOR, **kwargs), tonic_transforms.ToFrame(sensor_size=SENSOR, **kwargs)(ev.copy())
    )


def test_single_polarity_sensor_and_input_left_untouched():
    ev = random_events(1000, 3)
    ev["p"] = True
    before = ev.copy()
    ours = events_to_frames(ev, (34, 20, 1), n_frames=4)
    theirs = tonic_transforms.ToFrame(sensor_size=(34, 20, 1), n_time_bins=4)(ev.copy())
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ev, before)  # tonic writes p = 0 into its input; talon does not
    ev["p"][0] = False
    with pytest.raises(EventFormatError, match="one polarity"):
        events_to_frames(ev, (34, 20, 1), n_frames=4)


def test_frames_of_nothing_and_bad_arguments():
    empty = np.zeros(0, EVENT_DTYPE)
    assert events_to_frames(empty, (4, 3), n_frames=5).shape == (5, 2, 3, 4)
    ev = random_events(100, 0)
    with pytest.raises(EventFormatError, match="exactly one"):
        events_to_frames(ev, SENSOR, n_frames=3, time_window=10)
    with pytest.raises(EventFormatError, match="outside sensor_size"):
        events_to_frames(ev, (8, 8), n_frames=3)
    with pytest.raises(EventFormatError, match="not sorted"):
        events_to_frames(ev[::-1], SENSOR, n_frames=3)


@pytest.mark.parametrize("bins", [1, 3, 10])
def test_voxel_grid_equals_tonic_bit_for_bit(bins):
    ev = random_events(4000, bins)
    as_int = np.zeros(len(ev), [("x", "i2"), ("y", "i2"), ("t", "i8"), ("p", "i8")])
    for name in "xytp":
        as_int[name] = ev[name]
    theirs = tonic_transforms.ToVoxelGrid(sensor_size=SENSOR, n_time_bins=bins)(as_int)
    ours = events_to_voxel(ev, SENSOR, bins)
    assert ours.shape == theirs.shape == (bins, 1, SENSOR[1], SENSOR[0])
    assert np.array_equal(ours, theirs)  # same summation order: identical floats


def test_voxel_grid_needs_a_time_span():
    ev = random_events(3, 0)
    ev["t"] = 7
    with pytest.raises(EventFormatError, match="one timestamp"):
        events_to_voxel(ev, SENSOR, 4)


def test_raster_and_grid_by_hand():
    # t in [0, 99]: 2 bins of 50 µs; neuron = y * 3 + x
    ev = np.array([(0, 0, 0, True), (2, 1, 10, False), (1, 0, 60, True), (1, 0, 99, True)], dtype=EVENT_DTYPE)
    raster = events_to_raster(ev, n_neurons=6, time_bins=2, width=3)
    assert raster.tolist() == [[1, 0, 0, 0, 0, 1], [0, 1, 0, 0, 0, 0]]
    grid = events_to_grid(ev, (3, 2), 2)
    assert grid.shape == (2, 2, 3, 3)
    assert grid[1, 0, 1, 0] == 255  # two ON events at (x=1, y=0) in bin 1: the peak count, full red
    assert grid[0, 0, 0, 0] == 128  # one ON event: half the peak
    assert grid[0, 1, 2, 2] == 128 and grid[0, 1, 2, 0] == 0  # one OFF event: blue


def test_negative_pixel_addresses_are_refused_not_wrapped_or_dropped(tmp_path):
    """An EVENT_DTYPE array is taken as it is; a negative y used to land at y = H - 2 in a stimulus
    and a negative x was silently lost by the EVT encoders."""
    from talon.io import events_to_stimulus, write_raw

    bad = np.array([(2, 1, 0, True), (5, -2, 10, True)], dtype=EVENT_DTYPE)
    message = "event 1 has y=-2: pixel addresses must be non-negative"
    calls = {
        "frames": lambda: events_to_frames(bad, (8, 8), n_frames=1),
        "voxel": lambda: events_to_voxel(bad, (8, 8), n_time_bins=2),
        "grid": lambda: events_to_grid(bad, (8, 8), 1),
        "stimulus": lambda: events_to_stimulus(bad, (2, 8, 8), 100),
        "evt2": lambda: write_raw(tmp_path / "a.raw", bad, version="2.0"),
        "evt3": lambda: write_raw(tmp_path / "b.raw", bad, version="3.0"),
    }
    for call in calls.values():
        with pytest.raises(EventFormatError, match=message):
            call()
    assert not list(tmp_path.iterdir())  # no .raw file was written
