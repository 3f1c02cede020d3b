"""Messages from a media process to its captioning process, over a pipe.

Each is a header (kind, id length, time on the space's timeline in seconds, payload length),
the space id, then the payload: 16 kHz mono int16 PCM for AUDIO, nothing for END (the voice
gates closed: the utterance is over) and CLOSE (the space ended).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

AUDIO, END, CLOSE = 1, 2, 3
HEADER = struct.Struct("<BBdI")
MAX_PAYLOAD = 16_000 * 2 * 30  # bytes: no message holds more than 30 s of audio


@dataclass(frozen=True, slots=True)
class Message:
    """One message; `at` is seconds since the space went live (the replay's timeline)."""

    kind: int
    space_id: str
    at: float
    pcm: bytes = b""

    @property
    def seconds(self) -> float:
        """Seconds of audio it carries."""
        return len(self.pcm) / 32_000

    def pack(self) -> bytes:
        """The message as sent."""
        sid = self.space_id.encode()
        return HEADER.pack(self.kind, len(sid), self.at, len(self.pcm)) + sid + self.pcm


def _exactly(stream: BinaryIO, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_message(stream: BinaryIO) -> Message | None:
    """The next message, or None at the end of the stream; ValueError if it is malformed."""
    head = _exactly(stream, HEADER.size)
    if head is None:
        return None
    kind, id_len, at, size = HEADER.unpack(head)
    if kind not in (AUDIO, END, CLOSE) or size > MAX_PAYLOAD or size % 2:
        raise ValueError(f"bad caption message: kind {kind}, {size} bytes")
    body = _exactly(stream, id_len + size)
    if body is None:
        return None
    return Message(kind, body[:id_len].decode(), at, body[id_len:])
