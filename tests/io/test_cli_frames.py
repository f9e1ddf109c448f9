"""`talon events frames` says how many of the recording's events its frames hold.

tonic's ``ToFrame`` slicing, which talon follows, leaves events out: the last, incomplete frame of
a time window or event count (unless ``include_incomplete``), and with ``n_time_bins`` whatever
lies at or after the end of ``N`` bins of ``floor(duration / N)`` µs (always the last event). The
command used to write such frames without a word.
"""

import json

import numpy as np
from click.testing import CliRunner

from talon.cli import main
from talon.io import events_to_frames, write_events
from talon.io.demo import moving_bar


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_frames_report_the_events_they_hold_and_can_keep_the_last_frame(tmp_path):
    events = moving_bar((16, 16))  # 480 events over 47,021 µs
    write_events(tmp_path / "bar.h5", events, (16, 16))
    out = tmp_path / "f.npy"
    # 10 ms windows: four whole windows hold 384 events, the 7,021 µs tail holds the other 96
    cases = [
        (["--time-window", 10000], 384, dict(time_window=10000)),
        (["--time-window", 10000, "--include-incomplete"], 480, dict(time_window=10000, include_incomplete=True)),
        (["--event-count", 100], 400, dict(event_count=100)),
        (["--event-count", 100, "--include-incomplete"], 480, dict(event_count=100, include_incomplete=True)),
        (["--n-frames", 4], 479, dict(n_frames=4)),  # bins of 11,755 µs end at 47,020: the last event is out
    ]
    for options, held, kwargs in cases:
        result = run("events", "frames", tmp_path / "bar.h5", out, *options, "--json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.output)
        frames = np.load(out)
        assert np.array_equal(frames, events_to_frames(events, (16, 16), **kwargs))
        assert doc["events"] == 480 and doc["framed_events"] == held == int(frames.sum()), options
    text = run("events", "frames", tmp_path / "bar.h5", out, "--time-window", 10000).output
    assert "the frames hold 384 of 480 events" in text and "--include-incomplete keeps it" in text
    assert "of 480 events" not in run("events", "frames", tmp_path / "bar.h5", out, "--event-count", 120).output
    bad = run("events", "frames", tmp_path / "bar.h5", out, "--n-frames", 4, "--include-incomplete")
    assert bad.exit_code == 2 and "--include-incomplete applies to --time-window and --event-count" in bad.output
