"""Attack mode: a visible state, entered and left by itself, that tightens the guard.

Fed once a second with that second's aggregates, it looks for evidence of *hostility* — what
legitimate listeners, however many, rarely produce — not for load: an organic surge that
outgrows the node is met by admission, the waiting room and proof-of-work, and is not an
attack. A second is hostile when, with at least 100 requests in it, any of these holds:

| evidence                 | threshold (share of the second's requests, and at least) |
|--------------------------|----------------------------------------------------------|
| refused for cause        | ≥ 50 % of requests (4xx for the request's own fault)      |
| bad tickets              | ≥ 20 % of requests, ≥ 50 per second (forged, expired…)    |
| rate-limited             | ≥ 10 % of requests, ≥ 50 per second (20 % once active)    |
| failed proof-of-work     | ≥ 30 % of join attempts, ≥ 20 per second                  |
| cache-busting            | ≥ 10 % of requests, ≥ 50 per second                       |

It enters when 3 of the last 5 seconds were hostile, and leaves after 30 hostile-free seconds
but never less than 60 s after entering (hysteresis: no flapping on a pulsing attack). While
active the rate-limited share must be twice as high to count, because attack mode's own
tightening makes legitimate traffic meet the limits more often. "Refused" excludes shed 503s
and waiting-room 202s: those are the node's doing, not the client's.

Load itself (joins against capacity, the shedding level) is not evidence: it only colours the
reason. `now` is the caller's clock (wall-clock time makes `changes` readable as is).

Effect while active: per-source limits × 0.25 (`limit_factor`) and join's proof-of-work at
least 16 bits (`pow_floor`). Each change is logged at WARNING and kept in `changes`.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from ruang.guard.pow import NORMAL_BITS

log = logging.getLogger(__name__)

MIN_REQUESTS = 100  # a second with fewer requests is never evidence (too small to matter)
REFUSED_SHARE = 0.50
TICKET_SHARE, TICKET_MIN = 0.20, 50
RATE_LIMITED_SHARE, RATE_LIMITED_MIN = 0.10, 50
RATE_LIMITED_ACTIVE_FACTOR = 2.0  # while active, our own tightening refuses more: ask for more
POW_SHARE, POW_MIN = 0.30, 20
CACHE_BUST_SHARE, CACHE_BUST_MIN = 0.10, 50
ENTER_WINDOW_S = 5  # look at this many recent seconds…
ENTER_HOSTILE_S = 3  # …and enter when this many of them were hostile
CALM_S = 30.0  # leave after this long without a hostile second…
MIN_ACTIVE_S = 60.0  # …but not sooner than this after entering
LIMIT_FACTOR = 0.25  # per-source budgets while active
POW_FLOOR = NORMAL_BITS  # minimum join difficulty while active
MAX_CHANGES = 256  # entries kept in the log of changes


@dataclass(frozen=True)
class Second:
    """One second's aggregates for one worker or node (see `AttackMode.update`)."""

    requests: int
    refused: int
    ticket_failures: int
    rate_limited: int
    pow_failures: int
    cache_busts: int
    joins: int
    join_capacity_per_s: float
    shed_level: int
    new_network_share: float | None


def evidence(s: Second, active: bool) -> list[str]:
    """The signs of hostility in one second, as plain phrases (empty if none)."""
    r = s.requests
    if r < MIN_REQUESTS:
        return []
    found = []
    rl_share = RATE_LIMITED_SHARE * (RATE_LIMITED_ACTIVE_FACTOR if active else 1.0)
    # while active, refusals by our own tightened limits are judged by the rate-limited line
    refused = s.refused - (s.rate_limited if active else 0)
    if refused >= REFUSED_SHARE * r:
        found.append(f"{refused / r:.0%} of {r:,} requests were refused")
    if s.ticket_failures >= max(TICKET_MIN, TICKET_SHARE * r):
        found.append(f"{s.ticket_failures:,} requests carried forged or expired tickets")
    if s.rate_limited >= max(RATE_LIMITED_MIN, rl_share * r):
        found.append(f"{s.rate_limited / r:.0%} of requests exceeded their source's budget")
    attempts = s.joins + s.pow_failures
    if s.pow_failures >= max(POW_MIN, POW_SHARE * attempts):
        found.append(f"{s.pow_failures:,} joins offered a wrong or reused proof of work")
    if s.cache_busts >= max(CACHE_BUST_MIN, CACHE_BUST_SHARE * r):
        found.append(f"{s.cache_busts:,} requests tried to bust the cache")
    return found


class AttackMode:
    """The attack-mode state machine; pure logic, driven by `update` once a second."""

    def __init__(self) -> None:
        self.active = False
        self.since: float | None = None  # when the current state began (None before any change)
        self.reason = "No sign of an attack."
        self.changes: deque[dict[str, Any]] = deque(maxlen=MAX_CHANGES)
        self._recent: deque[tuple[float, list[str]]] = deque()  # (second, evidence) in window
        self._last_hostile: float | None = None

    @property
    def limit_factor(self) -> float:
        """What to pass to the rate limiter's `tighten`: 0.25 while active, else 1.0."""
        return LIMIT_FACTOR if self.active else 1.0

    @property
    def pow_floor(self) -> int:
        """The least proof-of-work difficulty for joins: 16 bits while active, else 0."""
        return POW_FLOOR if self.active else 0

    def update(
        self,
        now: float,
        *,
        requests: int,
        refused: int,
        ticket_failures: int,
        rate_limited: int,
        pow_failures: int,
        cache_busts: int,
        joins: int,
        join_capacity_per_s: float,
        shed_level: int,
        new_network_share: float | None,
    ) -> bool:
        """Judge the second that ended at `now`; True if attack mode is on afterwards."""
        second = Second(
            requests,
            refused,
            ticket_failures,
            rate_limited,
            pow_failures,
            cache_busts,
            joins,
            join_capacity_per_s,
            shed_level,
            new_network_share,
        )
        found = evidence(second, self.active)
        self._recent.append((now, found))
        while self._recent and self._recent[0][0] <= now - ENTER_WINDOW_S:
            self._recent.popleft()
        if found:
            self._last_hostile = now
        if not self.active:
            hostile = [f for _, f in self._recent if f]
            if len(hostile) >= ENTER_HOSTILE_S:
                self._change(now, True, self._why(hostile, second))
        else:
            calm_for = now - (self._last_hostile or now)
            if calm_for >= CALM_S and now - (self.since or now) >= MIN_ACTIVE_S:
                self._change(now, False, f"No sign of hostility for {calm_for:.0f} s.")
        return self.active

    def _why(self, hostile: list[list[str]], second: Second) -> str:
        # the phrases of the latest hostile second, and how long it has been going on
        phrases = "; ".join(hostile[-1])
        sentence = f"{phrases[0].upper()}{phrases[1:]}, in {len(hostile)} of the last "
        sentence += f"{ENTER_WINDOW_S} seconds"
        if second.new_network_share is not None:
            sentence += f", {second.new_network_share:.0%} of networks new to this space"
        if second.shed_level:
            sentence += f", while shedding load at level {second.shed_level}"
        return sentence + "."

    def _change(self, now: float, entered: bool, reason: str) -> None:
        self.active = entered
        self.since = now
        self.reason = reason
        self.changes.append({"time": now, "entered": entered, "reason": reason})
        log.warning("attack mode %s: %s", "entered" if entered else "left", reason)

    def statistics(self) -> dict[str, Any]:
        """A snapshot for /metrics and the host's dashboard."""
        return {
            "active": self.active,
            "since": self.since,
            "reason": self.reason,
            "limit_factor": self.limit_factor,
            "pow_floor": self.pow_floor,
            "changes": len(self.changes),
        }
