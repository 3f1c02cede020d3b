"""A space's timeline on its replay: who spoke when and the reactions over time (issue #10).

The media process journals the space's `speaking` and `reaction` events with their wall-clock
time (live/eventfeed.py, `timeline.jsonl`). The replay is its segments, each with a
PROGRAM-DATE-TIME; a restart leaves a gap in wall-clock time that the replay does not have.
So a moment of the journal is placed on the replay through the segments: the offset of the
segment it falls in, plus how far into that segment (a moment in a gap is placed at the end
of the segment before it, one before the replay at its start). No I/O here.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MERGE_GAP_S = 1.5  # a speaker's turns closer than this are one turn (pauses between words)
MIN_TURN_S = 0.3  # shorter turns are dropped (a cough)
MAX_REACTION_BINS = 600  # reactions over time, at most this many bins, whatever the length


@dataclass(frozen=True, slots=True)
class Segment:
    """One replay segment: where it starts on the wall clock and on the replay, seconds."""

    at: float  # PROGRAM-DATE-TIME, Unix seconds
    offset: float  # seconds from the replay's start
    duration: float


def replay_segments(playlist: str) -> list[Segment]:
    """The segments of a replay playlist (each must carry its PROGRAM-DATE-TIME)."""
    out: list[Segment] = []
    offset, at = 0.0, None
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            raw = line.split(":", 1)[1].strip().replace("Z", "+00:00")
            at = datetime.fromisoformat(raw).timestamp()
        elif line.startswith("#EXTINF:") and at is not None:
            duration = float(line[8:].split(",", 1)[0])
            out.append(Segment(at, offset, duration))
            offset += duration
            at = None
    return out


class Clock:
    """Places wall-clock moments on the replay."""

    def __init__(self, segments: list[Segment]) -> None:
        self.segments = segments
        self._starts = [s.at for s in segments]
        self.duration = segments[-1].offset + segments[-1].duration if segments else 0.0

    def offset(self, at: float) -> float | None:
        """Seconds from the replay's start of wall-clock time `at` (0 before it); None when
        there is no replay."""
        if not self.segments:
            return None
        i = bisect.bisect_right(self._starts, at) - 1
        if i < 0:
            return 0.0
        seg = self.segments[i]
        return seg.offset + min(at - seg.at, seg.duration)


def read_journal(data: bytes) -> list[dict[str, Any]]:
    """The journal's records, skipping a torn last line (a crash mid-write) or bad lines."""
    out = []
    for raw in data.splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("at"), int | float):
            out.append(record)
    return out


def turns(records: Iterable[dict[str, Any]], clock: Clock) -> list[dict[str, Any]]:
    """Each speaker's turns on the replay, in order of their start: [{speaker, start_s, end_s}]."""
    open_since: dict[str, float] = {}
    spans: dict[str, list[list[float]]] = {}

    def close(speaker: str, end: float) -> None:
        start = open_since.pop(speaker)
        mine = spans.setdefault(speaker, [])
        if mine and start - mine[-1][1] < MERGE_GAP_S:
            mine[-1][1] = max(mine[-1][1], end)
        else:
            mine.append([start, end])

    for r in records:
        if r.get("type") != "speaking" or not isinstance(r.get("speakers"), list):
            continue
        t = clock.offset(r["at"])
        if t is None:
            continue
        now = {s for s in r["speakers"] if isinstance(s, str)}
        for speaker in [s for s in open_since if s not in now]:
            close(speaker, t)
        for speaker in now:
            open_since.setdefault(speaker, t)
    for speaker in list(open_since):
        close(speaker, clock.duration)
    out = [
        {"speaker": speaker, "start_s": round(a, 2), "end_s": round(b, 2)}
        for speaker, mine in spans.items()
        for a, b in mine
        if b - a >= MIN_TURN_S
    ]
    return sorted(out, key=lambda x: (x["start_s"], x["speaker"]))


def reactions(records: Iterable[dict[str, Any]], clock: Clock) -> dict[str, Any]:
    """Reactions over the replay in at most MAX_REACTION_BINS equal bins: {bin_s, bins}, each
    bin {t_s, total, counts}; empty bins left out."""
    bin_s = max(1.0, clock.duration / MAX_REACTION_BINS)
    bins: dict[int, dict[str, Any]] = {}
    for r in records:
        if r.get("type") != "reaction" or not isinstance(r.get("counts"), dict):
            continue
        t = clock.offset(r["at"])
        if t is None:
            continue
        b = bins.setdefault(int(t // bin_s), {"total": 0, "counts": {}})
        for kind, n in r["counts"].items():
            if isinstance(kind, str) and isinstance(n, int) and n > 0:
                b["counts"][kind] = b["counts"].get(kind, 0) + n
                b["total"] += n
    return {
        "bin_s": round(bin_s, 3),
        "bins": [{"t_s": round(i * bin_s, 2), **bins[i]} for i in sorted(bins) if bins[i]["total"]],
    }


def timeline(journal: bytes, playlist: str) -> dict[str, Any]:
    """The replay's timeline: its length, the speakers' turns and the reactions."""
    clock = Clock(replay_segments(playlist))
    records = read_journal(journal)
    return {
        "duration_s": round(clock.duration, 3),
        "turns": turns(records, clock),
        "reactions": reactions(records, clock),
    }
