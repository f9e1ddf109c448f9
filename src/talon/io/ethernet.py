"""Events over UDP: numbered packets, so a receiver counts lost, reordered and duplicated packets.

Packet (little-endian): ``magic b"TEV1"``, ``sequence uint32``, ``count uint16``, then ``count``
events of 13 bytes (``x int16, y int16, t int64, p uint8``: :data:`~talon.io.events.EVENT_DTYPE`).
At most :data:`MAX_EVENTS_PER_PACKET` events per packet (one 1472-byte Ethernet payload).
Sequence numbers count up from the streamer's first packet; the receiver calls a packet lost
when its number was skipped and never arrived, and reordered when it arrives after a later one.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

import numpy as np

from .events import EVENT_DTYPE, EventFormatError, as_events, concatenate_events

MAGIC = b"TEV1"
_HEADER = struct.Struct("<4sIH")
MAX_EVENTS_PER_PACKET = (1472 - _HEADER.size) // EVENT_DTYPE.itemsize


def pack_events_udp(events, first_sequence: int = 0, max_events: int = MAX_EVENTS_PER_PACKET) -> list[bytes]:
    """Packets of at most ``max_events`` events each, numbered from ``first_sequence``."""
    events = np.ascontiguousarray(as_events(events), dtype=EVENT_DTYPE.newbyteorder("<"))
    if not 1 <= max_events <= MAX_EVENTS_PER_PACKET:
        raise EventFormatError(f"max_events must be in [1, {MAX_EVENTS_PER_PACKET}], got {max_events}")
    packets = []
    for k, start in enumerate(range(0, len(events), max_events)):
        block = events[start : start + max_events]
        packets.append(_HEADER.pack(MAGIC, (first_sequence + k) & 0xFFFFFFFF, len(block)) + block.tobytes())
    return packets


def unpack_events_udp(packet: bytes) -> tuple[int, np.ndarray]:
    """``(sequence, events)`` of one packet; refuses a malformed one."""
    if len(packet) < _HEADER.size:
        raise EventFormatError(f"UDP event packet of {len(packet)} bytes is shorter than its header")
    magic, sequence, count = _HEADER.unpack_from(packet)
    if magic != MAGIC:
        raise EventFormatError(f"not a talon event packet (magic {magic!r})")
    if len(packet) != _HEADER.size + count * EVENT_DTYPE.itemsize:
        raise EventFormatError(
            f"UDP event packet {sequence} is {len(packet)} bytes, not the {count} events it declares"
        )
    return sequence, np.frombuffer(packet, dtype=EVENT_DTYPE.newbyteorder("<"), offset=_HEADER.size).astype(EVENT_DTYPE)


class UDPEventStreamer:
    """Send events to ``(host, port)`` as numbered packets (:func:`pack_events_udp`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5005) -> None:
        self.address = (host, int(port))
        self.sequence = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, events) -> int:
        """Send ``events``; returns the number of packets."""
        packets = pack_events_udp(events, self.sequence)
        for packet in packets:
            self._sock.sendto(packet, self.address)
        self.sequence += len(packets)
        return len(packets)

    def send_packets(self, packets: list[bytes]) -> None:
        """Send prepared packets as they are (tests use this to drop or reorder packets on purpose)."""
        for packet in packets:
            self._sock.sendto(packet, self.address)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> UDPEventStreamer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class ReceiveStats:
    """What a receiver saw: packets, events, and the sequence numbers lost, reordered and duplicated."""

    packets: int = 0
    events: int = 0
    lost: int = 0
    reordered: int = 0
    duplicates: int = 0
    malformed: int = 0
    missing: list[int] = field(default_factory=list)


def udp_event_receiver(
    sock: socket.socket,
    *,
    expected_packets: int | None = None,
    timeout: float = 1.0,
) -> tuple[np.ndarray, ReceiveStats]:
    """Receive packets on a bound UDP socket until ``expected_packets`` arrived or ``timeout`` s of silence.

    Returns the events in arrival order and the :class:`ReceiveStats`. ``lost`` counts the
    sequence numbers between the smallest and largest seen that never arrived (plus the ones
    after the largest up to ``expected_packets``, when given, counting from the smallest).
    """
    sock.settimeout(timeout)
    stats = ReceiveStats()
    blocks, seen = [], set()
    highest = None
    while expected_packets is None or stats.packets < expected_packets:
        try:
            packet = sock.recv(65536)
        except TimeoutError:
            break
        try:
            sequence, events = unpack_events_udp(packet)
        except EventFormatError:
            stats.malformed += 1
            continue
        if sequence in seen:
            stats.duplicates += 1
            continue
        if highest is not None and sequence < highest:
            stats.reordered += 1
        highest = sequence if highest is None else max(highest, sequence)
        seen.add(sequence)
        stats.packets += 1
        stats.events += len(events)
        blocks.append(events)
    if seen:
        first = min(seen)
        last = max(highest, first + expected_packets - 1) if expected_packets else highest
        stats.missing = [s for s in range(first, last + 1) if s not in seen]
        stats.lost = len(stats.missing)
    events = concatenate_events(blocks)
    return events, stats
