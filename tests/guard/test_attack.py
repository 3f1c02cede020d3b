"""Attack mode: entered on a few seconds of hostile evidence (not on load), left after a calm
period with hysteresis, its effect and its log — all on a fake clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ruang.guard.attack import MAX_CHANGES, AttackMode, Second, evidence
from ruang.guard.pow import NORMAL_BITS

CALM: dict[str, Any] = {
    "requests": 5_000,
    "refused": 20,
    "ticket_failures": 5,
    "rate_limited": 0,
    "pow_failures": 0,
    "cache_busts": 0,
    "joins": 300,
    "join_capacity_per_s": 1_000.0,
    "shed_level": 0,
    "new_network_share": 0.4,
}
FORGED = {**CALM, "refused": 3_000, "ticket_failures": 3_000}


def run(mode: AttackMode, start: int, seconds: int, **second: Any) -> list[bool]:
    return [mode.update(float(t), **second) for t in range(start, start + seconds)]


def test_an_organic_surge_is_not_an_attack() -> None:
    mode = AttackMode()
    surge = {**CALM, "requests": 60_000, "joins": 9_000, "shed_level": 3, "new_network_share": 1.0}
    assert not any(run(mode, 0, 600, **surge))
    assert not mode.changes and mode.since is None


def test_enters_on_the_third_hostile_second_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    mode = AttackMode()
    run(mode, 0, 10, **CALM)
    with caplog.at_level(logging.WARNING, logger="ruang.guard.attack"):
        assert run(mode, 10, 3, **FORGED) == [False, False, True]
    assert mode.active and mode.since == 12.0
    assert "forged or expired tickets" in mode.reason and "3 of the last 5" in mode.reason
    assert "40% of networks new" in mode.reason
    assert mode.limit_factor == 0.25 and mode.pow_floor == NORMAL_BITS
    assert list(mode.changes) == [{"time": 12.0, "entered": True, "reason": mode.reason}]
    assert any("attack mode entered" in r.getMessage() for r in caplog.records)


def test_two_hostile_seconds_in_five_do_not_enter() -> None:
    mode = AttackMode()
    for t in range(0, 300, 5):  # a pulse of 2 hostile seconds every 5
        run(mode, t, 2, **FORGED)
        run(mode, t + 2, 3, **CALM)
    assert not mode.active
    assert mode.limit_factor == 1.0 and mode.pow_floor == 0


def test_leaves_after_a_calm_period_never_before_a_minute() -> None:
    mode = AttackMode()
    run(mode, 0, 3, **FORGED)  # enters at 2
    calm = run(mode, 3, 100, **CALM)
    left_at = 3 + calm.index(False)
    assert left_at == 62  # 30 calm seconds came at 32, but a minute must pass since 2
    assert not mode.active and "No sign of hostility" in mode.reason
    mode = AttackMode()
    run(mode, 0, 50, **FORGED)  # a long attack: entered at 2, last hostile second 49
    calm = run(mode, 50, 100, **CALM)
    assert 50 + calm.index(False) == 79  # 30 s after the last hostile second
    assert [c["entered"] for c in mode.changes] == [True, False]


def test_a_pulsing_attack_keeps_it_on() -> None:
    mode = AttackMode()
    states = []
    for t in range(0, 600, 20):  # 3 hostile seconds every 20
        states += run(mode, t, 3, **FORGED)
        states += run(mode, t + 3, 17, **CALM)
    assert all(states[2:])
    assert len(mode.changes) == 1


def test_own_tightening_does_not_keep_it_on() -> None:
    limited = {**CALM, "refused": 750, "rate_limited": 750}  # 15 % rate-limited
    mode = AttackMode()
    assert run(mode, 0, 3, **limited)[-1]  # enough to enter…
    staying = run(mode, 3, 60, **limited)  # …not enough to stay under tightened limits
    assert 3 + staying.index(False) == 62


@pytest.mark.parametrize(
    "second",
    [
        {"refused": 3_000},
        {"rate_limited": 600, "refused": 600},
        {"pow_failures": 200, "joins": 100},
        {"cache_busts": 800},
    ],
)
def test_each_kind_of_evidence(second: dict[str, int]) -> None:
    assert evidence_of({**CALM, **second})
    mode = AttackMode()
    assert run(mode, 0, 3, **{**CALM, **second})[-1]


def test_small_traffic_is_never_evidence() -> None:
    tiny = {**FORGED, "requests": 99, "refused": 99, "ticket_failures": 99}
    assert not evidence_of(tiny)
    assert not any(run(AttackMode(), 0, 100, **tiny))


def test_the_log_of_changes_is_bounded() -> None:
    mode = AttackMode()
    t = 0
    for _ in range(MAX_CHANGES):  # enter, then leave, again and again
        run(mode, t, 3, **FORGED)
        run(mode, t + 3, 100, **CALM)
        t += 103
    assert len(mode.changes) == MAX_CHANGES and mode.changes[-1]["entered"] is False


def evidence_of(second: dict[str, Any]) -> list[str]:
    return evidence(Second(**second), active=False)
