"""Abandoned spaces: when a space ends by itself (pure), and the reaper's sweep with fakes
(explicit times, no sleeping)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from ruang.live.reaper import EndLimits, Reaper, auto_end_at, is_due
from ruang.spaces.model import Space, State

LIMITS = EndLimits(idle_end_s=1800, scheduled_grace_s=86400)
T0 = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
t0 = T0.timestamp()
LIVE = Space("livespace1", "Live", State.LIVE, T0, None, T0)
LATER = Space("scheduled1", "Later", State.SCHEDULED, T0, T0 + timedelta(hours=2))


def test_a_live_space_ends_after_its_stage_is_empty_for_the_idle_time() -> None:
    assert auto_end_at(LIVE, t0 + 60, LIMITS) == t0 + 60 + 1800
    assert not is_due(LIVE, t0 + 60, LIMITS, t0 + 60 + 1799)
    assert is_due(LIVE, t0 + 60, LIMITS, t0 + 60 + 1800)


def test_someone_on_stage_keeps_it_forever() -> None:
    assert auto_end_at(LIVE, None, LIMITS) is None
    assert not is_due(LIVE, None, LIMITS, t0 + 10**9)


def test_the_idle_clock_starts_no_earlier_than_the_space_went_live() -> None:
    started_late = replace(LATER, state=State.LIVE, started_at=T0 + timedelta(hours=3))
    # the stage was "empty" since creation, but the space only went live three hours later
    assert auto_end_at(started_late, t0, LIMITS) == t0 + 3 * 3600 + 1800


def test_a_scheduled_space_never_started_ends_a_grace_after_its_start_time() -> None:
    start = t0 + 2 * 3600
    assert auto_end_at(LATER, None, LIMITS) == start + 86400  # the stage does not matter
    assert auto_end_at(LATER, t0, LIMITS) == start + 86400
    assert not is_due(LATER, t0, LIMITS, start + 86399)
    assert is_due(LATER, t0, LIMITS, start + 86400)


def test_an_ended_space_does_not_end_again() -> None:
    ended = replace(LIVE, state=State.ENDED, ended_at=T0)
    assert auto_end_at(ended, t0, LIMITS) is None


def test_the_sweep_interval_follows_the_shortest_limit_within_bounds() -> None:
    assert LIMITS.check_every_s == 30.0
    assert EndLimits(3.0, 86400).check_every_s == 0.5
    assert EndLimits(20.0, 86400).check_every_s == 2.0


class FakeStudio:
    """What the reaper sees of a studio: its open spaces, who is on stage, and an end."""

    def __init__(self, spaces: list[Space]) -> None:
        self.spaces = {s.id: s for s in spaces}
        self.on_stage: set[str] = set()
        self.ended: list[str] = []

    async def open_spaces(self) -> list[Space]:
        return list(self.spaces.values())

    async def end(self, space_id: str) -> None:
        self.ended.append(space_id)
        del self.spaces[space_id]

    def reaper(self) -> Reaper:
        return Reaper(LIMITS, self.open_spaces, self.on_stage.__contains__, self.end)


def test_the_sweep_ends_only_the_abandoned() -> None:
    busy = replace(LIVE, id="busyspace1")
    studio = FakeStudio([LIVE, busy, LATER])
    reaper = studio.reaper()
    studio.on_stage.add(busy.id)
    assert asyncio.run(reaper.sweep(t0)) == []  # first sight: the empty stage's clock starts
    assert reaper.ends_at(LIVE, t0 + 5) == t0 + 1800
    assert reaper.ends_at(busy, t0 + 5) is None
    assert asyncio.run(reaper.sweep(t0 + 1799)) == []
    assert asyncio.run(reaper.sweep(t0 + 1800)) == [LIVE.id]
    assert studio.ended == [LIVE.id] and reaper.ended == 1
    assert asyncio.run(reaper.sweep(t0 + 7200 + 86400)) == [LATER.id]
    assert busy.id in studio.spaces


def test_someone_who_came_and_went_restarts_the_idle_clock() -> None:
    studio = FakeStudio([LIVE])
    reaper = studio.reaper()
    asyncio.run(reaper.sweep(t0))
    # between two sweeps, a speaker went on stage at t0+1700 and left at t0+1750
    reaper.stage_changed(LIVE.id, True, t0 + 1700)
    reaper.stage_changed(LIVE.id, False, t0 + 1750)
    assert asyncio.run(reaper.sweep(t0 + 1800)) == []
    assert reaper.ends_at(LIVE, t0 + 1800) == t0 + 1750 + 1800


def test_a_space_that_cannot_end_does_not_stop_the_others() -> None:
    other = replace(LIVE, id="otherspace")
    studio = FakeStudio([LIVE, other])

    async def end(space_id: str) -> None:
        if space_id == LIVE.id:
            raise RuntimeError("disk full")
        await studio.end(space_id)

    reaper = Reaper(LIMITS, studio.open_spaces, studio.on_stage.__contains__, end)
    asyncio.run(reaper.sweep(t0))
    assert asyncio.run(reaper.sweep(t0 + 1800)) == [other.id]
