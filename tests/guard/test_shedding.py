"""Load shedding: the classes, the levels, and what each level refuses."""

from __future__ import annotations

import pytest

from ruang.guard.shedding import Priority, Shedder, classify


@pytest.mark.parametrize(
    ("method", "path", "priority"),
    [
        ("POST", "/whip/abc", Priority.SPEAKER),
        ("DELETE", "/whip/abc/sessions/x", Priority.SPEAKER),
        ("POST", "/api/spaces/abc/end", Priority.HOST),
        ("POST", "/api/spaces/abc/speakers/x/mute", Priority.HOST),
        ("GET", "/hls/abc/t/tick.et.mac/live.m3u8", Priority.LISTENER),
        ("GET", "/hls/abc/t/tick.et.mac/3.1.m4s", Priority.LISTENER),
        ("POST", "/api/spaces/abc/join", Priority.JOIN),
        ("GET", "/hls/abc/live.m3u8", Priority.JOIN),
        ("GET", "/api/spaces/abc", Priority.OTHER),
        ("GET", "/api/spaces/abc/events", Priority.OTHER),
        ("POST", "/api/spaces/abc/reactions", Priority.OTHER),
        ("GET", "/s/abc", Priority.OTHER),
        ("GET", "/static/style.css", Priority.OTHER),
    ],
)
def test_classes(method: str, path: str, priority: Priority) -> None:
    assert classify(method, path) == priority


def test_levels_rise_at_once_and_fall_slowly() -> None:
    s = Shedder()
    s.judge(0.5, 0.2)
    assert s.level == 3
    s.judge(0.0, 0.2)
    assert s.level == 2
    s.judge(0.0, 0.2)
    s.judge(0.0, 0.2)
    assert s.level == 0
    s.judge(0.0, 0.95)
    assert s.level == 1  # a busy CPU alone only degrades


def test_what_each_level_refuses() -> None:
    s = Shedder()
    never = (Priority.SPEAKER, Priority.HOST, Priority.LISTENER)
    for lag, refused in [
        (0.0, set()),
        (0.06, set()),
        (0.2, {Priority.OTHER}),
        (0.5, {Priority.OTHER, Priority.JOIN}),
    ]:
        s.level = 0
        s.judge(lag, 0.0)
        assert {p for p in Priority if s.refuses(p)} == refused
        assert not any(s.refuses(p) for p in never)
    assert s.shed[Priority.JOIN] == 1 and s.shed[Priority.OTHER] == 2


def test_samples_are_judged_per_window() -> None:
    s = Shedder()
    s.sample(0.3, 10.0)  # first window closes at once
    assert s.level == 2
    s.sample(0.0, 10.5)
    assert s.level == 2  # still inside the window
    s.sample(0.0, 11.1)
    assert s.level == 1
    for i in range(19):  # a probe every 50 ms, as the worker runs it
        s.sample(0.0, 11.15 + 0.05 * i)
    s.sample(0.9, 12.2)  # one long pause among calm samples: the mean stays low
    assert s.level == 0
