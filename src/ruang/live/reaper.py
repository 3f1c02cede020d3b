"""Abandoned spaces end themselves: a live space with nobody on stage for `idle_end_s`, a
scheduled one never started `scheduled_grace_s` after its start time. Every open space runs
a pipeline and counts against its creator's caps, so one forgotten (or created by a flood)
must not hold them for ever.

`auto_end_at` is the pure decision; `Reaper` remembers since when each stage of this media
process has been empty and, every few seconds, ends the spaces whose time has come through
the same path as a host's end (the replay is finalised). The idle clock is this process's
memory: after a restart a space gets its full idle time again (speakers reconnect then),
which errs on the side of keeping it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from ruang.spaces.model import Space, State

log = logging.getLogger(__name__)

CHECK_EVERY_MAX_S = 30.0  # the longest pause between two looks at the spaces, seconds
CHECK_EVERY_MIN_S = 0.5  # the shortest (short idle times in tests), seconds


@dataclass(frozen=True)
class EndLimits:
    """How long an abandoned space lasts, seconds."""

    idle_end_s: float
    """A live space with nobody on stage this long ends."""
    scheduled_grace_s: float
    """A scheduled space never started ends this long after its start time."""

    @property
    def check_every_s(self) -> float:
        """How often to look: a tenth of the shortest limit, within bounds (a space ends at
        most that late)."""
        shortest = min(self.idle_end_s, self.scheduled_grace_s)
        return min(CHECK_EVERY_MAX_S, max(CHECK_EVERY_MIN_S, shortest / 10))


def auto_end_at(space: Space, empty_since: float | None, limits: EndLimits) -> float | None:
    """When `space` ends by itself (unix seconds), or None while it will not: it has ended,
    or someone is on stage (`empty_since` None). `empty_since`: since when the space's stage
    has had nobody on it (unix seconds)."""
    if space.state is State.SCHEDULED:
        start = space.starts_at or space.created_at
        return start.timestamp() + limits.scheduled_grace_s
    if space.state is State.LIVE and empty_since is not None:
        # a stage is not abandoned before the space goes live (the clock may have been
        # started while it was scheduled)
        started = space.started_at.timestamp() if space.started_at else empty_since
        return max(empty_since, started) + limits.idle_end_s
    return None


def is_due(space: Space, empty_since: float | None, limits: EndLimits, now: float) -> bool:
    """True if `space` should end by itself at `now`."""
    at = auto_end_at(space, empty_since, limits)
    return at is not None and at <= now


class Reaper:
    """The media process's watch over its spaces' stages; `run` is its task."""

    def __init__(
        self,
        limits: EndLimits,
        spaces: Callable[[], Awaitable[Iterable[Space]]],
        on_stage: Callable[[str], bool],
        end: Callable[[str], Awaitable[object]],
    ) -> None:
        """`spaces`: this process's open spaces (read off the loop); `on_stage(id)`: whether
        anyone is on that stage now; `end(id)`: end that space as its host would."""
        self.limits = limits
        self._spaces = spaces
        self._on_stage = on_stage
        self._end = end
        self._empty_since: dict[str, float] = {}
        self.ended = 0  # spaces this reaper has ended, for statistics

    def stage_changed(self, space_id: str, occupied: bool, now: float) -> None:
        """Someone went on stage (`occupied`), or the last one left."""
        if occupied:
            self._empty_since.pop(space_id, None)
        else:
            self._empty_since.setdefault(space_id, now)

    def empty_since(self, space_id: str, now: float) -> float | None:
        """Since when the space's stage has been empty (first seen empty: now), or None."""
        if self._on_stage(space_id):
            self._empty_since.pop(space_id, None)
            return None
        return self._empty_since.setdefault(space_id, now)

    def ends_at(self, space: Space, now: float) -> float | None:
        """When `space` will end by itself, as things stand (for the host's view)."""
        return auto_end_at(space, self.empty_since(space.id, now), self.limits)

    async def sweep(self, now: float) -> list[str]:
        """End every space that is due; returns their ids."""
        spaces = list(await self._spaces())
        known = {s.id for s in spaces}
        for space_id in [s for s in self._empty_since if s not in known]:
            del self._empty_since[space_id]  # ended or moved away: forget it
        ended = []
        for space in spaces:
            if not is_due(space, self.empty_since(space.id, now), self.limits, now):
                continue
            why = "never started" if space.state is State.SCHEDULED else "nobody on stage"
            log.info("space %s ends by itself (%s)", space.id, why)
            try:
                await self._end(space.id)
            except Exception:  # one space that cannot end must not keep the others open
                log.exception("space %s could not end by itself", space.id)
                continue
            self._empty_since.pop(space.id, None)
            self.ended += 1
            ended.append(space.id)
        return ended

    async def run(self) -> None:
        """Sweep every `check_every_s` until cancelled."""
        while True:
            await asyncio.sleep(self.limits.check_every_s)
            try:
                await self.sweep(time.time())
            except Exception:  # a store hiccup: try again next time
                log.exception("the reaper's sweep failed")
