"""`ruang bench cpu`: CPU per live space, and publishing speakers per core.

Part 1, one space with 0, 1, 4 and 13 speakers publishing tones (sendrecv, as real speakers:
the server also encodes each one's mix-minus): for each, over a steady window,
- mixer real-time factor: Δ ruang_mixer_busy_seconds / Δ wall (mix + return frames + AAC
  encode + packaging, on the mixer clock; disk writes run on a writer thread, not in it);
- the media process's CPU (all its threads: WebRTC receive, Opus decode and encode, mixer,
  disk writer) from /proc/<pid>/stat, in cores (1.0 = one core busy).

Part 0, silence: the media process's CPU with no space, then with --idle-spaces live spaces
where nobody is on stage, then as many scheduled ones beside them; the cost of one silent
space is the difference divided by their number.

Part 2, the ramp: spaces of 13 sendonly publishers (ingest, decode, mix: the DESIGN's "speakers
one core ingests, decodes and mixes") are added one space at a time until the media process
uses ~a whole core, late ticks appear, or the publishers themselves fall behind. The
publishers are aiortc clients in separate processes on the same 2-core machine: they compete
with the server for the cores, which is reported beside every step.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from ruang.codecs.opus import OpusEncoder
from ruang.hls.store import SpaceMediaStore
from ruang.live.pipeline import SpacePipeline
from ruang.media.buffer import SAMPLE_RATE, TICK_SAMPLES, InputBuffer
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
    metric,
    server_for,
)
from ruang_bench.publishers import PublisherProcess
from ruang_bench.silent import silent_spaces
from ruang_bench.tools.tones import sine

STAGE = 13  # people per space, host included
FULL_CORE = 0.95  # the media process counts as saturated from here (cores)
GOAL_PER_CORE = 30
TONES = [200.0 + 50.0 * i for i in range(STAGE)]  # one tone per person, whole periods per 20 ms


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument("--settle", type=float, default=3.0, help="seconds before each window")
    p.add_argument("--window", type=float, default=8.0, help="seconds measured per step")
    p.add_argument("--counts", default="0,1,4,8,13", help="speakers on the one-space stage")
    p.add_argument("--ramp-start", type=int, default=8, help="sendonly publishers, first step")
    p.add_argument("--ramp-step", type=int, default=4, help="publishers added per step")
    p.add_argument("--ramp-max", type=int, default=60, help="the ramp stops here")
    p.add_argument("--no-ramp", action="store_true", help="only the 0/1/4/13 speakers part")
    p.add_argument("--talking", type=int, default=STAGE, help="part 1: speakers with a tone")
    p.add_argument("--idle-spaces", type=int, default=20, help="silent spaces (0: skip part 0)")


def _specs(space: Space, talking: int = STAGE) -> list[dict[str, Any]]:
    """Publishers for everyone on a space's stage; beyond the first `talking` they send
    digital silence (a 0 Hz tone), like speakers who listen."""
    people = [(space.host_token, space.whip_url), *space.speakers]
    return [
        {"token": t, "whip_url": w, "freq": TONES[i] if i < talking else 0.0}
        for i, (t, w) in enumerate(people)
    ]


async def _window(
    server: BenchServer,
    meter: CpuMeter,
    spaces: list[Space],
    procs: list[PublisherProcess],
    window: float,
) -> dict[str, Any]:
    """Measure one steady window."""
    for p in procs:
        await p.stats()  # reset lateness counters
    m0 = await fetch_metrics(server)
    meter.start()
    await asyncio.sleep(window)
    cpu = meter.read()
    m1 = await fetch_metrics(server)
    late_frames = 0
    frames = 0
    worst = 0.0
    for p in procs:
        s = await p.stats()
        late_frames += s["late_frames"]
        frames += s["frames"]
        worst = max(worst, s["max_late_s"])

    def delta(name: str, sid: str | None = None) -> float:
        return metric(m1, name, sid) - metric(m0, name, sid)

    wall = cpu["wall_s"]
    rtf = [delta("ruang_mixer_busy_seconds", s.id) / wall for s in spaces]
    return {
        "mixer_rtf_per_space": [round(x, 5) for x in rtf],
        "mixer_rtf_total": round(sum(rtf), 5),
        "ticks": int(delta("ruang_mixer_ticks")),
        "late_ticks": int(delta("ruang_mixer_late_ticks")),
        "sessions": int(metric(m1, "ruang_sessions")),
        "publisher_frames": frames,
        "publisher_late_frames": late_frames,
        "publisher_max_late_s": worst,
        **cpu,
    }


async def _fixed(args: argparse.Namespace, server: BenchServer, api: httpx.AsyncClient) -> Any:
    space = await create_space(api, "bench cpu", speakers=STAGE - 1)
    specs = _specs(space, args.talking)
    proc = await PublisherProcess.start()
    meter = CpuMeter(
        {
            "media": server.media_pids(),
            "delivery": server.worker_pids(),
            "publishers": [proc.pid],
            "bench": [os.getpid()],
        }
    )
    rows = []
    on = 0
    try:
        for n in [int(x) for x in args.counts.split(",")]:
            m0 = await fetch_metrics(server)
            if n > on:
                answer = await proc.add(specs[on:n], "sendrecv")
                if not answer["ok"]:
                    raise RuntimeError(f"publishers failed: {answer['failed']}")
                on = n
            m1 = await fetch_metrics(server)
            await asyncio.sleep(args.settle)
            row = await _window(server, meter, [space], [proc], args.window)
            row["speakers"] = n
            row["late_ticks_while_joining"] = int(
                metric(m1, "ruang_mixer_late_ticks") - metric(m0, "ruang_mixer_late_ticks")
            )
            rows.append(row)
            print(
                f"  {n:2d} speakers: mixer RTF {row['mixer_rtf_total']:.4f}, media "
                f"{row['media_cores']:.3f} cores, publishers {row['publishers_cores']:.3f}, "
                f"late ticks {row['late_ticks']}",
                file=sys.stderr,
            )
    finally:
        await proc.quit()
        await end_space(api, space)
    return rows


async def _ramp(args: argparse.Namespace, server: BenchServer, api: httpx.AsyncClient) -> Any:
    spaces: list[Space] = []
    procs: list[PublisherProcess] = []
    specs: list[list[dict[str, Any]]] = []  # per space: invitations not yet publishing
    rows: list[dict[str, Any]] = []
    stop = ""
    total = 0
    try:
        for target in range(args.ramp_start, args.ramp_max + 1, args.ramp_step):
            m0 = await fetch_metrics(server)
            failed: list[str] = []
            while total < target:
                if not specs or not specs[-1]:
                    space = await create_space(api, f"bench ramp {len(spaces) + 1}", STAGE - 1)
                    spaces.append(space)
                    specs.append(_specs(space))
                    procs.append(await PublisherProcess.start())
                batch = specs[-1][: target - total]
                del specs[-1][: len(batch)]
                answer = await procs[-1].add(batch, "sendonly")
                failed += answer["failed"]
                total += len(batch)
            m1 = await fetch_metrics(server)
            meter = CpuMeter(
                {
                    "media": server.media_pids(),
                    "delivery": server.worker_pids(),
                    "publishers": [p.pid for p in procs],
                    "bench": [os.getpid()],
                }
            )
            await asyncio.sleep(args.settle)
            row = await _window(server, meter, spaces, procs, args.window)
            row["speakers"] = total
            row["spaces"] = len(spaces)
            row["connect_failures"] = failed[:3]
            row["late_ticks_while_joining"] = int(
                metric(m1, "ruang_mixer_late_ticks") - metric(m0, "ruang_mixer_late_ticks")
            )
            rows.append(row)
            print(
                f"  {total:3d} publishers in {len(spaces)} spaces: media "
                f"{row['media_cores']:.3f} cores, publishers {row['publishers_cores']:.3f}, "
                f"machine {row['machine_cores_busy']:.2f} busy, late ticks {row['late_ticks']}, "
                f"late publisher frames {row['publisher_late_frames']}",
                file=sys.stderr,
            )
            if failed:
                stop = f"publishers could not connect: {failed[:1]}"
            elif row["late_ticks"] > 0:
                stop = "late ticks appeared"
            elif row["media_cores"] >= FULL_CORE:
                stop = "the media process reached a full core"
            elif row["machine_busy_fraction"] >= 0.97:
                stop = "the machine's 2 cores were saturated"
            if stop:
                break
        else:
            stop = f"--ramp-max {args.ramp_max} reached"
    finally:
        for proc in procs:
            await proc.quit()
        for space in spaces:
            await end_space(api, space)
    return rows, stop


async def tick_cost(ticks: int = 500) -> list[dict[str, Any]]:
    """The mixer clock's work without network or other threads: SpacePipeline.tick() run
    back to back in this process on Opus packets of tones (13 distinct, limiter engaged):
    decode, gate, mix, one Opus encode per distinct mix, AAC, packaging; with every speaker
    getting a mix-minus (sendrecv) or none (sendonly), and with all or only 2 of 13 talking.
    Process CPU per tick, in µs (it also counts the disk writer thread beside the tick)."""
    rows = []
    cases = [(0, False, 0), (1, True, 1), (4, True, 4), (STAGE, True, STAGE)]
    cases += [(STAGE, True, 2), (STAGE, False, STAGE)]  # 2 of 13 talking; sendonly
    with tempfile.TemporaryDirectory(prefix="ruang-tick-") as tmp:
        for n, sinks, talking in cases:
            folder = Path(tmp) / f"{n}-{sinks}-{talking}"
            pipeline = SpacePipeline("bench", SpaceMediaStore(folder))
            buffers = []
            for i in range(n):
                buffer = InputBuffer()
                buffers.append(buffer)
                pipeline.add_speaker(f"s{i}", buffer, (lambda packet: None) if sinks else None)
            loops = [_opus_loop(TONES[i] if i < talking else 0.0) for i in range(n)]
            cpu = wall = 0.0
            for t in range(ticks):
                for buffer, loop in zip(buffers, loops, strict=True):
                    buffer.push_packet(loop[t % len(loop)])
                c0, w0 = time.process_time(), time.perf_counter()
                pipeline.tick()
                cpu += time.process_time() - c0
                wall += time.perf_counter() - w0
            await pipeline.stop(end=False)
            rows.append(
                {
                    "speakers": n,
                    "talking": talking,
                    "mix_minus": sinks,
                    "opus_encodes_per_tick": round(pipeline.stage.stats.encoded / ticks, 2),
                    "cpu_us_per_tick": round(cpu / ticks * 1e6),
                    "rtf": round(wall / ticks / 0.020, 4),
                }
            )
    return rows


def _opus_loop(freq: float) -> list[bytes]:
    """One second of a tone (0 Hz: silence) as 20 ms Opus packets."""
    encoder = OpusEncoder()
    tick_s = TICK_SAMPLES / SAMPLE_RATE
    return [encoder.encode(sine(freq, tick_s, 0.2, i * TICK_SAMPLES)) for i in range(50)]


def _capacity(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Speakers per core: the largest clean step, and the marginal cost extrapolated."""
    clean = [r for r in rows if r["late_ticks"] == 0 and r["media_cores"] < FULL_CORE]
    out: dict[str, Any] = {"largest_clean_step": clean[-1]["speakers"] if clean else 0}
    if len(clean) >= 2:  # a saturated step says nothing of the cost: fit the clean ones
        xs = [r["speakers"] for r in clean]
        ys = [r["media_cores"] for r in clean]
        n = len(xs)
        mx, my = sum(xs) / n, sum(ys) / n
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        intercept = my - slope * mx
        out["media_cores_per_speaker"] = round(slope, 5)
        out["media_cores_fixed"] = round(intercept, 4)
        if slope > 0:
            out["speakers_per_core_extrapolated"] = int((1.0 - intercept) / slope)
    return out


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Both parts against one server."""
    ticks = await tick_cost()
    with server_for(args) as server:
        if server.pid is None:
            raise SystemExit("cpu needs the server's process id: give --server-pid with --url")
        load = MachineLoad([] if server.proc else server.server_pids())
        load.start()
        async with httpx.AsyncClient(verify=False, base_url=server.url, timeout=30) as api:
            idle: dict[str, Any] = {}
            if args.idle_spaces > 0:
                print("part 0: silent spaces", file=sys.stderr)
                idle = await silent_spaces(args, server, api)
            print("part 1: one space, sendrecv speakers", file=sys.stderr)
            fixed = await _fixed(args, server, api)
            ramp: list[dict[str, Any]] = []
            stop = "skipped"
            if not args.no_ramp:
                print("part 2: spaces of 13 sendonly publishers", file=sys.stderr)
                ramp, stop = await _ramp(args, server, api)
        machine = load.read()
    cap = _capacity(ramp) if ramp else {}
    result: dict[str, Any] = {
        "tick_in_process": ticks,
        "silent_spaces": idle,
        "per_space": fixed,
        "ramp": ramp,
        "ramp_stopped_because": stop,
        "capacity": cap,
        "goal_speakers_per_core": GOAL_PER_CORE,
        "machine_load": machine,
    }
    by_n = {r["speakers"]: r for r in fixed}
    parts = [
        f"{n} spk {by_n[n]['media_cores']:.3f} cores (mixer RTF {by_n[n]['mixer_rtf_total']:.4f})"
        for n in sorted(by_n)
    ]
    summary = "cpu: media process " + ", ".join(parts)
    if idle:
        summary += (
            f"; silent space {idle['media_cores_per_silent_live_space']:.5f} cores live, "
            f"{idle['media_cores_per_scheduled_space']:.5f} scheduled"
        )
    if ramp:
        best = cap.get("largest_clean_step", 0)
        extra = cap.get("speakers_per_core_extrapolated")
        summary += (
            f"; ramp: {best} sendonly publishers clean (stopped: {stop}), "
            f"~{extra} per core extrapolated (goal >= {GOAL_PER_CORE})"
        )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("cpu", args, result, summary)
