"""Identity without friction (issue #9), over HTTP against a real server: the session cookie's
flags, forged sessions refused, cross-site writes refused, a blocked person kept out with a
new ticket, the caps on requests to speak (the second tab: tests/end_to_end/test_take_part.py)."""

from __future__ import annotations

import httpx
import pytest

from ruangtest import from_address, join, post_join

KEY = "a-create-key-for-the-session-tests"


def make_space(api: httpx.Client) -> tuple[str, dict[str, str]]:
    r = api.post(
        "/api/spaces", json={"title": "Sessions"}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 201, r.text
    return r.json()["id"], {"Authorization": f"Bearer {r.json()['host_token']}"}


def open_session(api: httpx.Client, name: str, origin: str) -> dict[str, str]:
    """A session's cookie as headers a page on this server sends with a write."""
    r = api.post("/api/session", json={"name": name}, headers={"Origin": origin})
    assert r.status_code == 201, r.text
    api.cookies.clear()
    return {"Cookie": f"ruang_session={r.cookies['ruang_session']}", "Origin": origin}


def refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    assert r.json()["error"] == code and r.json()["message"], r.text


@pytest.fixture
def srv(server_factory):
    s = server_factory(env={"RUANG_CREATE_KEY": KEY})
    s.start()
    return s


def test_the_session_cookie_and_forgeries(srv) -> None:
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        r = api.post(
            "/api/session", json={"name": "  Dewi   Lestari "}, headers={"Origin": srv.url}
        )
        assert r.status_code == 201 and r.json() == {"name": "Dewi Lestari"}, r.text
        cookie = r.headers["set-cookie"]
        flags = {f.strip().split("=")[0].lower() for f in cookie.split(";")[1:]}
        assert {"httponly", "samesite", "path", "max-age"} <= flags, cookie
        assert "samesite=lax" in cookie.lower() and "secure" not in flags, cookie
        assert r.headers["cache-control"] == "no-store"
        value = r.cookies["ruang_session"]
        api.cookies.clear()
        assert api.get("/api/session", headers={"Cookie": f"ruang_session={value}"}).json() == {
            "name": "Dewi Lestari"
        }
        space_id, host = make_space(api)
        ident, issued, name, mac = value.split(".")
        forgeries = [
            f"{ident}.{issued}.SG9zdA.{mac}",  # another name, the same MAC
            f"{'A' * 16}.{issued}.{name}.{mac}",  # someone else's identity
            f"{ident}.{int(issued) + 1}.{name}.{mac}",  # younger
            f"{ident}.{issued}.{name}.{mac[:-1]}{'B' if mac[-1] != 'B' else 'C'}",
            join(api, space_id)["listen_url"].split("/t/")[1].split("/")[0],  # a ticket
            "",
        ]
        for forged in forgeries:
            h = {"Cookie": f"ruang_session={forged}", "Origin": srv.url}
            refused(api.get("/api/session", headers=h), 404, "no_session")
            refused(
                api.post(f"/api/spaces/{space_id}/requests", json={}, headers=h),
                401,
                "session_required",
            )
            assert api.get(f"/api/spaces/{space_id}/me", headers=h).json()["role"] == "anonymous"
        assert api.get(f"/api/spaces/{space_id}/requests", headers=host).json() == {"requests": []}


def test_the_cookie_is_secure_behind_https(server_factory) -> None:
    srv = server_factory(env={"RUANG_PUBLIC_URL": "https://ruang.example"})
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        r = api.post(
            "/api/session", json={"name": "Ayu"}, headers={"Origin": "https://ruang.example"}
        )
        assert r.status_code == 201, r.text
        assert "; Secure" in r.headers["set-cookie"], r.headers["set-cookie"]
        # this server's own origin is the public one: a page on plain http is another site
        refused(
            api.post("/api/session", json={"name": "Ayu"}, headers={"Origin": srv.url}),
            403,
            "cross_site",
        )


def test_no_write_can_be_forged_cross_site(srv) -> None:
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        space_id, host = make_space(api)
        me = open_session(api, "Budi", srv.url)
        asks = f"/api/spaces/{space_id}/requests"
        evil = "https://evil.example"
        # what a cross-site <form> can send: urlencoded, multipart or text/plain bodies
        for ctype, body in (
            ("application/x-www-form-urlencoded", "name=Mallory"),
            ("text/plain", '{"name": "Mallory"}'),
            ("multipart/form-data; boundary=x", "--x--"),
        ):
            refused(
                api.post("/api/session", content=body, headers={"Content-Type": ctype}),
                415,
                "json_required",
            )
            h = {**me, "Content-Type": ctype, "Origin": evil}
            refused(api.post(asks, content=body, headers=h), 415, "json_required")
            refused(
                api.post(asks, content=body, headers={**me, "Content-Type": ctype}),
                415,
                "json_required",
            )
        # a script on another origin sending JSON: its Origin (or Sec-Fetch-Site) gives it away
        refused(api.post(asks, json={}, headers={**me, "Origin": evil}), 403, "cross_site")
        null = {**me, "Origin": "null", "Sec-Fetch-Site": "cross-site"}
        refused(api.post(asks, json={}, headers=null), 403, "cross_site")
        no_origin = {"Cookie": me["Cookie"], "Sec-Fetch-Site": "cross-site"}
        refused(api.post(asks, json={}, headers=no_origin), 403, "cross_site")
        refused(
            api.post("/api/session", json={"name": "M"}, headers={"Origin": evil}),
            403,
            "cross_site",
        )
        refused(
            api.delete(
                f"{asks}/mine", headers={**me, "Origin": evil, "Content-Type": "application/json"}
            ),
            403,
            "cross_site",
        )
        assert api.get(asks, headers=host).json() == {"requests": []}
        # and no other origin is ever allowed to send credentials
        pre = api.options(asks, headers={"Origin": evil, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-credentials" not in pre.headers
        assert api.post(asks, json={}, headers=me).status_code == 201  # the page itself may


def test_a_blocked_person_cannot_come_back(srv) -> None:
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        space_id, host = make_space(api)
        base = f"/api/spaces/{space_id}"
        me = open_session(api, "Citra", srv.url)
        assert post_join(api, f"{base}/join", {}).status_code == 200  # anonymous listening
        r = api.post(f"{base}/join", json={}, headers=me)
        assert r.status_code == 200, r.text  # a session joins as anyone does
        asked = api.post(f"{base}/requests", json={}, headers=me).json()
        assert api.get(f"{base}/me", headers=me).json()["request"]["state"] == "pending"
        r = api.post(f"{base}/requests/{asked['id']}/approve", headers=host)
        assert r.status_code == 200 and r.json()["speaker"], r.text
        mine = api.get(f"{base}/me", headers=me).json()
        assert mine["role"] == "speaker" and mine["token"] and mine["whip_url"].endswith(space_id)
        stage_token = mine["token"]
        # the cookie never acts from the stage (no cross-site request can): the token does
        refused(api.patch(f"{base}/me", json={"name": "X"}, headers=me), 403, "forbidden")
        seat = f"{base}/speakers/{mine['you']['id']}/mute"
        refused(api.post(seat, json={"muted": True}, headers=me), 403, "forbidden")
        own = {"Authorization": f"Bearer {stage_token}"}
        assert api.post(seat, json={"muted": True}, headers=own).json()["muted"] is True
        assert api.get(f"{base}/me").json() == {"role": "anonymous", "name": None}  # nobody else
        r = api.post(f"{base}/speakers/{mine['you']['id']}/block", headers=host)
        assert r.status_code == 200 and r.json()["blocked"], r.text
        after = api.get(f"{base}/me", headers=me).json()
        assert after["role"] == "listener" and after["blocked"] is True and "token" not in after
        refused(api.post(f"{base}/join", json={}, headers=me), 403, "blocked")  # no new ticket
        refused(api.post(f"{base}/requests", json={}, headers=me), 403, "blocked")
        auth = {"Authorization": f"Bearer {stage_token}"}
        refused(
            api.post(
                f"{base}/speakers/{mine['you']['id']}/mute", json={"muted": False}, headers=auth
            ),
            403,
            "forbidden",
        )
        # renaming keeps the identity: still blocked
        r = api.post("/api/session", json={"name": "Not Citra"}, headers=me)
        api.cookies.clear()
        renamed = {**me, "Cookie": f"ruang_session={r.cookies['ruang_session']}"}
        refused(api.post(f"{base}/join", json={}, headers=renamed), 403, "blocked")
        # the block is this space's only
        other_id, _ = make_space(api)
        assert api.post(f"/api/spaces/{other_id}/join", json={}, headers=me).status_code == 200


def test_audience_and_removal(srv) -> None:
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        space_id, host = make_space(api)
        base = f"/api/spaces/{space_id}"
        for how, again in (("audience", 201), ("remove", 403)):
            me = open_session(api, f"Dian {how}", srv.url)
            asked = api.post(f"{base}/requests", json={}, headers=me).json()
            api.post(f"{base}/requests/{asked['id']}/approve", headers=host)
            seat = api.get(f"{base}/me", headers=me).json()["you"]["id"]
            if how == "audience":
                r = api.post(f"{base}/speakers/{seat}/audience", headers=host)
            else:
                r = api.delete(f"{base}/speakers/{seat}", headers=host)
            assert r.status_code == 200, r.text
            assert api.get(f"{base}/me", headers=me).json()["role"] == "listener"
            assert api.post(f"{base}/requests", json={}, headers=me).status_code == again


def test_requests_to_speak_are_capped(srv) -> None:
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        space_id, host = make_space(api)
        base = f"/api/spaces/{space_id}"
        me = open_session(api, "Eka", srv.url)
        first = api.post(f"{base}/requests", json={}, headers=me)
        assert first.status_code == 201
        again = api.post(f"{base}/requests", json={}, headers=me)  # asking twice is one request
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
        for _ in range(2):
            rid = api.get(f"{base}/me", headers=me).json()["request"]["id"]
            assert api.post(f"{base}/requests/{rid}/deny", headers=host).status_code == 200
            assert api.post(f"{base}/requests", json={}, headers=me).status_code == 201
        rid = api.get(f"{base}/me", headers=me).json()["request"]["id"]
        api.post(f"{base}/requests/{rid}/deny", headers=host)
        r = api.post(f"{base}/requests", json={}, headers=me)
        refused(r, 429, "too_many_requests")
        assert int(r.headers["retry-after"]) > 0
    # a crowd of fresh sessions fills the space's line of requests, then 429
    statuses = []
    for n in range(52):
        with from_address(srv.url, f"127.0.{100 + n // 10}.{n % 10 + 1}") as other:
            h = open_session(other, f"Crowd {n}", srv.url)
            statuses.append(other.post(f"{base}/requests", json={}, headers=h).status_code)
    assert statuses[:49] == [201] * 49 and set(statuses[50:]) == {429}, statuses
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        assert len(api.get(f"{base}/requests", headers=host).json()["requests"]) == 50
