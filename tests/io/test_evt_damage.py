"""Damaged EVT streams: events off the sensor, a failed piece, odd buffers; both decoder paths alike."""

import array
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import talon.io.evt_kernels as kernels
import talon.io.prophesee as prophesee
from talon._compiled import compiled
from talon.io import EVENT_DTYPE, EventFormatError, decode_evt2, decode_evt3, encode_evt2, encode_evt3, read_raw
from talon.io.prophesee import EvtDecoder

from ..markers import needs_numba
from .test_prophesee import vector_friendly, w3, word_soup

fixture_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def w2(kind, x=0, y=0, t_low=0):
    return (kind << 28) | (t_low << 22) | (x << 11) | y


def evt3_bytes(words, header=b"% evt 3.0\n% end\n"):
    return header + np.array(words, "<u2").tobytes()


# ---- 1. events off the sensor: refused with the word's position, never wrapped -------------------


@pytest.mark.usefixtures("decoder_path")
def test_a_vector_past_the_int16_range_is_refused_not_wrapped():
    """Base 2047 and 2800 empty VECT_12 words move base_x to 2047 + 12 * 2800 = 35647; one set bit
    there used to be stored as int16(35647) = -29889."""
    words = [w3(0x0, 1), w3(0x3, 2047)] + [w3(0x4, 0)] * 2800 + [w3(0x4, 1)]
    message = "EVT 3.0 word 2802 has an event at x=35647, y=1, outside the 2048x2048 pixels the format addresses"
    with pytest.raises(EventFormatError, match=message):
        decode_evt3(evt3_bytes(words))


@pytest.mark.usefixtures("decoder_path")
def test_vectors_up_to_the_last_column_decode_and_a_base_beyond_it_is_harmless():
    """Base 2040: VECT_8 0xFF is x = 2040..2047 (the last addressable column); the base is then 2048,
    which is fine while no bit is set, and a new base brings the vectors back."""
    words = [w3(0x0, 3), w3(0x3, 2040), w3(0x5, 0xFF), w3(0x4, 0), w3(0x3, (1 << 11) | 5), w3(0x5, 0b101)]
    ev = decode_evt3(evt3_bytes(words))
    assert ev["x"].tolist() == [*range(2040, 2048), 5, 7]
    assert ev["p"].tolist() == [False] * 8 + [True] * 2
    with pytest.raises(EventFormatError, match=r"word 4 has an event at x=2060, y=3, outside the 2048x2048"):
        decode_evt3(evt3_bytes([*words[:4], w3(0x5, 0b1)]))  # base 2040 + 8 + 12 = 2060


@pytest.mark.usefixtures("decoder_path")
def test_the_header_geometry_bounds_the_events(tmp_path):
    """``% format EVT3;height=720;width=1280``: base 1275 + bit 5 = column 1280 is one past the last."""
    header = b"% format EVT3;height=720;width=1280\n% end\n"
    good = [w3(0x0, 719), w3(0x3, 1270), w3(0x5, 0b10_0001), w3(0x2, 1279)]
    assert decode_evt3(evt3_bytes(good, header))["x"].tolist() == [1270, 1275, 1279]
    assert decode_evt3(evt3_bytes([*good, w3(0x2, 1280)]))["x"].tolist()[-1] == 1280  # no geometry: 2048
    cases = {
        "vector": ([w3(0x0, 5), w3(0x3, 1275), w3(0x5, 0b10_0001)], "word 2 has an event at x=1280, y=5"),
        "address": ([w3(0x0, 5), w3(0x2, 1300)], "word 1 has an event at x=1300, y=5"),
        "row": ([w3(0x0, 720), w3(0x2, 0)], "word 1 has an event at x=0, y=720"),
    }
    for name, (words, message) in cases.items():
        with pytest.raises(EventFormatError, match=f"EVT 3.0 {message}, outside the 1280x720 sensor"):
            decode_evt3(evt3_bytes(words, header))
        path = tmp_path / f"{name}.raw"
        path.write_bytes(evt3_bytes(words, header))
        with pytest.raises(EventFormatError, match=f"{name}\\.raw: EVT 3\\.0 {message}"):
            read_raw(path)
        with pytest.raises(EventFormatError, match=f"{name}\\.raw: EVT 3\\.0 {message}"):
            list(prophesee.iter_raw(path, 2))
    evt2 = np.array([w2(8, 0, 1), w2(1, 639, 479), w2(0, 640, 2)], "<u4").tobytes()
    evt2 = b"% evt 2.0\n% geometry 640x480\n% end\n" + evt2
    with pytest.raises(
        EventFormatError, match=r"EVT 2\.0 word 2 has an event at x=640, y=2, outside the 640x480 sensor"
    ):
        decode_evt2(evt2)


def test_the_encoders_refuse_events_off_the_sensor_size_they_write():
    ev = np.array([(1279, 3, 0, True), (1280, 3, 5, True)], EVENT_DTYPE)
    for encode in (encode_evt2, encode_evt3):
        with pytest.raises(EventFormatError, match="x=1280, y=3, outside the 1280x720 sensor_size"):
            encode(ev, (1280, 720))
        assert len(encode(ev, (1281, 720, 2))) > 0  # tonic's (width, height, polarities)


# ---- 2. a failed piece changes nothing, on both paths --------------------------------------------


@pytest.mark.usefixtures("decoder_path")
@pytest.mark.parametrize("version", ["2.0", "3.0"])
def test_a_failed_piece_leaves_the_decoder_as_it_was(version):
    """Feed part of a stream (ending inside a word), then a damaged piece: the error leaves the
    registers, the word count and the split word as they were, so the clean piece continues the stream."""
    ev = vector_friendly(400, 3, loops=2)
    data = encode_evt3(ev) if version == "3.0" else encode_evt2(ev)
    stream = data[prophesee.split_header(data)[1] :]
    size = 2 if version == "3.0" else 4
    cut = len(stream) // size // 2 * size + 1  # one byte into a word
    bad_at = cut // size + 10  # a word boundary after the cut
    bad_word = np.array([w3(0x9, 0)], "<u2") if version == "3.0" else np.array([0x5 << 28], "<u4")
    decoder = EvtDecoder(version)
    first = decoder.feed(stream[:cut])
    before = (decoder.registers, decoder.words_decoded, decoder._tail)
    assert before[0]["time_high"] > 0 and len(before[2]) == 1
    damaged = stream[cut : bad_at * size] + bad_word.tobytes() + stream[bad_at * size :]
    with pytest.raises(EventFormatError, match=f"EVT {version} word {bad_at} has unknown type"):
        decoder.feed(damaged)
    assert (decoder.registers, decoder.words_decoded, decoder._tail) == before
    again = decoder.feed(stream[cut:])
    decoder.finish()
    assert np.concatenate([first, again]).tobytes() == ev.tobytes()


@needs_numba
@pytest.mark.parametrize("version", ["2.0", "3.0"])
def test_the_kernels_leave_the_state_unchanged_at_a_bad_word(version):
    """The kernels themselves (not only EvtDecoder, which decodes on a copy) write the registers only on success."""
    if version == "2.0":
        words = np.array([w2(8, t_low=0) | 7, w2(1, 5, 5), w2(8) | 9, 0x5 << 28], "<u4")
        result = compiled(kernels.evt2_decode)(words, np.empty(4, EVENT_DTYPE), state := np.array([3]), 2048, 2048)
        assert result == (1, 3, -1, -1) and state.tolist() == [3]
    else:
        words = np.array([w3(0x8, 7), w3(0x0, 9), w3(0x2, 5), w3(0x3, 2047), w3(0x5, 0b10)], "<u2")
        state = np.arange(kernels.EVT3_STATE_SIZE)
        result = compiled(kernels.evt3_decode)(words, np.empty(2, EVENT_DTYPE), state, 2048, 2048)
        assert result == (1, 4, 2048, 9) and state.tolist() == list(range(kernels.EVT3_STATE_SIZE))


def damaged_soup(version, n, seed, damage):
    """Valid random words with ``damage`` of them replaced by unknown types or by vectors that
    run past the sensor, and a random (maybe small) sensor geometry."""
    rng = np.random.default_rng(seed)
    words = word_soup(version, n, seed)
    for i in rng.integers(0, n, damage) if n else ():
        if version == "3.0":
            words[i] = rng.choice([w3(0x9, 1), w3(0xB, 2), w3(0x3, 2040), w3(0x4, 0xFFF), w3(0x2, 2047)])
        else:
            words[i] = rng.choice([0x5 << 28, w2(0, 2047, 3), w2(1, 3, 2047)])
    size = tuple(int(s) for s in rng.choice([64, 700, 2047, 2048, 4096], 2))
    return words, (None if seed % 3 == 0 else size)


def outcome(version, pieces, sensor_size):
    """Events (or the error message) of each piece, and the registers after each one."""
    decoder, steps = EvtDecoder(version, sensor_size), []
    for piece in pieces:
        try:
            result = decoder.decode_words(piece).tobytes()
        except EventFormatError as exc:
            result = str(exc)
        steps.append((result, decoder.registers, decoder.words_decoded))
    return steps


@needs_numba
@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 1500),
    version=st.sampled_from(["2.0", "3.0"]),
    damage=st.integers(0, 3),
    cuts=st.lists(st.integers(0, 1500), max_size=3),
)
def test_both_paths_give_the_same_events_errors_and_registers_on_any_words(monkeypatch, seed, n, version, damage, cuts):
    """Damaged or not, in pieces: the numba kernels and the numpy twins return the same events or
    name the same word, and keep the same registers afterwards (those from before a failed piece)."""
    words, sensor_size = damaged_soup(version, n, seed, damage)
    bounds = sorted({0, n, *(min(c, n) for c in cuts)})
    pieces = [words[a:b] for a, b in itertools.pairwise(bounds)]
    fast = outcome(version, pieces, sensor_size)
    with monkeypatch.context() as m:
        m.setattr(prophesee, "compiled", lambda kernel: None)
        twin = outcome(version, pieces, sensor_size)
    assert fast == twin


# ---- 3. feed() takes any buffer ------------------------------------------------------------------


@pytest.mark.usefixtures("decoder_path")
def test_feed_takes_strided_and_typed_buffers_in_their_logical_order():
    stream = np.frombuffer(evt3_bytes(word_soup("3.0", 600, 4), header=b""), np.uint8)
    whole = EvtDecoder("3.0").feed(stream.tobytes())
    spread = np.zeros(2 * stream.size, np.uint8)
    spread[::2] = stream  # every other byte of a larger array: a strided view
    words = stream.view("<u2")
    fortran = np.asfortranarray(words.reshape(2, -1))  # C order is the stream order
    buffers = {
        "strided numpy view": spread[::2],
        "memoryview slice with a step": memoryview(spread.tobytes())[::2],
        "reversed view of reversed bytes": stream[::-1].copy()[::-1],
        "Fortran-ordered 2-D uint16": fortran,
        "array.array of uint16": array.array("H", words.tobytes()),
    }
    for name, buffer in buffers.items():
        decoder = EvtDecoder("3.0")
        got = np.concatenate([decoder.feed(buffer), decoder.feed(b"")])
        decoder.finish()
        assert got.tobytes() == whole.tobytes(), name
    for not_a_buffer in ([1, 2], "abc", 3.0):
        with pytest.raises(EventFormatError, match="EVT data must be a bytes-like object"):
            EvtDecoder("3.0").feed(not_a_buffer)


@pytest.mark.usefixtures("decoder_path")
def test_whole_stream_decoders_take_typed_arrays_with_a_header():
    """A uint16 array holding a header's bytes: the header offset is in bytes, not elements (it used to
    drop every event silently)."""
    data = encode_evt3(vector_friendly(50, 1), (64, 4))
    data += b"\0" * (len(data) % 2)
    expected = decode_evt3(data)
    assert len(expected) == 50
    assert decode_evt3(np.frombuffer(data, "<u2")).tobytes() == expected.tobytes()
    assert decode_evt3(np.frombuffer(data, np.uint8)[::-1].copy()[::-1]).tobytes() == expected.tobytes()
