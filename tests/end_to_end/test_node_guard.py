"""One guard per node: a source's budget, the waiting room's pace, cap and order, and a
proof-of-work solution's single use are the configured ones whatever `--workers` is."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ruang.guard.pow import solve

API_BURST, API_RATE = 50, 10.0  # the "api" class's per-address budget (guard.ratelimit)


def served_by_worker(data_dir: Path) -> dict[str, int]:
    """Requests each worker's traffic recorder counted (its evidence files)."""
    counts: dict[str, int] = {}
    for path in sorted((data_dir / "forensics").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "total" in record:
                key = str(record.get("worker"))
                counts[key] = counts.get(key, 0) + int(record["total"].get("req", 0))
    return counts


def test_one_source_gets_one_budget_from_two_workers(server_factory) -> None:
    srv = server_factory(args=("--workers", "2", "--media-processes", "1"))
    srv.start()
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker, each time

    def ask(_: int) -> int:
        with httpx.Client(base_url=srv.url, timeout=10, limits=fresh) as client:
            return client.get("/api/spaces/nosuchspace").status_code

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(ask, range(400)))
    elapsed = time.monotonic() - began
    passed = sum(s != 429 for s in statuses)
    # the node's budget: the burst, then the rate (two workers each with their own would
    # let about twice that through); a few lost updates between racing workers are allowed
    assert passed >= API_BURST
    assert passed <= API_BURST + API_RATE * elapsed + 5, (passed, elapsed)
    time.sleep(2.2)  # the workers write their second's evidence
    workers = served_by_worker(srv.data_dir)
    assert len([n for n in workers.values() if n > 0]) == 2, workers  # both workers answered


def outcomes_by_worker(data_dir: Path, outcome: str) -> dict[str, int]:
    """Requests with `outcome` each worker's traffic recorder counted (any class)."""
    counts: dict[str, int] = {}
    for path in sorted((data_dir / "forensics").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            by = record.get("total", {}).get("by", {}) if "total" in record else {}
            n = sum(per.get(outcome, 0) for per in by.values())
            key = str(record.get("worker"))
            counts[key] = counts.get(key, 0) + n
    return counts


FRESH = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker, each time


def join(url: str, sid: str, body: dict[str, Any] | None = None) -> httpx.Response:
    """One join on a new connection; a proof-of-work asked for is solved (as the page does)."""
    with httpx.Client(base_url=url, timeout=10, limits=FRESH) as client:
        r = client.post(f"/api/spaces/{sid}/join", json=body or {})
        if r.status_code == 428:
            pow_ = r.json()["pow"]
            nonce = solve(pow_["challenge"], pow_["difficulty"])
            solved = {**(body or {}), "pow": {"challenge": pow_["challenge"], "nonce": nonce}}
            r = client.post(f"/api/spaces/{sid}/join", json=solved)
        return r


def new_space(url: str) -> str:
    with httpx.Client(base_url=url, timeout=10) as client:
        r = client.post("/api/spaces", json={"title": "Line"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def place(r: httpx.Response) -> int:
    """The number of a place in line (its queue token is `q.<number>.<mac>`)."""
    assert r.status_code == 202, r.text
    return int(r.json()["queue"].split(".")[1])


def test_two_workers_keep_one_line_at_one_pace(server_factory) -> None:
    pace = 2.0  # admissions per second for the node (burst: 2)
    srv = server_factory(
        args=("--workers", "2", "--media-processes", "1", "--joins-per-s", str(pace))
    )
    srv.start()
    sid = new_space(srv.url)
    answers = [join(srv.url, sid) for _ in range(16)]  # one after the other, any worker
    assert [r.status_code for r in answers[:2]] == [200, 200]  # the node's burst
    places = [place(r) for r in answers[2:]]
    assert places == list(range(14)), places  # one counter: each arrival the next place
    waiting = {n: r.json()["queue"] for n, r in zip(places, answers[2:], strict=True)}
    admitted: list[int] = []
    rng = random.Random(5)
    began = time.monotonic()
    while waiting and time.monotonic() - began < 30:
        for n in rng.sample(sorted(waiting), len(waiting)):  # any order, any worker
            if n not in waiting:
                continue
            r = join(srv.url, sid, {"queue": waiting.pop(n)})
            if r.status_code != 200:
                waiting[n] = r.json()["queue"]
                continue
            admitted.append(n)
            # first in, first out: whoever came earlier is let in too, at once, anywhere
            for m in sorted(m for m in waiting if m < n):
                earlier = join(srv.url, sid, {"queue": waiting.pop(m)})
                assert earlier.status_code == 200, (n, m, earlier.text)
                admitted.append(m)
        time.sleep(0.2)
    elapsed = time.monotonic() - began
    assert sorted(admitted) == places, admitted
    # 14 at the node's 2 per second: about 7 s (two workers each with its own pace: 3.5 s)
    assert 14 / pace - 1.5 < elapsed < 14 / pace + 4, elapsed
    time.sleep(2.2)  # the workers write their second's evidence
    workers = served_by_worker(srv.data_dir)
    assert len([n for n in workers.values() if n > 0]) == 2, workers  # both workers answered


def test_two_workers_admit_the_node_s_listeners_once(server_factory) -> None:
    cap = 3
    srv = server_factory(
        args=("--workers", "2", "--media-processes", "1", "--max-listeners", str(cap))
    )
    srv.start()
    sid = new_space(srv.url)
    statuses = [join(srv.url, sid).status_code for _ in range(10)]
    assert statuses.count(200) == cap and statuses.count(202) == 10 - cap, statuses
    other = new_space(srv.url)  # the cap is the node's, every space together
    assert join(srv.url, other).status_code == 202
    time.sleep(2.2)
    workers = served_by_worker(srv.data_dir)
    assert len([n for n in workers.values() if n > 0]) == 2, workers


def test_a_proof_of_work_buys_one_join_per_node(server_factory) -> None:
    srv = server_factory(args=("--workers", "2", "--media-processes", "1", "--joins-per-s", "1"))
    srv.start()
    sid = new_space(srv.url)
    deadline = time.monotonic() + 15
    while True:  # a line forms; within a second or two every worker asks for a puzzle
        with httpx.Client(base_url=srv.url, timeout=10, limits=FRESH) as client:
            r = client.post(f"/api/spaces/{sid}/join", json={})
        if r.status_code == 428 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert r.status_code == 428, r.text
    time.sleep(2.5)  # every worker has judged a second since, so each asks for a puzzle
    with httpx.Client(base_url=srv.url, timeout=10, limits=FRESH) as client:
        r = client.post(f"/api/spaces/{sid}/join", json={})
    assert r.status_code == 428, r.text  # today's difficulty
    pow_ = r.json()["pow"]
    solution = {
        "challenge": pow_["challenge"],
        "nonce": solve(pow_["challenge"], pow_["difficulty"]),
    }

    def post() -> httpx.Response:
        with httpx.Client(base_url=srv.url, timeout=10, limits=FRESH) as client:
            return client.post(f"/api/spaces/{sid}/join", json={"pow": solution})

    first = post()
    assert first.status_code in (200, 202), first.text  # once: it bought a join
    replays: list[httpx.Response] = []
    refused: dict[str, int] = {}
    for _ in range(8):  # replayed until both workers have refused it (the kernel picks one)
        replays += [post() for _ in range(6)]
        time.sleep(1.2)  # the recorder writes each second
        refused = outcomes_by_worker(srv.data_dir, "pow_failed")
        if all(refused.get(w, 0) > 0 for w in ("0", "1")):
            break
    for again in replays:  # never again, whichever worker it reaches
        assert again.status_code == 428, again.text
        body = again.json()
        assert body["error"] == "proof_of_work_failed" and "already used" in body["message"]
    time.sleep(1.2)
    refused = outcomes_by_worker(srv.data_dir, "pow_failed")
    assert sum(refused.values()) == len(replays), (refused, len(replays))
    assert all(refused.get(w, 0) > 0 for w in ("0", "1")), refused
