"""The path argument of every public reader and writer (talon.ir.paths.check_path): None, a number
or a list is a clear error naming the function, before any file is touched (``open(42)``
would write to file descriptor 42; ``os.stat(None)`` said only "expected str, bytes or os.PathLike
object, not NoneType"); a directory is named as one."""

from __future__ import annotations

import pytest

from talon import io, ir
from talon.examples import mlp_graph

GRAPH = mlp_graph(0, (4, 8, 3))
EVENTS = io.make_events(x=[1], y=[1], t=[1], p=[1])


def _readers():
    from talon.backend.descriptor import HardwareDescriptor
    from talon.bridge.from_ir import ir_to_torch, load
    from talon.evaluate.data import FileSource
    from talon.graph.spec import HardwareSpec
    from talon.interop.nir import read_nir

    return {
        "ir.read": ir.read,
        "ir.read_version": ir.read_version,
        "read_nir": read_nir,
        "bridge.load": load,
        "ir_to_torch": ir_to_torch,
        "read_events": io.read_events,
        "event_file_info": io.event_file_info,
        "recorded_sensor_size": io.recorded_sensor_size,
        "read_h5": io.read_h5,
        "H5EventReader": io.H5EventReader,
        "read_raw": io.read_raw,
        "iter_raw": lambda p: list(io.iter_raw(p, 10)),
        "raw_info": io.prophesee.raw_info,
        "read_aedat4": io.read_aedat4,
        "AEDAT4Reader": io.AEDAT4Reader,
        "open_npy": io.npy.open_npy,
        "BufferedEventReader": io.BufferedEventReader,
        "HardwareDescriptor.from_json": HardwareDescriptor.from_json,
        "HardwareSpec.from_json": HardwareSpec.from_json,
        "FileSource": FileSource,
    }


def _writers():
    from talon.backend import get_backend
    from talon.graph.spec import PRESETS, get_spec
    from talon.interop.nir import write_nir
    from talon.viz import export_html
    from talon.viz.display import write_text_atomic
    from talon.viz.figures import save_figure

    descriptor = get_backend("cpu").compile(GRAPH)
    return {
        "ir.write": lambda p: ir.write(p, GRAPH),
        "write_nir": lambda p: write_nir(p, GRAPH),
        "write_events": lambda p: io.write_events(p, EVENTS),
        "write_h5": lambda p: io.write_h5(p, EVENTS),
        "H5EventWriter": io.H5EventWriter,
        "write_raw": lambda p: io.write_raw(p, EVENTS),
        # None: return the JSON text without writing it
        "HardwareDescriptor.to_json": lambda p: descriptor.to_json(p if p is not None else 42),
        "HardwareSpec.to_json": lambda p: get_spec(next(iter(PRESETS))).to_json(p if p is not None else 42),
        "export_html": lambda p: export_html(GRAPH, p),
        "write_text_atomic": lambda p: write_text_atomic(p, "text"),
        "save_figure": lambda p: save_figure(object(), p),
    }


READERS, WRITERS = list(_readers()), list(_writers())


@pytest.mark.parametrize("bad", [None, 42, 3.5, ["m.t1c"]], ids=["None", "int", "float", "list"])
@pytest.mark.parametrize("name", READERS + WRITERS)
def test_a_path_argument_that_is_no_path_is_a_clear_type_error(name, bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written, but if it were, not into the checkout
    entry = {**_readers(), **_writers()}[name]
    # ir_to_torch and bridge.load take a graph too: "expects an ir.Graph or a .t1c path, got NoneType"
    message = r"(must be given as a path \(str or os\.PathLike\)|or a \.t1c path), got .*(NoneType|int|float|list)"
    with pytest.raises(TypeError, match=message):
        entry(bad)
    assert list(tmp_path.iterdir()) == []


SUFFIX = {
    "read_nir": ".nir", "open_npy": ".npy", "FileSource": ".npy", "read_raw": ".raw", "iter_raw": ".raw",
    "raw_info": ".raw", "read_aedat4": ".aedat4", "AEDAT4Reader": ".aedat4", "read_events": ".h5",
    "event_file_info": ".h5", "recorded_sensor_size": ".h5", "read_h5": ".h5", "H5EventReader": ".h5",
    "BufferedEventReader": ".h5", "HardwareDescriptor.from_json": ".json", "HardwareSpec.from_json": ".json",
}  # fmt: skip


@pytest.mark.parametrize("name", READERS)
def test_a_reader_given_a_directory_says_so(name, tmp_path):
    folder = tmp_path / ("data" + SUFFIX.get(name, ".t1c"))
    folder.mkdir()
    entry = _readers()[name]
    with pytest.raises(Exception, match=r"is a directory|Is a directory") as error:
        entry(folder)
    assert not isinstance(error.value, TypeError)
