"""The event log of a media process's spaces: ids per space, bounded, read since an id."""

from __future__ import annotations

from ruang.live.events import MAX_EVENTS, EventLog, first_id


def test_events_are_numbered_per_space_and_read_since_an_id() -> None:
    log = EventLog()
    a1 = log.publish("a", "state", {"state": "live"})
    log.publish("b", "stage", {"speaker": "x", "on_stage": True})
    a2 = log.publish("a", "stage", {"speaker": "y", "muted": True})
    assert a2.id == a1.id + 1
    assert [e.id for e in log.since("a", 0)] == [a1.id, a2.id]
    assert [e.type for e in log.since("a", a1.id)] == ["stage"]
    assert len(log.since("b", 0)) == 1
    assert log.last_id("a") == a2.id and log.last_id("c") == 0
    log.forget("a")
    assert log.since("a", 0) == []


def test_a_space_keeps_only_its_last_events() -> None:
    log = EventLog()
    for i in range(MAX_EVENTS + 10):
        log.publish("a", "reaction", {"n": i})
    kept = log.since("a", 0)
    assert len(kept) == MAX_EVENTS and kept[0].data == {"n": 10}


def test_ids_keep_increasing_across_a_restarted_process() -> None:
    first = EventLog(clock=lambda: 1000.0)
    for _ in range(50):  # a run of 50 events within its first second
        last = first.publish("a", "stage", {})
    # the process restarts two seconds later: a new, empty log
    restarted = EventLog(clock=lambda: 1002.0).publish("a", "state", {"state": "live"})
    assert restarted.id > last.id
    assert first_id(1.0) == 1000
