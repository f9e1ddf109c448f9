"""Chunked readers, ring buffer, clock alignment and merging, UDP with loss and reorder accounting."""

import socket

import numpy as np
import pytest

from talon.io import (
    EVENT_DTYPE,
    BufferedEventReader,
    EventBuffer,
    EventFormatError,
    SensorSync,
    align_timestamps,
    generate_random_events,
    merge_events,
    write_events,
)
from talon.io.ethernet import MAX_EVENTS_PER_PACKET, UDPEventStreamer, pack_events_udp, udp_event_receiver
from talon.io.sync import estimate_offset


@pytest.mark.parametrize("suffix", [".h5", ".npy", ".raw"])
def test_buffered_reader_hands_out_the_whole_file_in_chunks(tmp_path, suffix):
    ev = generate_random_events(2500, (64, 48), seed=1)
    path = tmp_path / f"e{suffix}"
    write_events(path, ev, (64, 48))
    chunks = list(BufferedEventReader(path, chunk_size=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert np.concatenate(chunks).tobytes() == ev.tobytes()


def test_event_buffer_keeps_the_newest_and_counts_drops():
    ev = generate_random_events(25, seed=2)
    buf = EventBuffer(capacity=10)
    buf.push(ev[:6])
    assert buf.pop(2).tobytes() == ev[:2].tobytes()
    buf.push(ev[6:14])  # 4 + 8 = 12 > 10: the 2 oldest go
    assert buf.dropped == 2 and len(buf) == 10
    assert buf.peek().tobytes() == ev[4:14].tobytes()
    buf.push(ev[14:25])  # more than the capacity at once
    assert buf.pop().tobytes() == ev[15:25].tobytes() and buf.dropped == 13 and len(buf) == 0


def test_align_and_merge():
    a = generate_random_events(300, seed=3)
    b = generate_random_events(200, seed=4)
    shifted = align_timestamps(b, offset_us=-250)
    np.testing.assert_array_equal(shifted["t"], b["t"] - 250)
    merged, source = merge_events(a, shifted, return_source=True)
    assert len(merged) == 500 and np.all(np.diff(merged["t"]) >= 0)
    assert merged[source == 0].tobytes() == a.tobytes() and merged[source == 1].tobytes() == shifted.tobytes()
    sync = SensorSync()
    sync.add_source("left")
    sync.add_source("right", offset_us=estimate_offset([1000, 2000, 3000], [1250, 2250, 3249]))
    events, names, source = sync.merge({"left": a, "right": b})
    assert names == ["left", "right"] and events.tobytes() == merged.tobytes()
    with pytest.raises(EventFormatError, match="not time-sorted"):
        merge_events(a[::-1])


def test_merge_labels_more_streams_than_uint16_counts():
    one = generate_random_events(1, seed=5)
    streams = [one] * 70_000
    merged, source = merge_events(*streams, return_source=True)
    assert source.dtype == np.uint32 and source[-1] == 69_999 and len(merged) == 70_000
    _, few = merge_events(one, one, return_source=True)
    assert few.dtype == np.uint16 and list(few) == [0, 1]
    _, none = merge_events(return_source=True)
    assert none.dtype == np.uint16 and none.size == 0


def test_udp_loopback_counts_lost_and_reordered_packets():
    ev = generate_random_events(20 * MAX_EVENTS_PER_PACKET, seed=5)
    packets = pack_events_udp(ev)
    assert len(packets) == 20 and all(len(p) <= 1472 for p in packets)
    sent = [packets[i] for i in range(20) if i not in (3, 11)]  # lose 3 and 11
    sent[5], sent[6] = sent[6], sent[5]  # packets 7 and 6 swap places
    sent.append(packets[0])  # a duplicate
    sent.append(b"garbage")
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    receiver.bind(("127.0.0.1", 0))
    try:
        with UDPEventStreamer("127.0.0.1", receiver.getsockname()[1]) as streamer:
            streamer.send_packets(sent)
        got, stats = udp_event_receiver(receiver, expected_packets=20, timeout=0.5)
    finally:
        receiver.close()
    assert stats.packets == 18 and stats.lost == 2 and stats.missing == [3, 11]
    assert stats.reordered == 1 and stats.duplicates == 1 and stats.malformed == 1
    kept = np.concatenate([ev[i * MAX_EVENTS_PER_PACKET : (i + 1) * MAX_EVENTS_PER_PACKET] for i in
                           [0, 1, 2, 4, 5, 7, 6, 8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19]])  # fmt: skip
    assert got.dtype == EVENT_DTYPE and got.tobytes() == kept.tobytes()


def test_udp_streamer_numbers_packets_across_sends():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    ev = generate_random_events(3 * MAX_EVENTS_PER_PACKET, seed=6)
    try:
        with UDPEventStreamer("127.0.0.1", receiver.getsockname()[1]) as streamer:
            assert streamer.send(ev[:MAX_EVENTS_PER_PACKET]) == 1
            assert streamer.send(ev[MAX_EVENTS_PER_PACKET:]) == 2
        got, stats = udp_event_receiver(receiver, expected_packets=3, timeout=0.5)
    finally:
        receiver.close()
    assert stats.lost == 0 and stats.reordered == 0 and got.tobytes() == ev.tobytes()
