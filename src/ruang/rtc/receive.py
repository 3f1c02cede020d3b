"""A speaker's incoming RTP, straight into their input buffer: no thread, no 80 ms prefetch.

aiortc hands each received audio packet to a jitter buffer that holds four frames (80 ms)
before releasing one, then to a decoder thread per receiver that hands every decoded frame
back to the event loop (a cross-thread wake-up and a coroutine per 20 ms frame). The server
already absorbs network jitter in its own input buffer, and decodes in the mixer tick, so
the receiver's jitter buffer is replaced by a `PacketInbox`: it puts packets back in order
(waiting at most REORDER_PACKETS for a missing one) and queues their payloads in the
speaker's InputBuffer. aiortc's decoder thread then never gets work; it waits idle and ends
when the receiver stops, as before.
"""

from __future__ import annotations

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from ruang.media.buffer import InputBuffer

REORDER_PACKETS = 2  # packets held while one is missing (40 ms at 20 ms a packet), then skipped
RESTART_GAP = 1000  # packets; a jump this far ahead (or behind) is a new run of the stream
_JITTER_BUFFER_ATTR = "_RTCRtpReceiver__jitter_buffer"  # aiortc 1.9–1.16: where it keeps it
_SEQ_MOD = 1 << 16


class PacketInbox:
    """Orders one stream's RTP packets by sequence number and queues their payloads."""

    def __init__(self, buffer: InputBuffer) -> None:
        self._buffer = buffer
        self._next: int | None = None  # the sequence number expected next
        self._held: dict[int, bytes] = {}
        self.received = 0
        self.late = 0  # arrived after their turn had passed (dropped)
        self.skipped = 0  # never arrived in time (lost, or later than REORDER_PACKETS)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """aiortc's jitter-buffer call: take a packet; returns (no PLI, no frame to decode),
        since the payloads went to the input buffer."""
        self.received += 1
        seq = packet.sequence_number
        if self._next is None:
            self._next = seq
        ahead = (seq - self._next) % _SEQ_MOD
        if ahead >= _SEQ_MOD - RESTART_GAP:  # behind: a duplicate, or too late to be used
            self.late += 1
            return False, None
        if ahead >= RESTART_GAP:  # the sender started over: forget the old run
            self._held.clear()
            self._next = seq
        self._held[seq] = packet.payload
        self._release()
        return False, None

    def _release(self) -> None:
        assert self._next is not None
        while self._held:
            payload = self._held.pop(self._next, None)
            if payload is None:
                if len(self._held) <= REORDER_PACKETS:
                    return  # wait a little for the missing one
                self.skipped += 1
            elif payload:  # an empty payload is padding: nothing to decode
                self._buffer.push_packet(payload)
            self._next = (self._next + 1) % _SEQ_MOD


def receive_into(receiver: RTCRtpReceiver, buffer: InputBuffer) -> PacketInbox:
    """Make `receiver` queue its packets' payloads in `buffer` (call before it connects).

    Raises RuntimeError if this aiortc keeps its audio jitter buffer elsewhere: the server
    must not silently fall back to a path that decodes nothing."""
    if not isinstance(getattr(receiver, _JITTER_BUFFER_ATTR, None), JitterBuffer):
        raise RuntimeError(
            f"aiortc's RTCRtpReceiver has no {_JITTER_BUFFER_ATTR}: ruang.rtc.receive needs "
            "updating for this aiortc version"
        )
    inbox = PacketInbox(buffer)
    setattr(receiver, _JITTER_BUFFER_ATTR, inbox)
    return inbox
