"""The packet inbox that replaces aiortc's audio jitter buffer: order, loss, late and restarts."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from ruang.media.buffer import InputBuffer
from ruang.rtc.receive import REORDER_PACKETS, PacketInbox


def packet(seq: int) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq % 65536, timestamp=seq * 960)
    p.payload = f"p{seq % 65536}".encode()
    return p


def feed(seqs: list[int]) -> tuple[list[bytes], PacketInbox]:
    buffer = InputBuffer()
    inbox = PacketInbox(buffer)
    for s in seqs:
        assert inbox.add(packet(s)) == (False, None)  # nothing for aiortc's decoder thread
    return buffer.take_packets(), inbox


def names(seqs: list[int]) -> list[bytes]:
    return [f"p{s % 65536}".encode() for s in seqs]


def test_in_order_packets_pass_at_once() -> None:
    got, _ = feed([10, 11, 12])
    assert got == names([10, 11, 12])


def test_swapped_packets_are_put_back_in_order() -> None:
    got, inbox = feed([10, 12, 11, 13])
    assert got == names([10, 11, 12, 13]) and inbox.skipped == 0


def test_a_lost_packet_is_skipped_after_the_reorder_window() -> None:
    after = list(range(12, 12 + REORDER_PACKETS + 1))
    got, inbox = feed([10, *after])
    assert got == names([10, *after]) and inbox.skipped == 1


def test_a_loss_waits_no_longer_than_the_window() -> None:
    got, _ = feed([10, *range(12, 12 + REORDER_PACKETS)])
    assert got == names([10])  # still waiting for 11


def test_late_and_duplicate_packets_are_dropped() -> None:
    got, inbox = feed([10, 11, 11, 9])
    assert got == names([10, 11]) and inbox.late == 2


def test_sequence_numbers_wrap() -> None:
    got, _ = feed([65534, 65535, 65536, 65537])
    assert got == names([65534, 65535, 0, 1])


def test_a_restarted_stream_is_followed() -> None:
    got, _ = feed([10, 11, 30_000, 30_001])
    assert got == names([10, 11, 30_000, 30_001])


def test_the_inbox_is_bounded() -> None:
    buffer = InputBuffer()
    inbox = PacketInbox(buffer)
    for s in range(100):
        inbox.add(packet(s))
    got = buffer.take_packets()
    assert len(got) < 100 and got[-1] == b"p99"  # the newest kept, the oldest dropped
