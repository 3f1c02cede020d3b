"""A space's media on disk: every part fsync'd as it is made, an append-only index, playlists.

Layout of ``<spaces_dir>/<space_id>/``::

    init.mp4            CMAF header (ftyp+moov)
    <msn>.<part>.m4s    one CMAF chunk per part, 0.512 s
    <msn>.m4s           a whole segment, the concatenation of its parts
    index.jsonl         one JSON line per part, appended and fsync'd after the part file
    live.m3u8           the LL-HLS live playlist, replaced atomically after each part
    replay.m3u8         the replay: EVENT while live, VOD with ENDLIST once ended

Parts and index lines are fsync'd, in that order. Whole segments (their parts, joined) and
the playlists are not: recovery rebuilds them from the index and the parts. The live
playlist is replaced atomically after each part, the replay when a segment closes.

The replay is these files as they are: no second encode. A crash loses at most the part
being written; `recover()` rebuilds the segment list from the index and the part files.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ruang.hls.playlist import Part, ReplayLines, Segment, render_live

log = logging.getLogger(__name__)

PARTS_PER_SEGMENT = 4  # 4 × 0.512 s = 2.048 s segments
PRESTART_KEEP = 8  # segments of pre-start silence kept (the live window and a little more)
LIVE_WINDOW = 6  # segments in the live playlist


def _fsync_write(path: Path, data: bytes) -> None:
    """Write a file completely and durably, replacing any previous one atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _replace(path: Path, data: bytes) -> None:
    """Replace a file atomically without making it durable: for the live playlist, which
    readers need whole but `recover()` rebuilds from the index after a crash."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_new(path: Path, data: bytes, *, durable: bool) -> None:
    """Write a file under its final name, fsync'd if `durable`. No temporary file and rename
    (each file created costs ~0.2 ms of kernel CPU here): delivery reads a part or segment
    only once the live playlist lists it, which is written after it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class PartRecord:
    """What the index remembers of one part."""

    msn: int
    index: int
    samples: int
    size: int
    pdt: datetime  # wall-clock time of the part's first sample
    discontinuity: bool = False

    def line(self) -> str:
        """The index line for this part."""
        return json.dumps(
            {
                "msn": self.msn,
                "part": self.index,
                "samples": self.samples,
                "size": self.size,
                "pdt": self.pdt.isoformat(),
                "disc": self.discontinuity,
            },
            separators=(",", ":"),
        )


class SpaceMediaStore:
    """Durable writer and playlist renderer for one space. Not thread-safe: one writer at a time
    (the space's media pipeline calls it from a single writer thread)."""

    def __init__(self, directory: Path, sample_rate: int = 48_000) -> None:
        self.dir = directory
        self.sample_rate = sample_rate
        self.segments: list[Segment] = []
        self._segment_bytes: list[bytes] = []
        self.prestart = False  # before a scheduled start: silence, not indexed, not replayed
        self.replay_from = 0  # the replay starts at this media sequence number
        self._discontinuities = 0  # segments in `segments` that start with a discontinuity
        self._replay = ReplayLines()  # the replay's complete segments, rendered once each
        self._replay_next = 0  # index in `segments` of the next one to add to it
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- recovery ---------------------------------------------------------------------------
    def recover(self) -> int:
        """Load what a previous run wrote; returns the number of parts recovered.

        Every recovered segment is marked complete (a segment cut short by a crash or a restart
        stays short), and any missing whole-segment file is rebuilt from its parts.
        """
        index = self.dir / "index.jsonl"
        if not index.exists():
            return 0
        records: list[PartRecord] = []
        for raw in index.read_bytes().split(b"\n"):
            try:
                d = json.loads(raw)
                rec = PartRecord(
                    d["msn"],
                    d["part"],
                    d["samples"],
                    d["size"],
                    datetime.fromisoformat(d["pdt"]),
                    d["disc"],
                )
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line from a crash, or the trailing newline
            part_file = self.dir / f"{rec.msn}.{rec.index}.m4s"
            if not part_file.exists() or part_file.stat().st_size != rec.size:
                log.warning(
                    "space %s: part %s.%s missing or torn; replay stops before it",
                    self.dir.name,
                    rec.msn,
                    rec.index,
                )
                break
            records.append(rec)
        for rec in records:
            self._append_to_list(rec)
        for seg in self.segments:
            seg.complete = True
            seg_file = self.dir / seg.uri
            parts = [self.dir / p.uri for p in seg.parts]
            size = sum(p.stat().st_size for p in parts)
            if not seg_file.exists() or seg_file.stat().st_size != size:  # never written whole
                _fsync_write(seg_file, b"".join(p.read_bytes() for p in parts))
        self._segment_bytes = []
        self.replay_from = self.segments[0].msn if self.segments else 0
        return len(records)

    # -- writing ----------------------------------------------------------------------------
    def write_init(self, data: bytes) -> None:
        """Store the CMAF header (same codec settings on every run, so it may be rewritten)."""
        _fsync_write(self.dir / "init.mp4", data)

    def next_position(self, new_run: bool) -> tuple[int, int]:
        """(msn, part index) for the next part; a new run (after a restart) starts a new segment."""
        if not self.segments:
            return 0, 0
        last = self.segments[-1]
        if new_run or last.complete:
            return last.msn + 1, 0
        return last.msn, len(last.parts)

    def add_part(self, rec: PartRecord, data: bytes) -> None:
        """Make a part durable, index it, close its segment when full, refresh the playlists."""
        if self.prestart:
            self._add_prestart_part(rec, data)
            return
        # The part, then its index line, each durable before the next step: a crash loses at
        # most the part being written (recover() stops at a part whose file is short).
        _write_new(self.dir / f"{rec.msn}.{rec.index}.m4s", data, durable=True)
        with open(self.dir / "index.jsonl", "a", encoding="utf-8") as f:
            f.write(rec.line() + "\n")
            f.flush()
            os.fdatasync(f.fileno())  # the appended bytes and the new size; no other metadata
        if rec.index == 0:
            _fsync_dir(self.dir)  # the new part's name (and the last segment file's)
        self._append_to_list(rec)
        self._segment_bytes.append(data)
        closed = len(self.segments[-1].parts) == PARTS_PER_SEGMENT
        if closed:
            self.close_segment()
        # the replay lists whole segments only: it changes when one closes
        self.write_playlists(ended=False, replay=closed)

    def _add_prestart_part(self, rec: PartRecord, data: bytes) -> None:
        """Before the start: a rolling window of silence for players and caches to warm up on;
        nothing is indexed, old segments are deleted, no replay is written."""
        _write_new(self.dir / f"{rec.msn}.{rec.index}.m4s", data, durable=False)
        self._append_to_list(rec)
        self._segment_bytes.append(data)
        if len(self.segments[-1].parts) == PARTS_PER_SEGMENT:
            self.close_segment()
        while len(self.segments) > PRESTART_KEEP and self.segments[0].complete:
            old = self.segments.pop(0)
            self._discontinuities -= old.discontinuity
            for name in [old.uri, *(p.uri for p in old.parts)]:
                (self.dir / name).unlink(missing_ok=True)
        _replace(self.dir / "live.m3u8", self._live_text(ended=False))

    def go_live(self, first_msn: int) -> None:
        """The scheduled start: from `first_msn` on, parts are durable and make the replay."""
        self.close_segment()
        self.prestart = False
        self.replay_from = first_msn
        self._replay, self._replay_next = ReplayLines(), 0

    def close_segment(self) -> None:
        """Mark the open segment complete and write its whole-segment file."""
        if not self.segments or self.segments[-1].complete:
            return
        seg = self.segments[-1]
        data = (
            b"".join(self._segment_bytes)
            if self._segment_bytes
            else b"".join((self.dir / p.uri).read_bytes() for p in seg.parts)
        )
        # not fsync'd: it is its parts, which are; recover() rebuilds one that is not whole
        _write_new(self.dir / seg.uri, data, durable=False)
        self._segment_bytes = []
        seg.complete = True

    def write_playlists(self, *, ended: bool, replay: bool = True) -> None:
        """Render live.m3u8 and (with `replay`) replay.m3u8 (atomic replace; delivery serves
        them as files)."""
        _replace(self.dir / "live.m3u8", self._live_text(ended=ended))
        if not replay:
            return
        if self.prestart:  # segments were dropped from the front: start the replay afresh
            self._replay, self._replay_next = ReplayLines(), 0
        while self._replay_next < len(self.segments):
            seg = self.segments[self._replay_next]
            if not seg.complete:
                break
            if seg.msn >= self.replay_from:
                self._replay.add(seg)
            self._replay_next += 1
        write = _fsync_write if ended else _replace  # the final VOD playlist is made durable
        write(self.dir / "replay.m3u8", self._replay.render(ended=ended).encode())

    def _live_text(self, *, ended: bool) -> bytes:
        """The live playlist, rendered from the last segments only (as cheap after hours as
        after seconds)."""
        shown = self.segments[-LIVE_WINDOW:]
        earlier = self._discontinuities - sum(s.discontinuity for s in shown)
        text = render_live(shown, window=LIVE_WINDOW, ended=ended, earlier_discontinuities=earlier)
        return text.encode()

    def end(self) -> None:
        """Close the last segment and publish the final playlists (VOD replay)."""
        self.close_segment()
        if self.prestart:  # ended before it started: nothing to replay
            self.replay_from = self.segments[-1].msn + 1 if self.segments else 0
        self.write_playlists(ended=True)

    def _append_to_list(self, rec: PartRecord) -> None:
        part = Part(rec.msn, rec.index, rec.samples / self.sample_rate)
        if not self.segments or self.segments[-1].msn != rec.msn:
            if self.segments:
                self.segments[-1].complete = True
            self.segments.append(Segment(rec.msn, rec.pdt, [], False, rec.discontinuity))
            self._discontinuities += rec.discontinuity
        self.segments[-1].parts.append(part)

    @property
    def duration(self) -> float:
        """Seconds of audio stored for the replay."""
        return sum(p.duration for s in self.segments if s.msn >= self.replay_from for p in s.parts)
