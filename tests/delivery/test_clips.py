"""Clips' rules on a stored recording: 15–60 s, inside what is recorded, the last two minutes
of a live space, a budget per person and a cap per space, each refusal a clear 4xx."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ruang.delivery import clips as clips_module
from ruang.delivery.clips import LIVE_WINDOW_S, PER_PERSON, Clips
from ruang.errors import ApiError
from ruang.spaces.model import Space, State, utcnow
from ruang_bench.replay import synthesize

SID = "abcdefghij"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    spaces = tmp_path_factory.mktemp("spaces")
    return spaces, synthesize(spaces / SID, 150.0)


def space(state: State) -> Space:
    return Space(SID, "Town hall", state, utcnow(), started_at=utcnow())


async def refused(clips: Clips, s: Space, body: dict, person: str = "s:ana") -> ApiError:
    with pytest.raises(ApiError) as err:
        await clips.create(s, person, body)
    return err.value


async def test_the_window_and_the_fields(recorded) -> None:
    spaces, length = recorded
    clips = Clips(spaces, "http://ruang.test")
    ended, live = space(State.ENDED), space(State.LIVE)
    for body in (
        {"start_s": 1, "duration_s": 14},
        {"start_s": 1, "duration_s": 61},
        {"start_s": -1, "duration_s": 20},
        {"start_s": True, "duration_s": 20},
        {"duration_s": 20},
        {"start_s": 1, "duration_s": 20, "title": 7},
    ):
        err = await refused(clips, ended, body)
        assert (err.status, err.code) == (422, "invalid_field"), body
    err = await refused(clips, ended, {"start_s": length - 10, "duration_s": 15})
    assert (err.status, err.code) == (422, "outside_recording")
    early = length - LIVE_WINDOW_S - 5
    err = await refused(clips, live, {"start_s": early, "duration_s": 15})
    assert (err.status, err.code) == (422, "outside_window")  # while live: the last minutes
    made = await clips.create(live, "t:bo", {"start_s": length - 30, "duration_s": 30})
    assert made["title"] == "Town hall" and 29.9 < made["duration_s"] < 30.1
    made = await clips.create(ended, "t:bo", {"start_s": early, "duration_s": 15})  # ended: any
    assert made["page_url"] == f"http://ruang.test/s/{SID}/clips/{made['id']}"
    lan = await clips.create(ended, "t:bo", {"start_s": early, "duration_s": 15}, "http://lan:80")
    assert lan["page_url"] == f"http://lan:80/s/{SID}/clips/{lan['id']}"  # the request's Host
    assert lan["file_url"].startswith(f"http://lan:80/api/spaces/{SID}/clips/")
    clip = clips.read(SID, lan["id"])
    assert clip is not None and clips.view(clip, "http://lan:80") == lan
    assert clips.file(SID, made["id"]) is not None and clips.read(SID, made["id"]) is not None
    assert clips.file(SID, "../../etc") is None and clips.read(SID, "nosuchclip") is None
    err = await refused(
        clips, replace(ended, state=State.SCHEDULED), {"start_s": 0, "duration_s": 15}
    )
    assert (err.status, err.code) == (409, "not_started")


async def test_a_budget_per_person_and_a_cap_per_space(recorded, monkeypatch) -> None:
    spaces, _ = recorded
    clips = Clips(spaces, "http://ruang.test")
    ended = space(State.ENDED)
    count, _ = PER_PERSON
    for _ in range(count):
        await clips.create(ended, "s:cy", {"start_s": 10, "duration_s": 15})
    err = await refused(clips, ended, {"start_s": 10, "duration_s": 15}, "s:cy")
    assert (err.status, err.code) == (429, "too_many_clips") and int(err.headers["Retry-After"]) > 0
    await clips.create(ended, "s:dee", {"start_s": 10, "duration_s": 15})  # another person
    held = len(list((spaces / SID / "clips").glob("*.json")))
    monkeypatch.setattr(clips_module, "MAX_PER_SPACE", held)
    err = await refused(clips, ended, {"start_s": 10, "duration_s": 15}, "s:eve")
    assert (err.status, err.code) == (429, "clips_full")
