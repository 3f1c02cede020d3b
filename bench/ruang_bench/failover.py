"""`ruang bench failover`: a media process killed with SIGKILL, again and again.

A server with two media processes runs two live spaces, one on each. A poller per space reads
its live playlist every 20 ms over HTTP, as a player would, and notes when each new part is
first listed. Every --every-s seconds the media process running space A is killed (kill -9);
the supervisor hands its number to the warm spare, which resumes A from disk. Reported:
- back on air: from each kill to the first part of A's new run being listed (the contract:
  ≤ 2 s), and the gap in A's timeline;
- the bystander: the largest gap between two of B's parts across the whole run (one part is
  0.512 s: a crash next door must not show) and B's parts against wall time;
- the supervisor's restart count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ruang_bench.common import (
    MachineLoad,
    create_space,
    emit,
    listen_url,
    percentiles,
    start_server,
)

POLL_S = 0.020  # a poller reads the live playlist this often
PART_S = 0.512  # one part


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    p.add_argument("--kills", type=int, default=5, help="how many times to kill A's process")
    p.add_argument("--every-s", type=float, default=6.0, help="seconds between kills")
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")


def last_part(text: str) -> str | None:
    """The URI of the last part a live playlist lists."""
    last = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PART:"):
            last = line.split('URI="', 1)[1].split('"', 1)[0]
    return last


def new_runs(space_dir: Path) -> list[str]:
    """The first part of every run after a restart, from the space's index on disk."""
    out = []
    for line in (space_dir / "index.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["disc"]:
            out.append(f"{rec['msn']}.{rec['part']}.m4s")
    return out


async def poll(
    api: httpx.AsyncClient, url: str, until: float, seen: list[tuple[float, str]]
) -> None:
    """Note (time, part) whenever the playlist lists a new last part."""
    last = None
    while time.time() < until:
        try:
            r = await api.get(url)
            part = last_part(r.text) if r.status_code == 200 else None
        except httpx.HTTPError:
            part = None
        if part is not None and part != last:
            seen.append((time.time(), part))
            last = part
        await asyncio.sleep(POLL_S)


def media_of(data_dir: Path, space_id: str) -> int:
    """The media process the store stamps on a space."""
    with sqlite3.connect(data_dir / "ruang.sqlite3") as db:
        return int(db.execute("SELECT media FROM spaces WHERE id=?", (space_id,)).fetchone()[0])


def child_pid(data_dir: Path, index: int) -> int:
    """Media process `index`'s pid as the supervisor records it."""
    status = json.loads((data_dir / "supervisor.json").read_text())
    return int(status["children"]["media"][str(index)])


async def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Run the kills against a server of our own."""
    server = start_server(data_dir, 1, extra=("--media-processes", "2"))
    load = MachineLoad([])
    load.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            a = await create_space(api, "Killed again and again")
            b = await create_space(api, "Bystander")
            placed = (media_of(data_dir, a.id), media_of(data_dir, b.id))
            urls = [await listen_url(api, a), await listen_url(api, b)]
            await asyncio.sleep(2.0)
            until = time.time() + args.kills * args.every_s + 3.0
            seen_a: list[tuple[float, str]] = []
            seen_b: list[tuple[float, str]] = []
            pollers = [
                asyncio.create_task(poll(api, urls[0], until, seen_a)),
                asyncio.create_task(poll(api, urls[1], until, seen_b)),
            ]
            kills: list[float] = []
            for _ in range(args.kills):
                await asyncio.sleep(args.every_s / 2)
                os.kill(child_pid(data_dir, placed[0]), signal.SIGKILL)
                kills.append(time.time())
                print(f"killed media process {placed[0]}", file=sys.stderr)
                await asyncio.sleep(args.every_s / 2)
            await asyncio.gather(*pollers)
            status = json.loads((data_dir / "supervisor.json").read_text())
            await api.post(
                f"/api/spaces/{a.id}/end", headers={"Authorization": f"Bearer {a.host_token}"}
            )
    finally:
        server.stop()
    runs = new_runs(data_dir / "spaces" / a.id)
    listed = {part: t for t, part in reversed(seen_a)}  # when each part was first listed
    back = [
        round(listed[part] - k, 3) for k, part in zip(kills, runs, strict=False) if part in listed
    ]
    gaps_b = [round(t2 - t1, 3) for (t1, _), (t2, _) in zip(seen_b, seen_b[1:], strict=False)]
    span_b = seen_b[-1][0] - seen_b[0][0] if len(seen_b) > 1 else 0.0
    return {
        "placed_on_media": placed,
        "kills": len(kills),
        "new_runs_on_disk": len(runs),
        "back_on_air_s": percentiles(back, (50, 95)),
        "back_on_air_each_s": back,
        "bystander": {
            "parts_listed": len(seen_b),
            "parts_expected": round(span_b / PART_S) + 1,
            "largest_gap_s": max(gaps_b, default=0.0),
            "gap_s": percentiles(gaps_b, (50, 99)),
        },
        "supervisor_restarts": status.get("restarts", {}),
        "machine_load": load.read(),
    }


def run(args: argparse.Namespace) -> None:
    """Entry point of `ruang bench failover`."""
    with tempfile.TemporaryDirectory(prefix="ruang-failover-") as tmp:
        result = asyncio.run(measure(args, Path(tmp) / "data"))
    back = result["back_on_air_s"]
    gap = result["bystander"]["largest_gap_s"]
    summary = (
        f"failover: {result['kills']} kills, back on air p50 {back.get('p50')} s, max "
        f"{back.get('max')} s; the other space's largest part gap {gap} s"
    )
    emit("failover", args, result, summary)
