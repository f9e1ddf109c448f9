"""Prophesee EVT 2.0 and EVT 3.0 raw event streams: decoders (whole or in pieces) and encoders.

The decoders run the compiled one-pass loops of :mod:`talon.io.evt_kernels` when numba is
installed (the ``fast`` extra) and their vectorised numpy twins otherwise, with identical results;
:class:`EvtDecoder` carries the decoder's registers from one piece of a stream to the next, and
:func:`iter_raw` reads a file in bounded memory.

A ``.raw`` file is an ASCII header of lines starting with ``%`` (``% evt 3.0``,
``% format EVT3;height=720;width=1280``, ``% end``) followed by little-endian words.

**EVT 2.0** (32-bit words, type in bits 31–28): ``CD_OFF`` (0x0) / ``CD_ON`` (0x1) carry
``t[5:0]`` in bits 27–22, ``x`` in 21–11 and ``y`` in 10–0; ``EVT_TIME_HIGH`` (0x8) carries
``t[33:6]`` in bits 27–0; ``EXT_TRIGGER`` (0xA), ``OTHERS`` (0xE) and ``CONTINUED`` (0xF) carry no
CD event. An event's time is ``(time_high << 6) | t_low``.

**EVT 3.0** (16-bit words, type in bits 15–12): ``EVT_ADDR_Y`` (0x0, ``y`` in bits 10–0),
``EVT_ADDR_X`` (0x2, polarity bit 11, ``x`` bits 10–0: one event), ``VECT_BASE_X`` (0x3,
polarity bit 11, base ``x``), ``VECT_12`` (0x4) / ``VECT_8`` (0x5: a bit mask; bit ``k`` set is an
event at ``base_x + k``, after which ``base_x`` advances by 12 / 8), ``EVT_TIME_LOW`` (0x6) and
``EVT_TIME_HIGH`` (0x8, 12 bits each of a 24-bit time), ``EXT_TRIGGER`` (0xA), ``OTHERS`` (0xE),
``CONTINUED_4`` (0x7), ``CONTINUED_12`` (0xF) (no CD event; expelliarmus 1.1.12 refuses 0xA).
An event's time is ``(loops << 24) + (time_high << 12) + time_low`` where ``loops`` counts the
times ``time_high`` went down (the 24-bit counter wrapped, every 16.8 s).

Every event must lie on the sensor: ``x < width`` and ``y < height`` of the header's geometry
(``% format ...;height=H;width=W`` or ``% geometry WxH``), or of the 2048 x 2048 pixels the 11-bit
addresses reach when the header gives none. An event off the sensor — in EVT 3.0 typically a
vector whose ``base_x`` plus bit index runs past the last column — is a damaged stream and is
refused with the word's position, never stored at a wrapped coordinate.

Both decoders return :data:`~talon.io.events.EVENT_DTYPE` events in stream order and match
expelliarmus' C decoders on the same files, with one exception in EVT 3.0: expelliarmus also
adds 4096 µs every time ``time_low`` decreases, so it double-counts at every ``time_high`` step
whose ``time_low`` is smaller than the previous one; talon follows the format (see
``docs/events.md``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from talon._compiled import WorkThreshold, compiled
from talon.ir.atomic import atomic_output
from talon.ir.paths import check_path

from . import evt_kernels
from .budget import event_budget
from .events import EVENT_DTYPE, EventFormatError, as_events, check_pixels, concatenate_events, first_unsorted

# When the numba decoders are worth starting (talon._compiled.WorkThreshold); work: words of a call.
# Measured (load 4-5, 2 cores, bench_event_io's camera-like stream): twin vs compiled per 1 M words,
# EVT 2.0 15.5 ms vs 6.3 ms, EVT 3.0 86 ms vs 9.1 ms (1 000 words: 0.10 / 0.06 ms, 0.28 / 0.07 ms);
# starting numba in a process (import, cached decoders loaded) cost 0.5-1.5 s: about 1e8 EVT 2.0
# words (a 400 MB file) or 1.5e7 EVT 3.0 words pay for it.
EVT2_WORK = WorkThreshold("EVT 2.0 decoding", cold_from=100_000_000, warm_from=1_000)
EVT3_WORK = WorkThreshold("EVT 3.0 decoding", cold_from=15_000_000, warm_from=1_000)

_EVT2_TYPES = np.array([0x0, 0x1, 0x8, 0xA, 0xE, 0xF])
_EVT3_TYPES = np.array([0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xE, 0xF])
_ADDR_Y, _ADDR_X, _BASE_X, _VECT_12, _VECT_8, _TIME_LOW, _TIME_HIGH = 0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x8
_MAX_XY = 2047  # 11-bit addresses
_ADDRESSABLE = (_MAX_XY + 1, _MAX_XY + 1)  # (width, height) limits when the header gives no geometry
_EVT2_REGISTERS = ("time_high",)  # the names of EvtDecoder.registers, in the kernels' state order
_EVT3_REGISTERS = ("y", "polarity", "time_high", "loops", "time_low", "base_x")


# ---- header ---------------------------------------------------------------------------------------


def split_header(data: bytes | memoryview | np.ndarray) -> tuple[dict[str, str], int]:
    """``(header fields, offset of the first data byte)`` of a raw stream.

    Every line at the start that begins with ``%`` is header, up to and including ``% end``.
    Fields: ``evt`` (``"2.0"``/``"3.0"``, from ``% evt 3.0`` or ``% format EVT3;...``),
    ``width``/``height`` when given.
    """
    buf = _byte_view(data)
    pos, lines = 0, []
    while pos < len(buf) and buf[pos] == 0x25:  # '%'
        end = bytes(buf[pos : pos + 4096]).find(b"\n")
        if end < 0:
            raise EventFormatError("the raw header has a line without a newline (truncated or not a Prophesee file)")
        lines.append(bytes(buf[pos + 1 : pos + end]).decode("ascii", "replace").strip())
        pos += end + 1
        if lines[-1] == "end":  # OpenEB's last header line: data may start with a '%' byte
            break
    fields: dict[str, str] = {}
    for line in lines:
        if m := re.fullmatch(r"evt\s+([23])\.0", line):
            fields["evt"] = f"{m.group(1)}.0"
        elif m := re.match(r"format\s+EVT([23])\b(.*)", line):
            fields["evt"] = f"{m.group(1)}.0"
            for key, value in re.findall(r"(width|height)=(\d+)", m.group(2)):
                fields[key] = value
        elif m := re.fullmatch(r"geometry\s+(\d+)x(\d+)", line):
            fields["width"], fields["height"] = m.group(1), m.group(2)
    return fields, pos


def _header(version: str, sensor_size) -> bytes:
    lines = [f"% evt {version}"]
    if sensor_size is not None:
        width, height = int(sensor_size[0]), int(sensor_size[1])
        lines.append(f"% format EVT{version[0]};height={height};width={width}")
        lines.append(f"% geometry {width}x{height}")
    lines.append("% end")
    return ("\n".join(lines) + "\n").encode("ascii")


def _byte_view(data) -> memoryview:
    """The bytes of any buffer-protocol object, in its logical (C) order: a view, or a copy when strided."""
    try:
        view = memoryview(data)
    except TypeError:
        raise EventFormatError(
            "EVT data must be a bytes-like object (bytes, bytearray, memoryview, numpy array), "
            f"got {type(data).__name__}"
        ) from None
    if not view.c_contiguous:  # a strided numpy view or memoryview slice: its elements, in order
        view = memoryview(view.tobytes())
    return view.cast("B")


def _words(data, dtype: str, version: str) -> tuple[np.ndarray, dict[str, str]]:
    """``(words after the header, header fields)`` of a whole stream's bytes."""
    if isinstance(data, (str, os.PathLike)):
        raise TypeError("pass the file's bytes (or use talon.io.read_raw(path))")
    raw = np.frombuffer(_byte_view(data), dtype=np.uint8)
    fields, offset = split_header(raw)
    raw = raw[offset:]
    size = np.dtype(dtype).itemsize
    if raw.size % size:
        raise EventFormatError(
            f"EVT {version} data is {raw.size} bytes, not a whole number of {size}-byte words (truncated file?)"
        )
    return raw.view(dtype), fields


def _geometry(fields: dict[str, str]) -> tuple[int, int] | None:
    """``(width, height)`` from the header fields, or None when the header gives none."""
    if "width" not in fields or "height" not in fields:
        return None
    return int(fields["width"]), int(fields["height"])


def _first_unknown(kinds: np.ndarray, valid: np.ndarray) -> int | None:
    """Index of the first word of a type not in ``valid``, or None."""
    allowed = np.zeros(16, dtype=bool)
    allowed[valid] = True
    ok = allowed.take(kinds)
    return None if ok.all() else int(np.argmin(ok))


# ---- incremental decoding: the compiled kernels or their numpy twins -----------------------------


class EvtDecoder:
    """Decode an EVT 2.0 / 3.0 word stream piece by piece, carrying the decoder's registers across.

    ``decode_words(words)`` decodes whole words; ``feed(data)`` takes bytes in pieces of any size
    (any buffer-protocol object; a piece may end inside a word: its bytes wait for the next piece)
    and ``finish()`` refuses a stream that ended inside a word. Decoding a stream in pieces gives
    the events of decoding it whole, in the same order. ``sensor_size`` ``(width, height)`` (the
    header's geometry) bounds the events; without it, the 2048 x 2048 the addresses reach.

    A piece with a damaged word (an unknown type, an event off the sensor) raises
    :class:`~talon.io.events.EventFormatError` naming the word's position in the stream and
    leaves the decoder as it was before the call (``registers``, ``words_decoded``, the bytes of
    a split word), on both paths. The numba kernels of :mod:`talon.io.evt_kernels` are used when
    the ``fast`` extra is installed and the stream is long enough to pay for starting numba
    (``EVT2_WORK`` / ``EVT3_WORK``, see :class:`talon._compiled.WorkThreshold`), the numpy twins otherwise.
    """

    def __init__(self, version: str, sensor_size=None) -> None:
        if version not in ("2.0", "3.0"):
            raise EventFormatError(f"version must be '2.0' or '3.0', got {version!r}")
        self.version = version
        self.sensor_size = _sensor_size(sensor_size)
        size = self.sensor_size or _ADDRESSABLE
        self._limits = (min(size[0], _ADDRESSABLE[0]), min(size[1], _ADDRESSABLE[1]))
        self.word_dtype = np.dtype("<u4" if version == "2.0" else "<u2")
        self.words_decoded = 0
        self._state = np.zeros(1 if version == "2.0" else evt_kernels.EVT3_STATE_SIZE, dtype=np.int64)
        self._tail = b""

    @property
    def registers(self) -> dict[str, int]:
        """The decoder's registers after the words decoded so far (EVT 2.0: ``time_high``, i.e. ``t[33:6]``)."""
        names = _EVT2_REGISTERS if self.version == "2.0" else _EVT3_REGISTERS
        return dict(zip(names, (int(v) for v in self._state), strict=True))

    def decode_words(self, words: np.ndarray) -> np.ndarray:
        """The events of the next ``words`` (a 1-D array of the version's word type)."""
        if self._tail:
            raise EventFormatError("decode_words after feed left part of a word; keep to feed()")
        if not isinstance(words, np.ndarray) or words.ndim != 1 or words.dtype != self.word_dtype:
            raise EventFormatError(
                f"EVT {self.version} words must be a 1-D {self.word_dtype} array, got "
                f"{getattr(words, 'dtype', type(words).__name__)} (feed() takes bytes)"
            )
        return self._decode(words)

    def _decode(self, words: np.ndarray) -> np.ndarray:
        if not (words.flags.writeable and words.flags.aligned and words.flags.c_contiguous):
            words = words.copy()  # one array type for the compiled kernels: each type is one more compilation
        state = self._state.copy()  # kept only when the whole piece decodes: a failed call changes nothing
        out = (self._decode_evt2 if self.version == "2.0" else self._decode_evt3)(words, state)
        self._state = state
        self.words_decoded += words.size
        return out

    def _decode_evt2(self, words: np.ndarray, state: np.ndarray) -> np.ndarray:
        decode = compiled(evt_kernels.evt2_decode) if EVT2_WORK.use_compiled(words.size) else None
        if decode is None:
            return _decode_evt2_numpy(words, state, self.words_decoded, self._limits)
        out = np.empty(words.size, dtype=EVENT_DTYPE)
        n, bad, x, y = decode(words, out, state, *self._limits)
        if bad >= 0:
            at = bad + self.words_decoded
            if x < 0:
                raise _unknown_type("2.0", at, int(words[bad]) >> 28)
            raise _off_sensor("2.0", at, x, y, self._limits)
        # trim: a view when at most a few words were not events (time high, triggers), else a copy
        return out if n == out.size else out[:n] if 8 * n >= 7 * out.size else out[:n].copy()

    def _decode_evt3(self, words: np.ndarray, state: np.ndarray) -> np.ndarray:
        count = decode = None
        if EVT3_WORK.use_compiled(words.size):
            count, decode = compiled(evt_kernels.evt3_count), compiled(evt_kernels.evt3_decode)
        if count is None or decode is None:
            return _decode_evt3_numpy(words, state, self.words_decoded, self._limits)
        n, unknown = count(words)
        valid = words if unknown < 0 else words[:unknown]  # the words before the first unknown one
        if unknown >= 0:
            n, _ = count(valid)
        out = np.empty(n, dtype=EVENT_DTYPE)
        _, bad, x, y = decode(valid, out, state, *self._limits)
        if bad >= 0:  # an event off the sensor comes before any unknown word
            raise _off_sensor("3.0", bad + self.words_decoded, x, y, self._limits)
        if unknown >= 0:
            raise _unknown_type("3.0", unknown + self.words_decoded, int(words[unknown]) >> 12)
        return out

    def feed(self, data) -> np.ndarray:
        """The events of the next bytes of the stream (no header: the data after ``% end``).

        ``data``: any buffer-protocol object (bytes, bytearray, memoryview, numpy array); a strided
        one is read in its logical order (copied), as ``bytes(memoryview(data))`` would be.
        """
        buf = bytearray(self._tail)  # writable words: the kernels' one array type
        buf += _byte_view(data)
        whole = len(buf) // self.word_dtype.itemsize
        events = self._decode(np.frombuffer(buf, dtype=self.word_dtype, count=whole))
        self._tail = bytes(buf[whole * self.word_dtype.itemsize :])
        return events

    def finish(self) -> None:
        """Refuse a stream that ended inside a word."""
        if self._tail:
            raise EventFormatError(
                f"EVT {self.version} data ends {len(self._tail)} bytes into a "
                f"{self.word_dtype.itemsize}-byte word (truncated file?)"
            )


def _sensor_size(sensor_size) -> tuple[int, int] | None:
    """``(width, height)`` of ``(width, height)`` or tonic's ``(width, height, polarities)``, or None."""
    if sensor_size is None:
        return None
    try:
        size = tuple(int(s) for s in sensor_size)
    except (TypeError, ValueError):
        size = ()
    if len(size) not in (2, 3) or min(size[:2]) < 1:
        raise EventFormatError(f"sensor_size must be (width, height), positive integers; got {sensor_size!r}")
    return size[:2]


def _unknown_type(version: str, index: int, kind: int) -> EventFormatError:
    return EventFormatError(
        f"EVT {version} word {index} has unknown type 0x{kind:X} (damaged file, or not EVT {version})"
    )


def _off_sensor(version: str, index: int, x: int, y: int, limits: tuple[int, int]) -> EventFormatError:
    width, height = limits
    where = f"the {width}x{height} sensor" if limits != _ADDRESSABLE else "the 2048x2048 pixels the format addresses"
    return EventFormatError(f"EVT {version} word {index} has an event at x={x}, y={y}, outside {where} (damaged file)")


# ---- EVT 2.0 --------------------------------------------------------------------------------------


def decode_evt2(data) -> np.ndarray:
    """Decode an EVT 2.0 stream (bytes of a ``.raw`` file, with or without its header).

    ``data``: any buffer-protocol object; events off the header's geometry (when it gives one) are refused.
    """
    words, fields = _words(data, "<u4", "2.0")
    return EvtDecoder("2.0", _geometry(fields)).decode_words(words)


def _decode_evt2_numpy(words: np.ndarray, state: np.ndarray, offset: int, limits: tuple[int, int]) -> np.ndarray:
    """The numpy twin of :func:`talon.io.evt_kernels.evt2_decode`: cache-sized blocks, a few passes each.

    Raises for the first bad word (``offset``: the stream position of ``words[0]``), ``state`` unchanged.
    """
    n_cd = int(np.count_nonzero(words < 0x20000000))  # types 0x0 and 0x1
    out = np.empty(n_cd, dtype=EVENT_DTYPE)
    high, done = int(state[0]) << 6, 0
    for start in range(0, words.size, _BLOCK):  # blocks that stay in the CPU cache across the passes
        block = words[start : start + _BLOCK]
        high, n = _decode_evt2_block(block, high, out[done:], start + offset, limits)
        done += n
    state[0] = high >> 6
    return out


_BLOCK = 1 << 16  # words per block (< 2**21: the packed counters of EVT 3.0)


def _decode_evt2_block(
    words: np.ndarray, high: int, out: np.ndarray, offset: int, limits: tuple[int, int]
) -> tuple[int, int]:
    """Decode one block into ``out`` given the time-high value before it; returns (time high after, events)."""
    kinds = words >> 28
    is_high = kinds == 0x8
    is_cd = kinds <= 1
    high_at = np.flatnonzero(is_high)
    cd = words[is_cd]
    if limits != _ADDRESSABLE:  # 11-bit addresses cannot leave the addressable 2048 x 2048
        off = (((cd >> 11) & 0x7FF) >= limits[0]) | ((cd & 0x7FF) >= limits[1])
        if off.any():  # the first one, unless an unknown word comes before it
            i = int(np.argmax(off))
            at = int(np.flatnonzero(is_cd)[i])
            unknown = _first_unknown(kinds[:at], _EVT2_TYPES)
            if unknown is None:
                raise _off_sensor("2.0", at + offset, int(cd[i] >> 11 & 0x7FF), int(cd[i] & 0x7FF), limits)
            raise _unknown_type("2.0", unknown + offset, int(kinds[unknown]))
    if cd.size + high_at.size != words.size:  # other words: triggers, continued, or damage
        unknown = _first_unknown(kinds, _EVT2_TYPES)
        if unknown is not None:
            raise _unknown_type("2.0", unknown + offset, int(kinds[unknown]))
        before = np.cumsum(is_cd)[high_at] if high_at.size else high_at
    else:
        before = high_at - np.arange(high_at.size)  # CD words before each time-high word
    highs = np.concatenate([[high], (words[high_at] & 0x0FFFFFFF).astype(np.int64) << 6])
    # events between two time-high words share the earlier one's value: fill segments, no per-word scan
    t = np.repeat(highs, np.diff(np.concatenate([[0], before, [cd.size]])))
    n = cd.size
    np.bitwise_or(t, (cd >> 22) & 0x3F, out=out["t"][:n], casting="unsafe")  # ufuncs write the fields directly
    np.bitwise_and(cd >> 11, 0x7FF, out=out["x"][:n], casting="unsafe")
    np.bitwise_and(cd, 0x7FF, out=out["y"][:n], casting="unsafe")
    np.greater_equal(cd, 0x10000000, out=out["p"][:n])  # type 0x1 (CD_ON) rather than 0x0
    return int(highs[-1]), n


def encode_evt2(events, sensor_size=None) -> bytes:
    """EVT 2.0 bytes (header included) of time-sorted events with ``0 <= t < 2**34``, ``x, y < 2048``.

    A ``EVT_TIME_HIGH`` word precedes the first event and every event whose ``t >> 6`` differs
    from its predecessor's.
    """
    events = _encodable(events, 1 << 34, "2.0", sensor_size)
    n = events.size
    high = events["t"] >> 6
    new_high = np.ones(n, dtype=bool)
    new_high[1:] = high[1:] != high[:-1]
    total = n + int(new_high.sum())
    words = np.empty(total, dtype="<u4")
    event_pos = np.arange(n) + np.cumsum(new_high)
    words[event_pos[new_high] - 1] = (0x8 << 28) | high[new_high].astype(np.uint32)
    cd = (events["p"].astype(np.uint32) << 28) | ((events["t"] & 0x3F).astype(np.uint32) << 22)
    words[event_pos] = cd | (events["x"].astype(np.uint32) << 11) | events["y"].astype(np.uint32)
    return _header("2.0", sensor_size) + words.tobytes()


# ---- EVT 3.0 --------------------------------------------------------------------------------------


def decode_evt3(data) -> np.ndarray:
    """Decode an EVT 3.0 stream (bytes of a ``.raw`` file, with or without its header).

    ``data``: any buffer-protocol object; events off the header's geometry (when it gives one) are refused.
    """
    words, fields = _words(data, "<u2", "3.0")
    return EvtDecoder("3.0", _geometry(fields)).decode_words(words)


def _decode_evt3_numpy(words: np.ndarray, state: np.ndarray, offset: int, limits: tuple[int, int]) -> np.ndarray:
    """The numpy twin of :func:`talon.io.evt_kernels.evt3_decode`: cache-sized blocks, a few passes each.

    Raises for the first bad word (``offset``: the stream position of ``words[0]``), ``state`` unchanged.
    """
    registers = _Evt3State(state)
    blocks = [
        _decode_evt3_block(words[s : s + _BLOCK], registers, s + offset, limits) for s in range(0, words.size, _BLOCK)
    ]
    registers.store(state)
    return blocks[0] if len(blocks) == 1 else concatenate_events(blocks)


class _Evt3State:
    """The EVT 3.0 decoder's registers between blocks (all start at 0, as in expelliarmus), as Python ints."""

    def __init__(self, state: np.ndarray) -> None:
        self.y, self.pol, self.high, self.loops, self.low, self.base_x = (int(v) for v in state)

    def array(self) -> np.ndarray:
        return np.array([self.y, self.pol, self.high, self.loops, self.low, self.base_x], dtype=np.int64)

    def store(self, state: np.ndarray) -> None:
        state[:] = self.array()


def _decode_evt3_block(words: np.ndarray, state: _Evt3State, offset: int, limits: tuple[int, int]) -> np.ndarray:
    kinds = (words >> 12).astype(np.uint8)
    order = np.argsort(kinds, kind="stable")  # radix sort: the positions of each kind, in file order
    bounds = np.concatenate([[0], np.cumsum(np.bincount(kinds, minlength=16))])
    if (bounds[1:] - bounds[:-1])[_EVT3_INVALID].any():
        unknown = _first_unknown(kinds, _EVT3_TYPES)
        _decode_evt3_block(words[:unknown], _Evt3State(state.array()), offset, limits)  # off-sensor events before it
        raise _unknown_type("3.0", unknown + offset, int(kinds[unknown]))

    def at(*ks: int) -> np.ndarray:
        parts = [order[bounds[k] : bounds[k + 1]] for k in ks]
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts), kind="stable")

    # how many words of each register kind precede every word: two cumulative sums of packed counters
    counts_a = np.cumsum(_COUNTERS_A.take(kinds))
    counts_b = np.cumsum(_COUNTERS_B.take(kinds))
    emit = at(_ADDR_X, _VECT_12, _VECT_8)  # the words that carry events, in file order
    value = (words[emit] & 0xFFF).astype(np.int64)
    ekind = kinds[emit]
    single = ekind == _ADDR_X
    a, b = counts_a[emit], counts_b[emit]

    def register(positions: np.ndarray, bits: int, shift: int, before: int) -> np.ndarray:
        """``before`` (the register on entry), then the ``bits``-bit field of each word at ``positions``."""
        return np.concatenate([[before], (words[positions] >> shift) & ((1 << bits) - 1)]).astype(np.int64)

    ys = register(at(_ADDR_Y), 11, 0, state.y)
    y = ys[a & _MASK21]
    # polarity of a vector: the last EVT_ADDR_X or VECT_BASE_X (both set it)
    pols = register(at(_ADDR_X, _BASE_X), 1, 11, state.pol)
    pol = np.where(single, value >> 11, pols[(a >> 21) & _MASK21])
    # time: time_high with 24-bit loops (a smaller time_high than the previous one), then time_low
    highs = register(at(_TIME_HIGH), 12, 0, state.high)
    loops = state.loops + np.cumsum(np.concatenate([[0], highs[1:] < highs[:-1]]))
    lows = register(at(_TIME_LOW), 12, 0, state.low)
    t = ((loops << 24) + (highs << 12))[a >> 42] + lows[b & _MASK21]
    # x: the address of EVT_ADDR_X; for vectors the last VECT_BASE_X plus 12 / 8 per vector word since
    x0 = value & 0x7FF
    vect = np.flatnonzero(~single)
    step = np.where(ekind[vect] == _VECT_12, 12, 8)
    done = np.concatenate([[0], np.cumsum(step)])  # pixels the vector words before each one advanced
    base_at = at(_BASE_X)
    bases = register(base_at, 11, 0, state.base_x)
    since = np.concatenate([[0], counts_b[base_at] >> 42])  # vector words before each base word
    base_count = (b[vect] >> 21) & _MASK21
    x0[vect] = bases[base_count] + done[:-1] - done[since[base_count]]
    if vect.size == 0:
        x, row = x0, None
    else:
        mask = np.where(single, 1, np.where(ekind == _VECT_8, value & 0xFF, value))
        n_bits = _POPCOUNT[mask]
        first = np.cumsum(n_bits) - n_bits
        total = int(first[-1] + n_bits[-1])
        # the event word of each event: a running count of event words started so far
        row = np.cumsum(np.bincount(first[n_bits > 0], minlength=total), dtype=np.int32) - 1
        row = np.flatnonzero(n_bits > 0)[row] if (n_bits == 0).any() else row
        # event k of word w is bit number (k - first[w]) of w's mask: a table of set-bit positions
        x = x0[row] + _BIT_POSITIONS.ravel()[np.arange(total) + (mask * 12 - first)[row]]
        y, t, pol = y[row], t[row], pol[row]
    off = (x >= limits[0]) | (y >= limits[1])  # x may pass 2047 (a base plus a bit index): refused, never wrapped
    if off.any():
        i = int(np.argmax(off))
        raise _off_sensor("3.0", int(emit[i if row is None else row[i]]) + offset, int(x[i]), int(y[i]), limits)
    state.y, state.pol, state.high, state.loops, state.low = ys[-1], pols[-1], highs[-1], loops[-1], lows[-1]
    state.base_x = bases[-1] + done[-1] - done[since[-1]]
    out = np.empty(x.size, dtype=EVENT_DTYPE)
    out["x"] = x
    out["y"] = y
    out["t"] = t
    out["p"] = pol
    return out


def _counters(*fields: tuple[int, ...]) -> np.ndarray:
    """Per word kind, three 21-bit counter increments packed in an int64 (one per tuple of kinds)."""
    table = np.zeros(16, dtype=np.int64)
    for slot, kinds in enumerate(fields):
        for k in kinds:
            table[k] += 1 << (21 * slot)
    return table


_MASK21 = (1 << 21) - 1
_COUNTERS_A = _counters((_ADDR_Y,), (_ADDR_X, _BASE_X), (_TIME_HIGH,))  # y, polarity, time high
_COUNTERS_B = _counters((_TIME_LOW,), (_BASE_X,), (_VECT_12, _VECT_8))  # time low, base x, vectors
_EVT3_INVALID = ~np.isin(np.arange(16), _EVT3_TYPES)
_POPCOUNT = np.array([bin(m).count("1") for m in range(4096)], dtype=np.int64)
_BIT_POSITIONS = np.array([[k for k in range(12) if m >> k & 1] + [0] * (12 - bin(m).count("1")) for m in range(4096)])


def encode_evt3(events, sensor_size=None, *, vectorize: bool = True) -> bytes:
    """EVT 3.0 bytes (header included) of time-sorted events with ``t >= 0``.

    Events with the same ``t``, ``y`` and polarity and increasing ``x`` inside one 12-pixel block
    become one ``VECT_BASE_X`` + ``VECT_12`` (or ``VECT_8`` when they fit in 8 pixels); the base is
    omitted when the previous word was a ``VECT_12`` of the preceding block (base_x advanced by 12).
    Single events are ``EVT_ADDR_X``. ``vectorize=False`` writes every event as ``EVT_ADDR_X``.
    Time jumps of one or more whole 24-bit loops are written as extra ``EVT_TIME_HIGH`` pairs
    (0xFFF then 0: one wrap each), so any timestamp and gap is representable. Decoding the
    result gives back the same events in the same order.
    """
    events = _encodable(events, None, "3.0", sensor_size)
    n = events.size
    t, x, y, p = events["t"], events["x"].astype(np.int64), events["y"].astype(np.int64), events["p"]
    block = x // 12 if vectorize else np.arange(n)
    new = np.ones(n, dtype=bool)
    new[1:] = (t[1:] != t[:-1]) | (y[1:] != y[:-1]) | (p[1:] != p[:-1]) | (block[1:] != block[:-1]) | (x[1:] <= x[:-1])
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    g_t, g_y, g_p, g_x = t[starts], y[starts], p[starts].astype(np.int64), x[starts]
    g_block = x[starts] // 12
    offsets = x - np.repeat(g_block * 12, sizes)
    g_mask = np.bitwise_or.reduceat(np.left_shift(1, offsets), starts) if n else offsets
    single = sizes == 1
    vect8 = ~single & (g_mask < 256)
    vect12 = ~single & ~vect8
    first = np.zeros(starts.size, dtype=bool)
    first[:1] = True
    same_run = np.zeros(starts.size, dtype=bool)
    same_run[1:] = (g_t[1:] == g_t[:-1]) & (g_y[1:] == g_y[:-1]) & (g_p[1:] == g_p[:-1])
    skip_base = np.zeros(starts.size, dtype=bool)
    skip_base[1:] = same_run[1:] & vect12[:-1] & (g_block[1:] == g_block[:-1] + 1)
    new_high = first.copy()
    new_high[1:] = (g_t[1:] >> 12) != (g_t[:-1] >> 12)
    new_low = first.copy()
    new_low[1:] = g_t[1:] != g_t[:-1]
    new_y = first.copy()
    new_y[1:] = g_y[1:] != g_y[:-1]
    table = np.zeros((starts.size, 5), dtype=np.int64)
    use = np.zeros((starts.size, 5), dtype=bool)
    table[:, 0], use[:, 0] = (_TIME_HIGH << 12) | ((g_t >> 12) & 0xFFF), new_high
    table[:, 1], use[:, 1] = (_TIME_LOW << 12) | (g_t & 0xFFF), new_low
    table[:, 2], use[:, 2] = (_ADDR_Y << 12) | g_y, new_y
    table[:, 3], use[:, 3] = (_BASE_X << 12) | (g_p << 11) | (g_block * 12), ~single & ~skip_base
    table[:, 4] = np.where(
        single,
        (_ADDR_X << 12) | (g_p << 11) | g_x,
        np.where(vect8, (_VECT_8 << 12) | g_mask, (_VECT_12 << 12) | g_mask),
    )
    use[:, 4] = True
    words = table[use]
    # whole 24-bit loops the decoder cannot infer from a smaller time_high: one (0xFFF, 0) pair per loop
    g_loops, g_high = g_t >> 24, (g_t >> 12) & 0xFFF
    prev_loops, prev_high = np.append(0, g_loops[:-1]), np.append(0, g_high[:-1])
    jump = g_loops - prev_loops
    pairs = np.where((jump == 1) & (g_high < prev_high), 0, jump)
    if pairs.any():
        per_group = use.sum(axis=1)
        at = np.cumsum(per_group) - per_group  # each group's first word (its EVT_TIME_HIGH)
        extra = np.tile([(_TIME_HIGH << 12) | 0xFFF, _TIME_HIGH << 12], int(pairs.sum()))
        words = np.insert(words, np.repeat(at, 2 * pairs), extra)
    return _header("3.0", sensor_size) + words.astype("<u2").tobytes()


def _encodable(events, t_limit: int | None, version: str, sensor_size) -> np.ndarray:
    events = as_events(events)
    bad = first_unsorted(events["t"])
    if bad is not None:
        raise EventFormatError(f"EVT {version} encoding needs time-sorted events; event {bad} goes back in time")
    if events.size:
        if events["t"][0] < 0 or (t_limit is not None and events["t"][-1] >= t_limit):
            limit = "" if t_limit is None else f", below {t_limit}"
            raise EventFormatError(f"EVT {version} timestamps must be non-negative{limit} µs; subtract an offset")
        check_pixels(events)
        if events["x"].max() > _MAX_XY or events["y"].max() > _MAX_XY:
            raise EventFormatError(f"EVT {version} addresses are 11 bits: x and y must be at most {_MAX_XY}")
        size = _sensor_size(sensor_size)  # the header's geometry: the decoders refuse events off it
        if size is not None and (events["x"].max() >= size[0] or events["y"].max() >= size[1]):
            raise EventFormatError(
                f"events reach x={events['x'].max()}, y={events['y'].max()}, outside the {size[0]}x{size[1]} "
                "sensor_size given for the header"
            )
    return events


# ---- files ----------------------------------------------------------------------------------------


def read_raw(path, *, max_bytes: int | None = None) -> np.ndarray:
    """Events of a Prophesee ``.raw`` file (EVT 2.0 or 3.0, from its header).

    ``max_bytes``: the decode budget (default :func:`talon.io.budget.default_event_budget` of the
    file's size): the events the words hold are counted, and refused, before they are decoded."""
    path = check_path(path, "read_raw: the .raw file to read")
    budget = event_budget(path, max_bytes)
    fields, offset = raw_info(path)
    decoder = EvtDecoder(fields["evt"], _geometry(fields))
    size = Path(path).stat().st_size - offset
    if size % decoder.word_dtype.itemsize:
        raise EventFormatError(
            f"{path}: EVT {decoder.version} data is {size} bytes, not a whole number of "
            f"{decoder.word_dtype.itemsize}-byte words (truncated file?)"
        )
    words = np.fromfile(path, dtype=decoder.word_dtype, offset=offset)  # aligned, no header bytes
    # at most one event per EVT 2.0 word and 12 per EVT 3.0 word; counted exactly when that could be too many
    count = words.size * (1 if decoder.version == "2.0" else 12)
    if decoder.version == "3.0" and count * EVENT_DTYPE.itemsize > budget.limit:
        count = evt_kernels.evt3_event_count(words)
    budget.charge(count * EVENT_DTYPE.itemsize, f"decoding {count:,} events")
    try:
        return decoder.decode_words(words)
    except EventFormatError as exc:
        raise EventFormatError(f"{path}: {exc}") from None


_MIN_PIECE_WORDS = 1 << 15  # words read at once at least: fewer, larger decoder calls for small chunks


def iter_raw(path, chunk_size: int) -> Iterator[np.ndarray]:
    """The events of a ``.raw`` file in blocks of ``chunk_size`` (the last one shorter), decoded as read.

    The file is read ``max(chunk_size, 32768)`` words at a time and decoded by one
    :class:`EvtDecoder`, so memory stays proportional to that (a word is at most 12 events)
    whatever the file's size; the blocks are those of :func:`read_raw`'s result.
    """
    path = check_path(path, "iter_raw: the .raw file to read")
    if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
        raise EventFormatError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    chunk_size = int(chunk_size)
    fields, offset = raw_info(path)
    decoder = EvtDecoder(fields["evt"], _geometry(fields))
    pending = np.zeros(0, dtype=EVENT_DTYPE)
    piece_size = max(chunk_size, _MIN_PIECE_WORDS) * decoder.word_dtype.itemsize
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            while piece := fh.read(piece_size):
                events, start = decoder.feed(piece), 0
                if pending.size:  # complete the block begun in the previous piece
                    start = min(chunk_size - pending.size, events.size)
                    pending = concatenate_events([pending, events[:start]])
                    if pending.size < chunk_size:
                        continue
                    yield pending
                full = start + (events.size - start) // chunk_size * chunk_size
                for begin in range(start, full, chunk_size):
                    yield events[begin : begin + chunk_size]
                pending = concatenate_events([events[full:]])  # a copy: the piece's array can go
        decoder.finish()
    except EventFormatError as exc:
        raise EventFormatError(f"{path}: {exc}") from None
    if pending.size:
        yield pending


def raw_info(path) -> tuple[dict[str, str], int]:
    """``(header fields, header length in bytes)`` of a ``.raw`` file; refuses a file without ``evt``."""
    path = check_path(path, "raw_info: the .raw file to read")
    if path.is_dir():
        raise EventFormatError(f"{path} is a directory, not a regular .raw file")
    if not path.is_file():
        raise FileNotFoundError(f"no such event file: {path}")
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    try:
        fields, offset = split_header(head)
    except EventFormatError as exc:
        raise EventFormatError(f"{path}: {exc}") from None
    if "evt" not in fields:
        raise EventFormatError(
            f"{path}: the header names no EVT version ('% evt 2.0' / '% evt 3.0' / '% format EVT3'); "
            "is it a Prophesee .raw file?"
        )
    size = _geometry(fields)
    if size is not None and min(size) < 1:
        raise EventFormatError(f"{path}: the header gives a {size[0]}x{size[1]} sensor (damaged header)")
    return fields, offset


def write_raw(path, events, *, version: str = "3.0", sensor_size=None) -> None:
    """Write events as a Prophesee ``.raw`` file (``version`` ``"2.0"`` or ``"3.0"``), atomically."""
    check_path(path, "write_raw: the .raw file to write")
    if version not in ("2.0", "3.0"):
        raise EventFormatError(f"version must be '2.0' or '3.0', got {version!r}")
    data = (encode_evt2 if version == "2.0" else encode_evt3)(events, sensor_size)
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
