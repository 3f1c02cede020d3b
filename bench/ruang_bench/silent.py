"""`ruang bench cpu`, part 0: what a space where nobody speaks costs (live or scheduled)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import httpx

from ruang_bench.common import (
    BenchServer,
    CpuMeter,
    Space,
    create_auth,
    create_space,
    end_space,
)

FAR_FUTURE = "2099-01-01T00:00:00Z"  # a scheduled start nobody reaches during the bench


async def silent_spaces(
    args: argparse.Namespace, server: BenchServer, api: httpx.AsyncClient
) -> dict[str, Any]:
    """The media process's CPU over a window with no space, then with `args.idle_spaces`
    live spaces nobody speaks in, then with as many scheduled ones beside them; each kind's
    cost per space is the difference divided by their number (cores; 1.0 = a core)."""
    meter = CpuMeter({"media": server.media_pids(), "delivery": server.worker_pids()})

    async def window() -> dict[str, float]:
        await asyncio.sleep(args.settle)
        meter.start()
        await asyncio.sleep(args.window)
        return meter.read()

    base = await window()
    live = [await create_space(api, f"bench idle {i}") for i in range(args.idle_spaces)]
    with_live = await window()
    scheduled = []
    for i in range(args.idle_spaces):
        r = await api.post(
            "/api/spaces",
            json={"title": f"bench later {i}", "starts_at": FAR_FUTURE},
            headers=create_auth(),
        )
        r.raise_for_status()
        d = r.json()
        scheduled.append(Space(d["id"], d["host_token"], d["whip_url"]))
    with_both = await window()
    for space in live + scheduled:
        await end_space(api, space)
    n: int = max(1, args.idle_spaces)

    def per_space(a: dict[str, float], b: dict[str, float]) -> float:
        return round((b["media_cores"] - a["media_cores"]) / n, 5)

    row = {
        "spaces": args.idle_spaces,
        "no_space": base,
        "live_silent": with_live,
        "live_and_scheduled": with_both,
        "media_cores_per_silent_live_space": per_space(base, with_live),
        "media_cores_per_scheduled_space": per_space(with_live, with_both),
    }
    print(
        f"  silent: {row['media_cores_per_silent_live_space']:.5f} cores per live space, "
        f"{row['media_cores_per_scheduled_space']:.5f} per scheduled one "
        f"({args.idle_spaces} of each; machine {with_both['machine_cores_busy']:.2f} busy)",
        file=sys.stderr,
    )
    return row
