"""Server-Sent Events framing of a space's events (pure text, no I/O).

The media process frames each event once, when it writes the space's event file; delivery
workers only slice frames out of it. A frame is

    id: <id>
    data: {"type": "...", "at": <unix s>, ...fields}

followed by a blank line. The JSON is one line (json.dumps escapes newlines), so a frame
never holds a blank line of its own and frames can be split on blank lines.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from ruang.live.events import Event

RETRY_MS = 300  # how soon an EventSource reconnects after an answer ends
MAX_ID_DIGITS = 16  # longer Last-Event-ID values are not ours


def frame(event: Event) -> bytes:
    """One event as an SSE frame; `type` and `at` come first and cannot be overridden."""
    body = {**event.data, "type": event.type, "at": round(event.at, 3)}
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return f"id: {event.id}\ndata: {data}\n\n".encode()


def frames_file(events: Iterable[Event]) -> bytes:
    """The event file's content: the frames of `events`, oldest first."""
    return b"".join(frame(e) for e in events)


def parse_after(raw: str | None) -> int | None:
    """A client's last event id (Last-Event-ID, or ?after=), None when absent or not ours
    (then the client is treated as new)."""
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > MAX_ID_DIGITS or not raw.isascii():
        return None
    return int(raw)


@dataclass(frozen=True)
class Frames:
    """A space's recent frames as a delivery worker holds them: ids and bytes, oldest first."""

    ids: tuple[int, ...] = ()
    chunks: tuple[bytes, ...] = ()

    @classmethod
    def parse(cls, text: bytes) -> Frames:
        """Split an event file into frames (a torn last frame is ignored)."""
        ids: list[int] = []
        chunks: list[bytes] = []
        for chunk in text.split(b"\n\n")[:-1]:  # the last piece: b"" or a torn frame
            if not chunk.startswith(b"id: "):
                continue
            line = chunk.split(b"\n", 1)[0]
            try:
                ids.append(int(line[4:]))
            except ValueError:
                continue
            chunks.append(chunk + b"\n\n")
        return cls(tuple(ids), tuple(chunks))

    @property
    def last_id(self) -> int:
        """The newest event's id (0 when there is none)."""
        return self.ids[-1] if self.ids else 0

    def start_after(self, after: int | None) -> int:
        """The index of the first frame newer than `after` (0 for None)."""
        return 0 if after is None else bisect_right(self.ids, after)

    def after(self, after: int | None) -> bytes:
        """The frames of the events newer than `after` (all of them for None)."""
        return b"".join(self.chunks[self.start_after(after) :])


def answer(frames: bytes, after: int | None) -> bytes:
    """An SSE response body: the retry hint, then the frames. The hint shares the first
    frame's block: a blank line of its own would dispatch an empty event, which resets a
    browser's last event id. With no frames, the body restates the client's id for the
    same reason."""
    retry = b"retry: %d\n" % RETRY_MS
    if frames:
        return retry + frames
    return retry + (b"id: %d\n\n" % after if after is not None else b"\n")
