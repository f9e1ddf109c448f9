"""AEDAT4 through aedat, on files written by iniVation's own dv-processing."""

import numpy as np
import pytest

from talon.io import EventFormatError, event_file_info, read_aedat4, read_events, write_events

dv = pytest.importorskip("dv_processing")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("aedat") / "rec.aedat4"
    config = dv.io.MonoCameraWriter.Config("DVXplorer_test")
    config.addEventStream((64, 48))
    config.addFrameStream((64, 48))
    config.addImuStream()
    config.addTriggerStream()
    writer = dv.io.MonoCameraWriter(str(path), config)
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(10**12, 10**12 + 50_000, 3000))
    x, y, p = rng.integers(0, 64, 3000), rng.integers(0, 48, 3000), rng.random(3000) < 0.5
    for lo, hi in ((0, 1000), (1000, 3000)):  # two packets
        store = dv.EventStore()
        for k in range(lo, hi):
            store.push_back(int(t[k]), int(x[k]), int(y[k]), bool(p[k]))
        writer.writeEvents(store)
    pixels = rng.integers(0, 256, (48, 64), dtype=np.uint8)
    writer.writeFrame(dv.Frame(10**12 + 1500, pixels))
    writer.writeImu(dv.IMU(10**12 + 1600, 31.5, 0.25, -1.0, 0.5, 10.0, -20.0, 30.0, 0.0, 0.0, 0.0))
    writer.writeTrigger(dv.Trigger(10**12 + 1700, dv.TriggerType.EXTERNAL_SIGNAL_RISING_EDGE))
    del writer  # closes the file
    return path, (t, x, y, p), pixels


def test_every_stream_is_read(recording):
    path, (t, x, y, p), pixels = recording
    rec = read_aedat4(path)
    assert rec.sensor_size == (64, 48)
    np.testing.assert_array_equal(rec.events["t"], t)
    np.testing.assert_array_equal(rec.events["x"], x)
    np.testing.assert_array_equal(rec.events["y"], y)
    np.testing.assert_array_equal(rec.events["p"], p)
    assert len(rec.frames) == 1 and rec.frames[0]["t"] == 10**12 + 1500
    np.testing.assert_array_equal(rec.frames[0]["pixels"], pixels)
    imu = rec.imus[0]
    assert imu["t"] == 10**12 + 1600 and imu["temperature"] == 31.5 and imu["accelerometer_x"] == 0.25
    assert imu["gyroscope_z"] == 30.0
    assert rec.triggers["t"].tolist() == [10**12 + 1700]


def test_aedat4_through_the_generic_reader_and_converted(recording, tmp_path):
    path, (t, _, _, _), _ = recording
    info = event_file_info(path)
    assert info.format == "AEDAT4" and info.n_events == 3000 and info.sensor_size == (64, 48)
    write_events(tmp_path / "rec.h5", read_events(path), info.sensor_size)
    np.testing.assert_array_equal(read_events(tmp_path / "rec.h5")["t"], t)
    with pytest.raises(EventFormatError, match="does not write"):
        write_events(tmp_path / "x.aedat4", read_events(path))


def test_damaged_aedat4_is_one_clear_error(recording, tmp_path):
    data = recording[0].read_bytes()
    bad = tmp_path / "bad.aedat4"
    bad.write_bytes(data[:40])
    with pytest.raises(EventFormatError, match=r"bad\.aedat4"):
        read_aedat4(bad)
    bad.write_bytes(data[: len(data) // 2])  # inside a packet
    with pytest.raises(EventFormatError, match=r"bad\.aedat4"):
        read_aedat4(bad)
