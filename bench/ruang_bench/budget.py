"""`ruang bench budget`: one source's effective budget with 1 and with 2 delivery workers.

A fresh server per worker count; wrk, from one address on a new connection per request (the
workers take turns accepting them), asks as fast as it can for an API path whose class has
a small per-address budget (`api`: 10/s, burst 50). What passes (any answer but 429) is
compared with the configured budget, burst + rate × seconds: 1.0× is one guard per node, 2.0×
with two workers is each worker keeping its own budgets (as before the shared cells).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from ruang.guard.ratelimit import DEFAULT_BUDGETS
from ruang_bench.common import add_server_arguments, emit, start_server
from ruang_bench.loadgen import counting_lua, run_wrk

_LUA = (
    "-- written by ruang bench budget: count what is not refused with 429; a new connection per\n"
    "-- request, so the kernel hands them to every worker (keep-alive ones may all go to one)\n"
    'wrk.headers["Connection"] = "close"' + counting_lua("passed", "status ~= 429")
)
CLASS = "api"
PATH = "/api/spaces/nosuchspace"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The benchmark's options."""
    add_server_arguments(p)
    p.add_argument("--worker-counts", default="1,2", help="comma-separated worker counts")
    p.add_argument(
        "--duration",
        type=float,
        default=2.0,
        help="seconds of asking per count (under 3: attack mode, which tightens every budget "
        "after 3 hostile seconds, stays out of the figure)",
    )
    p.add_argument("--connections", type=int, default=16, help="wrk connections at once")


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """One fresh server per worker count."""
    if args.url:
        raise SystemExit("budget starts its own servers")
    ip = DEFAULT_BUDGETS[CLASS][0]
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ruang-bench-") as tmp:
        script = Path(tmp) / "budget.lua"
        script.write_text(_LUA)
        for n in [int(x) for x in args.worker_counts.split(",") if x]:
            server = start_server(Path(tmp) / f"data-{n}", workers=n)
            try:
                r = await run_wrk(server.url + PATH, script, args.duration, args.connections)
            finally:
                server.stop()
            seconds = r["requests"] / r["requests_per_s"] if r["requests_per_s"] else 0.0
            budget = ip.burst + ip.rate_per_s * seconds
            runs[f"workers_{n}"] = {
                "asked": r["requests"],
                "passed": r["passed"],
                "budget": round(budget),
                "times_budget": round(r["passed"] / budget, 3),
                "seconds": round(seconds, 2),
                "command": r["command"],
            }
            print(f"  --workers {n}: {runs[f'workers_{n}']}", file=sys.stderr)
    result = {"class": CLASS, "per_address": {"rate_per_s": ip.rate_per_s, "burst": ip.burst}}
    result["runs"] = runs
    each = "; ".join(
        f"--workers {k.split('_')[1]}: {v['passed']} passed of {v['asked']} = "
        f"{v['times_budget']}x the budget"
        for k, v in runs.items()
    )
    return result, f"budget ({CLASS}, one address): {each}"


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("budget", args, result, summary)
