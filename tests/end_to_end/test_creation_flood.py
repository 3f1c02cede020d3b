"""A flood of space creations without a key, from many addresses and networks, is refused
early (429/503 with a message, nothing started) while a live space's parts keep coming on
time; and abandoned spaces end by themselves, their replay finalised."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from listening import parts_with_times

from ruang_bench.tools.tones import sine
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin, from_address

MAX_SPACES = 20  # this node's capacity in spaces for the test (the live one included)
MEDIA = 2  # media processes: each checks the caps and inserts in one step, so creations that
# race through different processes may overshoot a cap by one per other process (GUARD.md)
PART_S = 0.512


def flood(url: str) -> list[tuple[int, dict[str, Any], dict[str, str]]]:
    """What an attacker with many addresses gets: 50 addresses of one /24 (as seen in the
    wild), then 250 addresses each in its own /24, two creations each, 16 at a time."""
    sources = [f"127.0.60.{i}" for i in range(1, 51)]
    sources += [f"127.{1 + i // 200}.{i % 200}.7" for i in range(250)]

    def attack(source: str) -> list[tuple[int, dict[str, Any], dict[str, str]]]:
        out = []
        with from_address(url, source) as api:
            for _ in range(2):
                r = api.post("/api/spaces", json={"title": "flood"})
                out.append((r.status_code, r.json(), dict(r.headers)))
        return out

    with ThreadPoolExecutor(16) as pool:
        return [answer for answers in pool.map(attack, sources) for answer in answers]


async def newest_parts(
    api: httpx.AsyncClient, listen_url: str, stop: asyncio.Event
) -> dict[str, tuple[datetime, float]]:
    """Every part that appears in the live playlist: its wall-clock start (PDT) and when it
    was first seen, polling every 0.2 s until `stop` (the parts already there at the first
    poll are not counted: when they appeared is unknown)."""
    already = {uri for _, uri in await parts_with_times(api, listen_url)}
    seen: dict[str, tuple[datetime, float]] = {}
    while not stop.is_set():
        await asyncio.sleep(0.2)
        for start, uri in await parts_with_times(api, listen_url):
            if uri not in already:
                seen.setdefault(uri, (start, time.time()))
    return seen


async def test_a_creation_flood_is_capped_while_the_live_space_stays_on_time(
    server_factory,
) -> None:
    srv = server_factory(args=("--max-spaces", str(MAX_SPACES), "--media-processes", str(MEDIA)))
    srv.start()
    async with httpx.AsyncClient(base_url=srv.url, timeout=20) as api:
        r = await api.post("/api/spaces", json={"title": "On air"})
        assert r.status_code == 201, r.text
        listen_url = (await ajoin(api, r.json()["id"]))["listen_url"]
        await asyncio.sleep(2.0)  # the live space's first segment
        stop = asyncio.Event()
        watching = asyncio.create_task(newest_parts(api, listen_url, stop))
        began = time.time()
        await asyncio.sleep(1.0)
        answers = await asyncio.to_thread(flood, srv.url)
        await asyncio.sleep(2.0)
        stop.set()
        seen = await watching
        ended = time.time()

    statuses = Counter(status for status, _, _ in answers)
    created = statuses[201]
    # the node's cap held (the live one is one), within the documented overshoot
    assert created <= MAX_SPACES - 1 + (MEDIA - 1), statuses
    assert statuses[429] + statuses[503] == len(answers) - created, statuses
    for status, body, headers in answers:
        if status != 201:
            assert body["error"] in {"too_many_spaces", "creating_too_fast", "node_full",
                                     "creation_busy", "rate_limited"}, body  # fmt: skip
            assert body["message"], body
        if status == 503:
            assert int(headers["retry-after"]) >= 1, headers
    # refused before anything started: the media process created exactly what was answered 201
    assert srv.log().count("created (") == 1 + created

    # the live space's parts kept coming every 0.512 s, and its timeline kept up with the clock
    during = sorted((start.timestamp(), first) for start, first in seen.values())
    during = [(s, f) for s, f in during if began <= f <= ended]
    span = during[-1][0] - during[0][0]
    assert len(during) >= 0.8 * (ended - began) / PART_S, (len(during), ended - began)
    assert abs(span - (len(during) - 1) * PART_S) < 0.01  # no part missing in the timeline
    # when each part was first seen after it ended: the flood of 382 creations once put the
    # parts up to 2.1 s apart and the timeline 3 s behind the clock (this machine is shared:
    # the poller itself may be late by a few hundred ms now and then)
    lateness = [first - (start + PART_S) for start, first in during]
    assert max(lateness) - min(lateness) < 2.0, lateness  # it did not fall behind
    assert max(lateness) < 2.5, lateness


def when(iso: str) -> float:
    """An ISO 8601 instant from the API as unix seconds."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def tone() -> SignalTrack:
    return SignalTrack(lambda start, n: sine(440.0, n / 48_000, 0.25, start))


async def test_abandoned_spaces_end_by_themselves(server_factory) -> None:
    srv = server_factory(args=("--idle-end-s", "3", "--scheduled-grace-s", "2"))
    srv.start()
    async with httpx.AsyncClient(base_url=srv.url, timeout=20, follow_redirects=True) as api:

        async def make(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
            r = await api.post("/api/spaces", json=body)
            assert r.status_code == 201, r.text
            return r.json()["id"], {"Authorization": f"Bearer {r.json()['host_token']}"}

        async def view(sid: str, auth: dict[str, str]) -> dict[str, Any]:
            r = await api.get(f"/api/spaces/{sid}", headers=auth)
            assert r.status_code == 200, r.text
            return dict(r.json())

        held, held_auth = await make({"title": "Someone on stage"})
        host = WhipPublisher(f"{srv.url}/whip/{held}", held_auth["Authorization"][7:], tone())
        await host.start()  # on stage from here on
        created = time.time()
        empty, empty_auth = await make({"title": "Nobody came"})
        an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        missed, missed_auth = await make({"title": "Never started", "starts_at": an_hour_ago})
        future, future_auth = await make({"title": "Next week", "starts_at": later})

        first = await view(empty, empty_auth)
        ends = when(first["auto_end_at"])
        assert created + 2 <= ends <= time.time() + 3.5, first["auto_end_at"]
        future_view = await view(future, future_auth)
        grace = when(future_view["auto_end_at"]) - when(future_view["starts_at"])
        assert abs(grace - 2.0) < 0.01, future_view  # the grace after its start time
        public = (await api.get(f"/api/spaces/{empty}")).json()
        assert "auto_end_at" not in public  # the host's to know

        try:
            await host.wait_connected()
            assert (await view(held, held_auth))["auto_end_at"] is None
            deadline = time.monotonic() + 20
            while (await view(empty, empty_auth))["state"] != "ended":
                assert time.monotonic() < deadline, "the abandoned space is still live"
                await asyncio.sleep(0.25)
            while (await view(missed, missed_auth))["state"] != "ended":
                assert time.monotonic() < deadline, "the missed scheduled space is still open"
                await asyncio.sleep(0.25)
            assert time.time() - created >= 3  # not before its time
            await asyncio.sleep(1.5)  # past the idle time with someone on stage: still live
            assert (await view(held, held_auth))["state"] == "live"
            assert (await view(future, future_auth))["state"] == "scheduled"
        finally:
            await host.stop()

        ended_view = await view(empty, empty_auth)
        assert ended_view["auto_end_at"] is None
        replay = await api.get(ended_view["replay_url"])
        assert replay.status_code == 200 and "#EXT-X-ENDLIST" in replay.text
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in replay.text

        # once the last one leaves the stage, the idle clock starts
        left = (await view(held, held_auth))["auto_end_at"]
        assert left is not None
        assert "ends by itself" in srv.log()
