"""Load shedding by priority, driven by measured signals.

Under pressure a delivery worker keeps what matters most and lets go of the rest, lowest
priority first, degrading before refusing (DESIGN.md §2.4):

| level | when (any signal)            | everything else       | new joins        | listeners |
|-------|------------------------------|-----------------------|------------------|-----------|
| 0     | calm                         | served                | by the rules     | served    |
| 1     | mean lag ≥ 50 ms, CPU ≥ 90 % | served, cached longer | by the rules     | served    |
| 2     | mean lag ≥ 150 ms            | refused (503)         | all wait in line | served    |
| 3     | mean lag ≥ 400 ms            | refused (503)         | refused (503)    | served    |

Speakers' signalling and host controls are never shed here (they are forwarded to the media
process, which has its own core); admitted listeners are the last thing a worker gives up,
and it does not give them up. The level rises at once and falls one step per calm second,
so it does not flap.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field

LAG_LEVELS_S = (0.050, 0.150, 0.400)  # event-loop lag at which levels 1, 2, 3 begin
CPU_LEVEL1 = 0.90  # share of one core used by this worker over the last second
WINDOW_S = 1.0  # signals are judged over this window
RETRY_AFTER_S = 2  # what a shed client is told


class Priority(enum.IntEnum):
    """Request classes, most important first."""

    SPEAKER = 0  # WHIP signalling
    HOST = 1  # host controls (space writes)
    LISTENER = 2  # ticketed playlists, parts, segments
    JOIN = 3  # join, plain playlist links
    OTHER = 4  # pages, metadata, static files, documents


def classify(method: str, path: str) -> Priority:
    """The class of a request, from its method and path alone (no work done)."""
    if path.startswith("/hls/"):
        return Priority.LISTENER if "/t/" in path else Priority.JOIN
    if path.startswith("/whip/"):
        return Priority.SPEAKER
    if path.startswith("/api/spaces"):
        if path.endswith("/join"):
            return Priority.JOIN
        if path.endswith("/reactions"):
            return Priority.OTHER  # an audience's flood of applause never outranks the host
        if method in ("POST", "DELETE", "PATCH", "PUT"):
            return Priority.HOST
    return Priority.OTHER


@dataclass
class Shedder:
    """Turns lag and CPU samples into a level, and a level into decisions."""

    level: int = 0
    lag_s: float = 0.0  # the last window's mean event-loop lag
    cpu_share: float = 0.0  # the last window's CPU, in cores
    shed: dict[Priority, int] = field(default_factory=lambda: {p: 0 for p in Priority})
    _window_start: float = 0.0
    _lag_sum: float = 0.0
    _lag_count: int = 0
    _cpu_mark: float = field(default_factory=lambda: sum(os.times()[:2]))
    _cpu_share: float = 0.0

    def sample(self, lag_s: float, now: float) -> None:
        """Feed one event-loop lag measurement; the window's mean is judged once per window
        (a mean, not the worst sample: one garbage-collection pause is not an overload)."""
        self._lag_sum += lag_s
        self._lag_count += 1
        if now - self._window_start < WINDOW_S:
            return
        elapsed = now - self._window_start if self._window_start else WINDOW_S
        cpu = sum(os.times()[:2])
        self._cpu_share = (cpu - self._cpu_mark) / max(elapsed, 1e-3)
        self._cpu_mark, self._window_start = cpu, now
        self.judge(self._lag_sum / self._lag_count, self._cpu_share)
        self._lag_sum, self._lag_count = 0.0, 0

    def judge(self, lag_s: float, cpu_share: float) -> None:
        """Set the level from one window's mean lag and CPU share."""
        self.lag_s, self.cpu_share = lag_s, cpu_share
        wanted = sum(1 for threshold in LAG_LEVELS_S if lag_s >= threshold)
        if cpu_share >= CPU_LEVEL1:
            wanted = max(wanted, 1)
        # up at once, down one step per window: a burst is met now, a recovery is cautious
        self.level = wanted if wanted > self.level else max(wanted, self.level - 1)

    def refuses(self, priority: Priority) -> bool:
        """True if a request of this class is to be answered 503 now (and counts it)."""
        refused = (priority is Priority.OTHER and self.level >= 2) or (
            priority is Priority.JOIN and self.level >= 3
        )
        if refused:
            self.shed[priority] += 1
        return refused

    @property
    def joins_wait(self) -> bool:
        """At level 2 every new join waits in line (degrade before refusing)."""
        return self.level >= 2

    @property
    def cache_longer(self) -> bool:
        """From level 1, cacheable answers are cached longer so edges absorb more."""
        return self.level >= 1
