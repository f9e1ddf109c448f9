"""Events as network input (simulate, the torch executor) and `talon events` / `talon simulate --events`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from talon import ir
from talon.backend import get_backend
from talon.cli import main
from talon.io import (
    EVENT_DTYPE,
    EventFormatError,
    events_to_stimulus,
    read_events,
    stimulus_for_graph,
    write_events,
    write_h5,
)
from talon.io.demo import event_network, moving_bar


def test_stimulus_layouts_by_hand():
    # bin 0: [100, 110); bin 1: [110, 120)
    ev = np.array([(1, 0, 100, True), (1, 0, 105, True), (2, 1, 112, False), (0, 1, 125, True)], EVENT_DTYPE)
    stim, info = events_to_stimulus(ev, (2, 2, 3), bin_us=10, n_steps=2)
    assert stim.shape == (2, 1, 2, 2, 3) and stim.dtype == np.float32
    assert stim[0, 0, 1, 0, 1] == 2.0 and stim[1, 0, 0, 1, 2] == 1.0 and stim.sum() == 3.0
    assert (info.used_events, info.unused_events, info.t_start) == (3, 1, 100)
    summed, _ = events_to_stimulus(ev, (2, 3), bin_us=10)
    assert summed.shape == (3, 1, 2, 3) and summed[2, 0, 1, 0] == 1.0
    flat, _ = events_to_stimulus(ev, (12,), bin_us=10, sensor_size=(3, 2), binary=True)
    assert flat.shape == (3, 1, 12) and flat[0, 0, 6 + 1] == 1.0  # ON plane offset H*W = 6, pixel y*3+x = 1
    with pytest.raises(EventFormatError, match="outside the Input"):
        events_to_stimulus(ev, (2, 1, 1), bin_us=10)
    with pytest.raises(EventFormatError, match="neither"):
        events_to_stimulus(ev, (7,), bin_us=10, sensor_size=(3, 2))
    assert np.array_equal(events_to_stimulus(ev, (2, 3), bin_us=10, sensor_size=(3, 2))[0], summed)
    assert np.array_equal(events_to_stimulus(ev, (2, 2, 3), 10, n_steps=2, sensor_size=(3, 2, 2))[0], stim)
    for shape in [(2, 4), (1, 3, 3), (2, 3, 2)]:  # a bigger sensor, another one, width and height swapped
        with pytest.raises(EventFormatError, match=r"sensor is 3x2 \(width x height\) but the Input"):
            events_to_stimulus(ev, shape, bin_us=10, sensor_size=(3, 2))


def test_cli_simulate_refuses_a_recording_of_another_sensor(recording):
    """A 16x16 recording fed to a 28x28 network would light only its top-left corner."""
    d = recording
    ir.write(d / "net28.t1c", event_network((28, 28)))
    result = run("simulate", d / "net28.t1c", "--events", d / "bar.h5")
    assert result.exit_code == 2
    assert result.output.startswith("error: the recording's sensor is 16x16") and "28x28" in result.output


def test_event_file_drives_simulate_and_the_torch_executor_identically(tmp_path):
    graph = event_network((16, 16))
    events = moving_bar((16, 16))
    write_events(tmp_path / "bar.h5", events, (16, 16))
    inputs, info = stimulus_for_graph(graph, read_events(tmp_path / "bar.h5"), bin_us=1000)
    assert info.used_events == len(events)
    result = get_backend("cpu").simulate(graph, inputs)
    assert result.timesteps_run == info.n_steps == 48
    assert 0 < result.spike_counts["lif"] < 48 * 8  # fires, not saturated

    torch = pytest.importorskip("torch")
    from talon.bridge import ir_to_torch

    outs, _ = ir_to_torch(graph).run_sequence(torch.from_numpy(inputs["input"]))
    np.testing.assert_array_equal(outs.detach().numpy(), result.outputs["output"])  # spike for spike


@pytest.fixture
def recording(tmp_path):
    ir.write(tmp_path / "net.t1c", event_network((16, 16)))
    write_events(tmp_path / "bar.h5", moving_bar((16, 16)), (16, 16))
    return tmp_path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_info_convert_frames(recording):
    d = recording
    info = json.loads(run("events", "info", d / "bar.h5", "--json").output)
    assert info["n_events"] == 480 and info["sensor_size"] == [16, 16] and info["duration_us"] == 47021
    assert abs(info["events_per_second"] - 480 / 0.047021) < 1e-6
    for out in ("bar.raw", "bar.npy", "bar2.h5"):
        result = run("events", "convert", d / "bar.h5", d / out, "--json")
        assert result.exit_code == 0, result.output
        assert read_events(d / out).tobytes() == read_events(d / "bar.h5").tobytes()
    assert json.loads(run("events", "info", d / "bar.raw", "--json").output)["format"] == "Prophesee EVT 3.0"
    result = run("events", "frames", d / "bar.raw", d / "f.npy", "--time-window", 10000, "--json")
    assert json.loads(result.output)["shape"] == [4, 2, 16, 16]
    assert np.load(d / "f.npy").sum() > 0


def test_info_of_an_unsorted_file_gives_its_time_span_and_says_it_is_unsorted(tmp_path):
    """t_first / t_last are the earliest and latest times, not the file's first and last events'
    (500 and 400 here, which disagreed with the 800 µs duration), and the table says how to sort."""
    events = np.array([(1, 0, 500, True), (2, 0, 100, False), (3, 1, 900, True), (4, 1, 300, True), (5, 0, 400, False)],
                      EVENT_DTYPE)  # fmt: skip
    write_events(tmp_path / "u.npy", events)
    info = json.loads(run("events", "info", tmp_path / "u.npy", "--json").output)
    assert (info["t_first"], info["t_last"], info["duration_us"], info["time_sorted"]) == (100, 900, 800, False)
    assert info["events_per_second"] == 5 / (800 * 1e-6)
    table = run("events", "info", tmp_path / "u.npy").output
    assert "earliest t (µs)" in table and "no (sort: talon events convert --sort)" in table
    assert run("events", "convert", tmp_path / "u.npy", tmp_path / "s.npy", "--sort").exit_code == 0
    info = json.loads(run("events", "info", tmp_path / "s.npy", "--json").output)
    assert (info["t_first"], info["t_last"], info["duration_us"], info["time_sorted"]) == (100, 900, 800, True)


def test_cli_simulate_with_events(recording):
    d = recording
    doc = json.loads(run("simulate", d / "net.t1c", "--events", d / "bar.h5", "--bin-us", 1000, "--json").output)
    assert doc["timesteps_run"] == 48 and doc["default_stimulus"] is False
    assert doc["events"] == {"file": str(d / "bar.h5"), "bin_us": 1000, "used": 480, "unused": 0}
    graph = event_network((16, 16))
    inputs, _ = stimulus_for_graph(graph, moving_bar((16, 16)), 1000)
    assert doc["spike_counts"] == get_backend("cpu").simulate(graph, inputs).spike_counts
    short = json.loads(run("simulate", d / "net.t1c", "--events", d / "bar.h5", "--steps", 10, "--json").output)
    assert short["timesteps_run"] == 10 and short["events"]["unused"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["events", "info", "missing.h5"], "no such event file"),
        (["events", "info", "bar.txt"], "unknown event file type"),
        (["events", "info", "garbage.h5"], "not a readable HDF5 file"),
        (["events", "frames", "bar.h5", "f.npy"], "exactly one of"),
        (["simulate", "net.t1c", "--events", "garbage.h5"], "garbage.h5"),
        (["simulate", "net.t1c", "--events", "empty.h5"], "give n_steps for an empty recording (CLI: --steps N)"),
    ],
)
def test_cli_bad_input_is_one_error_line_exit_2(recording, monkeypatch, args, message):
    monkeypatch.chdir(recording)
    (recording / "bar.txt").write_text("x")
    (recording / "garbage.h5").write_bytes(b"not hdf5")
    write_h5(recording / "empty.h5", np.zeros(0, EVENT_DTYPE), sensor_size=(16, 16))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output and result.output.count("\n") == 1


def test_cli_simulate_drives_a_flat_input_with_the_files_sensor_size(tmp_path):
    """A flat Input needs (width, height): the .h5 header's, or --sensor-size; a non-square sensor pins the order."""
    width, height = 20, 10
    events = moving_bar((width, height))
    rng = np.random.default_rng(3)
    nodes = {
        "input": ir.Input(np.array([2 * width * height])),
        "fc": ir.Linear(rng.normal(0.0, 0.5, (8, 2 * width * height)).astype(np.float32)),
        "lif": ir.LIF(
            tau=np.full(8, 4.0, np.float32),
            r=np.full(8, 4.0, np.float32),
            v_leak=np.zeros(8, np.float32),
            v_threshold=np.full(8, 0.5, np.float32),
        ),
        "output": ir.Output(np.array([8])),
    }
    ir.write(tmp_path / "flat.t1c", ir.Graph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")]))
    write_events(tmp_path / "bar.h5", events, (width, height))
    np.save(tmp_path / "bar.npy", events)  # a .npy records no sensor size
    inputs, _ = stimulus_for_graph(ir.read(tmp_path / "flat.t1c"), events, 1000, sensor_size=(width, height))
    expected = get_backend("cpu").simulate(ir.read(tmp_path / "flat.t1c"), inputs).spike_counts
    assert expected["lif"] > 0
    from_header = run("simulate", tmp_path / "flat.t1c", "--events", tmp_path / "bar.h5", "--json")
    assert from_header.exit_code == 0, from_header.output
    assert json.loads(from_header.output)["spike_counts"] == expected
    no_size = run("simulate", tmp_path / "flat.t1c", "--events", tmp_path / "bar.npy")
    assert no_size.exit_code == 2 and "--sensor-size W H" in no_size.output
    given = run("simulate", tmp_path / "flat.t1c", "--events", tmp_path / "bar.npy", "--sensor-size", width, height)
    assert given.exit_code == 0, given.output
    swapped = run("simulate", tmp_path / "flat.t1c", "--events", tmp_path / "bar.npy", "--sensor-size", height, width)
    assert swapped.exit_code == 2 and "outside" in swapped.output  # x reaches 19 on a sensor 10 wide
