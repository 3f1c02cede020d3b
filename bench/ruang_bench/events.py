"""`ruang bench events`: the live event stream (GET /api/spaces/{id}/events) for N simulated
subscribers through the shipped nginx edge (deploy/nginx, started as `ruang bench edge` does).

One Ruang origin (`RUANG_TICKET_KEY` set) makes a live space; --reactors listeners post a
reaction every --react-every seconds through the edge (so the media process publishes one
`reaction` event a second, and `listeners` when the count changes). N subscribers, spread
over --procs processes and 127.x source addresses, behave as a browser's EventSource does:
one keep-alive connection each, a GET with Last-Event-ID, the answer read whole, the `retry:`
wait (0.3 s), again. Reported: events delivered per second (all subscribers), bytes per
subscriber per minute, duplicates and gaps (each subscriber's ids must increase; every event
of the window must reach every subscriber), the edge's origin requests per batch (its access
log, background updates included), and the origin's CPU (media process and workers) per
published event and per subscriber. Everything shares the machine: the load is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ruang.live.sse import RETRY_MS
from ruang_bench.common import (
    CpuMeter,
    MachineLoad,
    add_server_arguments,
    children_of,
    create_space,
    emit,
    listen_url,
    start_server,
)
from ruang_bench.edge import EDGE_DIR, edge_nginx, read_log

MAX_FDS = 20_000  # the most one process may open here
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--subscribers", type=int, default=10_000, help="simulated EventSources")
    p.add_argument("--procs", type=int, default=4, help="processes the subscribers run in")
    p.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    p.add_argument("--reactors", type=int, default=20, help="listeners posting reactions")
    p.add_argument("--react-every", type=float, default=0.25, help="seconds between reactions")
    p.add_argument("--nginx-workers", type=int, default=1, help="worker_processes of the edge")
    p.add_argument("--edge-dir", type=Path, default=EDGE_DIR, help="the edge's config folder")
    p.add_argument("--keep-log", type=Path, help="copy the edge's access log here")


# -- subscribers (in child processes) ------------------------------------------------------
async def _subscriber(
    host: str, port: int, source: str, path: str, last: int, start: float, stop: float
) -> dict[str, Any]:
    await asyncio.sleep(max(0.0, start - time.time()))
    out: dict[str, Any] = {"ids": [], "bytes": 0, "answers": 0, "errors": 0, "dups": 0}
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    try:
        while time.time() < stop:
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: edge\r\nAccept: text/event-stream\r\n"
                f"Last-Event-ID: {last}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            m = _LENGTH.search(head)
            if m is None:
                raise RuntimeError(f"an answer without a length: {head[:200]!r}")
            body = await reader.readexactly(int(m.group(1)))
            out["bytes"] += len(head) + len(body)
            out["answers"] += 1
            if not head.startswith(b"HTTP/1.1 200"):
                out["errors"] += 1
                await asyncio.sleep(1.0)
                continue
            event_id = None
            for line in body.split(b"\n"):
                if line.startswith(b"id: "):
                    event_id = int(line[4:])
                elif line.startswith(b"data: ") and event_id is not None:
                    if event_id <= last:
                        out["dups"] += 1
                    else:
                        out["ids"].append(event_id)
                        last = event_id
            await asyncio.sleep(RETRY_MS / 1000)
    finally:
        writer.close()
    return out


def _child(
    host: str,
    port: int,
    path: str,
    last: int,
    first: int,
    n: int,
    start: float,
    stop: float,
    results: Any,
) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_FDS, MAX_FDS))

    async def main() -> list[dict[str, Any] | BaseException]:
        subs = []
        for i in range(first, first + n):
            source = f"127.{1 + i // 62_500}.{(i // 250) % 250}.{1 + i % 250}"
            ramp = start + 2.0 * (i - first) / max(1, n)  # connections spread over 2 s
            subs.append(_subscriber(host, port, source, path, last, ramp, stop))
        return await asyncio.gather(*subs, return_exceptions=True)

    done = asyncio.run(main())
    ok = [d for d in done if isinstance(d, dict)]
    failed = [repr(d) for d in done if not isinstance(d, dict)]
    results.put(
        {
            "subscribers": len(ok),
            "failed": len(failed),
            "failures": failed[:3],
            "bytes": sum(d["bytes"] for d in ok),
            "answers": sum(d["answers"] for d in ok),
            "errors": sum(d["errors"] for d in ok),
            "dups": sum(d["dups"] for d in ok),
            "events": sum(len(d["ids"]) for d in ok),
            "id_sets": {tuple(d["ids"]) for d in ok},
        }
    )


def _origin_events(path: Path, since: float, until: float) -> int:
    """Event-stream requests the edge passed to the origin between two times (its access log,
    `$upstream_status` not "-"; background updates are logged as subrequests)."""
    n = 0
    with contextlib.suppress(FileNotFoundError), open(path, errors="replace") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 7 and "/events" in fields[3] and since <= float(fields[0]) < until:
                n += fields[-2] != "-"
    return n


# -- the run -------------------------------------------------------------------------------
async def _react(edge: str, space_id: str, tickets: list[str], every: float, stop: float) -> int:
    sent = 0
    async with httpx.AsyncClient(base_url=edge, timeout=10) as c:
        while time.time() < stop:
            r = await c.post(
                f"/api/spaces/{space_id}/reactions",
                json={"kind": "👏"},
                headers={"Authorization": f"Bearer {tickets[sent % len(tickets)]}"},
            )
            sent += r.status_code == 202
            await asyncio.sleep(every)
    return sent


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Origin, edge, subscribers; one measured window."""
    if args.url:
        raise SystemExit("events starts its own origin (with a ticket key) and its own nginx")
    key = secrets.token_hex(32)
    load = MachineLoad()
    load.start()
    with tempfile.TemporaryDirectory(prefix="ruang-bench-events-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["RUANG_TICKET_KEY"] = key  # start_server passes our environment on
        server = start_server(tmp / "data", workers=args.workers)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
                space = await create_space(api, "bench events")
                tickets = []
                for _ in range(args.reactors):
                    url = await listen_url(api, space)
                    tickets.append(url.split("/t/", 1)[1].split("/", 1)[0])
                r = await api.get(f"/api/spaces/{space.id}/events")
                last = max(int(x[4:]) for x in r.text.split("\n") if x.startswith("id: "))
            origin = server.url.removeprefix("http://")
            with edge_nginx(args.edge_dir, origin, args.nginx_workers, key, tmp / "edge") as e:
                edge_url, edge_master, access_log = e
                host, port = "127.0.0.1", int(edge_url.rsplit(":", 1)[1])
                path = f"/api/spaces/{space.id}/events"
                ctx = mp.get_context("fork")
                results = ctx.Queue()
                t_start = time.time() + 1.0
                ramp_end = t_start + 3.0  # connected and caught up before the window opens
                t_stop = ramp_end + args.duration
                per = -(-args.subscribers // args.procs)
                procs = []
                for k in range(args.procs):
                    n = min(per, args.subscribers - k * per)
                    if n <= 0:
                        break
                    a = (host, port, path, last, k * per, n, t_start, t_stop + 2.0, results)
                    procs.append(ctx.Process(target=_child, args=a, daemon=True))
                for proc in procs:
                    proc.start()
                groups = {
                    "ruang": server.server_pids(),
                    "edge_nginx": [edge_master, *children_of(edge_master)],
                    "subscribers": [p.pid for p in procs if p.pid is not None],
                }
                await asyncio.sleep(max(0.0, ramp_end - time.time()))
                meter = CpuMeter(groups)
                meter.start()
                async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
                    r = await api.get(path)
                    before = max(int(x[4:]) for x in r.text.split("\n") if x.startswith("id: "))
                    reactions = await _react(edge_url, space.id, tickets, args.react_every, t_stop)
                    cpu = meter.read()
                    r = await api.get(path, headers={"Last-Event-ID": str(before)})
                    window_ids = [int(x[4:]) for x in r.text.split("\n") if x.startswith("id: ")]
                parts = [results.get(timeout=120) for _ in procs]
                for proc in procs:
                    proc.join(timeout=10)
                await asyncio.sleep(1.5)  # the access log is flushed every second
                log = read_log(access_log, t_start - 1, t_stop + 5)
                window_origin = _origin_events(access_log, ramp_end, t_stop)
                if args.keep_log is not None:  # for a closer look
                    args.keep_log.write_bytes(access_log.read_bytes())
        finally:
            server.stop()
            os.environ.pop("RUANG_TICKET_KEY", None)
    subs = sum(p["subscribers"] for p in parts)
    events = sum(p["events"] for p in parts)
    id_sets: set[tuple[int, ...]] = set().union(*(p["id_sets"] for p in parts))
    missed = sum(1 for ids in id_sets if not set(window_ids) <= set(ids))
    batches = max(1, len(window_ids))
    wall = t_stop - t_start
    ruang_cpu_s = cpu["ruang_cores"] * cpu["wall_s"]
    result = {
        "subscribers": subs,
        "failed_subscribers": sum(p["failed"] for p in parts),
        "failures": [f for p in parts for f in p["failures"]][:3],
        "window_s": round(cpu["wall_s"], 1),
        "events_published_in_window": len(window_ids),
        "reactions_posted": reactions,
        "events_delivered": events,
        "events_delivered_per_s": round(events / wall, 1),
        "answers": sum(p["answers"] for p in parts),
        "non_200_answers": sum(p["errors"] for p in parts),
        "duplicates": sum(p["dups"] for p in parts),
        "subscribers_missing_a_window_event": missed,
        "bytes_per_subscriber_per_min": round(
            sum(p["bytes"] for p in parts) / max(1, subs) / (wall / 60)
        ),
        "edge": log,
        "origin_event_requests_in_window": window_origin,
        "origin_requests_per_batch": round(window_origin / batches, 2),
        "origin_cores": cpu["ruang_cores"],
        "origin_cpu_ms_per_event": round(1000 * ruang_cpu_s / batches, 2),
        "edge_nginx_cores": cpu["edge_nginx_cores"],
        "subscriber_procs_cores": cpu["subscribers_cores"],
        "machine_load": load.read(),
    }
    summary = (
        f"events: {subs} subscribers through the nginx edge, {result['events_delivered_per_s']}"
        f" events/s delivered, {result['bytes_per_subscriber_per_min']} B per subscriber per "
        f"minute, {result['origin_requests_per_batch']} origin requests per batch, origin "
        f"{result['origin_cpu_ms_per_event']} ms CPU per event ({cpu['ruang_cores']} cores), "
        f"{result['duplicates']} duplicates, {missed} subscribers missed an event "
        f"(machine {result['machine_load']['machine_cores_busy']} cores busy, others "
        f"{result['machine_load']['others_cores']})"
    )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("events", args, result, summary)
    if result["duplicates"] or result["subscribers_missing_a_window_event"]:
        sys.exit(1)
