"""SSE framing of a space's events, and the slicing delivery workers do."""

from __future__ import annotations

import json

from ruang.live.events import Event
from ruang.live.sse import MAX_ID_DIGITS, RETRY_MS, Frames, answer, frame, frames_file, parse_after


def _parse(body: bytes) -> list[dict[str, str]]:
    """A minimal SSE parser as the WHATWG spec describes one: fields per blank-line block."""
    blocks = []
    for block in body.decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if fields:
            blocks.append(fields)
    return blocks


def test_a_frame_is_an_id_and_one_line_of_json_whose_type_cannot_be_overridden() -> None:
    e = Event(7, "stage", {"speaker": "s1", "type": "forged", "note": "a\n\nb"}, 12.3456)
    raw = frame(e)
    assert raw.startswith(b"id: 7\ndata: {") and raw.endswith(b"}\n\n")
    assert raw.count(b"\n\n") == 1  # a newline in a field never ends the frame early
    [block] = _parse(raw)
    assert block["id"] == "7"
    assert json.loads(block["data"]) == {
        "speaker": "s1",
        "type": "stage",
        "note": "a\n\nb",
        "at": 12.346,
    }


def test_workers_slice_the_frames_after_a_last_id() -> None:
    events = [Event(i, "listeners", {"count": i}, 0.0) for i in (100, 101, 102)]
    frames = Frames.parse(frames_file(events) + b'id: 103\ndata: {"tor')  # a torn last write
    assert frames.ids == (100, 101, 102)
    frames = Frames.parse(frames_file(events))
    assert frames.last_id == 102
    assert frames.after(None) == frames_file(events)
    assert frames.after(100) == frames_file(events[1:])
    assert frames.after(99) == frames_file(events)
    assert frames.after(102) == b""
    assert Frames.parse(b"garbage\n\n").ids == ()


def test_an_answer_starts_with_the_retry_hint_and_never_resets_the_last_id() -> None:
    events = [Event(5, "state", {"state": "live"}, 0.0)]
    blocks = _parse(answer(frames_file(events), 4))
    assert blocks == [{"retry": str(RETRY_MS), "id": "5", "data": blocks[0]["data"]}]
    # no new event: the client's own id is restated, so a browser keeps it for the reconnect
    assert _parse(answer(b"", 5)) == [{"retry": str(RETRY_MS), "id": "5"}]
    assert _parse(answer(b"", None)) == [{"retry": str(RETRY_MS)}]


def test_last_ids_that_are_not_ours_make_a_newcomer() -> None:
    assert parse_after("42") == 42
    assert parse_after(" 42 ") == 42
    assert parse_after(None) is None
    for bad in ("", "-1", "4.2", "1e9", "٣", "9" * (MAX_ID_DIGITS + 1), "abc"):
        assert parse_after(bad) is None, bad
