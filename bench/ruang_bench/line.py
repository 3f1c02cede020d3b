"""`ruang bench line`: the waiting room's admitted pace with 1 and with 2 delivery workers.

A fresh server per worker count, at a small `--joins-per-s`. `--arrivals` people, each from
its own address (named in X-Forwarded-For: the server trusts 127.0.0.1 as its edge), come to
join evenly over `--arrive-s` (twice the pace by default), each request on a new connection
(so every worker takes some); beyond the burst they get places in line, and everyone waiting
comes back every `--poll-s` with their place, in random order, until all are in. The pace is
the admissions beyond the burst over the time they took: 1.0× the configured pace is one
line per node, 2.0× with two workers is each worker keeping its own pace (as before
guard/nodeline.py). The places handed out are checked to be one sequence (one counter for
the node) and the admissions FIFO (whoever holds a place below an admitted one is let in on
asking at once)."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ruang.guard.pow import solve
from ruang_bench.common import add_server_arguments, create_auth, emit, start_server

FRESH = httpx.Limits(max_keepalive_connections=0)  # a new connection, any worker, each time


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    add_server_arguments(p)
    p.add_argument("--worker-counts", default="1,2", help="comma-separated worker counts")
    p.add_argument("--joins-per-s", type=float, default=10.0, help="the node's pace (and burst)")
    p.add_argument("--arrivals", type=int, default=220, help="people who come to join")
    p.add_argument(
        "--arrive-s", type=float, default=10.0, help="seconds over which they come (evenly)"
    )
    p.add_argument("--poll-s", type=float, default=0.25, help="seconds between rounds of polls")


async def _join(api: httpx.AsyncClient, sid: str, ip: str, body: dict[str, Any]) -> httpx.Response:
    """One join as `ip`; a proof-of-work asked for is solved first (as the page does)."""
    headers = {"X-Forwarded-For": ip}
    r = await api.post(f"/api/spaces/{sid}/join", json=body, headers=headers)
    if r.status_code == 428:
        pow_ = r.json()["pow"]
        nonce = await asyncio.to_thread(solve, pow_["challenge"], pow_["difficulty"])
        solved = {**body, "pow": {"challenge": pow_["challenge"], "nonce": nonce}}
        r = await api.post(f"/api/spaces/{sid}/join", json=solved, headers=headers)
    return r


async def one_count(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """The crowd against one server: arrivals spread over `--arrive-s`, polls until all in."""
    async with httpx.AsyncClient(base_url=url, timeout=20, limits=FRESH) as api:
        r = await api.post("/api/spaces", json={"title": "Line"}, headers=create_auth())
        sid = r.json()["id"]
        ips = [f"10.{i >> 8 & 255}.{i & 255}.7" for i in range(args.arrivals)]
        # everyone waiting, by arrival: (their place's number, their address, their token)
        waiting: dict[int, tuple[int, str, str]] = {}
        places: list[int] = []

        async def poll(k: int) -> httpx.Response:
            return await _join(api, sid, waiting[k][1], {"queue": waiting[k][2]})

        admitted = arrived = 0
        fifo = True
        rng = random.Random(1)
        began = time.monotonic()
        last = began
        while (waiting or arrived < len(ips)) and time.monotonic() - began < 120:
            due = min(len(ips), int(len(ips) * (time.monotonic() - began) / args.arrive_s) + 1)
            newcomers = range(arrived, due)
            arrived = due
            answers = await asyncio.gather(*(_join(api, sid, ips[k], {}) for k in newcomers))
            for k, a in zip(newcomers, answers, strict=True):
                if a.status_code == 200:
                    admitted += 1
                    last = time.monotonic()
                elif a.status_code == 202:
                    token = a.json()["queue"]
                    waiting[k] = (int(token.split(".")[1]), ips[k], token)
                    places.append(waiting[k][0])
            round_ = rng.sample(sorted(waiting), len(waiting))
            replies = await asyncio.gather(*(poll(k) for k in round_))
            highest = -1  # the highest place admitted in this round
            for k, reply in zip(round_, replies, strict=True):
                if reply.status_code == 200:
                    highest = max(highest, waiting.pop(k)[0])
                    admitted += 1
                    last = time.monotonic()
                elif reply.status_code == 202:
                    waiting[k] = (waiting[k][0], waiting[k][1], reply.json()["queue"])
            # FIFO: whoever holds a place below one admitted gets in too, at once
            behind = [k for k in waiting if waiting[k][0] < highest]
            for k, reply in zip(
                behind, await asyncio.gather(*(poll(k) for k in behind)), strict=True
            ):
                if reply.status_code == 200:
                    del waiting[k]
                    admitted += 1
                else:
                    fifo = False
            await asyncio.sleep(args.poll_s)
        seconds = last - began
    burst = max(1, int(args.joins_per_s))
    pace = ((admitted - burst) / seconds) if seconds > 0 else 0.0
    return {
        "arrivals": args.arrivals,
        "arrive_s": args.arrive_s,
        "placed_in_line": len(places),
        "places_one_sequence": sorted(places) == list(range(len(places))),
        "admitted": admitted,
        "left_waiting": len(waiting),
        "seconds": round(seconds, 2),
        "admitted_per_s_after_burst": round(pace, 2),
        "times_pace": round(pace / args.joins_per_s, 3),
        "fifo": fifo,
    }


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """One fresh server per worker count."""
    if args.url:
        raise SystemExit("line starts its own servers")
    runs: dict[str, Any] = {}
    # the puzzle stays dormant (--pow-max-bits 0): the line's pace is measured, not the
    # client's hashing (a line raises the difficulty within seconds)
    extra = (
        "--trusted-proxy",
        "127.0.0.1",
        "--joins-per-s",
        str(args.joins_per_s),
        "--pow-max-bits",
        "0",
    )
    with tempfile.TemporaryDirectory(prefix="ruang-bench-") as tmp:
        for n in [int(x) for x in args.worker_counts.split(",") if x]:
            server = start_server(Path(tmp) / f"data-{n}", workers=n, extra=extra)
            try:
                runs[f"workers_{n}"] = await one_count(server.url, args)
            finally:
                server.stop()
            print(f"  --workers {n}: {runs[f'workers_{n}']}", file=sys.stderr)
    result = {"joins_per_s": args.joins_per_s, "runs": runs}
    each = "; ".join(
        f"--workers {k.split('_')[1]}: {v['admitted_per_s_after_burst']}/s = "
        f"{v['times_pace']}x the pace, "
        f"places one sequence {v['places_one_sequence']}, FIFO {v['fifo']}"
        for k, v in runs.items()
    )
    return result, f"line (--joins-per-s {args.joins_per_s:g}): {each}"


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("line", args, result, summary)
