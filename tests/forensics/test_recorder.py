"""What a record says about a second: counts, bounds, pacing, conversion, network ages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ruang.forensics.features import merge
from ruang.forensics.recorder import MAX_SPACES, OTHER_SPACE, TrafficRecorder

T0 = 1_800_000_000


def one_second(rec: TrafficRecorder, sec: int) -> dict[str, Any]:
    (record,) = rec.flush(sec + 1.0)
    assert record["t"] == sec
    return record


def test_requests_are_counted_by_class_and_outcome_whatever_the_strings(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    rec.request(T0 + 0.1, "sp", "join", "ok", "10.0.0.1", "10.0.0.0/24")
    rec.request(T0 + 0.2, "sp", "join", "wait", "10.0.0.1", "10.0.0.0/24")
    rec.request(T0 + 0.3, "sp", "brand-new-class", "odd outcome", "10.0.0.2", "10.0.0.0/24")
    rec.request(T0 + 0.4, None, "page", "ok", "10.0.1.1", "10.0.1.0/24")
    record = one_second(rec, T0)
    assert record["spaces"]["sp"]["by"] == {
        "join": {"ok": 1, "wait": 1},
        "brand-new-class": {"odd outcome": 1},
    }
    total = record["total"]
    assert total["req"] == 4 and total["src"] == 3 and total["net"] == 2
    assert total["by"]["page"] == {"ok": 1}
    assert "None" not in record["spaces"] and None not in record["spaces"]


def test_per_source_spread_and_entropy(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    counts = [1] * 98 + [50, 100]  # 98 quiet sources and two heavy ones
    for i, n in enumerate(counts):
        for k in range(n):
            rec.request(T0 + k / 200, "sp", "playlist", "ok", f"10.0.{i}.1", f"10.0.{i}.0/24")
    total = one_second(rec, T0)["total"]
    assert total["req"] == 248
    assert total["rate"]["p50"] == 1 and total["rate"]["p90"] == 1
    assert total["rate"]["p99"] == 50 and total["rate"]["max"] == 100
    assert total["rate"]["top1"] == round(100 / 248, 4)  # the top 1 % is one source
    assert total["groups"]["playlist"]["max"] == 100
    assert total["top"][0] == ["10.0.99.1", 100]
    assert 0 < total["ent_n"] < 0.8


def test_even_sources_have_full_entropy_and_merging_workers_keeps_it_exact(tmp_path: Path) -> None:
    a, b = TrafficRecorder(tmp_path, "n1", 0), TrafficRecorder(tmp_path, "n1", 1)
    for i in range(4):
        for rec in (a, b):
            rec.request(T0 + 0.1 * i, "sp", "part", "ok", f"10.{rec.worker}.0.{i}", "x/24")
    sa, sb = one_second(a, T0)["total"], one_second(b, T0)["total"]
    assert sa["ent"] == 2.0 and sa["ent_n"] == 1.0
    merged = merge([sa, sb])
    assert merged["src"] == 8 and merged["ent"] == 3.0 and merged["ent_n"] == 1.0


def test_per_second_tables_are_capped_and_the_overflow_counted(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0, max_sources=100)
    for i in range(1000):
        rec.request(T0 + i / 2000, "sp", "part", "ok", f"10.{i // 250}.{i % 250}.1", f"n{i}")
    total = one_second(rec, T0)["total"]
    assert total["src"] == 100 and total["src_over"] == 900
    assert total["net"] == 100 and total["net_over"] == 900
    assert total["req"] == 1000


def test_spaces_beyond_the_bound_share_one_bucket(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    for i in range(MAX_SPACES + 50):
        rec.request(T0 + 0.5, f"space{i}", "playlist", "not_found", "10.0.0.1", "10.0.0.0/24")
    record = one_second(rec, T0)
    assert len(record["spaces"]) == MAX_SPACES
    assert record["spaces"][OTHER_SPACE]["req"] == 51
    assert record["total"]["req"] == MAX_SPACES + 50


def test_listener_memory_is_bounded(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0, max_listeners=10)
    for i in range(100):
        rec.request(T0 + i / 200, "sp", "part", "ok", "10.0.0.1", "10.0.0.0/24", f"L{i}")
    one_second(rec, T0)
    assert rec.statistics()["listeners_remembered"] == 10


def play(rec: TrafficRecorder, sec: int, listener: str, playlists: int, media: int) -> None:
    for k in range(playlists):
        rec.request(sec + 0.1 + k / 50, "sp", "playlist", "ok", "10.0.0.1", "n", listener)
    for k in range(media):
        rec.request(sec + 0.12 + k / 50, "sp", "part", "ok", "10.0.0.1", "n", listener)


def test_pacing_conformity(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    for sec in range(T0, T0 + 3):
        play(rec, sec, "player", 2, 2)  # LL-HLS: a playlist and a part per part
        play(rec, sec, "hammer", 20, 2)  # far above a player's pace
        play(rec, sec, "media-only", 0, 2)  # never looks at the playlist
        play(rec, sec, "ffmpeg", 1, 1 if sec % 2 else 0)  # a segment every 2 s
        records = rec.flush(sec + 1.0)
    total = records[-1]["total"]
    assert total["lis"] == 4
    assert total["lis_paced"] == 2  # the player and ffmpeg


def test_join_to_listen_conversion(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    for i in range(4):
        rec.request(T0 + 0.1, "sp", "join", "ok", "10.0.0.1", "n", f"L{i}")
    rec.request(T0 + 0.2, "sp", "join", "wait", "10.0.0.2", "n")  # no ticket, no listener
    first = one_second(rec, T0)["spaces"]["sp"]
    assert first["tix"] == 4 and first["listen"] == 0
    rec.request(T0 + 3.5, "sp", "part", "ok", "10.0.0.1", "n", "L0")  # 3.4 s after its ticket
    rec.request(T0 + 3.6, "sp", "part", "ok", "10.0.0.1", "n", "L0")  # not a first fetch
    rec.request(
        T0 + 3.7, "sp", "part", "ok", "10.0.0.9", "n", "elsewhere"
    )  # ticket from another worker
    rec.request(T0 + 3.8, "sp", "join", "ok", "10.0.0.1", "n", "L1")  # a renewal: not a new ticket
    later = rec.flush(T0 + 4.0)[-1]["spaces"]["sp"]
    assert (later["tix"], later["listen"], later["conv"]) == (0, 2, 1)


def test_network_ages_and_the_established_table_survives_a_flood(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0, max_networks=50)
    regular = [f"10.0.{i}.0/24" for i in range(5)]
    for i, net in enumerate(regular):
        rec.request(T0 + 0.1, "sp", "part", "ok", f"10.0.{i}.1", net)
    assert one_second(rec, T0)["total"]["net_age"] == [5, 0, 0, 0, 0]
    for i, net in enumerate(regular):
        rec.request(T0 + 61.1, "sp", "part", "ok", f"10.0.{i}.1", net)
    assert one_second(rec, T0 + 61)["total"]["net_age"] == [0, 5, 0, 0, 0]
    for k in range(10):  # 1000 new networks, 20 times the table
        for i in range(100):
            rec.request(T0 + 62 + k + i / 200, "sp", "part", "ok", "1.1.1.1", f"f{k}.{i}")
        rec.flush(T0 + 63 + k)
    for i, net in enumerate(regular):
        rec.request(T0 + 700.5, "sp", "part", "ok", f"10.0.{i}.1", net)
    rec.request(T0 + 700.6, "sp", "part", "ok", "2.2.2.2", "brand-new")
    assert one_second(rec, T0 + 700)["total"]["net_age"] == [1, 0, 5, 0, 0]
    stats = rec.statistics()
    assert stats["networks_established"] == 5 and stats["networks_young"] <= 50


def test_signals_make_a_record_and_silent_seconds_make_none(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    rec.signals(T0 + 0.5, loop_lag_s=0.25, shed_level=2, attack_mode=1)
    rec.request(T0 + 2.5, "sp", "part", "ok", "10.0.0.1", "n", late=True)
    records = rec.flush(T0 + 3.0)
    assert [r["t"] for r in records] == [T0, T0 + 2]
    assert records[0]["signals"] == {"loop_lag_s": 0.25, "shed_level": 2.0, "attack_mode": 1.0}
    assert records[0]["total"]["req"] == 0
    assert records[1]["total"]["parts_late"] == 1 and records[1]["total"]["parts_ok"] == 1
    assert rec.flush(T0 + 3.5) == []  # the current second is still open


def test_a_second_arriving_late_is_counted_in_the_open_second(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    rec.request(T0 + 1.5, "sp", "part", "ok", "a", "n")
    rec.request(T0 + 0.9, "sp", "part", "ok", "b", "n")  # a clock a little behind
    (record,) = rec.flush(T0 + 2.0)
    assert record["t"] == T0 + 1 and record["total"]["req"] == 2


@pytest.mark.parametrize("bad", [{"max_sources": 0}, {"max_bytes": 10}])
def test_bad_bounds_are_refused(tmp_path: Path, bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TrafficRecorder(tmp_path, "n1", 0, **bad)


def test_what_refused_requests_carried_and_shared_tickets_are_recorded(tmp_path: Path) -> None:
    rec = TrafficRecorder(tmp_path, "n1", 0)
    t = 1_800_000_000.0
    for i in range(12):  # one real ticket fetched from 12 sources in 4 networks
        src = f"10.0.{i % 4}.{i}"
        outcome = "ok" if i < 2 else "rate_limited"
        carried = None if outcome == "ok" else "valid"
        rec.request(t + 0.01 * i, "sp", "playlist", outcome, src, f"10.0.{i % 4}", None, False,
                    "shared1", carried)  # fmt: skip
    for i in range(5):  # forged tickets refused by a rate limit before their check
        rec.request(t + 0.5, "sp", "part", "rate_limited", f"10.9.{i}.1", f"10.9.{i}",
                    None, False, f"f{i}", "forged")  # fmt: skip
    rec.request(t + 0.6, "sp", "part", "ok", "10.8.0.1", "10.8.0", "solo", False, "solo")
    (record,) = rec.flush(t + 1.5)
    rec.close()
    space = record["spaces"]["sp"]
    assert space["carried"] == {"forged": 5, "valid": 10}
    assert space["shared"] == {
        "tix": 1, "src": 12, "net": 4, "req": 12, "refused": 10, "playlist": 12, "media": 0,
        "hot_tix": 0, "hot_req": 0, "hot_playlist": 0, "hot_media": 0,
    }  # fmt: skip


def test_listener_tallies_give_the_same_records_as_one_call_per_request(
    tmp_path: Path,
) -> None:
    """`listened` (counted per listener, added once per listener-second) and `request` (one
    call per request) say the same about the same requests: players, a ticket shared by
    several sources, refusals, late media, joins and other requests in between, over several
    seconds and spaces."""
    import random

    # a listener id belongs to one space (its ticket is checked against it)
    rng = random.Random(7)
    a = TrafficRecorder(tmp_path / "a", "n1", 0)
    b = TrafficRecorder(tmp_path / "b", "n1", 0)
    connections = [(f"10.0.{i % 5}.{i}", f"L{i % 23}", f"sp{i % 23 % 3}") for i in range(60)]
    classes = ["playlist", "part", "part", "segment", "init", "replay"]
    outcomes = ["ok"] * 8 + ["rate_limited", "ticket_forged", "ticket_expired"]
    now = T0 + 0.0
    for _ in range(6000):
        now += rng.random() * 0.001
        source, listener, space = rng.choice(connections)
        if rng.random() < 0.02:  # a join, or a page, between the players' requests
            for rec in (a, b):
                rec.request(now, space, "join", "ok", source, source + "/n", listener)
                rec.request(now, None, "page", "ok", source, source + "/n")
            continue
        cls, outcome = rng.choice(classes), rng.choice(outcomes)
        late = cls == "part" and rng.random() < 0.1
        ok = outcome == "ok"
        a.request(now, space, cls, outcome, source, source + "/n", listener if ok else None,
                  late, listener)  # fmt: skip
        b.listened(now, space, cls, outcome, source, source + "/n", listener, late)
    got, want = b.flush(now + 1.0), a.flush(now + 1.0)
    assert len(want) >= 3
    assert [_untied(r) for r in got] == [_untied(r) for r in want]


def _untied(record: dict[str, Any]) -> dict[str, Any]:
    """A record without its chain links, its top lists as their counts: of sources with as
    many requests, the first counted come first (and stay in at the cut), and tallies count
    later."""
    out = {k: v for k, v in record.items() if k not in ("hash", "prev")}
    for scope in [out["total"], *out["spaces"].values()]:
        for name in ("top", "topnet"):
            scope[name] = [n for _, n in scope[name]]
    return out
