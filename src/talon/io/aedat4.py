"""AEDAT4 recordings (iniVation DV) through the ``aedat`` package: events, frames, IMU samples, triggers.

:func:`read_aedat4` returns an :class:`AEDAT4Recording`; :class:`AEDAT4Reader` iterates the file's
packets in order (``(kind, data)`` with kind ``"events"``, ``"frame"``, ``"imus"``, ``"triggers"``).
Events become :data:`~talon.io.events.EVENT_DTYPE` (exactly: ``t`` must fit int64 and ``x, y``
int16, as they always do for real sensors); frames keep aedat's fields (``t``, exposure times,
``format``, ``pixels`` as ``[H, W]`` or ``[H, W, C]`` uint8); IMU samples and triggers stay the
structured arrays aedat returns (``t`` in µs, accelerometer in g, gyroscope in °/s, temperature
in °C; trigger ``source`` codes as in the DV documentation). Needs the ``events`` extra (``docs/install.md``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from talon.ir.budget import BudgetExceededError
from talon.ir.errors import MissingDependencyError, install_hint
from talon.ir.paths import check_path

from .aedat4_packets import PacketWalk
from .budget import event_budget
from .events import EventFormatError, as_events, concatenate_events


def _aedat():
    try:
        import aedat
    except ImportError:
        raise MissingDependencyError("reading AEDAT4 needs the 'aedat' package; " + install_hint("events")) from None
    return aedat


@dataclass
class AEDAT4Recording:
    """Everything in one AEDAT4 file, each stream concatenated in file order."""

    events: np.ndarray
    frames: list[dict] = field(default_factory=list)
    imus: np.ndarray | None = None
    triggers: np.ndarray | None = None
    sensor_size: tuple[int, int] | None = None


class AEDAT4Reader:
    """Iterate the packets of an AEDAT4 file as ``(kind, data)``; ``streams`` describes its streams.

    ``max_bytes``: the decode budget of one pass over the file (default
    :func:`talon.io.budget.default_event_budget` of its size). Before the ``aedat`` package reads
    a packet, talon decompresses it in pieces of 1 MiB that it counts and drops
    (:mod:`talon.io.aedat4_packets`): a packet that would decompress to more than what is left of
    the budget is refused with :class:`~talon.ir.budget.BudgetExceededError` naming the file, the
    packet and its byte offset, before anything of that size is allocated; the packet's decoded
    arrays are then charged to the budget. A packet or header whose size field runs past the end
    of the file is an :class:`~talon.io.events.EventFormatError`."""

    def __init__(self, path, *, max_bytes: int | None = None) -> None:
        self.path = check_path(path, "AEDAT4Reader: the AEDAT4 file to read")
        if self.path.is_dir():
            raise EventFormatError(f"{self.path} is a directory, not a regular AEDAT4 file")
        if not self.path.is_file():
            raise FileNotFoundError(f"no such AEDAT4 file: {self.path}")
        self._max_bytes = max_bytes
        aedat = _aedat()
        PacketWalk(self.path).close()  # reads the header: its length is checked before aedat allocates it
        try:
            self._decoder = aedat.Decoder(str(self.path))
            self.streams = self._decoder.id_to_stream()
        except Exception as exc:  # the Rust decoder raises plain exceptions for bad headers
            raise EventFormatError(f"{self.path}: not a readable AEDAT4 file ({exc})") from None

    @property
    def sensor_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the first event stream, if any."""
        for stream in self.streams.values():
            if stream.get("type") == "events" and "width" in stream:
                return int(stream["width"]), int(stream["height"])
        return None

    def __iter__(self) -> Iterator[tuple[str, object]]:
        budget = event_budget(self.path, self._max_bytes)
        with PacketWalk(self.path) as walk:
            for packet in walk.packets():  # the same packets as aedat's, each checked before aedat reads it
                walk.check(packet, budget.limit - budget.used, budget.limit)
                where = f"AEDAT4 packet {packet.index} (stream {packet.stream_id}) at byte {packet.offset:,}"
                try:
                    decoded = next(self._decoder, None)
                    if decoded is None:
                        raise EventFormatError("the aedat package found no packet there")
                    for kind in ("events", "frame", "imus", "triggers"):
                        if kind in decoded:
                            data = decoded[kind]
                            budget.charge(_nbytes(data), f"{where}, decoded ({kind}),")
                            yield kind, _events(data) if kind == "events" else data
                except BudgetExceededError:
                    raise
                except Exception as exc:  # aedat's plain exceptions, _events' EventFormatError
                    raise EventFormatError(f"{self.path}: damaged {where} ({exc})") from None


def _nbytes(data: object) -> int:
    """Bytes of a decoded packet: an array, or a frame's dict of arrays and values."""
    if isinstance(data, dict):
        return sum(_nbytes(v) for v in data.values())
    return int(getattr(data, "nbytes", 0))


def _events(packet: np.ndarray) -> np.ndarray:
    t = packet["t"]
    if t.size and t.max() > np.iinfo(np.int64).max:
        raise EventFormatError("event timestamps exceed int64")
    return as_events({"x": packet["x"], "y": packet["y"], "t": t.astype(np.int64), "p": packet["on"]})


def read_aedat4(path, *, max_bytes: int | None = None) -> AEDAT4Recording:
    """Read every stream of an AEDAT4 file (``max_bytes``: the decode budget, :class:`AEDAT4Reader`)."""
    path = check_path(path, "read_aedat4: the AEDAT4 file to read")
    reader = AEDAT4Reader(path, max_bytes=max_bytes)
    events, frames, imus, triggers = [], [], [], []
    for kind, data in reader:
        {"events": events, "frame": frames, "imus": imus, "triggers": triggers}[kind].append(data)
    return AEDAT4Recording(
        events=concatenate_events(events),
        frames=frames,
        imus=np.concatenate(imus) if imus else None,
        triggers=np.concatenate(triggers) if triggers else None,
        sensor_size=reader.sensor_size,
    )
