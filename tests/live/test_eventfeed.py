"""Batching the stream: events only on change, figures and reactions once a second, files only
when there is something new. A fake clock; nothing sleeps."""

from __future__ import annotations

import json
from pathlib import Path

from ruang.live.eventfeed import (
    EVENTS_FILE,
    FORGET_AFTER_S,
    JOURNAL_FILE,
    EventFeed,
    ReactionTally,
)
from ruang.live.events import EventLog
from ruang.live.sse import Frames


class Room:
    """What the feed reads from a studio: the spaces run here, gates, listener counts."""

    def __init__(self) -> None:
        self.running = {"space00001"}
        self.speaking: dict[str, list[str]] = {}
        self.listeners: dict[str, int] = {}

    def feed(self, log: EventLog, tmp: Path) -> EventFeed:
        return EventFeed(
            log,
            tmp,
            lambda: self.running,
            lambda s: self.speaking.get(s, []),
            lambda s, now: self.listeners.get(s, 0),
        )


def types(log: EventLog, space: str = "space00001") -> list[str]:
    return [e.type for e in log.since(space, 0)]


def test_speaking_and_listeners_are_published_only_when_they_change(tmp_path: Path) -> None:
    room, log = Room(), EventLog(clock=lambda: 1000.0)
    feed = room.feed(log, tmp_path)
    feed.step(0.0)
    assert types(log) == ["listeners"]  # 0 listeners: the first figure is always said
    room.speaking["space00001"] = ["bob", "ann"]
    feed.step(0.25)
    feed.step(0.5)  # nothing changed
    assert types(log) == ["listeners", "speaking"]
    assert log.since("space00001", 0)[-1].data == {"speakers": ["ann", "bob"]}
    room.listeners["space00001"] = 7
    feed.step(0.75)  # within the second: not yet
    assert types(log)[-1] == "speaking"
    feed.step(1.0)
    feed.step(2.0)  # the same count again: nothing
    assert types(log) == ["listeners", "speaking", "listeners"]
    assert log.since("space00001", 0)[-1].data == {"count": 7}
    room.speaking["space00001"] = []
    feed.step(2.25)
    assert log.since("space00001", 0)[-1].data == {"speakers": []}


def test_reactions_of_every_worker_become_one_event_a_second(tmp_path: Path) -> None:
    room, log = Room(), EventLog(clock=lambda: 1000.0)
    feed = room.feed(log, tmp_path)
    feed.step(0.0)
    for worker in range(3):
        feed.reactions.add("space00001", {"👏": 10 + worker, "🔥": 1})
    feed.reactions.add("space00001", {"💩": 5, "👏": -3, "🔥": "many"})  # refused, each
    feed.step(0.5)
    assert "reaction" not in types(log)  # counted for the whole second first
    feed.reactions.add("space00001", {"❤️": 1})
    feed.step(1.0)
    reactions = [e for e in log.since("space00001", 0) if e.type == "reaction"]
    assert [r.data for r in reactions] == [{"counts": {"👏": 33, "🔥": 3, "❤️": 1}, "total": 37}]
    feed.step(2.0)  # no reactions this second: no event
    assert types(log).count("reaction") == 1


def test_reactions_for_spaces_not_run_here_are_dropped() -> None:
    tally = ReactionTally()
    tally.add("elsewhere0", {"👏": 1})
    room, log = Room(), EventLog()
    feed = room.feed(log, Path("/nonexistent"))
    feed.reactions = tally
    feed.step(0.0)
    assert tally.counts == {}


def test_the_file_is_written_only_when_there_is_a_new_event(tmp_path: Path) -> None:
    room, log = Room(), EventLog(clock=lambda: 1000.0)
    (tmp_path / "space00001").mkdir()
    feed = room.feed(log, tmp_path)
    batch = feed.step(0.0)
    assert list(batch.files) == ["space00001"]
    feed.write(batch)
    assert not feed.step(0.25)  # nothing new: no write
    log.publish("space00001", "request", {"listener": "l1"})  # published by someone else
    batch = feed.step(0.5)
    feed.write(batch)
    written = Frames.parse((tmp_path / "space00001" / EVENTS_FILE).read_bytes())
    assert written.ids == tuple(e.id for e in log.since("space00001", 0))
    assert len(written.ids) == 2


def test_a_space_no_longer_run_here_is_forgotten_once_quiet(tmp_path: Path) -> None:
    room, log = Room(), EventLog(clock=lambda: 1000.0)
    feed = room.feed(log, tmp_path)
    feed.step(0.0)
    room.running = set()
    log.publish("space00001", "state", {"state": "ended"})
    assert "space00001" in feed.step(1.0).files  # its last events still reach its file
    feed.step(1.0 + FORGET_AFTER_S / 2)
    assert log.spaces() == ["space00001"]
    feed.step(2.0 + FORGET_AFTER_S)
    assert log.spaces() == []


def test_the_journal_keeps_who_spoke_and_reactions_beyond_the_event_file(tmp_path: Path) -> None:
    """The replay's timeline: every speaking change and reaction second, appended once each,
    in order, even after the event file has let them go (it keeps MAX_EVENTS)."""
    clock = [1000.0]
    room, log = Room(), EventLog(clock=lambda: clock[0])
    (tmp_path / "space00001").mkdir()
    feed = room.feed(log, tmp_path)
    for second in range(300):
        clock[0] = 1000.0 + second
        room.speaking["space00001"] = ["ann"] if second % 2 else []
        feed.reactions.add("space00001", {"👏": 1})
        log.publish("space00001", "request", {"listener": f"l{second}"})  # not journaled
        feed.write(feed.step(float(second)))
    lines = [json.loads(x) for x in (tmp_path / "space00001" / JOURNAL_FILE).read_text().split()]
    speaking = [x for x in lines if x["type"] == "speaking"]
    assert [x["speakers"] for x in speaking[:3]] == [["ann"], [], ["ann"]]
    assert len(speaking) == 299  # every change, once (the first second had nobody: no change)
    assert sum(x["total"] for x in lines if x["type"] == "reaction") == 300
    assert {x["type"] for x in lines} == {"speaking", "reaction"}
    assert [x["at"] for x in lines] == sorted(x["at"] for x in lines)
    assert len(Frames.parse((tmp_path / "space00001" / EVENTS_FILE).read_bytes()).ids) < 300
