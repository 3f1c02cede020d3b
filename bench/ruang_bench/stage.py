"""`ruang bench stage`: full stages per node, and what a quiet space costs.

A full stage is a space with 13 people on stage, host included, each on sendrecv and hearing
the mix-minus. The benchmark adds one full stage per step, until late ticks appear, the server
refuses the next space (503 or 429), --max-stages is reached or --budget-s has run out. At each
step, over a steady window:

- the server's CPU: every process of its tree together (walked under /proc from its root, so
  a supervisor with media processes and delivery workers counts whole), each process apart,
  per full stage, and per full stage above the server's cost with no space at all;
- late ticks of every space (`ruang_mixer_late_ticks_total` from /metrics), during the window
  and while the step's speakers were joining;
- the speaker-to-speaker delay the server adds: in stage 1 the host is a probe A publishing
  4 kHz bursts (far above the talkers' tones: `s2s` with a high-pass), and the last speaker B
  records what the server sends back; against the same two aiortc clients connected directly
  (measured once, before the server starts);
- the speakers' own figures: they are cheap publishers (`ruang_bench.publishers`: Opus encoded
  once, one process per stage) whose CPU is reported apart, whose frames must leave on time,
  and who report what they hear back (frames, frames with sound, arrival gaps).

Who talks is --pattern: `conversation` (turns, at most two at once, the rest silent: room
noise at --noise-dbfs) or `all` (all 13 at once, the worst case for mix-minus: every talker
needs an encode of their own). Before the ramp, --idle-spaces live spaces with nobody on stage
give the cost of a quiet space. Each space is created from its own /24 on 127.0.0.0/8, so that
per-network creation caps do not stop the ramp before the node's capacity does.

The speakers share this machine's cores with the server: full stages per node are given both
as measured (clean steps here) and from the CPU figures (if the server had every core).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from ruang.rtc.ice import configure_host_addresses
from ruang_bench.common import (
    ApiError,
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
    percentiles,
    process_label,
    server_for,
    tree_cpu_by_pid,
)
from ruang_bench.publishers import NOISE_DBFS, Lateness, OpusToneTrack, PublisherProcess, talk_of
from ruang_bench.s2s import Probe, direct
from ruang_bench.signals import Bursts
from ruang_bench.stagefigures import ANCHORS, capacity, summary
from ruang_bench.talk import PATTERNS, Spurts, pattern, talkers_at_once

STAGE = 13  # people on a full stage, host included
TONES = [200.0 + 50.0 * i for i in range(STAGE)]  # 200–800 Hz, whole periods per 20 ms
PROBE_HZ = 4000.0  # the probe's bursts, two octaves above every talker's tone
HIGHPASS_HZ = 2500.0  # B's return audio is filtered above this before finding onsets
TALK_PERIOD_S = 120.0  # a stage's conversation repeats after this
TICK_S = 0.020
TAIL_S = 1.0  # after a window, its last burst is still on its way to B
MAX_SOURCES = 250  # spaces created per kind, each from its own 127.x.n.1


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    a = p.add_argument
    a("--pattern", choices=PATTERNS, default="conversation", help="who talks when (see above)")
    a("--speakers", type=int, default=STAGE, help="people per stage, host included (>= 3)")
    a("--max-stages", type=int, default=8, help="the ramp stops after this many (0: no ramp)")
    a("--settle", type=float, default=4.0, help="seconds between a step's joins and its window")
    a("--window", type=float, default=12.0, help="seconds measured per step")
    a("--idle-spaces", type=int, default=20, help="quiet live spaces measured first (0: skip)")
    a("--idle-window", type=float, default=10.0, help="seconds measured with no / quiet spaces")
    a("--burst-period", type=float, default=1.5, help="seconds between the probe's bursts")
    a("--baseline-bursts", type=int, default=8, help="bursts timed on the direct connection")
    a("--no-baseline", action="store_true", help="skip the direct aiortc run")
    a("--noise-dbfs", type=float, default=NOISE_DBFS, help="room noise of a silent speaker")
    a("--seed", type=int, default=1, help="seed of the conversations")
    a("--budget-s", type=float, default=900.0, help="no step starts after this many seconds")
    a("--create-key", default=os.environ.get("RUANG_CREATE_KEY", ""), help="for POST /api/spaces")
    a("--server-arg", action="append", default=[], help="pass to a started `ruang serve`")


def probe_bursts(period_s: float, count: int) -> Bursts:
    """The probe's signal: 0.2 s bursts at PROBE_HZ, loud enough (0.5) to stay well above the
    onset threshold when twelve tones drive the mix-minus limiter down to about a third."""
    return Bursts(PROBE_HZ, period_s, 0.2, 1.0, count, amplitude=0.5)


@dataclass
class Stage:
    """One space on the ramp, its speakers' process, and when each person talks."""

    number: int
    space: Space
    proc: PublisherProcess
    talkers: dict[str, float]  # talk pattern summary


class StageBench:
    """The ramp against one server."""

    def __init__(self, args: argparse.Namespace, server: BenchServer, root: int) -> None:
        self.args = args
        self.server = server
        self.root = root
        self.api = httpx.AsyncClient(verify=False, base_url=server.url, timeout=30)
        self.stages: list[Stage] = []
        self.probe: Probe | None = None
        self.probe_lateness = Lateness()  # of B's track

    # -- spaces --------------------------------------------------------------------------
    async def _create(self, title: str, invited: int, source: str) -> Space:
        """A live space created from `source`, with `invited` speakers besides the host."""
        key = self.args.create_key
        transport = httpx.AsyncHTTPTransport(verify=False, local_address=source)
        async with httpx.AsyncClient(
            base_url=self.server.url,
            transport=transport,
            timeout=30,
            headers={"Authorization": f"Bearer {key}"} if key else {},
        ) as api:
            return await create_space(api, title, invited)

    def _specs(self, space: Space, spurts: list[Spurts], epoch: float) -> list[dict[str, Any]]:
        people = [(space.host_token, space.whip_url), *space.speakers]
        return [
            {
                "token": token,
                "whip_url": whip,
                "freq": TONES[i],
                "talk": spurts[i],
                "period_s": TALK_PERIOD_S,
                "epoch": epoch,
                "noise_dbfs": self.args.noise_dbfs,
            }
            for i, (token, whip) in enumerate(people)
        ]

    async def open_stage(self, n: int) -> tuple[Stage, list[str]]:
        """Create stage n and put its people on stage; returns it and any connect failures."""
        people = self.args.speakers
        space = await self._create(f"bench stage {n}", people - 1, f"127.77.{n}.1")
        epoch = time.time()
        probe_here = n == 1
        # in stage 1 the host is the probe, outside the conversation
        spurts = pattern(self.args.pattern, people - probe_here, TALK_PERIOD_S, self.args.seed + n)
        if probe_here:
            spurts = [[], *spurts]
        specs = self._specs(space, spurts, epoch)
        proc = await PublisherProcess.start()
        stage = Stage(n, space, proc, talkers_at_once(spurts, TALK_PERIOD_S))
        self.stages.append(stage)
        failed: list[str] = []
        if probe_here:
            failed += await self._start_probe(specs[0], specs[-1])
            specs = specs[1:-1]
        answer = await proc.add(specs, "sendrecv")
        return stage, failed + list(answer["failed"])

    async def _start_probe(self, a_spec: dict[str, Any], b_spec: dict[str, Any]) -> list[str]:
        count = math.ceil((self.args.budget_s + 120) / self.args.burst_period)
        bursts = probe_bursts(self.args.burst_period, count)
        b_track = OpusToneTrack(b_spec["freq"], self.probe_lateness, talk_of(b_spec))
        self.probe = Probe(bursts, b_track, HIGHPASS_HZ)
        try:
            await self.probe.connect(
                (a_spec["whip_url"], a_spec["token"]), (b_spec["whip_url"], b_spec["token"])
            )
        except RuntimeError as e:
            return [f"probe: {e!r}"]
        return []

    async def open_idle(self, count: int) -> tuple[list[Space], str]:
        """Live spaces with nobody on stage; stops at the first refusal."""
        spaces: list[Space] = []
        for i in range(count):
            try:
                spaces.append(await self._create(f"bench quiet {i + 1}", 0, f"127.78.{i + 1}.1"))
            except ApiError as e:
                if e.status in (429, 503):
                    return spaces, f"space {i + 1} refused: {e}"
                raise
        return spaces, ""

    async def close(self) -> None:
        """Everyone off stage, every space ended."""
        if self.probe is not None:
            with contextlib.suppress(Exception):
                await self.probe.stop()
        for stage in self.stages:
            await stage.proc.quit()
        for stage in self.stages:
            with contextlib.suppress(httpx.HTTPError):
                await end_space(self.api, stage.space)
        await self.api.aclose()

    # -- measuring -----------------------------------------------------------------------
    async def window(self, spaces: list[Space], seconds: float) -> dict[str, Any]:
        """One steady window: the server's tree, the speakers, late ticks, the probe."""
        procs = [s.proc for s in self.stages]
        for proc in procs:
            await proc.stats()  # reset their counters
        self.probe_lateness.frames = self.probe_lateness.late = 0
        self.probe_lateness.worst = 0.0
        if self.probe is not None:
            self.probe.open_window()
        m0 = await fetch_metrics(self.server)
        meter = CpuMeter({"speakers": [p.pid for p in procs], "bench": [os.getpid()]})
        tree0 = tree_cpu_by_pid(self.root)
        meter.start()
        t0 = time.time()
        await asyncio.sleep(seconds)
        t1 = time.time()
        tree1 = tree_cpu_by_pid(self.root)
        cpu = meter.read()
        m1 = await fetch_metrics(self.server)
        wall = cpu["wall_s"]
        server_cores = (sum(tree1.values()) - sum(tree0.values())) / wall
        ours = server_cores + cpu["speakers_cores"] + cpu["bench_cores"]
        late = {s.id: int(_delta(m0, m1, "ruang_mixer_late_ticks", s.id)) for s in spaces}
        ticks = sum(int(_delta(m0, m1, "ruang_mixer_ticks", s.id)) for s in spaces)
        row: dict[str, Any] = {
            "server_cores": round(server_cores, 4),
            "server_processes": [
                {
                    "pid": pid,
                    "what": process_label(pid),
                    "cores": round((c - tree0.get(pid, 0)) / wall, 4),
                }
                for pid, c in sorted(tree1.items())
            ],
            "speakers_cores": cpu["speakers_cores"],
            "bench_cores": cpu["bench_cores"],
            "machine_cores_busy": cpu["machine_cores_busy"],
            "others_cores": round(max(0.0, cpu["machine_cores_busy"] - ours), 2),
            "late_ticks": sum(late.values()),
            "late_ticks_by_space": list(late.values()),
            "ticks": ticks,
            "expected_ticks": round(len(spaces) * wall / TICK_S),
            "speakers": await _speaker_stats(procs, self.probe_lateness, wall),
            "wall_s": wall,
        }
        if self.probe is not None:
            await asyncio.sleep(TAIL_S)
            self.probe.close_window(t0, t1)
        return row

    def delay(self, index: int, baseline: dict[str, float]) -> dict[str, Any]:
        """The probe's delays in the index-th ramp window (run after the ramp: it is heavy)."""
        if self.probe is None or index >= len(self.probe.windows):
            return {}
        sent, timed = self.probe.window_delays(index)
        via = percentiles(timed)
        out: dict[str, Any] = {
            "through_server_s": via,
            "bursts_sent": sent,
            "bursts_timed": len(timed),
        }
        if timed and baseline.get("n"):
            out["added_by_server_s"] = {q: round(via[q] - baseline[q], 4) for q in ("p50", "p95")}
        return out


def _delta(m0: Any, m1: Any, name: str, space: str) -> float:
    return metric(m1, name, space) - metric(m0, name, space)


async def _speaker_stats(
    procs: list[PublisherProcess], probe_b: Lateness, wall_s: float
) -> dict[str, Any]:
    """The speakers' own figures over a window, summed over their processes and the probe's B;
    `return_share` is the share of the mix-minus frames the server owed them that arrived."""
    keys = (
        "publishers",
        "frames",
        "late_frames",
        "return_frames",
        "return_sound_frames",
        "return_gaps_over_60ms",
    )
    out: dict[str, Any] = dict.fromkeys(keys, 0)
    out["max_late_s"] = out["max_return_gap_ms"] = 0.0
    for proc in procs:
        s = await proc.stats()
        for k in keys:
            out[k] += s[k]
        out["max_late_s"] = max(out["max_late_s"], s["max_late_s"])
        out["max_return_gap_ms"] = max(out["max_return_gap_ms"], s["max_return_gap_ms"])
    # and B's track (A's is a SignalTrack, paced the same way)
    out["frames"] += probe_b.frames
    out["late_frames"] += probe_b.late
    out["max_late_s"] = max(out["max_late_s"], round(probe_b.worst, 4))
    frames = max(1, out["return_frames"])
    out["return_sound_share"] = round(out["return_sound_frames"] / frames, 3)
    owed = out["publishers"] * wall_s / TICK_S
    out["return_share"] = round(out["return_frames"] / owed, 3) if owed else None
    return out


async def _idle(bench: StageBench, empty_cores: float) -> dict[str, Any]:
    """The server with --idle-spaces live spaces where nobody is on stage."""
    count = bench.args.idle_spaces
    if count == 0:
        return {"spaces": 0}
    spaces, refused = await bench.open_idle(count)
    await asyncio.sleep(bench.args.settle)
    row = await bench.window(spaces, bench.args.idle_window)
    for space in spaces:
        await end_space(bench.api, space)
    await asyncio.sleep(2.0)  # the replays' final writes stay out of the ramp
    row["spaces"] = len(spaces)
    row["refused"] = refused
    if spaces:
        row["cores_per_space"] = round((row["server_cores"] - empty_cores) / len(spaces), 5)
    return row


async def _ramp(bench: StageBench, empty_cores: float) -> tuple[list[dict[str, Any]], str]:
    """One more full stage per step, until a reason to stop; returns the steps and the reason."""
    args = bench.args
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    for n in range(1, args.max_stages + 1):
        if time.monotonic() - started > args.budget_s:
            return rows, f"--budget-s {args.budget_s:g} ran out"
        m0 = await fetch_metrics(bench.server)
        try:
            stage, failed = await bench.open_stage(n)
        except ApiError as e:
            if e.status in (429, 503):
                return rows, f"the server refused stage {n}: {e}"
            raise
        await asyncio.sleep(args.settle)
        m1 = await fetch_metrics(bench.server)
        spaces = [s.space for s in bench.stages]
        joining = sum(int(_delta(m0, m1, "ruang_mixer_late_ticks", s.id)) for s in spaces)
        row: dict[str, Any] = {
            "stages": n,
            "people_on_stage": n * args.speakers,
            "late_ticks_while_joining": joining,
            "talkers_at_once": stage.talkers,
            **await bench.window(spaces, args.window),
        }
        row["server_cores_per_stage"] = round(row["server_cores"] / n, 4)
        row["server_cores_per_stage_above_empty"] = round(
            (row["server_cores"] - empty_cores) / n, 4
        )
        row["speakers_cores_per_stage"] = round(row["speakers_cores"] / n, 4)
        row["connect_failures"] = failed[:3]
        rows.append(row)
        print(
            f"  {n} stages: server {row['server_cores']:.3f} cores "
            f"({row['server_cores_per_stage']:.3f} per stage), speakers "
            f"{row['speakers_cores']:.3f}, machine {row['machine_cores_busy']:.2f} busy "
            f"(others {row['others_cores']:.2f}), late ticks {row['late_ticks']} "
            f"(+{joining} joining), late speaker frames {row['speakers']['late_frames']}",
            file=sys.stderr,
        )
        if failed:
            return rows, f"speakers could not connect: {failed[:1]}"
        if row["late_ticks"]:
            return rows, "late ticks appeared"
    return rows, f"--max-stages {args.max_stages} reached"


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Direct baseline, empty server, quiet spaces, then the ramp."""
    if not 3 <= args.speakers <= STAGE:
        raise SystemExit(f"--speakers must be 3..{STAGE}, not {args.speakers}")
    if not (0 <= args.idle_spaces <= MAX_SOURCES and 0 <= args.max_stages <= MAX_SOURCES):
        raise SystemExit(f"--idle-spaces and --max-stages must be at most {MAX_SOURCES}")
    configure_host_addresses(("127.0.0.1",))
    load = MachineLoad()
    load.start()
    baseline: dict[str, float] = {}
    if not args.no_baseline:
        bursts = probe_bursts(args.burst_period, args.baseline_bursts)
        baseline = percentiles(await direct(bursts, HIGHPASS_HZ))
    with server_for(args, extra=args.server_arg) as server:
        root = server.proc.pid if server.proc else args.server_pid
        if root is None:
            raise SystemExit("stage needs the server's root process: give --server-pid with --url")
        if server.proc is None:  # a server of its own: count it as ours from here on
            load = MachineLoad(list(tree_cpu_by_pid(root)))
            load.start()
        bench = StageBench(args, server, root)
        try:
            print("empty server", file=sys.stderr)
            empty = await bench.window([], args.idle_window)
            print(
                f"  {empty['server_cores']:.3f} cores; {args.idle_spaces} quiet spaces",
                file=sys.stderr,
            )
            idle = await _idle(bench, empty["server_cores"])
            print(
                f"  {idle.get('cores_per_space')} cores per quiet space; the ramp", file=sys.stderr
            )
            rows, stop = await _ramp(bench, empty["server_cores"])
        finally:
            await bench.close()
        for i, row in enumerate(rows):
            row["s2s"] = bench.delay(i, baseline)
    machine = load.read()
    cap = capacity(empty["server_cores"], rows, os.cpu_count() or 1)
    result: dict[str, Any] = {
        "pattern": args.pattern,
        "people_per_stage": args.speakers,
        "full_stage": args.speakers == STAGE,
        "noise_dbfs": args.noise_dbfs,
        "empty_server": empty,
        "idle": idle,
        "ramp": rows,
        "stopped_because": stop,
        "capacity": cap,
        "direct_aiortc_s": baseline,
        "anchors": ANCHORS,
        "machine_load": machine,
    }
    return result, summary(result)


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("stage", args, result, summary)
