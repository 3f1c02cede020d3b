"""Tickets: issued, verified, and refused when forged, expired, moved or mangled."""

from __future__ import annotations

from pathlib import Path

import pytest

from ruang.guard.tickets import TicketError, TicketSigner, load_or_create_key

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_round_trip_and_renewal_keeps_the_listener() -> None:
    s = TicketSigner(KEY, ttl_s=60)
    t = s.issue("space00001", NOW)
    got = s.verify(t, "space00001", NOW + 59)
    assert got.expires == int(NOW) + 60
    renewed = s.issue("space00001", NOW + 30, listener=got.listener)
    assert s.verify(renewed, "space00001", NOW + 80).listener == got.listener


@pytest.mark.parametrize(
    ("mangle", "code"),
    [
        (lambda t: None, "missing"),
        (lambda t: "", "missing"),
        (lambda t: "garbage", "malformed"),
        (lambda t: t + "x", "malformed"),
        (lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"), "forged"),
        (lambda t: t.replace(t.split(".")[1], str(int(t.split(".")[1]) + 3600)), "forged"),
    ],
)
def test_refusals(mangle, code: str) -> None:
    s = TicketSigner(KEY, ttl_s=60)
    with pytest.raises(TicketError) as e:
        s.verify(mangle(s.issue("space00001", NOW)), "space00001", NOW)
    assert e.value.code == code


def test_expired_and_other_space_and_other_key() -> None:
    s = TicketSigner(KEY, ttl_s=60)
    t = s.issue("space00001", NOW)
    with pytest.raises(TicketError, match="expired"):
        s.verify(t, "space00001", NOW + 61)
    with pytest.raises(TicketError) as e:
        s.verify(t, "space00002", NOW)
    assert e.value.code == "forged"
    with pytest.raises(TicketError) as e:
        TicketSigner(b"z" * 32).verify(t, "space00001", NOW)
    assert e.value.code == "forged"


def test_key_file_is_created_once_and_private(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "ticket.key")
    assert load_or_create_key(tmp_path / "ticket.key") == key
    assert (tmp_path / "ticket.key").stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(tmp_path / "x", "s" * 40) == b"s" * 40
    with pytest.raises(ValueError):
        load_or_create_key(tmp_path / "x", "short")


def test_classify_says_what_a_ticket_is_for_the_evidence() -> None:
    s = TicketSigner(KEY, ttl_s=60)
    t = s.issue("space00001", NOW)
    assert s.classify(t, "space00001", NOW) == "valid"
    assert s.classify(t, "space00001", NOW + 61) == "expired"
    assert s.classify(t, "space00002", NOW) == "forged"  # another space's
    assert s.classify("garbage", "space00001", NOW) == "forged"
