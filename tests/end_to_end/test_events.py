"""The live event stream with real clients: a space goes live, the host comes on stage with a
tone, two listeners listen and react, and subscribers see it all, in order, without a
duplicate or a gap across reconnections."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from ruang_bench.tools.tones import sine
from ruang_bench.tools.whip_client import SignalTrack, WhipPublisher
from ruangtest import ajoin
from sse_client import Subscriber


def tone(freq: float) -> SignalTrack:
    return SignalTrack(lambda start, n: sine(freq, n / 48_000, 0.25, start))


async def until(sub: Subscriber, done: Any, seconds: float = 20.0, **kw: Any) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not seen in {seconds} s: {sub.events}"
        await sub.poll(**kw)


def ticket_of(listen_url: str) -> str:
    return listen_url.split("/t/", 1)[1].split("/", 1)[0]


async def test_a_space_as_its_event_stream_tells_it(server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20, follow_redirects=True) as api:
        space = (await api.post("/api/spaces", json={"title": "Events"})).json()
        sid = space["id"]
        auth = {"Authorization": f"Bearer {space['host_token']}"}
        view = (await api.get(f"/api/spaces/{sid}", headers=auth)).json()
        host_id = view["you"]["id"]

        sub = Subscriber(api, sid)  # Last-Event-ID, as EventSource sends it
        other = Subscriber(api, sid)  # ?after=, for clients that cannot set headers
        await until(sub, lambda: sub.of_type("state"))
        assert sub.events[0]["type"] == "state" and sub.events[0]["state"] == "live"

        host = WhipPublisher(space["whip_url"], space["host_token"], tone(440.0))
        await host.start()
        await host.wait_connected()
        try:
            await until(sub, lambda: any(host_id in e["speakers"] for e in sub.of_type("speaking")))
            tickets = [ticket_of((await ajoin(api, sid))["listen_url"]) for _ in range(2)]
            for t in tickets:  # two players fetch the playlist: the audience counts them
                r = await api.get(f"/hls/{sid}/t/{t}/live.m3u8")
                assert r.status_code == 200
            for t, kind in ((tickets[0], "👏"), (tickets[0], "🔥"), (tickets[1], "👏")):
                r = await api.post(
                    f"/api/spaces/{sid}/reactions",
                    json={"kind": kind},
                    headers={"Authorization": f"Bearer {t}"},
                )
                assert r.status_code == 202, r.text
            r = await api.post(f"/api/spaces/{sid}/reactions", json={"kind": "👏"})
            assert r.status_code == 401  # nobody: no ticket
            r = await api.post(
                f"/api/spaces/{sid}/reactions",
                json={"kind": "🍕"},
                headers={"Authorization": f"Bearer {tickets[1]}"},
            )
            assert r.status_code == 422

            def reactions() -> Counter[str]:
                total: Counter[str] = Counter()
                for e in sub.of_type("reaction"):
                    total.update(e["counts"])
                return total

            await until(
                sub,
                lambda: (
                    reactions() == Counter({"👏": 2, "🔥": 1})
                    and any(e["count"] >= 2 for e in sub.of_type("listeners"))
                ),
            )
        finally:
            await host.stop()
        await until(sub, lambda: any(e["speakers"] == [] for e in sub.of_type("speaking")))
        await until(sub, lambda: any(e.get("on_stage") is False for e in sub.of_type("stage")))
        r = await api.post(f"/api/spaces/{sid}/end", headers=auth)
        assert r.status_code == 200
        await until(sub, lambda: sub.events[-1]["type"] == "state")
        assert sub.events[-1]["state"] == "ended"

        # the order of the story, with one id each, increasing: no duplicate across the
        # reconnections (one per answer)
        ids = [e["id"] for e in sub.events]
        assert ids == sorted(set(ids)) and sub.answers > 3
        order = [e["type"] for e in sub.events]
        first = {t: order.index(t) for t in ("state", "stage", "speaking", "listeners", "reaction")}
        assert first["state"] < first["stage"] < first["speaking"] < first["reaction"]
        on = next(e for e in sub.events if e["type"] == "stage")
        assert on == {**on, "speaker": host_id, "on_stage": True}

        # nothing missed: a newcomer's backlog holds exactly what the subscriber saw
        await until(
            other, lambda: other.events and other.events[-1].get("state") == "ended", use_query=True
        )
        assert [e["id"] for e in other.events] == ids
        assert other.events == sub.events

        # caught up on an ended space: held, then an answer with no event, the id kept
        r = await api.get(f"/api/spaces/{sid}/events", headers={"Last-Event-ID": str(ids[-1])})
        assert r.status_code == 200 and "data:" not in r.text and f"id: {ids[-1]}" in r.text


async def test_unknown_spaces_and_forged_ids_are_cheap_answers(server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        r = await api.get("/api/spaces/zzzzzzzzzz/events")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        space = (await api.post("/api/spaces", json={"title": "Forged"})).json()
        sub = Subscriber(api, space["id"])
        await until(sub, lambda: sub.of_type("state"))
        began = time.monotonic()
        for forged in ("9" * 16, "9" * 40, "-5", "abc"):
            r = await api.get(
                f"/api/spaces/{space['id']}/events", headers={"Last-Event-ID": forged}
            )
            assert r.status_code == 200 and '"type":"state"' in r.text  # a newcomer's answer
        assert time.monotonic() - began < 5  # none was held for a next batch
        await asyncio.sleep(0)
