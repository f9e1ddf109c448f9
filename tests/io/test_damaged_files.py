"""Damaged, truncated or foreign event files: one EventFormatError naming the file, never numpy's,
numba's or the tokenizer's own exceptions, and never silently wrong numbers."""

import io

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon.cli import main
from talon.io import (
    EVENT_DTYPE,
    BufferedEventReader,
    EventFormatError,
    event_file_info,
    read_events,
    write_events,
    write_h5,
    write_raw,
)
from talon.io.demo import moving_bar

EVENTS = moving_bar((16, 16))


def npy_bytes(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npy_header(shape) -> bytes:
    """A well-formed ``.npy`` header for an event array of ``shape``, with no data after it."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(EVENT_DTYPE), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def readers(path):
    """Every way talon reads a whole file: at once, in chunks, summarised."""
    return {
        "read_events": lambda: read_events(path),
        "BufferedEventReader": lambda: list(BufferedEventReader(path, chunk_size=100)),
        "event_file_info": lambda: event_file_info(path),
    }


def npy_cases() -> dict[str, bytes]:
    good = npy_bytes(EVENTS)
    end = good.index(b"}")
    return {
        "truncated_header": good[:60],  # numpy: ValueError (EOF) from the chunked reader
        "unclosed_header": good[:end] + b" " + good[end + 1 :],  # numpy's header parser: tokenize.TokenError
        "truncated_body": good[:-100],  # the memory map: "mmap length is greater than file size"
        "empty": b"",  # EOFError
        "two_dimensional": npy_bytes(np.zeros((3, 4))),
        "npz_archive": (lambda b: (np.savez(b, a=EVENTS), b.getvalue())[1])(io.BytesIO()),
        "unconvertible": npy_bytes(np.zeros(3, [("x", "f4"), ("t", "f8")])),  # no polarity field
        "huge_header_shape": npy_header(shape=(10**12,)),  # refused before np.load allocates 13 TB (MemoryError before)
    }


@pytest.mark.parametrize("case", list(npy_cases()))
def test_damaged_npy_files_name_the_file(tmp_path, case):
    path = tmp_path / f"{case}.npy"
    path.write_bytes(npy_cases()[case])
    for read in readers(path).values():
        with pytest.raises(EventFormatError, match=rf"{case}\.npy"):
            read()
    result = CliRunner().invoke(main, ["events", "info", str(path)])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "Traceback" not in result.output


def test_a_raw_header_with_an_impossible_geometry_is_refused(tmp_path):
    path = tmp_path / "zero.raw"
    path.write_bytes(b"% evt 3.0\n% format EVT3;height=0;width=640\n% end\n" + bytes(4))
    for read in readers(path).values():
        with pytest.raises(EventFormatError, match=r"zero\.raw: the header gives a 640x0 sensor"):
            read()
    path.write_bytes(b"% evt 3.0\n% geometry 640x480")  # the header line never ends
    with pytest.raises(EventFormatError, match=r"zero\.raw: the raw header has a line without a newline"):
        read_events(path)


def test_file_info_spans_are_exact_beyond_int64(tmp_path):
    """A damaged file's timestamps can span more than int64: the duration is computed in Python ints
    (it used to wrap to a negative number with only a RuntimeWarning)."""
    path = tmp_path / "span.npy"
    path.write_bytes(npy_bytes(np.array([(0, 0, -(2**62), False), (1, 1, 2**62 + 5, True)], EVENT_DTYPE)))
    assert event_file_info(path).duration_us == 2**63 + 5


# ---- every reader on randomly damaged files -------------------------------------------------------


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """The bytes of one good file of each kind talon reads."""
    folder = tmp_path_factory.mktemp("good")
    files = {
        "evt3.raw": lambda p: write_raw(p, EVENTS, version="3.0", sensor_size=(16, 16)),
        "evt3_nogeometry.raw": lambda p: write_raw(p, EVENTS, version="3.0"),
        "evt2.raw": lambda p: write_raw(p, EVENTS, version="2.0", sensor_size=(16, 16)),
        "events.npy": lambda p: write_events(p, EVENTS),
        "events.h5": lambda p: write_h5(p, EVENTS, (16, 16), chunk_events=64),
    }
    out = {}
    for name, write in files.items():
        write(folder / name)
        out[name] = (folder / name).read_bytes()
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_randomly_damaged_files_give_a_clear_error_or_events(tmp_path_factory, originals, data):
    """Truncated anywhere, bytes overwritten or deleted: each reader returns events (a damaged
    .raw payload can still be valid words) or raises EventFormatError naming the file. HDF5 files
    are only truncated here: libhdf5 2.0 stalls or crashes on some overwritten bytes; those in the root
    attributes talon reads are guarded and tested in test_h5_attributes.py, the rest is libhdf5's."""
    folder = tmp_path_factory.mktemp("damaged")
    blobs = originals
    name = data.draw(st.sampled_from(sorted(blobs)), label="file")
    blob = bytearray(blobs[name])
    op = "truncate" if name.endswith(".h5") else data.draw(st.sampled_from(["truncate", "overwrite", "delete"]))
    at = data.draw(st.integers(0, len(blob) - 1), label="position")
    if op == "truncate":
        del blob[at:]
    elif op == "overwrite":
        patch = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
        blob[at : at + len(patch)] = patch
    else:
        del blob[at : at + data.draw(st.integers(1, 8), label="deleted")]
    path = folder / f"bad_{name}"
    path.write_bytes(bytes(blob))
    for reader, read in readers(path).items():
        try:
            read()
        except EventFormatError as exc:
            assert path.name in str(exc), (reader, str(exc))
