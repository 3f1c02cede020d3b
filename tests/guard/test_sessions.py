"""Session cookies and the cross-site check, without a server: issue, verify, forge, expire."""

from __future__ import annotations

from ruang.guard.sessions import SessionSigner, cookie_value, csrf_refusal, origin_of

KEY = b"k" * 32
NOW = 1_800_000_000.0


def test_a_session_round_trips_and_keeps_its_identity_when_renamed() -> None:
    signer = SessionSigner(KEY, secure=False)
    value = signer.issue("Dewi Lestari ✓", NOW)
    held = signer.verify(value, NOW + 10)
    assert held is not None and held.name == "Dewi Lestari ✓"
    renamed = signer.verify(signer.issue("Dewi", NOW, held.identity), NOW)
    assert renamed is not None and renamed.identity == held.identity


def test_forged_expired_and_foreign_sessions_are_refused() -> None:
    signer = SessionSigner(KEY, secure=False)
    value = signer.issue("Ayu", NOW)
    ident, issued, name, mac = value.split(".")
    assert signer.verify(f"{ident}.{issued}.QnVkaQ.{mac}", NOW) is None  # another name
    assert signer.verify(f"{ident}.{int(issued) - 1}.{name}.{mac}", NOW) is None
    assert signer.verify(value, NOW + signer.ttl_s + 1) is None  # expired
    assert signer.verify(value, NOW - 3600) is None  # from the future
    assert SessionSigner(b"o" * 32, secure=False).verify(value, NOW) is None  # another key
    for junk in (None, "", "a.b.c.d", value + "x", value.replace(".", "..", 1)):
        assert signer.verify(junk, NOW) is None


def test_cookie_flags() -> None:
    plain = SessionSigner(KEY, secure=False).cookie("v")
    assert plain == "ruang_session=v; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"
    assert SessionSigner(KEY, secure=True).cookie("v").endswith("; Secure")
    assert cookie_value("a=1; ruang_session=abc; b=2") == "abc"
    assert cookie_value("ruang_sessionx=abc") is None and cookie_value(None) is None


def test_cross_site_writes_are_refused() -> None:
    own = origin_of("https://ruang.example/some/path")
    assert own == "https://ruang.example"
    json = "application/json; charset=utf-8"
    assert csrf_refusal(None, None, json, own) is None
    assert csrf_refusal("https://ruang.example", "same-origin", json, own) is None
    assert csrf_refusal("null", "same-origin", json, own) is None  # a no-referrer page
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None):
        refusal = csrf_refusal("https://ruang.example", "same-origin", ctype, own)
        assert refusal is not None and refusal.status == 415
    for origin, site in (
        ("https://evil.example", None),
        ("null", "cross-site"),
        (None, "same-site"),
    ):
        refusal = csrf_refusal(origin, site, json, own)
        assert refusal is not None and (refusal.status, refusal.code) == (403, "cross_site")
