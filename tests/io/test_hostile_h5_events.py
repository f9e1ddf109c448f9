"""Hostile ``.h5`` event files: the event reader follows the rules of the .t1c and NIR readers
(talon.ir.hdf5_guard) — data only from inside the file, only hard links, no declared-but-unwritten
events, no FIFO — and refuses a read too large for memory, each by an EventFormatError naming the file."""

from __future__ import annotations

import os
import shutil

import h5py
import numpy as np
import pytest

from talon.io import h5 as event_h5
from talon.io import read_events, write_events
from talon.io.events import EVENT_DTYPE, EventFormatError


@pytest.fixture
def good(tmp_path):
    events = np.zeros(5, EVENT_DTYPE)
    events["t"], events["x"], events["y"], events["p"] = np.arange(5), 1, 2, 1
    path = tmp_path / "good.h5"
    write_events(path, events, (10, 10))
    return path


def _edited(good, name, edit):
    path = good.parent / name
    shutil.copyfile(good, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_external_storage_is_refused_not_read(good, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(5, dtype=np.int64).tobytes())

    def edit(f):
        del f["events/t"]
        f["events"].create_dataset("t", (5,), "<i8", external=[(str(secret), 0, 40)])

    path = _edited(good, "external.h5", edit)
    with pytest.raises(
        EventFormatError, match=rf"^{path.name}: events/t has external storage .*secret\.bin'\); refused"
    ):
        read_events(path)


@pytest.mark.parametrize("link", ["external", "soft"])
def test_links_out_of_the_file_or_to_other_groups_are_refused(good, tmp_path, link):
    other = tmp_path / "other.h5"
    shutil.copyfile(good, other)

    def edit(f):
        if link == "external":
            del f["events"]
            f["events"] = h5py.ExternalLink(str(other), "events")
        else:
            f.move("events", "kept")
            f["events"] = h5py.SoftLink("/kept")

    path = _edited(good, f"{link}.h5", edit)
    with pytest.raises(EventFormatError, match=rf"^{path.name}: 'events' is an? {link} link"):
        read_events(path)


def test_events_declared_but_never_written_are_refused_before_allocating(good):
    def edit(f):  # a 10 kB file claiming 10^11 events (1.2 TiB once read)
        for k in "xytp":
            dtype = f["events"][k].dtype
            del f["events"][k]
            f["events"].create_dataset(k, (10**11,), dtype, chunks=(1 << 16,))

    path = _edited(good, "claims.h5", edit)
    with pytest.raises(EventFormatError, match=rf"^{path.name}: events/x has 0 of its 1525879 chunks stored"):
        read_events(path)


def test_a_read_larger_than_memory_is_refused_by_name(good, monkeypatch):
    monkeypatch.setattr(event_h5, "_memory_limit", lambda: 4 * EVENT_DTYPE.itemsize)
    with pytest.raises(
        EventFormatError,
        match=rf"^{good.name}: reading 5 events at once needs {5 * EVENT_DTYPE.itemsize} bytes.*iter_chunks",
    ):
        read_events(good)
    with event_h5.H5EventReader(good) as reader:
        assert [len(c) for c in reader.iter_chunks(2)] == [2, 2, 1]


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "events.h5"
    os.mkfifo(fifo)
    with pytest.raises(EventFormatError, match="is a FIFO"):
        event_h5.H5EventReader(fifo)
