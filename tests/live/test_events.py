"""The event log of a media process's spaces: ids per space, bounded, read since an id."""

from __future__ import annotations

from ruang.live.events import MAX_EVENTS, EventLog


def test_events_are_numbered_per_space_and_read_since_an_id() -> None:
    log = EventLog()
    a1 = log.publish("a", "state", {"state": "live"})
    log.publish("b", "stage", {"speaker": "x", "on_stage": True})
    a2 = log.publish("a", "stage", {"speaker": "y", "muted": True})
    assert (a1.id, a2.id) == (1, 2)
    assert [e.id for e in log.since("a", 0)] == [1, 2]
    assert [e.type for e in log.since("a", 1)] == ["stage"]
    assert [e.id for e in log.since("b", 0)] == [1]
    log.forget("a")
    assert log.since("a", 0) == []


def test_a_space_keeps_only_its_last_events() -> None:
    log = EventLog()
    for i in range(MAX_EVENTS + 10):
        log.publish("a", "reaction", {"n": i})
    kept = log.since("a", 0)
    assert len(kept) == MAX_EVENTS and kept[0].id == 11
