"""Per-source GCRA limits: bursts then a steady pace, per address and per network, classes
that do not share budgets, tightening, bounded memory, and defaults that let real players
(hundreds behind one NAT address) through while a single-source flood is refused."""

from __future__ import annotations

import pytest

from ruang.guard.network import network_of
from ruang.guard.ratelimit import DEFAULT_BUDGETS, Budget, RateLimiter

SMALL = {
    "join": (Budget(2.0, 4), Budget(5.0, 10)),
    "media": (Budget(10.0, 20), Budget(40.0, 50)),
}


def allowed_in_a_row(rl: RateLimiter, cls: str, ip: str, now: float) -> int:
    n = 0
    while rl.check(cls, ip, network_of(ip), now) == 0.0:
        n += 1
        assert n < 100_000
    return n


def test_burst_then_steady_pace() -> None:
    rl = RateLimiter(SMALL)
    assert allowed_in_a_row(rl, "join", "10.0.0.1", 100.0) == 4
    wait = rl.check("join", "10.0.0.1", "10.0.0.0/24", 100.0)
    assert wait == pytest.approx(0.5)  # one emission interval at 2/s
    assert rl.check("join", "10.0.0.1", "10.0.0.0/24", 100.0 + wait - 0.01) > 0.0
    assert rl.check("join", "10.0.0.1", "10.0.0.0/24", 100.0 + wait) == 0.0
    # over the next 10 s, 2/s pass, whatever the flood
    passed = sum(
        rl.check("join", "10.0.0.1", "10.0.0.0/24", 100.505 + i * 0.01) == 0.0 for i in range(1000)
    )
    assert 1 + passed == 20  # the first of those 20 passed at 100.5 just above


def test_refused_requests_do_not_push_the_wait_out() -> None:
    rl = RateLimiter(SMALL)
    allowed_in_a_row(rl, "join", "10.0.0.1", 0.0)
    first = rl.check("join", "10.0.0.1", "10.0.0.0/24", 0.0)
    for _ in range(10_000):
        rl.check("join", "10.0.0.1", "10.0.0.0/24", 0.0)
    assert rl.check("join", "10.0.0.1", "10.0.0.0/24", 0.0) == pytest.approx(first)
    assert rl.check("join", "10.0.0.1", "10.0.0.0/24", first) == 0.0
    assert rl.statistics()["refused"]["join"] == 10_003


def test_network_budget_binds_across_addresses() -> None:
    rl = RateLimiter(SMALL)
    passed = sum(rl.check("join", f"10.0.0.{i}", "10.0.0.0/24", 0.0) == 0.0 for i in range(1, 200))
    assert passed == 10  # the /24's burst, although each address had 4
    assert rl.check("join", "10.0.1.1", "10.0.1.0/24", 0.0) == 0.0  # the next /24 is untouched
    assert rl.check("join", "10.0.0.250", "10.0.0.0/24", 0.0) == pytest.approx(0.2)


def test_classes_do_not_share_budgets() -> None:
    rl = RateLimiter(SMALL)
    allowed_in_a_row(rl, "media", "10.0.0.1", 0.0)
    assert rl.check("join", "10.0.0.1", "10.0.0.0/24", 0.0) == 0.0
    with pytest.raises(KeyError):
        rl.check("nonsense", "10.0.0.1", "10.0.0.0/24", 0.0)


def test_tighten_scales_rate_and_burst_and_restores() -> None:
    rl = RateLimiter(SMALL)
    rl.tighten(0.25)
    assert allowed_in_a_row(rl, "media", "10.0.0.1", 0.0) == 5
    assert rl.check("media", "10.0.0.1", "10.0.0.0/24", 0.0) == pytest.approx(0.4)
    rl.tighten(1.0)
    assert allowed_in_a_row(rl, "media", "10.0.0.2", 0.0) == 20
    with pytest.raises(ValueError):
        rl.tighten(0.0)
    with pytest.raises(ValueError):
        rl.tighten(1.5)
    assert rl.statistics()["factor"] == 1.0


def test_memory_is_bounded_and_recovered_sources_are_forgotten() -> None:
    wide = {"media": (Budget(10.0, 20), Budget(1e6, 1_000_000))}
    rl = RateLimiter(wide, max_keys=1000)
    for i in range(50_000):
        ip = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        assert rl.check("media", ip, network_of(ip), i * 1e-4) == 0.0
        assert len(rl) <= 1000 + 16
    assert rl.statistics()["evicted"] > 0
    # once everyone has recovered, ordinary traffic sweeps the table down to what is in use
    rl2 = RateLimiter(wide)
    for i in range(5_000):
        rl2.check("media", f"10.1.{i >> 8 & 255}.{i & 255}", f"10.1.{i >> 8 & 255}.0/24", 0.0)
    assert len(rl2) > 5_000
    for i in range(4_000):
        rl2.check("media", "10.9.9.9", "10.9.9.0/24", 100.0 + i * 0.1)
    assert len(rl2) == 2  # only the one active source and its network are left
    assert rl2.statistics()["evicted"] == 0


def test_unknown_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        Budget(0.0, 10)
    with pytest.raises(ValueError):
        Budget(1.0, 0)
    with pytest.raises(ValueError):
        RateLimiter({})


def player_requests(start: float, seconds: float) -> list[tuple[float, str]]:
    """An LL-HLS player's requests: 8 segments of back buffer at start, then one blocking
    playlist reload and one part per 0.512 s."""
    out = [(start, "playlist")] + [(start + 0.01 * i, "media") for i in range(8)]
    t = start + 0.1
    while t < start + seconds:
        out += [(t, "playlist"), (t + 0.001, "media")]
        t += 0.512
    return out


def test_defaults_carry_500_players_behind_one_address() -> None:
    """A campus NAT: 500 listeners on one address all start within 5 s and keep playing."""
    rl = RateLimiter()
    events: list[tuple[float, str]] = []
    for p in range(500):
        events += player_requests(p * 0.01, 60.0)
    events.sort()
    refused = [e for e in events if rl.check(e[1], "192.0.2.7", "192.0.2.0/24", e[0]) > 0]
    assert refused == []
    # they all joined too: 500 joins at 100 per second (a NAT's arrivals)...
    joins = [rl.check("join", "192.0.2.7", "192.0.2.0/24", 60 + i * 0.01) for i in range(500)]
    waited = [w for w in joins if w > 0]
    # ...are paced, not lost: each refusal says how long to wait, and it is short
    assert max(waited) <= 1.0 / DEFAULT_BUDGETS["join"][0].rate_per_s + 1e-9


def test_defaults_refuse_a_single_source_flood() -> None:
    rl = RateLimiter()
    t, passed = 0.0, 0
    for _ in range(100_000):  # 10,000 requests per second for 10 s from one address
        passed += rl.check("media", "198.51.100.9", "198.51.100.0/24", t) == 0.0
        t += 1e-4
    ip_budget = DEFAULT_BUDGETS["media"][0]
    assert passed == pytest.approx(ip_budget.burst + 10 * ip_budget.rate_per_s, abs=2)
