"""The waiting room over HTTP: beyond the admission pace, joins get 202 with a place in line,
and people are let in first come, first served — whatever order they retry in."""

from __future__ import annotations

import random
import time

import httpx

from ruangtest import from_address, post_join


def test_surge_waits_in_a_fifo_line(server_factory) -> None:
    srv = server_factory(args=("--joins-per-s", "5"))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=10) as api:
        space = api.post("/api/spaces", json={"title": "Surge"}).json()
        join = f"/api/spaces/{space['id']}/join"
        admitted_now = 0
        waiting: dict[int, str] = {}
        people = [from_address(srv.url, f"127.0.{i + 1}.1") for i in range(25)]  # 25 addresses
        began = time.monotonic()
        for i in range(25):
            r = post_join(people[i], join)
            if r.status_code == 200:
                admitted_now += 1
                continue
            assert r.status_code == 202, r.text
            body = r.json()
            assert body["position"] <= len(waiting) + 1
            assert int(r.headers["retry-after"]) >= 1 and body["estimated_wait_s"] >= 0
            waiting[i] = body["queue"]
        elapsed = time.monotonic() - began
        for person in people:
            person.close()
        # the burst (5) plus the pace (5 per second) while the 25 arrived, and no more
        assert 1 <= admitted_now <= 6 + 5 * elapsed and len(waiting) >= 10, (admitted_now, elapsed)
        # a forged place at the very front is no place: it pays like a newcomer and goes to
        # the back of the line, behind the people waiting
        r = post_join(api, join, {"queue": "q.0." + "0" * 32})
        assert r.status_code == 202 and r.json()["position"] > 5, r.text
        # FIFO, observed without races (the line may move between two retries of one round):
        # once someone is let in, nobody who arrived before them is sent back to wait.
        admitted_at: dict[int, float] = {}
        refused_at: dict[int, float] = {}
        rng = random.Random(3)
        deadline = time.monotonic() + 30
        while waiting and time.monotonic() < deadline:
            for i in rng.sample(sorted(waiting), len(waiting)):
                asked = time.monotonic()
                r = api.post(join, json={"queue": waiting[i]})
                if r.status_code == 200:
                    assert "/t/" in r.json()["listen_url"]
                    admitted_at[i] = time.monotonic()
                    del waiting[i]
                else:
                    assert r.status_code == 202
                    refused_at[i] = asked
                    waiting[i] = r.json()["queue"]
            time.sleep(0.1)
        assert not waiting, f"{len(waiting)} still waiting after 30 s"
        for i, t in admitted_at.items():
            overtaken = [j for j, asked in refused_at.items() if j < i and asked > t]
            assert not overtaken, f"{i} was let in before {overtaken}, who arrived earlier"
