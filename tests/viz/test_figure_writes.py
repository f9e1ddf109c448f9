"""Plots are written atomically: a save that fails midway leaves the old file byte for byte and no
temporary file; a directory as the target is refused by name (talon.viz.figures)."""

from __future__ import annotations

import errno

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from talon.evaluate.sweep import SweepResult
from talon.viz import plot_spikes_and_membranes

OLD = b"an older plot the user keeps" * 40


def _spikes():
    return {"lif": np.random.default_rng(0).random((20, 5)) < 0.3}


def _sweep():
    rows = [{"label": f"p{i}", "accuracy": 0.5 + i / 10, "energy_per_sample_uj": 1.0 + i} for i in range(3)]
    return SweepResult(rows=rows, pareto=[0, 1, 2], evaluation=None)


PLOTTERS = {
    "raster": lambda path: plot_spikes_and_membranes(_spikes(), {}, path),
    "sweep": lambda path: _sweep().plot(path),
}


@pytest.fixture
def disk_full_midway(monkeypatch):
    """The PNG encoder writes a few bytes, then the disk is full."""

    def partial_then_full(image, fh, filename, *args, **kwargs):
        fh.write(b"\x89PNG partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    Image.init()  # the plugins are registered: none overwrites the patch later
    monkeypatch.setitem(Image.SAVE, "PNG", partial_then_full)
    monkeypatch.setattr(PngImagePlugin, "_save", partial_then_full)


@pytest.mark.parametrize("plotter", sorted(PLOTTERS))
def test_a_failed_save_leaves_the_old_file_intact(tmp_path, disk_full_midway, plotter):
    target = tmp_path / "plot.png"
    target.write_bytes(OLD)
    with pytest.raises(OSError, match="No space left on device"):
        PLOTTERS[plotter](target)
    assert target.read_bytes() == OLD
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


@pytest.mark.parametrize("plotter", sorted(PLOTTERS))
def test_a_directory_target_is_refused_by_name(tmp_path, plotter):
    with pytest.raises(IsADirectoryError, match=f"{tmp_path} is a directory"):
        PLOTTERS[plotter](tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")])
def test_the_format_follows_the_suffix(tmp_path, suffix, magic):
    path = PLOTTERS["raster"](tmp_path / f"plot{suffix}")
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"plot{suffix}"]
