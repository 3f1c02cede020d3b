"""`ruang bench joins`: joins per second one node admits, and their latency.

A fresh server per delivery worker count, with the admission limits out of the way
(`--joins-per-s 1000000 --max-listeners 100000000`: what is measured is the cost of a join,
not the configured pace), one live space. wrk POSTs empty joins on keep-alive connections
(closed loop: `--connections` joins in flight), each naming a random client in
X-Forwarded-For as an edge would (the server trusts 127.0.0.1 as its edge), so per-source limits
apply as they would to a crowd, not to one address; every answer that is not a 200 with a
ticket is counted; rounds are repeated and the median kept. wrk shares the machine's cores
with the server, so the server's CPU is reported beside the rate. The goal (DESIGN §6) is
≥ 10,000 joins/s with p99 < 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ruang_bench.common import (
    CpuMeter,
    MachineLoad,
    add_server_arguments,
    create_space,
    emit,
    free_port,
    need,
    start_server,
)
from ruang_bench.loadgen import COUNT_NOT_200_LUA, run_wrk

GOAL_JOINS_PER_S = 10_000
GOAL_P99_MS = 200.0
OUT_OF_THE_WAY = [
    "--joins-per-s",
    "1000000",
    "--max-listeners",
    "100000000",
    "--trusted-proxy",  # wrk stands for an edge: each join names its own client
    "127.0.0.1",
]

CLIENTS = 4096
"""Distinct joiners wrk cycles through. Not more: LuaJIT interns every string, and its hash
samples only a few bytes of a long one, so tens of thousands of requests that differ in a few
bytes can fall in a handful of chains; with 65,536, wrk's `init` took 0.2 s in some runs and
13 s in others (the hash's seed is random), before the run even began, and a run of
`--workers 2` outlasted run_wrk's timeout."""

_LUA = (
    """-- written by ruang bench joins: POST empty joins, each from another client (named in
-- X-Forwarded-For, as an edge does)
-- CLIENTS requests made once, from as many clients in as many /24 networks, then cycled
-- (at 10,000 joins/s a client joins 2.4 times a second, within its join budget of 5/s): wrk's
-- own CPU stays off the server's cores
local requests, n = {}, 0
init = function(args)
  for i = 0, CLIENTS - 1 do
    local ip = string.format("10.%d.%d.%d", math.floor(i / 256), i % 256, 1 + (i * 7) % 254)
    requests[i + 1] = wrk.format("POST", nil,
      {["Content-Type"] = "application/json", ["X-Forwarded-For"] = ip}, "")
  end
end
request = function()
  n = n % #requests + 1
  return requests[n]
end
"""
    + COUNT_NOT_200_LUA
).replace("CLIENTS", str(CLIENTS))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--worker-counts", default="1,2", help="delivery worker counts, comma-separated")
    p.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    p.add_argument("--rounds", type=int, default=3, help="wrk runs per worker count (median)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (joins in flight)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument(
        "--redis",
        action="store_true",
        help="start a redis-server and run the server as one of several nodes (shared waiting "
        "room and join budgets in Redis); its CPU is reported too",
    )


async def _rounds(
    args: argparse.Namespace, url: str, script: Path, pids: list[int], redis_pids: list[int]
) -> Any:
    runs = []
    for _ in range(args.rounds):
        meter = CpuMeter({"server": pids, "redis": redis_pids})
        meter.start()
        r = await run_wrk(url, script, args.duration, args.connections, args.threads)
        cpu = meter.read()
        r["server_cores"] = cpu["server_cores"]
        r["redis_cores"] = cpu["redis_cores"]
        r["machine_cores_busy"] = cpu["machine_cores_busy"]
        runs.append(r)
    ranked = sorted(runs, key=lambda r: r["requests_per_s"])
    median = ranked[(len(ranked) - 1) // 2]
    return {**median, "all_joins_per_s": [r["requests_per_s"] for r in runs]}


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[tuple[str, int]]:
    """A throwaway redis-server on loopback, no persistence: (url, pid)."""
    port = free_port()
    proc = subprocess.Popen(
        [need("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
            != "PONG"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """One fresh server per worker count."""
    if args.url:
        raise SystemExit("joins starts its own servers (it sets their admission limits)")
    load = MachineLoad()
    load.start()
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ruang-bench-") as tmp, contextlib.ExitStack() as stack:
        script = Path(tmp) / "join.lua"
        script.write_text(_LUA)
        extra, redis_pids = list(OUT_OF_THE_WAY), []
        if args.redis:
            url, pid = stack.enter_context(redis_server(Path(tmp)))
            extra += ["--redis-url", url]
            redis_pids = [pid]
        for n in [int(x) for x in args.worker_counts.split(",") if x]:
            server = start_server(Path(tmp) / f"data-{n}", workers=n, extra=extra)
            try:
                async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
                    space = await create_space(api, "bench joins")
                    first = await api.post(f"/api/spaces/{space.id}/join")
                    if first.status_code != 200 or "/t/" not in first.json()["listen_url"]:
                        raise RuntimeError(f"join does not admit: {first.text}")
                url = f"{server.url}/api/spaces/{space.id}/join"
                pids = server.server_pids()
                r = runs[f"workers_{n}"] = await _rounds(args, url, script, pids, redis_pids)
            finally:
                server.stop()
            print(
                f"  --workers {n}: {r['requests_per_s']} joins/s (rounds {r['all_joins_per_s']}),"
                f" p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, not 200: {r['not_200']},"
                f" server {r['server_cores']} cores",
                file=sys.stderr,
            )
    best_key, best = max(runs.items(), key=lambda kv: kv[1]["requests_per_s"])
    met = (
        best["requests_per_s"] >= GOAL_JOINS_PER_S
        and best["p99_ms"] < GOAL_P99_MS
        and not best["not_200"]
        and not best["errors"]
    )
    result = {
        "runs": runs,
        "best": best_key,
        "goal": {"joins_per_s": GOAL_JOINS_PER_S, "p99_ms": GOAL_P99_MS},
        "met": met,
        "wrk": {"connections": args.connections, "threads": args.threads, "s": args.duration},
        "redis": args.redis,
        "machine_load": load.read(),
    }
    each = "; ".join(
        f"--workers {k.split('_')[1]} {v['requests_per_s']} joins/s p99 {v['p99_ms']} ms"
        for k, v in runs.items()
    )
    summary = (
        f"joins: {each} (median of {args.rounds} rounds, all 200 with a ticket: "
        f"{all(not v['not_200'] for v in runs.values())}; goal >= {GOAL_JOINS_PER_S}/s with "
        f"p99 < {GOAL_P99_MS:.0f} ms: {'met' if met else 'MISSED'})"
    )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("joins", args, result, summary)
