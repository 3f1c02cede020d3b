"""Admission and the waiting room: who may start listening now, and a fair line for the rest.

Capacity is two numbers per node: concurrent listeners and admissions per second (a token
bucket, so a surge is admitted at a steady pace instead of all at once). Beyond either, a join
is answered with a place in line. The line holds no per-person state: a place is a signed queue
token, and the server keeps only two counters per space (`tail`, the next number to hand out,
and `head`, below which every number is admitted). Order is FIFO by arrival.

Arrivals before a scheduled start are not numbered by arrival: each gets a draw derived from its
network (HMAC of the /24 or /64), and at the start draws are admitted in ascending order — a
shuffle done once, so refreshing the page early changes nothing. They go before anyone who
arrives after the start.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from ruang.audience import WorkerAudience

MAX_RETRY_AFTER_S = 20  # below the workers' 30 s keep-alive idle timeout, so a client that
# waits as told on its open connection does not race the server closing it
DRAW_SPACE = 2**32  # pre-start draws are uniform in [0, DRAW_SPACE)
_TOKEN = re.compile(r"^([qp])\.(\d{1,12})\.([0-9a-f]{32})$")


@dataclass(frozen=True)
class Limits:
    """A node's admission capacity (defaults come from docs/BENCHMARKS.md with headroom)."""

    max_listeners: int = 20_000
    """Concurrent listeners this node admits."""
    joins_per_s: float = 2_000.0
    """Sustained admissions per second."""
    burst: int = 2_000
    """Admissions allowed at once before the per-second pace applies."""

    def __post_init__(self) -> None:
        if self.max_listeners < 1 or self.joins_per_s <= 0 or self.burst < 1:
            raise ValueError(f"admission limits must be positive: {self}")


@dataclass(frozen=True)
class Admitted:
    """Start listening now."""


@dataclass(frozen=True)
class Waiting:
    """Wait in line: `position` (1 = next), an estimate, and the token to come back with."""

    position: int
    estimated_wait_s: float
    retry_after_s: int
    token: str


@dataclass
class _Line:
    tail: int = 0  # next arrival number
    head: int = 0  # numbers below head are admitted
    prestart: int = 0  # draws handed out before the start (an upper bound on the group)
    threshold: float = 0.0  # pre-start draws below threshold × DRAW_SPACE are admitted
    started: bool = True


class Admission:
    """One node's gate: a token bucket for the pace, presence for the concurrency, and one
    line per space."""

    shared = False  # True when the line lives elsewhere and `join_async` must be awaited

    def __init__(
        self, limits: Limits, key: bytes, now: float, audience: WorkerAudience | None = None
    ) -> None:
        self.limits = limits
        self.audience = audience or WorkerAudience()
        self._key = key
        self._tokens = float(limits.burst)
        self._refilled = now
        self._lines: dict[str, _Line] = {}
        self.admitted = 0
        self.queued = 0

    # -- tokens -------------------------------------------------------------------------------
    def _sign(self, space_id: str, kind: str, n: int) -> str:
        mac = hmac.new(self._key, f"queue.{space_id}.{kind}.{n}".encode(), hashlib.sha256)
        return f"{kind}.{n}.{mac.hexdigest()[:32]}"

    def _read(self, space_id: str, token: str | None) -> tuple[str, int] | None:
        m = _TOKEN.match(token or "")
        if m is None:
            return None
        kind, n = m.group(1), int(m.group(2))
        return (
            (kind, n) if hmac.compare_digest(token or "", self._sign(space_id, kind, n)) else None
        )

    def holds_place(self, space_id: str, token: object) -> bool:
        """True if `token` is a place in this space's line that this deployment handed out."""
        return isinstance(token, str) and self._read(space_id, token) is not None

    def waiting(self) -> int:
        """People in line on this node's lines (numbered arrivals not yet admitted)."""
        return sum(line.tail - line.head for line in self._lines.values())

    def _draw(self, space_id: str, network: str) -> int:
        digest = hmac.new(self._key, f"draw.{space_id}.{network}".encode(), hashlib.sha256)
        return int.from_bytes(digest.digest()[:4], "big")

    # -- the gate -----------------------------------------------------------------------------
    def seen(self, space_id: str, listener: str, now: float) -> None:
        """A listener showed a sign of life (a ticket issued or used)."""
        self.audience.seen(space_id, listener, now)

    def listeners(self, now: float) -> int:
        """Listeners present on this node across all spaces."""
        return self.audience.current(now)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled)
        self._tokens = min(
            float(self.limits.burst), self._tokens + elapsed * self.limits.joins_per_s
        )
        self._refilled = max(self._refilled, now)  # never back: no second credited twice

    def _take(self, now: float) -> bool:
        self._refill(now)
        if self._tokens < 1.0 - 1e-9 or self.listeners(now) >= self.limits.max_listeners:
            return False
        self._tokens -= 1.0
        return True

    def schedule(self, space_id: str) -> None:
        """The space is scheduled: arrivals get draws until `start`."""
        self._lines.setdefault(space_id, _Line()).started = False

    def start(self, space_id: str) -> None:
        """The space started: pre-start draws go first, in draw order."""
        self._lines.setdefault(space_id, _Line()).started = True

    def join(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool = False
    ) -> Admitted | Waiting:
        """Decide one join. `network` is the caller's /24 or /64; `token` a previous answer's.
        `crowded` (the node is under pressure): newcomers go to the line even with capacity
        left, while the line itself keeps moving."""
        line = self._lines.setdefault(space_id, _Line())
        held = self._read(space_id, token)
        if not line.started:
            draw = self._draw(space_id, network)
            if held is None or held[0] != "p":
                line.prestart += 1
            return self._wait(space_id, line, "p", draw, now)
        self._advance(line, now)
        if held is not None:
            kind, n = held
            if (kind == "p" and n < line.threshold * DRAW_SPACE) or (kind == "q" and n < line.head):
                return self._admit()
            return self._wait(space_id, line, kind, n, now)
        nobody_waiting = line.head == line.tail and (line.prestart == 0 or line.threshold >= 1.0)
        if nobody_waiting and not crowded and self._take(now):
            return self._admit()
        n = line.tail
        line.tail += 1
        return self._wait(space_id, line, "q", n, now)

    async def join_async(
        self, space_id: str, network: str, token: str | None, now: float, crowded: bool = False
    ) -> Admitted | Waiting:
        """`join` for callers on an event loop (the shared line overrides it to not block)."""
        return self.join(space_id, network, token, now, crowded)

    def _advance(self, line: _Line, now: float) -> None:
        """Let the line move as far as capacity allows: pre-start draws first, then arrivals."""
        if line.prestart and line.threshold < 1.0:
            while line.threshold < 1.0 and self._take(now):
                line.threshold = min(1.0, line.threshold + 1.0 / line.prestart)
        if line.prestart == 0 or line.threshold >= 1.0:
            while line.head < line.tail and self._take(now):
                line.head += 1

    def _admit(self) -> Admitted:
        self.admitted += 1
        return Admitted()

    def _wait(self, space_id: str, line: _Line, kind: str, n: int, now: float) -> Waiting:
        if kind == "p":
            ahead = max(0.0, n / DRAW_SPACE - line.threshold) * max(line.prestart, 1)
        else:
            pending_prestart = (1.0 - line.threshold) * line.prestart if line.prestart else 0.0
            ahead = (n - line.head) + pending_prestart
        position = int(ahead) + 1
        wait = position / self.limits.joins_per_s
        self.queued += 1
        return Waiting(
            position,
            round(wait, 1),
            max(1, min(MAX_RETRY_AFTER_S, int(wait) + 1)),
            self._sign(space_id, kind, n),
        )
