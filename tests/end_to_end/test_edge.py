"""The shipped nginx edge (deploy/nginx) in front of a real Ruang: tickets are checked at the
edge, kept out of the cache key, cache-busting parameters are stripped, and N listeners asking
for the next part at once cause at most 2 origin requests for it."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import m3u8
import pytest

from ruang.guard.tickets import TicketSigner
from ruangtest import RuangServer, free_port, join

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LUA_MODULE = Path("/usr/lib/nginx/modules/ngx_http_lua_module.so")
KEY = "edge-test-key-" + "k" * 40


class Edge:
    """A real nginx started from deploy/nginx/nginx.conf."""

    def __init__(self, tmp: Path, origin_port: int) -> None:
        self.port = free_port()
        self.prefix = tmp / "nginx"
        for sub in ("cache", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        conf = subprocess.run(
            [
                str(ROOT / "deploy/nginx/render"),
                f"127.0.0.1:{self.port}",
                f"127.0.0.1:{origin_port}",
                str(self.prefix / "cache"),
                str(self.prefix),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        conf = conf.replace("worker_processes auto;", "worker_processes 1;\nuser root;")
        self.conf = self.prefix / "nginx.conf"
        self.conf.write_text(conf)
        self.proc = subprocess.Popen(
            [NGINX, "-c", str(self.conf), "-p", str(self.prefix), "-g", "daemon off;"],
            env={**os.environ, "RUANG_TICKET_KEY": KEY},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("nginx did not start: " + (self.prefix / "error.log").read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self, pattern: str) -> tuple[int, int]:
        """(all requests matching `pattern`, those nginx passed on to the origin)."""
        time.sleep(1.5)  # the access log is flushed every second
        seen = origin = 0
        for line in (self.prefix / "access.log").read_text().splitlines():
            if re.search(pattern, line):
                seen += 1
                origin += line.split()[-2] != "-"  # $upstream_status is "-" for cache answers
        return seen, origin

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def edge(server_factory, tmp_path: Path) -> Iterator[tuple[Edge, RuangServer]]:
    origin_port = free_port()
    edge = None
    srv = server_factory(port=origin_port, env={"RUANG_TICKET_KEY": KEY})
    try:
        edge = Edge(tmp_path, origin_port)
        srv.args = ("--public-url", edge.url)
        srv.start(timeout=60.0)  # a loaded CI machine can take longer than the default
        yield edge, srv
    finally:
        if edge is not None:
            edge.stop()


def next_part(text: str) -> tuple[int, int]:
    hint = m3u8.loads(text).preload_hint
    assert hint is not None
    msn, part = hint.uri.removesuffix(".m4s").split(".")
    return int(msn), int(part)


async def crowd(edge: Edge, space_id: str, n: int) -> tuple[str, str]:
    """n listeners, each with its own ticket and a cache-busting parameter, ask for the next
    part's playlist at once (LL-HLS blocking reload), then for the part itself."""
    signer = TicketSigner(KEY.encode())
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    tickets = [f"/hls/{space_id}/t/{signer.issue(space_id, time.time())}" for _ in range(n)]
    async with httpx.AsyncClient(base_url=edge.url, timeout=30, limits=limits) as c:
        base = tickets[0]
        msn, part = next_part((await c.get(f"{base}/live.m3u8")).text)
        want = (msn, part + 1) if part < 3 else (msn + 1, 0)

        async def listener(t: str, i: int) -> None:
            q = f"_HLS_msn={want[0]}&_HLS_part={want[1]}&nocache={i}"
            r = await c.get(f"{t}/live.m3u8?{q}")
            assert r.status_code == 200 and next_part(r.text) > want  # it holds the part
            r = await c.get(f"{t}/{want[0]}.{want[1]}.m4s")
            assert r.status_code == 200 and r.content[4:8] == b"moof"

        await asyncio.gather(*(listener(t, i) for i, t in enumerate(tickets)))
    return f"_HLS_msn={want[0]}&_HLS_part={want[1]}", f"/{want[0]}.{want[1]}.m4s"


@pytest.mark.parametrize("n", [10, 1000])
def test_coalescing_at_the_edge(edge, n: int) -> None:
    nginx, _ = edge
    with httpx.Client(base_url=nginx.url, timeout=20) as api:
        space = api.post("/api/spaces", json={"title": "Edge"}).json()
        assert space["page_url"].startswith(nginx.url)
    time.sleep(2.5)  # one whole segment exists
    playlist_q, part_path = asyncio.run(crowd(nginx, space["id"], n))
    for pattern in (re.escape(playlist_q), re.escape(part_path) + " "):
        seen, origin = nginx.requests(pattern)
        assert seen >= n and 1 <= origin <= 2, (pattern, seen, origin)


def test_tickets_are_checked_at_the_edge(edge) -> None:
    nginx, _ = edge
    with httpx.Client(base_url=nginx.url, timeout=20, follow_redirects=True) as api:
        space = api.post("/api/spaces", json={"title": "Edge tickets"}).json()
        joined = join(api, space["id"])
        listen = joined["listen_url"]
        assert listen.startswith(nginx.url)
        assert api.get(listen).status_code == 200
        ticket = joined["ticket"]
        forged = ticket[:-3] + ("AAA" if not ticket.endswith("AAA") else "BBB")
        r = api.get(listen.replace(ticket, forged))
        assert r.status_code == 403 and r.json()["error"] == "ticket_invalid"
        old = TicketSigner(KEY.encode(), ttl_s=10).issue(space["id"], time.time() - 60)
        r = api.get(listen.replace(ticket, old))
        assert r.status_code == 401 and r.json()["error"] == "ticket_expired"
        elsewhere = listen.replace(f"/hls/{space['id']}/", "/hls/zzzzzzzzzz/")  # another space
        r = api.get(elsewhere)
        assert r.status_code == 403 and r.json()["error"] == "ticket_invalid"
        malformed = ticket[:30]
        r = api.get(listen.replace(ticket, malformed))
        assert r.status_code == 403 and r.json()["error"] == "ticket_invalid"
        # a ticket the edge has verified (and remembers) is refused once it expires
        brief = TicketSigner(KEY.encode(), ttl_s=3).issue(space["id"], time.time())
        assert api.get(listen.replace(ticket, brief)).status_code == 200
        time.sleep(max(0.0, int(brief.split(".")[1]) - time.time()) + 1.2)
        r = api.get(listen.replace(ticket, brief))
        assert r.status_code == 401 and r.json()["error"] == "ticket_expired"
        assert api.get(space["replay_url"]).text.startswith("#EXTM3U")  # via the redirect
    assert nginx.requests(re.escape(forged)) == (1, 0)
    assert nginx.requests(re.escape(old)) == (1, 0)
    assert nginx.requests("/hls/zzzzzzzzzz/") == (1, 0)
    assert nginx.requests(re.escape(f"/t/{malformed}/")) == (1, 0)


def test_an_ended_replay_and_its_recording_through_the_edge(edge) -> None:
    """The public VOD and the recording pass the edge without a ticket: ffmpeg gets the whole
    replay, each file reaches the origin once, ranges are served from the cached file."""
    e, _ = edge
    with httpx.Client(base_url=e.url, timeout=30, follow_redirects=True) as api:
        space = api.post("/api/spaces", json={"title": "Edge replay"}).json()
        time.sleep(5.0)  # nobody speaks: ~2 segments of silence
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        assert api.post(f"/api/spaces/{space['id']}/end", headers=auth).status_code == 200
        view = api.get(f"/api/spaces/{space['id']}").json()
        replay_url, recording_url = view["replay_url"], view["recording_url"]
        assert replay_url.startswith(e.url) and recording_url.startswith(e.url)
        replay = m3u8.loads(api.get(replay_url).text, uri=replay_url)
        assert replay.is_endlist and replay.segments
        stored_s = sum(s.duration for s in replay.segments)
        out = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", replay_url, "-f", "f32le", "-ac", "1", "-"],
            capture_output=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr.decode()[-1000:]
        assert abs(len(out.stdout) / 4 / 48_000 - stored_s) < 0.05
        segment = replay.segments[0].absolute_uri
        assert api.get(segment + "?bust=1").headers["x-cache"] == "HIT"  # query dropped
        whole = api.get(recording_url)
        assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mp4"
        part = api.get(recording_url, headers={"Range": "bytes=10-109"})
        assert part.status_code == 206 and part.content == whole.content[10:110]
        assert part.headers["x-cache"] == "HIT"
    space_path = rf"/hls/{space['id']}/(replay\.m3u8|recording\.m4a|{segment.rsplit('/', 1)[1]})"
    seen, origin = e.requests(space_path)
    assert seen >= 6 and origin <= 3, (seen, origin)  # each file crossed once
