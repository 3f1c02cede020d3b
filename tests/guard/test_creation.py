"""The creation caps as pure decisions, and the create key, with a fake store's counts."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from ruang.errors import ApiError
from ruang.guard.creation import (
    RATE_WINDOW_S,
    CreationGate,
    CreationLimits,
    check_creation,
    key_matches,
)
from ruang.store.base import CreationCounts

LIMITS = CreationLimits(
    max_spaces=100, per_address=3, per_network=5, per_network_per_min=4, per_node_per_min=10
)
NOW = 1_000_000.0


def refusal(counts: CreationCounts, keyed: bool = False) -> tuple[int, str] | None:
    err = check_creation(counts, LIMITS, keyed, NOW)
    return None if err is None else (err.status, err.code)


def test_below_every_cap_creates() -> None:
    assert refusal(CreationCounts()) is None
    assert refusal(CreationCounts(2, 4, 99, 3, 9)) is None


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (CreationCounts(open_by_address=3), (429, "too_many_spaces")),
        (CreationCounts(open_by_network=5), (429, "too_many_spaces")),
        (CreationCounts(recent_by_network=4), (429, "creating_too_fast")),
        (CreationCounts(open_on_node=100), (503, "node_full")),
        (CreationCounts(recent_on_node=10), (503, "creation_busy")),
    ],
)
def test_each_cap_refuses_at_its_limit(counts: CreationCounts, expected: tuple[int, str]) -> None:
    assert refusal(counts) == expected


def test_a_source_over_its_cap_is_told_so_before_the_node_is_full() -> None:
    assert refusal(CreationCounts(open_by_address=3, open_on_node=100)) == (429, "too_many_spaces")


def test_the_key_lifts_the_per_source_caps_and_the_rate_but_not_the_node_cap() -> None:
    busy = CreationCounts(open_by_address=50, open_by_network=50, recent_by_network=50)
    assert refusal(replace(busy, recent_on_node=50), keyed=True) is None
    assert refusal(replace(busy, open_on_node=100), keyed=True) == (503, "node_full")


def test_refusals_say_why_and_when() -> None:
    err = check_creation(CreationCounts(open_by_address=3), LIMITS, False, NOW)
    assert err is not None and "address" in err.message and "3" in err.message
    assert "Retry-After" not in err.headers  # waiting does not help: ending a space does
    fast = CreationCounts(recent_by_network=4, oldest_recent_by_network=NOW - 45.5)
    err = check_creation(fast, LIMITS, False, NOW)
    assert err is not None and err.headers["Retry-After"] == "15" and "15 s" in err.message
    busy = CreationCounts(recent_on_node=10, oldest_recent_on_node=NOW - RATE_WINDOW_S)
    err = check_creation(busy, LIMITS, False, NOW)
    assert err is not None and err.headers["Retry-After"] == "1"  # never 0
    err = check_creation(CreationCounts(open_on_node=100), LIMITS, False, NOW)
    assert err is not None and int(err.headers["Retry-After"]) > 0


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_address"):
        replace(LIMITS, per_address=0)


def test_key_matches_only_the_key() -> None:
    assert key_matches("s3cret-key", "s3cret-key")
    for other in ("", "s3cret-kez", "s3cret-key ", "s3cret", "S3CRET-KEY"):
        assert not key_matches("s3cret-key", other)


class FakeCounts:
    """A store's creation_counts: fixed counts, and a record of what was asked."""

    def __init__(self, counts: CreationCounts) -> None:
        self.counts = counts
        self.asked: list[tuple[str, str, datetime]] = []

    def __call__(self, address: str, network: str, since: datetime) -> CreationCounts:
        self.asked.append((address, network, since))
        return self.counts


def test_gate_without_a_key_counts_by_the_source_and_its_network() -> None:
    counts = FakeCounts(CreationCounts())
    gate = CreationGate("", LIMITS, counts)
    assert gate.admit(None, "198.51.100.7") == "198.51.100.0/24"
    assert gate.admit("anything", "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert [a[:2] for a in counts.asked] == [
        ("198.51.100.7", "198.51.100.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ]
    counts.counts = CreationCounts(open_by_network=5)
    with pytest.raises(ApiError) as refused:
        gate.admit(None, "198.51.100.8")
    assert refused.value.status == 429


def test_gate_with_a_key_wants_it() -> None:
    counts = FakeCounts(CreationCounts(open_by_address=99))
    gate = CreationGate("the-operators-key", LIMITS, counts)
    for token, status, code in (
        (None, 401, "create_key_required"),
        ("guess", 403, "create_key_refused"),
    ):
        with pytest.raises(ApiError) as refused:
            gate.admit(token, "127.0.0.1")
        assert (refused.value.status, refused.value.code) == (status, code)
    assert counts.asked == []  # refused before the store is asked anything
    assert gate.admit("the-operators-key", "127.0.0.1") == "127.0.0.0/24"  # over the address cap
    counts.counts = CreationCounts(open_on_node=100)
    with pytest.raises(ApiError) as refused:
        gate.admit("the-operators-key", "127.0.0.1")
    assert refused.value.status == 503
