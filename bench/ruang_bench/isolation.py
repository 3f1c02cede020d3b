"""`ruang bench isolation`: a listener flood against the speakers.

Two speakers publish tones on sendrecv (A 450 Hz, B 700 Hz) and record what the server
returns to them (B hears A's tone, A hears B's). The same window length is measured twice:
without listeners, then while wrk floods the delivery port with as many playlist and part
requests as it can (the listeners Lua mix, many connections). Compared between the two:

- mixer late ticks and ticks made (from /metrics);
- return-audio continuity at each speaker: 20 ms blocks in which the other's tone is missing
  (gaps, underruns), and gaps of more than 60 ms between arriving frames;
- part production: when each part file was written (its mtime; the index's pdt is computed
  from the sample count, so it is regular by construction) — interval between consecutive
  parts and the lag of each write behind the part's PROGRAM-DATE-TIME end;
- CPU of the media process and of the delivery workers, and whether the publishers (in this
  process, sharing the cores with everything) kept their own pace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ruang.rtc.ice import configure_host_addresses
from ruang_bench.common import (
    BenchServer,
    CpuMeter,
    MachineLoad,
    Space,
    add_server_arguments,
    create_space,
    emit,
    end_space,
    fetch_metrics,
    listen_url,
    metric,
    percentiles,
    server_for,
)
from ruang_bench.loadgen import listener_paths, run_wrk, write_script
from ruang_bench.publishers import Lateness, OpusToneTrack
from ruang_bench.signals import return_audio
from ruang_bench.tools.whip_client import WhipPublisher

A_HZ, B_HZ = 450.0, 700.0
PART_S = 0.512
GAP_S = 2.0  # between the windows, and after the last one


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--window", type=float, default=25.0, help="seconds per phase")
    p.add_argument("--connections", type=int, default=256, help="wrk connections in the flood")
    p.add_argument("--threads", type=int, default=2, help="wrk threads in the flood")
    p.add_argument(
        "--wrk-nice",
        type=int,
        default=10,
        help="niceness of wrk: a real flood comes from other machines, so the local load "
        "generator yields the CPU (still enough to saturate the delivery workers); 0 = as the "
        "server",
    )
    p.add_argument(
        "--client-nice",
        type=int,
        default=-5,
        help="niceness of this process (the two speakers and their recorders): real speakers "
        "are on other machines, so they should not starve beside the local flood; 0 = as is",
    )
    p.add_argument(
        "--renice-workers",
        type=int,
        default=0,
        help="lower the delivery workers' priority by this much first (a remedy to test; "
        "0 = as the server ships)",
    )


def _parts(space_dir: Path, t0: float, t1: float) -> dict[str, Any]:
    """Write times of the parts made in [t0, t1] (file mtimes), against their PDT."""
    rows = []
    for line in (space_dir / "index.jsonl").read_text().splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue
        f = space_dir / f"{d['msn']}.{d['part']}.m4s"
        if not f.exists():
            continue
        written = f.stat().st_mtime_ns / 1e9
        end = datetime.fromisoformat(d["pdt"]).timestamp() + d["samples"] / 48_000
        if t0 <= written <= t1:
            rows.append((written, written - end))
    rows.sort()
    intervals = [b[0] - a[0] for a, b in zip(rows, rows[1:], strict=False)]
    return {
        "parts": len(rows),
        "expected_parts": round((t1 - t0) / PART_S),
        "interval_s": percentiles(intervals, (50, 99)),
        "write_lag_behind_pdt_end_s": percentiles([lag for _, lag in rows], (50, 99)),
    }


async def _phase(
    server: BenchServer,
    space: Space,
    pubs: tuple[WhipPublisher, WhipPublisher],
    lateness: Lateness,
    window: float,
    flood: Any,
) -> tuple[float, float, dict[str, Any]]:
    """Measure one window; returns (t0, t1, figures). The audio and part analysis, which
    takes this event loop for a while, is left for after both windows (see _analyse)."""
    meter = CpuMeter({"media": server.media_pids(), "delivery": server.worker_pids()})
    lateness.frames = lateness.late = 0
    lateness.worst = 0.0
    m0 = await fetch_metrics(server)
    t0 = time.time()
    meter.start()
    if flood is None:
        await asyncio.sleep(window)
        wrk = None
    else:
        wrk = await flood
    cpu = meter.read()
    t1 = time.time()
    m1 = await fetch_metrics(server)
    return (
        t0,
        t1,
        {
            "late_ticks": int(
                metric(m1, "ruang_mixer_late_ticks", space.id)
                - metric(m0, "ruang_mixer_late_ticks", space.id)
            ),
            "ticks": int(
                metric(m1, "ruang_mixer_ticks", space.id)
                - metric(m0, "ruang_mixer_ticks", space.id)
            ),
            "expected_ticks": round((t1 - t0) / 0.02),
            "publisher_frames": lateness.frames,
            "publisher_late_frames": lateness.late,
            "publisher_max_late_s": round(lateness.worst, 4),
            "flood": wrk,
            **cpu,
        },
    )


def _analyse(
    server: BenchServer,
    space: Space,
    pubs: tuple[WhipPublisher, WhipPublisher],
    window: tuple[float, float, dict[str, Any]],
) -> dict[str, Any]:
    """Return audio at both speakers and part write times within one measured window."""
    assert server.spaces_dir is not None
    t0, t1, figures = window
    a, b = pubs
    return {
        **figures,
        "b_hears_a": return_audio(b, A_HZ, t0, t1),
        "a_hears_b": return_audio(a, B_HZ, t0, t1),
        "parts": _parts(server.spaces_dir / space.id, t0, t1),
    }


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Quiet window, then flood window."""
    configure_host_addresses(("127.0.0.1",))
    with server_for(args) as server, tempfile.TemporaryDirectory() as tmp:
        if args.client_nice:  # now that the server runs (at the niceness it inherited)
            os.setpriority(os.PRIO_PROCESS, 0, args.client_nice)
        if server.spaces_dir is None:
            raise SystemExit("isolation needs the server's files: give --data-dir with --url")
        load = MachineLoad([] if server.proc else server.server_pids())
        load.start()
        for pid in server.worker_pids() if args.renice_workers else []:
            os.setpriority(os.PRIO_PROCESS, pid, args.renice_workers)
        async with httpx.AsyncClient(verify=False, base_url=server.url, timeout=20) as api:
            space = await create_space(api, "bench isolation", speakers=1)
            lateness = Lateness()
            a = WhipPublisher(space.whip_url, space.host_token, OpusToneTrack(A_HZ, lateness))
            token, whip = space.speakers[0]
            b = WhipPublisher(whip, token, OpusToneTrack(B_HZ, lateness))
            for p in (a, b):
                await p.start()
                await p.wait_connected()
            await asyncio.sleep(3.0)
            playlist, parts = await listener_paths(await listen_url(api, space))
            script = write_script(Path(tmp), playlist, parts)
            quiet_w = await _phase(server, space, (a, b), lateness, args.window, None)
            await asyncio.sleep(GAP_S)
            flood = run_wrk(
                server.url, script, args.window, args.connections, args.threads, args.wrk_nice
            )
            flood_w = await _phase(server, space, (a, b), lateness, args.window, flood)
            await asyncio.sleep(GAP_S)  # the return audio of the window's end is still coming
            await a.stop()
            await b.stop()
            await end_space(api, space)
            quiet = _analyse(server, space, (a, b), quiet_w)
            flooded = _analyse(server, space, (a, b), flood_w)
        machine = load.read()
    result = {
        "no_flood": quiet,
        "flood": flooded,
        "workers": args.workers,
        "wrk_nice": args.wrk_nice,
        "renice_workers": args.renice_workers,
        "client_nice": args.client_nice,
        "machine_load": machine,
        "nproc": os.cpu_count(),
    }

    def line(r: dict[str, Any]) -> str:
        return (
            f"late ticks {r['late_ticks']}, B missing-tone blocks "
            f"{r['b_hears_a'].get('blocks_missing_tone')}/{r['b_hears_a'].get('blocks')}, "
            f"part interval p99 {r['parts']['interval_s'].get('p99', 0) * 1000:.0f} ms"
        )

    rps = flooded["flood"]["requests_per_s"] if flooded["flood"] else 0
    summary = f"isolation: no flood: {line(quiet)}; flood of {rps} req/s: {line(flooded)}"
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("isolation", args, result, summary)
