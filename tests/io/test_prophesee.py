"""EVT 2.0 / 3.0: talon's decoders (numba kernels and numpy twins, every test runs both) against
expelliarmus' C decoders on files talon's encoders write."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon.io import EVENT_DTYPE, EventFormatError, decode_evt2, decode_evt3, encode_evt2, encode_evt3, read_raw
from talon.io.prophesee import split_header, write_raw

expelliarmus = pytest.importorskip("expelliarmus")
pytestmark = pytest.mark.usefixtures("decoder_path")


def same(ours, theirs):
    assert len(ours) == len(theirs)
    for name in "xytp":
        np.testing.assert_array_equal(ours[name].astype(np.int64), theirs[name].astype(np.int64), err_msg=name)


def expelliarmus_read(path, encoding):
    return expelliarmus.Wizard(encoding=encoding).read(str(path))


def events(n, seed, *, width=1280, height=720, span=10_000_000):
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    ev["x"], ev["y"] = rng.integers(0, width, n), rng.integers(0, height, n)
    ev["t"] = np.sort(rng.integers(0, span, n))
    ev["p"] = rng.random(n) < 0.5
    return ev


def vector_friendly(n, seed, *, loops=3):
    """Events in dense rows (so EVT 3.0 vectors appear), spanning several 24-bit time loops,
    with time_low never decreasing (the files on which expelliarmus follows the format)."""
    rng = np.random.default_rng(seed)
    ev = np.zeros(n, EVENT_DTYPE)
    high = np.sort(rng.integers(0, loops * 4096, n))
    high[0] = 0
    low = np.sort(rng.integers(0, 4096, n))
    ev["t"] = high * 4096 + low
    ev["y"] = rng.integers(0, 4, n)
    ev["x"] = rng.integers(0, 64, n)
    ev["p"] = rng.random(n) < 0.5
    order = np.lexsort((ev["x"], ev["p"], ev["y"], ev["t"]))
    return ev[order]


EVT3_KINDS = [0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF]
EVT2_KINDS = [0x0, 0x1, 0x8, 0xA, 0xE, 0xF]


def word_soup(version, n, seed):
    """Random words of the valid kinds: vectors without a base, time_low going down, time_high
    going down (24-bit loops), bases near the 11-bit limit, words between a base and its vector.
    EVT 3.0 vector bits that would put an event past x = 2047 are cleared (:func:`on_sensor`)."""
    rng = np.random.default_rng(seed)
    if version == "3.0":
        kinds = rng.choice(EVT3_KINDS, n, p=[0.1, 0.15, 0.1, 0.15, 0.15, 0.1, 0.03, 0.14, 0.02, 0.03, 0.03])
        return on_sensor(((kinds << 12) | rng.integers(0, 1 << 12, n)).astype("<u2"))
    kinds = rng.choice(EVT2_KINDS, n, p=[0.4, 0.4, 0.1, 0.04, 0.03, 0.03])
    return ((kinds.astype(np.uint64) << 28) | rng.integers(0, 1 << 28, n).astype(np.uint64)).astype("<u4")


def on_sensor(words, width=2048):
    """EVT 3.0 ``words`` with the vector bits cleared that would be events at ``x >= width``
    (the base may still run past the last column: a vector word without events there is valid)."""
    words = words.copy()
    base = 0
    for i, word in enumerate(words.tolist()):
        kind = word >> 12
        if kind == 0x3:
            base = word & 0x7FF
        elif kind in (0x4, 0x5):
            keep = (1 << max(0, min(width - base, 12))) - 1
            words[i] = word & ~(0xFFF & ~keep)
            base += 12 if kind == 0x4 else 8
    return words


@pytest.mark.parametrize("seed", [0, 1])
def test_evt2_equals_expelliarmus(tmp_path, seed):
    ev = events(50_000, seed, span=(1 << 30) if seed else 1_000_000)
    path = tmp_path / "a.raw"
    write_raw(path, ev, version="2.0", sensor_size=(1280, 720))
    ours = read_raw(path)
    same(ours, ev)
    same(ours, expelliarmus_read(path, "evt2"))


def test_evt3_with_vectors_time_high_and_24_bit_loops_equals_expelliarmus(tmp_path):
    ev = vector_friendly(60_000, 2)
    data = encode_evt3(ev, (1280, 720))
    kinds = np.bincount(np.frombuffer(data[split_header(data)[1] :], "<u2") >> 12, minlength=16)
    assert kinds[0x3] and kinds[0x4] and kinds[0x5] and kinds[0x2] and kinds[0x8] > 4096  # all word kinds
    assert ev["t"][-1] >= 2 << 24  # past two wraps of the 24-bit clock
    path = tmp_path / "v.raw"
    path.write_bytes(data)
    ours = read_raw(path)
    same(ours, ev)
    same(ours, expelliarmus_read(path, "evt3"))


def test_evt3_unvectorised_equals_expelliarmus(tmp_path):
    ev = vector_friendly(5000, 3, loops=1)
    path = tmp_path / "s.raw"
    path.write_bytes(encode_evt3(ev, vectorize=False))
    same(read_raw(path), ev)
    same(read_raw(path), expelliarmus_read(path, "evt3"))


def w3(kind, value):
    return (kind << 12) | value


def test_evt3_hand_written_words(tmp_path):
    words = [
        w3(0x8, 1), w3(0x6, 5), w3(0x0, 9),  # t = 4096 + 5, y = 9
        w3(0x2, (1 << 11) | 7),  # ON event x=7 (also sets the vector polarity to ON)
        w3(0x4, 0b1000_0000_0101),  # no base yet: base 0 → x = 0, 2, 11; base becomes 12
        w3(0x5, 0b1000_0001),  # x = 12, 19; base 20
        w3(0x4, 0), w3(0x5, 0b1),  # an empty VECT_12 still advances the base: x = 32
        w3(0x3, 100), w3(0x5, 0b11),  # OFF base 100: x = 100, 101
        w3(0xE, 0), w3(0x7, 0), w3(0xF, 0),  # others / continued: no event
    ]  # fmt: skip
    data = b"% evt 3.0\n% end\n" + np.array(words, "<u2").tobytes()
    ev = decode_evt3(data)
    (tmp_path / "h.raw").write_bytes(data)
    same(ev, expelliarmus_read(tmp_path / "h.raw", "evt3"))
    with_trigger = decode_evt3(data + np.array([w3(0xA, 0)], "<u2").tobytes())  # expelliarmus refuses 0xA
    same(with_trigger, ev)
    assert ev["x"].tolist() == [7, 0, 2, 11, 12, 19, 32, 100, 101]
    assert ev["p"].tolist() == [True] * 7 + [False] * 2
    assert set(ev["y"].tolist()) == {9} and set(ev["t"].tolist()) == {4101}


def test_evt3_time_low_decrease_follows_the_format_not_expelliarmus(tmp_path):
    """t = 4095 then 4096 is TIME_HIGH 0 / TIME_LOW 4095, then TIME_HIGH 1 / TIME_LOW 0. expelliarmus
    counts the smaller TIME_LOW as an overflow on top of the new TIME_HIGH: 2*4096 = 8192."""
    ev = np.array([(7, 5, 4095, True), (8, 5, 4096, False)], dtype=EVENT_DTYPE)
    path = tmp_path / "w.raw"
    path.write_bytes(encode_evt3(ev))
    assert read_raw(path)["t"].tolist() == [4095, 4096]
    assert expelliarmus_read(path, "evt3")["t"].tolist() == [4095, 8192]  # docs/events.md, "EVT 3.0 time"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is the same for every example
@given(seed=st.integers(0, 2**20), n=st.integers(0, 300), vectorize=st.booleans(), start=st.integers(0, 1 << 28))
def test_round_trips(seed, n, vectorize, start):
    ev = vector_friendly(max(n, 1), seed, loops=2)[:n] if seed % 2 else events(n, seed, span=1 << 24)
    same(decode_evt2(encode_evt2(ev)), ev)
    ev["t"] += start  # 24-bit loops skipped at the start of the file
    same(decode_evt3(encode_evt3(ev, vectorize=vectorize)), ev)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4000), version=st.sampled_from(["2.0", "3.0"]))
def test_random_words_equal_expelliarmus(tmp_path, seed, n, version):
    """Any valid words: vectors with and without a base, bases past 2047, 24-bit loops, words
    between a base and its vector. For EVT 3.0 the time_low values are made non-decreasing and
    EXT_TRIGGER left out: the two places where expelliarmus departs from the format."""
    words = word_soup(version, n, seed)
    if version == "3.0":
        words = words[(words >> 12) != 0xA]
        lows = (words >> 12) == 0x6
        words[lows] = (0x6 << 12) | np.sort(words[lows] & 0xFFF)
        first = np.array([0xE000], "<u2")  # a first data byte that is not '%' (expelliarmus' header end)
    else:
        first = np.array([0xE0000000], "<u4")
    path = tmp_path / f"soup{version[0]}.raw"
    path.write_bytes(f"% evt {version}\n% end\n".encode() + np.concatenate([first, words]).tobytes())
    ours, theirs = read_raw(path), expelliarmus_read(path, f"evt{version[0]}")
    if theirs is None:  # expelliarmus' answer for a file without events
        assert len(ours) == 0 and n < 50
    else:
        same(ours, theirs)


def test_evt3_gaps_of_whole_loops_equal_expelliarmus(tmp_path):
    ev = np.array([(1, 1, 5, True), (2, 1, 5 + (3 << 24), False), (3, 2, 7 + (5 << 24) + 4096, True)], EVENT_DTYPE)
    ev["t"] += (2 << 24) + 100  # starts after two loops
    path = tmp_path / "g.raw"
    path.write_bytes(encode_evt3(ev))
    same(read_raw(path), ev)
    same(expelliarmus_read(path, "evt3"), ev)


def test_damaged_streams_give_one_clear_error(tmp_path):
    good = encode_evt2(events(100, 0))
    with pytest.raises(EventFormatError, match="not a whole number of 4-byte words"):
        decode_evt2(good[:-1])
    with pytest.raises(EventFormatError, match="unknown type 0x5"):
        decode_evt2(good + np.array([0x5 << 28], "<u4").tobytes())
    with pytest.raises(EventFormatError, match="unknown type 0x9"):
        decode_evt3(np.array([w3(0x2, 5), w3(0x9, 0)], "<u2").tobytes())
    no_header = tmp_path / "n.raw"
    no_header.write_bytes(b"\x00\x01\x02\x03")
    with pytest.raises(EventFormatError, match="names no EVT version"):
        read_raw(no_header)
    truncated = tmp_path / "t.raw"
    truncated.write_bytes(encode_evt3(events(10, 1, span=1000))[:-1])
    with pytest.raises(EventFormatError, match=r"t\.raw.*truncated"):
        read_raw(truncated)


def test_encoders_refuse_what_the_format_cannot_hold():
    ev = events(10, 0)
    with pytest.raises(EventFormatError, match="time-sorted"):
        encode_evt3(ev[::-1])
    negative = ev.copy()
    negative["t"] -= 10**9
    with pytest.raises(EventFormatError, match="non-negative"):
        encode_evt3(negative)
    wide = ev.copy()
    wide["x"][0] = 4000
    with pytest.raises(EventFormatError, match="11 bits"):
        encode_evt2(wide)


def test_data_starting_with_a_percent_byte_after_the_end_line():
    """0x8025 (TIME_HIGH 0x025) starts with the byte '%': the header stops at '% end', so it is data."""
    ev = np.array([(3, 4, 0x025 << 12, True)], EVENT_DTYPE)
    data = encode_evt3(ev)
    assert data[split_header(data)[1]] == ord("%")
    same(decode_evt3(data), ev)


@pytest.mark.parametrize("block", [3, 64])
def test_decoding_in_blocks_carries_the_state_across(monkeypatch, block):
    """The decoders work through the stream in cache-sized blocks; tiny blocks split every state."""
    import talon.io.prophesee as prophesee

    ev = vector_friendly(800, 7, loops=2)
    evt2, evt3 = encode_evt2(ev), encode_evt3(ev)
    monkeypatch.setattr(prophesee, "_BLOCK", block)
    same(decode_evt2(evt2), ev)
    same(decode_evt3(evt3), ev)
    with pytest.raises(EventFormatError, match="word 3 has unknown type 0x9"):
        decode_evt3(np.array([w3(0x2, 5), w3(0x0, 1), w3(0x2, 6), w3(0x9, 0)], "<u2").tobytes())
