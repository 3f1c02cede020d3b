"""Recorders fed synthetic crowds and attacks: the report must name what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from forensics_sim import T0, Actor, Run, addresses, hammer, players, prefixes

from ruang.forensics.report import build_report

EVENT = T0 + 90  # 90 s of calm first: the audience's networks are a minute old by then
END = T0 + 125
AUDIENCE_NETS = prefixes(0, 30)  # the regular audience: 30 /24s, one listener each


def audience() -> Actor:
    return players(addresses(30, AUDIENCE_NETS), T0, END, "a", ramp_s=10)


def crowd(count: int = 300) -> Actor:
    """A real surge: 60 % from the audience's networks, 40 % from new networks, one each."""
    known = addresses(count * 6 // 10, AUDIENCE_NETS, start=100)
    new = addresses(count - len(known), prefixes(1000, count - len(known)))
    return players(known + new, EVENT, END, "c", ramp_s=10)


def incidents(tmp_path: Path, actors: list[Actor], **kw: Any) -> list[dict[str, Any]]:
    signals = kw.pop("signals", None)
    run = Run(tmp_path, **kw)
    run.play(T0, END, actors, signals)
    run.close()
    report = build_report(run.records)
    return list(report["incidents"])


def only(incs: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(incs) == 1, [(i["start"] - T0, i["end"] - T0, i["verdict"]) for i in incs]
    inc = incs[0]
    assert EVENT - 2 <= inc["start"] <= EVENT + 10, inc["start"] - T0
    assert inc["reasons"], inc
    return inc


def test_calm_traffic_has_no_incident(tmp_path: Path) -> None:
    assert incidents(tmp_path, [audience()]) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_organic_surge(tmp_path: Path, workers: int) -> None:
    inc = only(incidents(tmp_path, [audience(), crowd()], workers=workers))
    assert inc["verdict"] == "organic_surge", inc
    assert inc["kind"] is None
    assert inc["confidence"] >= 0.6
    assert any("visited before" in r for r in inc["reasons"])


def test_organic_surge_from_new_networks_only(tmp_path: Path) -> None:
    # nobody came from these networks before: the crowd's spread still tells
    surge = players(addresses(300, prefixes(1000, 300)), EVENT, END, "c", ramp_s=10)
    inc = only(incidents(tmp_path, [audience(), surge]))
    assert inc["verdict"] == "organic_surge", inc


def test_overloaded_node_is_a_capacity_failure_not_an_attack(tmp_path: Path) -> None:
    def strained(sec: int) -> dict[str, float]:
        return {"loop_lag_s": 0.3, "shed_level": 2.0} if sec >= EVENT + 5 else {}

    surge = players(addresses(300, prefixes(1000, 300)), EVENT, END, "c", ramp_s=10, late=0.05)
    inc = only(incidents(tmp_path, [audience(), surge], signals=strained))
    assert inc["verdict"] == "capacity_failure", inc
    assert any("late" in r for r in inc["reasons"])
    assert any("lagged" in r for r in inc["reasons"])


def test_join_flood(tmp_path: Path) -> None:
    bots = hammer(
        addresses(40, prefixes(2000, 40)), EVENT, END, 8, "join", ("wait", "pow_required")
    )
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "join_flood"), inc


def test_playlist_flood(tmp_path: Path) -> None:
    bots = hammer(
        addresses(40, prefixes(2000, 8)), EVENT, END, 20, "playlist", ("ok", "rate_limited")
    )
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "playlist_flood"), inc


def test_segment_flood_with_a_stolen_ticket(tmp_path: Path) -> None:
    bots = hammer(addresses(20, prefixes(2000, 20)), EVENT, END, 30, "part", ("ok",), "stolen")
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "segment_flood"), inc


def test_cache_busting(tmp_path: Path) -> None:
    bots = hammer(addresses(30, prefixes(2000, 30)), EVENT, END, 10, "playlist", ("cache_bust",))
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "cache_busting"), inc


def test_forged_tickets(tmp_path: Path) -> None:
    bots = hammer(addresses(30, prefixes(2000, 30)), EVENT, END, 10, "part", ("ticket_forged",))
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "forged_tickets"), inc


def test_slowloris(tmp_path: Path) -> None:
    bots = hammer(
        addresses(10, prefixes(2000, 2)), EVENT, END, 3, "other", ("timeout",), None, None
    )
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "slowloris"), inc


def test_bots_that_pace_like_players_in_packed_networks(tmp_path: Path) -> None:
    # packed in 5 new networks *and* ticking on one program's timer: the timing is the
    # evidence, the density supports it (issue #11: density alone is carrier-grade NAT too)
    bots = players(addresses(200, prefixes(3000, 5)), EVENT, END, "b", ramp_s=5, regular=True)
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "bot_listeners"), inc
    assert any("never seen before" in r for r in inc["reasons"])
    assert any("same two 10 ms bins" in r for r in inc["reasons"])


def test_a_real_audience_packed_behind_carrier_nat_is_organic(tmp_path: Path) -> None:
    # issue #11 (c): hundreds of real listeners from two new /24s (carrier-grade NAT)
    crowd = players(addresses(300, prefixes(3000, 2)), EVENT, END, "c", ramp_s=10)
    inc = only(incidents(tmp_path, [audience(), crowd]))
    assert inc["verdict"] == "organic_surge", inc
    assert any("behaved like players" in r for r in inc["reasons"])


def test_bots_on_timers_spread_one_per_network(tmp_path: Path) -> None:
    bots = players(addresses(200, prefixes(3000, 200)), EVENT, END, "b", ramp_s=5, regular=True)
    inc = only(incidents(tmp_path, [audience(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("attack", "bot_listeners"), inc
    assert any("same two 10 ms bins" in r for r in inc["reasons"])


def test_join_flood_hidden_in_a_real_surge_is_mixed(tmp_path: Path) -> None:
    bots = hammer(addresses(20, prefixes(2000, 20)), EVENT, END, 10, "join", ("wait",))
    inc = only(incidents(tmp_path, [audience(), crowd(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("mixed", "join_flood"), inc


def test_playlist_flood_hidden_in_a_real_surge_is_mixed(tmp_path: Path) -> None:
    bots = hammer(addresses(10, prefixes(2000, 10)), EVENT, END, 40, "playlist", ("ok",))
    inc = only(incidents(tmp_path, [audience(), crowd(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("mixed", "playlist_flood"), inc


def test_bot_listeners_hidden_in_a_real_surge_are_mixed(tmp_path: Path) -> None:
    bots = players(addresses(200, prefixes(3000, 5)), EVENT, END, "b", ramp_s=5, regular=True)
    inc = only(incidents(tmp_path, [audience(), crowd(), bots]))
    assert (inc["verdict"], inc["kind"]) == ("mixed", "bot_listeners"), inc


def test_distress_without_a_change_in_traffic_is_inconclusive(tmp_path: Path) -> None:
    def strained(sec: int) -> dict[str, float]:
        return {"loop_lag_s": 0.4, "shed_level": 3.0} if EVENT <= sec < EVENT + 8 else {}

    inc = only(incidents(tmp_path, [audience()], signals=strained))
    assert inc["verdict"] == "inconclusive", inc


def test_an_audience_that_arrives_and_stays_becomes_the_baseline(tmp_path: Path) -> None:
    # a space's start: 100 listeners within 2 s after quiet seconds, then they stay. Their
    # arrival is an incident, but once held for a minute their level is the new normal: the
    # window must close (found by `ruang bench attack`: it never did).
    start, end = T0 + 5, T0 + 200
    arriving = players(addresses(100, prefixes(0, 100)), start, end, "a", ramp_s=2)
    run = Run(tmp_path)
    run.play(T0, end, [arriving])
    run.close()
    incs = build_report(run.records)["incidents"]
    assert len(incs) == 1, [(i["start"] - T0, i["end"] - T0) for i in incs]
    assert start - 1 <= incs[0]["start"] <= start + 2
    assert incs[0]["end"] <= start + 70, incs[0]["end"] - T0
