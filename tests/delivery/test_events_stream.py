"""A worker's answers to GET /api/spaces/{id}/events: slices of the event file, the same bytes
for everyone with the same last id, held until the next batch when there is nothing new."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ruang.delivery.events import EMPTY_CACHE, EVENTS_CACHE, EventStream
from ruang.live.eventfeed import EVENTS_FILE
from ruang.live.events import Event
from ruang.live.sse import frames_file

SPACE = "abcdefghij"


def write(tmp: Path, ids: list[int]) -> None:
    events = [Event(i, "listeners", {"count": i}, 0.0) for i in ids]
    (tmp / SPACE / EVENTS_FILE).write_bytes(frames_file(events))


def stream(tmp: Path, wait_s: float = 5.0) -> EventStream:
    (tmp / SPACE).mkdir(exist_ok=True)
    known = object()
    return EventStream(tmp, lambda s: known if s == SPACE else None, wait_s=wait_s)  # type: ignore[arg-type,return-value]


def ids_in(body: bytes) -> list[int]:
    return [int(line[4:]) for line in body.split(b"\n") if line.startswith(b"id: ")]


async def test_answers_hold_the_events_after_the_last_id(tmp_path: Path) -> None:
    s = stream(tmp_path)
    write(tmp_path, [10, 11, 12])
    r = await s.handle(SPACE, None)
    assert r.status == 200 and ids_in(r.body) == [10, 11, 12]
    headers = r.header_dict()
    assert headers["Content-Type"].startswith("text/event-stream")
    assert headers["Cache-Control"] == EVENTS_CACHE
    assert ids_in((await s.handle(SPACE, "10")).body) == [11, 12]
    same = await s.handle(SPACE, "10")
    assert same is await s.handle(SPACE, "10")  # built once per file version
    # an id beyond the space's (forged, huge): answered at once, as a newcomer
    assert ids_in((await s.handle(SPACE, "9999999999999999")).body) == [10, 11, 12]


async def test_a_caught_up_subscriber_waits_for_the_next_batch(tmp_path: Path) -> None:
    s = stream(tmp_path)
    write(tmp_path, [10, 11])
    waiters = [asyncio.create_task(s.handle(SPACE, "11")) for _ in range(100)]
    await asyncio.sleep(0.1)
    assert not any(w.done() for w in waiters)
    write(tmp_path, [10, 11, 12, 13])
    answers = await asyncio.wait_for(asyncio.gather(*waiters), 2.0)
    assert {a.body for a in answers} == {answers[0].body}  # one answer for all of them
    assert ids_in(answers[0].body) == [12, 13]
    assert s.file(SPACE).waiters == 0


async def test_a_wait_is_bounded_and_keeps_the_clients_id(tmp_path: Path) -> None:
    s = stream(tmp_path, wait_s=0.1)
    write(tmp_path, [10])
    r = await s.handle(SPACE, "10")
    assert r.status == 200 and ids_in(r.body) == [10] and b"data:" not in r.body
    assert r.header_dict()["Cache-Control"] == EMPTY_CACHE


async def test_unknown_spaces_are_refused_without_a_file(tmp_path: Path) -> None:
    s = stream(tmp_path)
    for space in ("zzzzzzzzzz", "../../etc", "ABC"):
        r = await s.handle(space, None)
        assert r.status == 404
    assert list(s._files) == []
