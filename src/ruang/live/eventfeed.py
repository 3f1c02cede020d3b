"""The media process's side of the event stream (issue #9): batches, figures, the event file.

Every BATCH_S the feed looks at each space it runs: who the mixer hears (the voice gates) and,
once a second, the listener count and the reactions the delivery workers counted. It publishes
a `speaking`, `listeners` or `reaction` event only when something changed, and rewrites the
space's event file (DATA_DIR/spaces/{id}/events.sse, the last MAX_EVENTS events already framed
as Server-Sent Events) only when the space has a new event. The workers serve that file to
every subscriber, as they serve live.m3u8: so the stream costs this process a few events a
second per space, whatever the audience.

The events the replay needs afterwards (who spoke when, reactions over time: JOURNAL_TYPES) are
also appended to the space's journal (DATA_DIR/spaces/{id}/timeline.jsonl, one JSON object a
line with its wall-clock time), which outlives the event file's last MAX_EVENTS events.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ruang.live.events import EventLog
from ruang.live.sse import frames_file

log = logging.getLogger(__name__)

BATCH_S = 0.25  # the event file is rewritten at most this often, seconds
FIGURES_EVERY_S = 1.0  # listeners and reactions are published at most this often, seconds
FORGET_AFTER_S = 120.0  # a space no longer run here is forgotten after this quiet time
EVENTS_FILE = "events.sse"
JOURNAL_FILE = "timeline.jsonl"
JOURNAL_TYPES = frozenset({"speaking", "reaction", "state"})  # what the replay page shows
# The reactions a listener can send: a small fixed set, so an event's size is bounded.
REACTION_KINDS = ("👏", "❤️", "😂", "🔥", "🙌", "😮")
MAX_REACTIONS_PER_REPORT = 1_000_000  # one worker's count for one kind in one second, at most


@dataclass
class ReactionTally:
    """Reactions counted by the delivery workers, per space and kind, until published."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, space_id: str, counts: Mapping[str, Any]) -> None:
        """Add one worker's counts for a space (unknown kinds and bad numbers are ignored)."""
        mine = self.counts.setdefault(space_id, {})
        for kind, n in counts.items():
            if kind in REACTION_KINDS and isinstance(n, int) and 0 < n <= MAX_REACTIONS_PER_REPORT:
                mine[kind] = mine.get(kind, 0) + n
        if not mine:
            del self.counts[space_id]

    def take(self, space_id: str) -> dict[str, int]:
        """The space's counts since the last take (empty if none)."""
        return self.counts.pop(space_id, {})


@dataclass
class _Seen:
    speaking: tuple[str, ...] = ()
    listeners: int | None = None
    written: int = 0  # the last event id in the file
    journaled: int = 0  # the last event id looked at for the journal
    last_event_at: float = 0.0


class Batch(NamedTuple):
    """What one step leaves to write: event files (replaced) and journal lines (appended)."""

    files: dict[str, bytes]
    journal: dict[str, bytes]

    def __bool__(self) -> bool:
        return bool(self.files or self.journal)


def journal_lines(events: Iterable[Any]) -> bytes:
    """The journal's lines for these events (those of JOURNAL_TYPES), oldest first."""
    out = bytearray()
    for e in events:
        if e.type in JOURNAL_TYPES:
            line = {"at": round(e.at, 3), "type": e.type, **e.data}
            out += json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
    return bytes(out)


class EventFeed:
    """Turns the studio's state into batched events and event files."""

    def __init__(
        self,
        events: EventLog,
        spaces_dir: Path,
        running: Callable[[], Iterable[str]],
        speaking: Callable[[str], Iterable[str]],
        listeners: Callable[[str, float], int],
    ) -> None:
        self.events = events
        self.spaces_dir = spaces_dir
        self.reactions = ReactionTally()
        self._running = running
        self._speaking = speaking
        self._listeners = listeners
        self._seen: dict[str, _Seen] = {}
        self._figures_at = float("-inf")

    def step(self, now: float) -> Batch:
        """One batch: publish what changed; returns the event files and journal lines to
        write (space → bytes)."""
        running = set(self._running())
        figures = now - self._figures_at >= FIGURES_EVERY_S
        if figures:
            self._figures_at = now
        for space_id in running:
            seen = self._seen.setdefault(space_id, _Seen())
            speaking = tuple(sorted(self._speaking(space_id)))
            if speaking != seen.speaking:
                seen.speaking = speaking
                self.events.publish(space_id, "speaking", {"speakers": list(speaking)})
            if figures:
                count = self._listeners(space_id, now)
                if count != seen.listeners:
                    seen.listeners = count
                    self.events.publish(space_id, "listeners", {"count": count})
                counts = self.reactions.take(space_id)
                if counts:
                    total = sum(counts.values())
                    self.events.publish(space_id, "reaction", {"counts": counts, "total": total})
        files: dict[str, bytes] = {}
        journal: dict[str, bytes] = {}
        for space_id in self.events.spaces():
            seen = self._seen.setdefault(space_id, _Seen())
            last = self.events.last_id(space_id)
            if last != seen.journaled:
                lines = journal_lines(self.events.since(space_id, seen.journaled))
                seen.journaled = last
                if lines:
                    journal[space_id] = lines
            if last != seen.written:
                seen.written, seen.last_event_at = last, now
                files[space_id] = frames_file(self.events.since(space_id, 0))
            elif space_id not in running and now - seen.last_event_at > FORGET_AFTER_S:
                # ended (or moved away) long ago, and its last events are in its file
                self.events.forget(space_id)
                self._seen.pop(space_id, None)
        for space_id in [s for s in self.reactions.counts if s not in running]:
            del self.reactions.counts[space_id]  # not a space of ours: nobody will take them
        return Batch(files, journal)

    def write(self, batch: Batch) -> None:
        """Replace each space's event file atomically (workers read it whole) and append to
        its journal (a crash loses at most the last batch's lines)."""
        for space_id, lines in batch.journal.items():
            try:
                with open(self.spaces_dir / space_id / JOURNAL_FILE, "ab") as f:
                    f.write(lines)
            except OSError as exc:  # the space's folder is gone (its recording was deleted)
                log.warning("space %s: could not write its journal: %s", space_id, exc)
        for space_id, data in batch.files.items():
            path = self.spaces_dir / space_id / EVENTS_FILE
            tmp = path.with_name(EVENTS_FILE + ".tmp")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            except OSError as exc:  # e.g. the space's folder is gone; the next batch retries
                log.warning("space %s: could not write its events: %s", space_id, exc)
                self._seen.get(space_id, _Seen()).written = -1
