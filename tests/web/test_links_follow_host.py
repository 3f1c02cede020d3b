"""Without --public-url, the links Ruang hands out follow the request's Host header when it is
a sane host[:port] (a phone on the LAN gets links it can open), and fall back to the default
otherwise (Host-header injection); cacheable answers carrying them say Vary: Host."""

from __future__ import annotations

import feedparser
import httpx

from ruangtest import RuangServer

LAN = "192.168.1.5:8000"
HOSTILE = ("evil.example/x", "a b", "user@evil.example", "evil.example:80:80", "", "ex\x7fample")


def test_links_follow_a_sane_host(server: RuangServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as api:
        made = api.post("/api/spaces", json={"title": "LAN"}, headers={"Host": LAN}).json()
        for key in ("page_url", "whip_url", "join_url", "replay_url", "host_url"):
            assert made[key].startswith(f"http://{LAN}/"), (key, made[key])
        sid = made["id"]
        r = api.get(f"/api/spaces/{sid}", headers={"Host": LAN})
        assert r.json()["page_url"] == f"http://{LAN}/s/{sid}"
        assert "host" in r.headers["vary"].lower()  # a cache keeps one answer per Host
        joined = api.post(f"/api/spaces/{sid}/join", headers={"Host": LAN}).json()
        assert joined["listen_url"].startswith(f"http://{LAN}/hls/{sid}/t/")
        assert api.get(joined["listen_url"].replace(f"http://{LAN}", server.url)).is_success
        auth = {"Authorization": f"Bearer {made['host_token']}", "Host": LAN}
        invite = api.post(f"/api/spaces/{sid}/speakers", json={}, headers=auth).json()
        assert invite["invite_url"].startswith(f"http://{LAN}/s/{sid}/speak#token=")
        ics = api.get(f"/api/spaces/{sid}/calendar.ics", headers={"Host": LAN})
        assert f"http://{LAN}/s/{sid}" in ics.text.replace("\r\n ", "")


def test_the_podcast_feed_follows_a_sane_host(server: RuangServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as api:
        lan = api.get("/podcast.xml", headers={"Host": LAN})
        assert lan.status_code == 200 and "host" in lan.headers["vary"].lower()
        feed = feedparser.parse(lan.content)
        assert not feed.bozo, feed.get("bozo_exception")
        assert feed.feed.title.endswith(LAN)
        assert f"<link>http://{LAN}/</link>" in lan.text
        assert {link.href for link in feed.feed.links} >= {f"http://{LAN}/podcast.xml"}
        assert f"http://{LAN}/static/podcast.png" in lan.text
        plain = api.get("/podcast.xml?tag=jazz")  # the feed is kept per tag, not per Host
        assert f"<link>{server.url}/</link>" in plain.text
        links = {link.href for link in feedparser.parse(plain.content).feed.links}
        assert links >= {f"{server.url}/podcast.xml?tag=jazz"}
        hostile = api.get("/podcast.xml", headers={"Host": "evil.example/x"})
        assert hostile.status_code == 400 or "evil" not in hostile.text


def test_a_hostile_host_gets_the_default_links(server: RuangServer) -> None:
    default = server.url  # http://127.0.0.1:<port>: the configured default
    with httpx.Client(base_url=server.url, timeout=10) as api:
        sid = api.post("/api/spaces", json={"title": "Injected"}).json()["id"]
        for host in HOSTILE:
            try:
                r = api.get(f"/api/spaces/{sid}", headers={"Host": host})
            except httpx.LocalProtocolError:
                continue  # not even sendable
            if r.status_code == 400:
                continue  # refused outright: as good
            assert r.json()["page_url"] == f"{default}/s/{sid}", (host, r.json()["page_url"])
            j = api.post(f"/api/spaces/{sid}/join", headers={"Host": host})
            assert j.json()["listen_url"].startswith(f"{default}/hls/"), host
        forged = api.get(f"/api/spaces/{sid}", headers={"X-Forwarded-Host": "evil.example"})
        assert forged.json()["page_url"] == f"{default}/s/{sid}"  # never a client's own


def test_a_public_url_wins(server_factory) -> None:
    srv = server_factory(args=("--public-url", "https://live.example.org"))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        made = api.post("/api/spaces", json={"title": "Edge"}, headers={"Host": LAN}).json()
        assert made["page_url"] == f"https://live.example.org/s/{made['id']}"
