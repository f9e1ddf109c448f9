"""One-pass EVT 2.0 / 3.0 decoding loops, compiled with numba through :func:`talon._compiled.compiled`.

These are the compiled twins of the vectorised numpy decoders in :mod:`talon.io.prophesee` and
return identical events (the tests run both on the same streams). Like expelliarmus' C decoders
they make one pass over the words and write every event straight into the structured event
array: EVT 2.0 into an array of one event per word (the caller trims), EVT 3.0, whose words carry
0 to 12 events, after a branch-free counting pass (:func:`evt3_count`) that sizes it exactly and
finds damaged words.

The decoder's registers live in ``state`` (int64, updated in place) so a stream can be decoded
in pieces: EVT 2.0 ``state[0]`` is the last ``EVT_TIME_HIGH`` value (``t[33:6]``); EVT 3.0
``state = [y, polarity, time_high, loops, time_low, base_x]``. A call that stops at a damaged
word leaves ``state`` as it was, so the caller sees the registers from before the failed piece.

Every event must lie on the sensor, ``x < width`` and ``y < height`` (the header's geometry, or
2048 x 2048, the 11-bit limit of both formats): an EVT 3.0 vector whose base ``x`` plus bit index
goes past it is a damaged stream, never an event at a wrapped coordinate. The decoders return
the first offending word with the event's ``x`` and ``y``.

This module is plain Python (numba's subset); importing it does not import numba.
"""

from __future__ import annotations

import numpy as np

EVT3_STATE_SIZE = 6


def evt2_decode(words: np.ndarray, out: np.ndarray, state: np.ndarray, width: int, height: int) -> tuple:
    """Write the CD events of EVT 2.0 ``words`` into ``out`` (``out.size >= words.size``).

    ``t = (time_high << 6) | t[5:0]``. Returns ``(events written, index of the first bad word or
    -1, its x, its y)``: a bad word is of an unknown type (x = y = -1) or an event off the
    ``width`` x ``height`` sensor; decoding stops there and ``state`` is left unchanged. One pass:
    every word is at most one event, so the caller allocates ``words.size`` events and trims.
    """
    high = state[0] << 6
    n = 0
    for i in range(words.size):
        word = np.int64(words[i])
        kind = word >> 28
        if kind <= 1:
            x = (word >> 11) & 0x7FF
            y = word & 0x7FF
            if (x >= width) | (y >= height):  # `|`, not `or`: one branch (measured a few % faster)
                return n, i, x, y
            ev = out[n]
            ev.t = high | ((word >> 22) & 0x3F)
            ev.x = x
            ev.y = y
            ev.p = kind == 1
            n += 1
        elif kind == 0x8:
            high = (word & 0x0FFFFFFF) << 6
        elif kind != 0xA and kind != 0xE and kind != 0xF:
            return n, i, -1, -1
    state[0] = high >> 6
    return n, -1, -1, -1


def evt3_count(words: np.ndarray) -> tuple[int, int]:
    """``(events, index of the first word of an unknown type or -1)`` of EVT 3.0 words.

    Branch-free: a word's events are ``_SINGLE[kind] + popcount(word & _VECTOR_MASK[kind])``; an
    unknown kind adds ``_UNKNOWN``, so one comparison at the end finds damaged streams.
    """
    n = 0
    for i in range(words.size):
        word = np.int64(words[i])
        kind = word >> 12
        n += _SINGLE[kind] + _POPCOUNT[word & _VECTOR_MASK[kind]]
    if n < _UNKNOWN:
        return n, -1
    for i in range(words.size):
        if _SINGLE[words[i] >> 12] == _UNKNOWN:
            return 0, i
    return 0, -1  # unreachable


def evt3_decode(words: np.ndarray, out: np.ndarray, state: np.ndarray, width: int, height: int) -> tuple:
    """Write the events of EVT 3.0 ``words`` of known types into ``out`` (sized by :func:`evt3_count`).

    ``t = (loops << 24) + (time_high << 12) + time_low`` (``loops``: the times ``time_high`` went
    down); a ``VECT_12`` / ``VECT_8`` mask bit ``k`` is an event at ``base_x + k``, then ``base_x``
    advances by 12 / 8; a vector's polarity is that of the last ``EVT_ADDR_X`` or ``VECT_BASE_X``.
    Returns ``(events written, index of the first word with an event off the width x height
    sensor or -1, that event's x, y)``; decoding stops there and ``state`` is left unchanged.
    """
    y, pol, high, loops, low, base_x = state[0], state[1], state[2], state[3], state[4], state[5]
    t = (loops << 24) + (high << 12) + low
    n = 0
    for i in range(words.size):
        word = np.int64(words[i])
        kind = word >> 12
        if kind == 0x0:
            y = word & 0x7FF
        elif kind == 0x2:
            pol = (word >> 11) & 1
            x = word & 0x7FF
            if (x >= width) | (y >= height):
                return n, i, x, y
            ev = out[n]
            ev.x = x
            ev.y = y
            ev.t = t
            ev.p = pol != 0
            n += 1
        elif kind == 0x3:
            pol = (word >> 11) & 1
            base_x = word & 0x7FF
        elif kind == 0x4 or kind == 0x5:
            span = 12 if kind == 0x4 else 8
            mask = word & (0xFFF if kind == 0x4 else 0xFF)
            while mask:  # one event per set bit, lowest first
                x = base_x + _TRAILING_ZEROS[mask]
                if (x >= width) | (y >= height):
                    return n, i, x, y
                ev = out[n]
                ev.x = x
                ev.y = y
                ev.t = t
                ev.p = pol != 0
                n += 1
                mask &= mask - 1
            base_x += span
        elif kind == 0x6:
            low = word & 0xFFF
            t = (loops << 24) + (high << 12) + low
        elif kind == 0x8:
            value = word & 0xFFF
            if value < high:
                loops += 1
            high = value
            t = (loops << 24) + (high << 12) + low
    state[0], state[1], state[2], state[3], state[4], state[5] = y, pol, high, loops, low, base_x
    return n, -1, -1, -1


_UNKNOWN = np.int64(1) << 40  # larger than any event count of one call
_SINGLE = np.array([0, _UNKNOWN, 1, 0, 0, 0, 0, 0, 0, _UNKNOWN, 0, _UNKNOWN, _UNKNOWN, _UNKNOWN, 0, 0], dtype=np.int64)
_VECTOR_MASK = np.zeros(16, dtype=np.int64)
_VECTOR_MASK[0x4], _VECTOR_MASK[0x5] = 0xFFF, 0xFF
_POPCOUNT = np.array([bin(m).count("1") for m in range(4096)], dtype=np.int64)
_TRAILING_ZEROS = np.array([0] + [(m & -m).bit_length() - 1 for m in range(1, 4096)], dtype=np.int64)


def evt3_event_count(words: np.ndarray) -> int:
    """The events EVT 3.0 ``words`` hold, as :func:`evt3_count` sums them (words of unknown types
    count none), with numpy in blocks of 2**20 words so that the temporaries stay small: what a
    reader checks against its decode budget before decoding (:mod:`talon.io.budget`)."""
    total = 0
    for start in range(0, words.size, 1 << 20):
        block = words[start : start + (1 << 20)].astype(np.int64)
        kinds = block >> 12
        single = _SINGLE[kinds]
        total += int((np.where(single == _UNKNOWN, 0, single) + _POPCOUNT[block & _VECTOR_MASK[kinds]]).sum())
    return total
