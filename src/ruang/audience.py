"""Audience figures: who is listening now, how many came in all, the peak and a timeline.

Each delivery worker counts what it sees — listeners present (a ticket issued or a playlist
fetched within PRESENT_WINDOW_S) and a HyperLogLog sketch of every listener id — and reports
both to the media process every REPORT_EVERY_S; the media process adds the counts up, merges
the sketches (Apache DataSketches HLL) and keeps the peak and a bounded timeline per space.
"""

from __future__ import annotations

import base64
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import datasketches

PRESENT_WINDOW_S = 30.0  # a listener counts as present this long after their last request
REPORT_EVERY_S = 2.0  # how often a worker reports to the media process
REPORT_STALE_S = 10.0  # a worker silent this long no longer counts
TIMELINE_EVERY_S = 10.0  # one timeline point per this many seconds
TIMELINE_POINTS = 8640  # 24 h of points per space
HLL_LG_K = 12  # 4096 registers: ~1.6 % standard error, 4 KB per sketch
MAX_PRESENT = 2_000_000  # listener ids remembered per worker at most (oldest forgotten)


@dataclass
class Presence:
    """Distinct listeners seen recently, oldest first (bounded)."""

    window_s: float = PRESENT_WINDOW_S
    limit: int = MAX_PRESENT
    _last: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def seen(self, listener: str, now: float) -> None:
        """Record a sign of life."""
        self._last[listener] = now
        self._last.move_to_end(listener)
        while len(self._last) > self.limit:
            self._last.popitem(last=False)

    def count(self, now: float) -> int:
        """Listeners seen within the window (forgetting the others as it goes)."""
        while self._last:
            listener, t = next(iter(self._last.items()))
            if now - t <= self.window_s:
                break
            del self._last[listener]
        return len(self._last)


class WorkerAudience:
    """One delivery worker's view of every space's listeners."""

    def __init__(self) -> None:
        self._present: dict[str, Presence] = {}
        self._unique: dict[str, datasketches.hll_sketch] = {}
        self.fresh: dict[str, set[str]] | None = None  # set: ids new since `drain` (Redis)

    def seen(self, space_id: str, listener: str, now: float) -> None:
        """A listener of a space showed a sign of life."""
        presence = self._present.get(space_id)
        if presence is None:
            presence = self._present[space_id] = Presence()
            self._unique[space_id] = datasketches.hll_sketch(HLL_LG_K)
        if self.fresh is not None and listener not in presence._last:
            self.fresh.setdefault(space_id, set()).add(listener)
        presence.seen(listener, now)
        self._unique[space_id].update(listener)

    def last_seen(self, space_id: str, listener: str) -> float | None:
        """When this worker last saw the listener of the space (None: not within the window,
        as far as it has forgotten)."""
        presence = self._present.get(space_id)
        return None if presence is None else presence._last.get(listener)

    def current(self, now: float) -> int:
        """Listeners present on this worker, all spaces together."""
        return sum(p.count(now) for p in self._present.values())

    def drain(self) -> dict[str, set[str]]:
        """Listener ids first seen since the last drain (for a shared HyperLogLog)."""
        if self.fresh is None:
            return {}
        fresh, self.fresh = self.fresh, {}
        return fresh

    def report(self, now: float) -> dict[str, dict[str, Any]]:
        """What this worker tells the media process: per space, present count and sketch."""
        return {
            sid: {
                "current": p.count(now),
                "hll": base64.b64encode(self._unique[sid].serialize_compact()).decode(),
            }
            for sid, p in self._present.items()
        }


@dataclass
class _SpaceFigures:
    peak: int = 0
    peak_at: float = 0.0
    timeline: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=TIMELINE_POINTS)
    )


class AudienceBook:
    """The media process's sum of every worker's reports."""

    def __init__(self) -> None:
        self._reports: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._figures: dict[str, _SpaceFigures] = {}
        self._unique: dict[str, datasketches.hll_union] = {}
        self._shared: dict[str, tuple[float, int, int]] = {}  # every node's sums (Redis)

    def shared(self, figures: dict[str, tuple[int, int]], now: float) -> None:
        """Every node's sums for the spaces this node runs: they replace this node's own."""
        for sid, (current, unique) in figures.items():
            self._shared[sid] = (now, current, unique)
            self._note(sid, now)

    def ingest(self, worker: str, report: dict[str, dict[str, Any]], now: float) -> None:
        """Take one worker's report (validated: bad entries are skipped)."""
        clean: dict[str, dict[str, Any]] = {}
        for sid, entry in report.items():
            if not isinstance(entry, dict) or not isinstance(entry.get("current"), int):
                continue
            clean[sid] = entry
            try:
                sketch = datasketches.hll_sketch.deserialize(base64.b64decode(entry["hll"]))
            except (ValueError, KeyError, TypeError, RuntimeError):
                continue
            union = self._unique.get(sid)
            if union is None:
                union = self._unique[sid] = datasketches.hll_union(HLL_LG_K)
            union.update(sketch)
        self._reports[worker] = (now, clean)
        for sid in clean:
            self._note(sid, now)

    def current(self, space_id: str, now: float) -> int:
        """Listeners present now, across workers that reported recently."""
        shared = self._shared.get(space_id)
        if shared is not None and now - shared[0] <= REPORT_STALE_S:
            return shared[1]
        return sum(
            r.get(space_id, {}).get("current", 0)
            for t, r in self._reports.values()
            if now - t <= REPORT_STALE_S
        )

    def _note(self, space_id: str, now: float) -> None:
        fig = self._figures.setdefault(space_id, _SpaceFigures())
        current = self.current(space_id, now)
        if current > fig.peak:
            fig.peak, fig.peak_at = current, now
        if not fig.timeline or now - fig.timeline[-1][0] >= TIMELINE_EVERY_S:
            fig.timeline.append((now, current))

    def snapshot(self, space_id: str, now: float) -> dict[str, Any]:
        """Figures for the host: current, peak (and when), unique, and the timeline."""
        fig = self._figures.get(space_id, _SpaceFigures())
        union = self._unique.get(space_id)
        unique = round(union.get_estimate()) if union is not None else 0
        if space_id in self._shared:
            unique = max(unique, self._shared[space_id][2])
        return {
            "current": self.current(space_id, now),
            "peak": fig.peak,
            "peak_at": fig.peak_at or None,
            "unique": unique,
            "timeline": [[round(t, 1), n] for t, n in fig.timeline],
        }

    def spaces(self) -> list[str]:
        """Spaces with any figures."""
        return list(self._figures)
