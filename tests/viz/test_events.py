"""Event views: binning worked out by hand, the event page in chromium, frame playback, plots."""

from __future__ import annotations

import numpy as np
import pytest

from talon import viz

TONIC_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "?")])


def four_events():
    # (x, y, t, p): ON at (0,0) t=0; OFF at (1,0) t=5; two ON at (1,1) t=10
    return np.array([(0, 0, 0, True), (1, 0, 5, False), (1, 1, 10, True), (1, 1, 10, True)], dtype=TONIC_DTYPE)


def test_frames_grid_raster_by_hand():
    """span 10, 2 bins: t=0 -> 0; t=5 -> floor(5*2/10)=1; t=10 -> min(2, 1)=1."""
    frames = viz.events_to_frames(four_events(), sensor_size=(2, 2), n_frames=2)
    expected = np.zeros((2, 2, 2, 2), dtype=np.int32)
    expected[0, 1, 0, 0] = 1  # bin 0, ON, y0 x0
    expected[1, 0, 0, 1] = 1  # bin 1, OFF, y0 x1
    expected[1, 1, 1, 1] = 2  # bin 1, ON, y1 x1 (twice)
    np.testing.assert_array_equal(frames, expected)
    # tonic's (W, H, P) sensor size means the same sensor
    np.testing.assert_array_equal(viz.events_to_frames(four_events(), sensor_size=(2, 2, 2), n_frames=2), expected)

    raster = viz.events_to_raster(four_events(), n_neurons=4, time_bins_=2, sensor_size=(2, 2))  # neuron = y*W + x
    np.testing.assert_array_equal(raster, [[1, 0, 0, 0], [0, 1, 0, 1]])
    wide = viz.events_to_raster(four_events(), n_neurons=8, time_bins_=2, sensor_size=(2, 4))  # W = 4
    np.testing.assert_array_equal(np.nonzero(wide.any(axis=0))[0], [0, 1, 5])


def test_a_raster_of_a_2d_sensor_needs_its_size():
    """Without sensor_size the width would be guessed from the events (max x + 1 = 2 here, not 4)."""
    with pytest.raises(ValueError, match="pass sensor_size= for events of a 2-D sensor"):
        viz.events_to_raster(four_events(), n_neurons=8, time_bins_=2)
    one_row = four_events()[:2]  # y = 0 only: the neuron is x whatever the width
    np.testing.assert_array_equal(viz.events_to_raster(one_row, n_neurons=3, time_bins_=1), [[1, 1, 0]])

    grid = viz.events_to_grid(four_events(), sensor_size=(2, 2), n_bins=2)  # peak count 2
    assert grid.shape == (2, 2, 2, 3) and grid.dtype == np.uint8
    assert tuple(grid[1, 1, 1]) == (255, 0, 0)  # 2 ON of peak 2: pure red
    assert tuple(grid[1, 0, 1]) == (128, 128, 255)  # 1 OFF of 2: half blue
    assert tuple(grid[0, 1, 1]) == (255, 255, 255)  # nothing: white


def test_other_field_names_and_polarity_conventions():
    events = np.array([(3, 1.0, 1), (4, 2.0, -1)], dtype=[("x", "<i4"), ("ts", "<f8"), ("pol", "<i1")])
    frames = viz.events_to_frames(events, n_frames=1)  # 1-D sensor: H = 1, W = max(x) + 1 = 5
    assert frames.shape == (1, 2, 1, 5)
    assert frames[0, 1, 0, 3] == 1 and frames[0, 0, 0, 4] == 1


@pytest.mark.parametrize(
    ("events", "kwargs", "message"),
    [
        (np.zeros(3), {}, "structured numpy array"),
        (np.zeros(2, dtype=[("x", "<i2"), ("t", "<i8")]), {}, "'p' or 'pol'"),
        (np.array([(5, 0, 0, True)], dtype=TONIC_DTYPE), {"sensor_size": (2, 2)}, "outside sensor_size"),
        (np.array([(-1, 0, 0, True)], dtype=TONIC_DTYPE), {}, "non-negative integer"),
        (np.array([(0, 0, 0, True)], dtype=TONIC_DTYPE), {"sensor_size": (1, 2, 3, 4)}, "sensor_size must be"),
    ],
)
def test_bad_events(events, kwargs, message):
    with pytest.raises(ValueError, match=message):
        viz.events_to_frames(events, **kwargs)


def random_events(n=20_000, seed=0):
    """NMNIST-sized (34 x 34) events over 300 ms, times in microseconds."""
    rng = np.random.default_rng(seed)
    events = np.zeros(n, dtype=TONIC_DTYPE)
    events["x"] = rng.integers(0, 34, n)
    events["y"] = rng.integers(0, 34, n)
    events["t"] = np.sort(rng.integers(0, 300_000, n))
    events["p"] = rng.random(n) < 0.6
    return events


def sweeping_bar(n=20_000, seed=0):
    """A vertical ON edge sweeping left to right across a 34 x 34 sensor in 300 ms, an OFF edge
    trailing two pixels behind it, and 5 % background noise."""
    rng = np.random.default_rng(seed)
    events = np.zeros(n, dtype=TONIC_DTYPE)
    events["t"] = np.sort(rng.integers(0, 300_000, n))
    front = (events["t"] * 34 // 300_000).astype(np.int64)
    on = rng.random(n) < 0.6
    x = np.where(on, front, np.maximum(front - 2, 0))
    noise = rng.random(n) < 0.05
    events["x"] = np.where(noise, rng.integers(0, 34, n), x)
    events["y"] = rng.integers(0, 34, n)
    events["p"] = on
    return events


def test_event_page_in_the_browser(watched, tmp_path):
    events = sweeping_bar(6_000)
    path = viz.export_events_html(events, tmp_path / "events.html", sensor_size=(34, 34, 2), title="A sweeping edge")
    watched.page.goto(path.resolve().as_uri())
    page = watched.page
    page.wait_for_selector("body[data-ready=yes]")
    stats = page.inner_text("#stats")
    assert "6,000" in stats and f"{int(events['p'].sum()):,}" in stats and "34 × 34" in stats
    assert page.get_attribute("#raster", "data-unit") == "ms"  # 300 ms of events: a millisecond axis
    assert page.locator("#grid canvas").count() == 9
    assert page.get_attribute("#slider", "max") == "29"
    page.click("#play")
    page.wait_for_selector("body:not([data-frame='0'])")  # playing: the frame advances
    page.click("#play")
    # the first frame's pixels are the ON/OFF counts of the first time bin
    frames = viz.events_to_frames(events, (34, 34), 30)
    page.fill("#slider", "0")
    page.dispatch_event("#slider", "input")
    drawn = page.evaluate(
        """() => { const c = document.getElementById('frame'); const s = c.width / 34;
                 const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                 const out = []; for (let y = 0; y < 34; y++) for (let x = 0; x < 34; x++) {
                   const i = 4 * ((y * s + 1) * c.width + x * s + 1); out.push(d[i] < 250 || d[i + 2] < 250 ? 1 : 0); }
                 return out; }"""
    )
    active = (frames[0].sum(axis=0) > 0).astype(int).reshape(-1).tolist()
    assert drawn == active
    watched.screenshot("viz-events.png", tmp_path, full_page=True)


def test_frames_page(watched, tmp_path):
    frames = viz.events_to_frames(random_events(2000), (34, 34), 12)
    path = viz.events.export_frames_html(frames, tmp_path / "f.html", title="Frames")
    watched.page.goto(path.resolve().as_uri())
    watched.page.wait_for_selector("body[data-ready=yes]")
    assert watched.page.get_attribute("#slider", "max") == "11"
    assert watched.page.locator("#raster").count() == 0
    with pytest.raises(ValueError, match="frames must be"):
        viz.events.export_frames_html(np.zeros((3, 4)), tmp_path / "bad.html")


def test_plot_simulation_png(tmp_path):
    pytest.importorskip("matplotlib")
    from talon.backend import get_backend
    from tests.sdk import graphs

    graph = graphs.chain()
    rng = np.random.default_rng(0)
    result = get_backend("cpu").simulate(
        graph, {"input": rng.uniform(0, 3, (20, 1, 8)).astype(np.float32)}, n_steps=20, step_by_step=True
    )
    assert result.spike_counts["lif1"] > 0  # inputs strong enough to make neurons fire
    path = viz.plot_simulation(result, tmp_path / "sim.png", title="chain")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    no_states = get_backend("cpu").simulate(graph, {"input": np.ones((2, 1, 8), np.float32)}, n_steps=2)
    with pytest.raises(ValueError, match="step_by_step=True"):
        viz.plot_simulation(no_states, tmp_path / "x.png")
    with pytest.raises(ValueError, match="no recorded states"):
        viz.plot_simulation(result, tmp_path / "x.png", nodes=["nope"])
