"""Every kind of bad input gets a clear JSON 4xx from the real server, never a 500."""

from __future__ import annotations

import httpx
import pytest

from ruang.config import MAX_ON_STAGE
from ruangtest import join

AUDIO_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n"
)
VIDEO_ONLY_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n"
)


def refused(r: httpx.Response, status: int, code: str | None = None) -> dict[str, str]:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"error", "message"} and body["message"].strip(), body
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.fixture
def space(api: httpx.Client) -> dict[str, str]:
    r = api.post("/api/spaces", json={"title": "Bad input"})
    assert r.status_code == 201
    return r.json()


def sdp(token: str | None) -> dict[str, str]:
    h = {"Content-Type": "application/sdp"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


def test_unknown_space(api: httpx.Client) -> None:
    refused(api.get("/api/spaces/nosuchspace"), 404, "not_found")
    refused(api.get("/api/spaces/zzzzzzzzzz"), 404, "not_found")
    refused(api.post("/api/spaces/zzzzzzzzzz/join"), 404, "not_found")
    refused(api.post("/whip/zzzzzzzzzz", content=AUDIO_OFFER, headers=sdp("x")), 404)
    refused(api.get("/hls/zzzzzzzzzz/live.m3u8"), 404)
    refused(api.get("/no/such/path"), 404)


def test_tokens(api: httpx.Client, space: dict[str, str]) -> None:
    url = space["whip_url"]
    refused(api.post(url, content=AUDIO_OFFER, headers=sdp(None)), 401, "unauthorized")
    refused(api.post(url, content=AUDIO_OFFER, headers=sdp("forged-token")), 401, "unauthorized")
    end = f"/api/spaces/{space['id']}/end"
    refused(api.post(end), 401)
    refused(api.post(end, headers={"Authorization": "Bearer wrong"}), 401)
    guest = api.post(
        f"/api/spaces/{space['id']}/speakers",
        json={},
        headers={"Authorization": f"Bearer {space['host_token']}"},
    ).json()
    refused(api.post(end, headers={"Authorization": f"Bearer {guest['token']}"}), 403)
    other = api.post("/api/spaces", json={"title": "Other"}).json()
    refused(api.post(other["whip_url"], content=AUDIO_OFFER, headers=sdp(space["host_token"])), 401)


def test_bad_offers(api: httpx.Client, space: dict[str, str]) -> None:
    url, token = space["whip_url"], space["host_token"]
    refused(api.post(url, content="hello", headers=sdp(token)), 400, "malformed_sdp")
    refused(api.post(url, content=VIDEO_ONLY_OFFER, headers=sdp(token)), 400, "no_audio")
    refused(
        api.post(url, content=AUDIO_OFFER.replace("opus", "PCMU"), headers=sdp(token)),
        400,
        "no_opus",
    )
    refused(api.post(url, content=AUDIO_OFFER, headers=sdp(token)), 400)  # no ICE/DTLS lines
    refused(api.post(url, content=b"\xff\xfe\x00", headers=sdp(token)), 400, "malformed_sdp")
    refused(
        api.post(
            url,
            content=AUDIO_OFFER,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        ),
        415,
    )
    refused(api.post(url, content="v=0\r\n" + "a=x\r\n" * 20000, headers=sdp(token)), 413)
    refused(api.patch(f"{url}/sessions/abc", headers=sdp(token)), 405)
    refused(api.delete(f"{url}/sessions/nope", headers=sdp(token)), 404)


def test_bodies(api: httpx.Client) -> None:
    refused(
        api.post("/api/spaces", content=b"{not json", headers={"Content-Type": "application/json"}),
        400,
        "invalid_json",
    )
    refused(api.post("/api/spaces", json=["a list"]), 400, "invalid_json")
    refused(api.post("/api/spaces", json={"title": ""}), 422, "invalid_field")
    refused(api.post("/api/spaces", json={"title": 5}), 422, "invalid_field")
    refused(api.post("/api/spaces", json={"title": "x" * 201}), 422, "invalid_field")
    refused(api.post("/api/spaces", json={"title": "ok", "starts_at": "tomorrow"}), 422)
    refused(api.post("/api/spaces", json={"title": "ok", "tags": "jazz"}), 422, "invalid_field")
    refused(api.post("/api/spaces", json={"title": "ok", "tags": list("abcdef")}), 422)
    refused(api.post("/api/spaces", json={"title": "ok", "tags": ["x" * 25]}), 422)
    refused(
        api.post(
            "/api/spaces", content=b"x" * 200_000, headers={"Content-Type": "application/json"}
        ),
        413,
        "too_large",
    )
    refused(
        api.post(
            "/api/spaces",
            content=b"title=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        415,
    )


def test_fourteenth_speaker_is_refused(api: httpx.Client, space: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {space['host_token']}"}
    url = f"/api/spaces/{space['id']}/speakers"
    for i in range(MAX_ON_STAGE - 1):
        assert api.post(url, json={"name": f"S{i}"}, headers=auth).status_code == 201
    refused(api.post(url, json={"name": "one too many"}, headers=auth), 409, "stage_full")


def test_hls_queries(api: httpx.Client, space: dict[str, str]) -> None:
    listen = join(api, space["id"])["listen_url"]
    refused(api.get(listen, params={"_HLS_part": 1}), 400, "bad_query")
    refused(api.get(listen, params={"_HLS_msn": "-1"}), 400, "bad_query")
    refused(api.get(listen, params={"_HLS_msn": "1e9"}), 400, "bad_query")
    assert api.get(f"/hls/{space['id']}/../../ruang.sqlite3").status_code == 404
    refused(api.get(listen.replace("live.m3u8", "evil.m4s")), 404)
    r = api.get(listen.replace("live.m3u8", "999999.0.m4s"))
    refused(r, 404)
    assert r.headers["cache-control"] == "public, max-age=1"
    refused(api.get(f"/hls/{space['id']}/0.0.m4s"), 401, "ticket_missing")
    r = api.get(f"/hls/{space['id']}/live.m3u8", follow_redirects=False)
    assert r.status_code == 302 and "/t/" in r.headers["location"]
    assert r.headers["cache-control"] == "no-store"


def test_removed_speaker_loses_the_stage(api: httpx.Client, space: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {space['host_token']}"}
    guest = api.post(
        f"/api/spaces/{space['id']}/speakers", json={"name": "Gone"}, headers=auth
    ).json()
    r = api.delete(f"/api/spaces/{space['id']}/speakers/{guest['id']}", headers=auth)
    assert r.status_code == 200
    refused(api.post(space["whip_url"], content=AUDIO_OFFER, headers=sdp(guest["token"])), 403)
    refused(api.delete(f"/api/spaces/{space['id']}/speakers/{guest['id']}", headers=auth), 404)
    host = api.get(f"/api/spaces/{space['id']}", headers=auth).json()
    refused(
        api.delete(f"/api/spaces/{space['id']}/speakers/{host['you']['id']}", headers=auth),
        409,
        "host_stays",
    )


def test_lifecycle(api: httpx.Client) -> None:
    r = api.post("/api/spaces", json={"title": "Later", "starts_at": "2030-01-01T10:00:00Z"})
    assert r.status_code == 201 and r.json()["state"] == "scheduled"
    space = r.json()
    auth = {"Authorization": f"Bearer {space['host_token']}"}
    refused(
        api.post(space["whip_url"], content=AUDIO_OFFER, headers=sdp(space["host_token"])),
        409,
        "space_scheduled",
    )
    assert api.post(f"/api/spaces/{space['id']}/start", headers=auth).json()["state"] == "live"
    assert api.post(f"/api/spaces/{space['id']}/start", headers=auth).status_code in (200, 409)
    assert api.post(f"/api/spaces/{space['id']}/end", headers=auth).json()["state"] == "ended"
    refused(api.post(f"/api/spaces/{space['id']}/start", headers=auth), 409, "space_ended")
    refused(
        api.post(space["whip_url"], content=AUDIO_OFFER, headers=sdp(space["host_token"])),
        409,
        "space_ended",
    )
    joined = join(api, space["id"])
    assert joined["listen_url"].endswith("/replay.m3u8")
    assert "#EXT-X-ENDLIST" in api.get(joined["listen_url"]).text


def test_service_documents(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    spec = api.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/spaces" in spec["paths"]
    metrics = api.get("/metrics")
    assert metrics.status_code == 200 and "ruang_live_spaces" in metrics.text


def test_strange_paths_are_refused_not_crashed(api: httpx.Client) -> None:
    for path in (
        "/whip/%11%01",
        "/whip/%C2%82%C2%BF",
        "/api/spaces/%00/end",
        "/whip/x/sessions/%7F",
    ):
        r = api.post(path, content=b"v=0", headers={"Content-Type": "application/sdp"})
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert r.json()["error"]
