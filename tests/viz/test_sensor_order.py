"""Sensor-size order across layers: talon.io gives (width, height); talon.viz reads a pair as
(H, W) (the TALON docs) unless sensor_order="WH", and says which order it expects when events do
not fit. End to end on a non-square 20 x 10 sensor: write_h5 -> H5EventReader -> viz."""

import numpy as np
import pytest

import talon.io as tio
from talon import viz
from talon.viz.events import events_document

WIDTH, HEIGHT = 20, 10


@pytest.fixture
def recording(tmp_path):
    rng = np.random.default_rng(0)
    events = np.zeros(400, tio.EVENT_DTYPE)
    events["x"] = rng.integers(0, WIDTH, 400)
    events["y"] = rng.integers(0, HEIGHT, 400)
    events["x"][0], events["y"][0] = WIDTH - 1, HEIGHT - 1  # the far corner: only (W, H) order fits it
    events["t"] = np.sort(rng.integers(0, 10_000, 400))
    events["p"] = rng.random(400) < 0.5
    path = tmp_path / "wide.h5"
    tio.write_h5(path, events, sensor_size=(WIDTH, HEIGHT))
    with tio.H5EventReader(path) as reader:
        return reader.sensor_size, reader.read_all()


def test_reader_sensor_size_is_width_height(recording):
    size, _ = recording
    assert tuple(size) == (WIDTH, HEIGHT)


def test_viz_reads_the_readers_size_with_sensor_order_wh(recording):
    size, events = recording
    frames = viz.events_to_frames(events, size, 3, sensor_order="WH")
    assert frames.shape == (3, 2, HEIGHT, WIDTH) and frames.sum() == len(events)
    counts = np.zeros((HEIGHT, WIDTH), np.int64)
    np.add.at(counts, (events["y"], events["x"]), 1)
    np.testing.assert_array_equal(frames.sum(axis=(0, 1)), counts)  # images are [y, x]
    np.testing.assert_array_equal(frames, viz.events_to_frames(events, (HEIGHT, WIDTH), 3))  # the same as (H, W)
    assert viz.events_to_grid(events, size, 2, sensor_order="WH").shape == (2, HEIGHT, WIDTH, 3)
    raster = viz.events_to_raster(events, WIDTH * HEIGHT, 5, size, sensor_order="WH")
    assert raster[:, (HEIGHT - 1) * WIDTH + WIDTH - 1].any()  # neuron y * W + x
    doc = events_document(events, size, 2, 2, sensor_order="WH")  # what export_events_html draws
    assert doc["sensor"] == [HEIGHT, WIDTH]


def test_viz_without_the_keyword_says_which_order_it_expects(recording):
    size, events = recording
    with pytest.raises(ValueError, match=r"read as \(H, W\): H=20, W=10\); they fit it as \(width, height\).*"
                       r"pass sensor_order='WH'"):  # fmt: skip
        viz.events_to_frames(events, size, 3)
    with pytest.raises(ValueError, match=r"read as \(W, H\): W=10, H=20\); they fit it as \(height, width\)"):
        viz.events_to_frames(events, (HEIGHT, WIDTH), 3, sensor_order="WH")
    with pytest.raises(ValueError, match=r"sensor_order must be 'HW'.*or 'WH'"):
        viz.events_to_frames(events, size, 3, sensor_order="XY")


def test_tonic_triple_is_width_height_in_either_order(recording):
    size, events = recording
    expected = viz.events_to_frames(events, (*size, 2), 2)
    assert expected.shape == (2, 2, HEIGHT, WIDTH)
    np.testing.assert_array_equal(viz.events_to_frames(events, (*size, 2), 2, sensor_order="WH"), expected)
