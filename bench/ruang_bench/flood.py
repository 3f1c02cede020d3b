"""`ruang bench flood`: an open-model listener load generator with real LL-HLS player pacing.

Arrival times are fixed before the run (a surge of N listeners in T seconds, evenly spaced, on
a rising ramp, or Poisson at the same mean rate), so the load does not ease off when the server
slows down. Each listener joins (waiting room and back-off included), then plays like an
LL-HLS player: a blocking playlist reload and one part request per 0.512 s part, with a player
buffer (playback after 1.5 s buffered, real-time consumption, stalls when it runs dry). The
listeners are spread over --processes worker processes (`ruang_bench.player`, one keep-alive
connection per listener, at most PER_PROCESS_MAX each: `ulimit -n` is 20000) and over --sources
127.x.y.z source addresses in distinct /24 networks. Everything is bounded: --listeners and
--duration-s are capped, every request has a timeout, and the processes are killed at the end.

The report (JSON, a one-line summary, and a PNG with --plot if matplotlib is importable):
join latency (first attempt to 200), time in the waiting room, FIFO order of admissions, the
per-listener stall ratio (stalled time / played time), on-time part delivery, requests per
second with their statuses, timeouts and errors, the CPU of the generator and of the server,
the server's own /metrics (listeners, shed requests, pressure, late mixer ticks), and a
per-second timeline of all of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ruang.rtc.ice import configure_host_addresses
from ruang_bench.common import (
    BenchServer,
    CpuMeter,
    MachineLoad,
    Space,
    add_server_arguments,
    create_space,
    emit,
    fetch_metrics,
    metric,
    start_server,
)
from ruang_bench.player import COUNTERS
from ruang_bench.publishers import Lateness, OpusToneTrack
from ruang_bench.signals import return_audio
from ruang_bench.tools.whip_client import WhipPublisher

MAX_LISTENERS = 200_000  # hard cap on one run
MAX_DURATION_S = 3_600.0  # hard cap on one run
PER_PROCESS_MAX = 15_000  # listeners (sockets) per generator process, below `ulimit -n`
PROCESS_SHARE = 1_000  # listeners per generator process by default (up to the core count)
LEAD_S = 2.0  # from spawning the generator processes to the first arrival
KILL_GRACE_S = 60.0  # the generator processes are killed this long after the end
STALL_GOOD = 0.001  # a listener is "good" below this stall ratio (0.1 %)
HOST_HZ, GUEST_HZ = 450.0, 700.0  # the two speakers' tones (--speakers 2)
STAGE_SETTLE_S = 2.0  # before the flood, and after it for the last return audio


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ruang bench flood`."""
    add_server_arguments(p)
    p.add_argument("--space", help="the space's id (default: create a live one)")
    p.add_argument("--listeners", type=int, default=200, help="listeners that arrive in all")
    p.add_argument(
        "--ramp-s", type=float, default=10.0, help="seconds over which they arrive (0: at once)"
    )
    p.add_argument(
        "--shape",
        choices=("uniform", "ramp", "poisson"),
        default="uniform",
        help="arrivals evenly spaced, at a rate rising linearly from 0, or Poisson at the mean "
        "rate N/T (seeded)",
    )
    p.add_argument(
        "--rate",
        type=float,
        help="a steady arrival rate per second instead of --ramp-s (T = N / rate)",
    )
    p.add_argument("--duration-s", type=float, default=30.0, help="length of the run")
    p.add_argument(
        "--processes",
        type=int,
        default=0,
        help=f"generator processes (default: one per {PROCESS_SHARE} listeners up to the core "
        f"count, and at least one per {PER_PROCESS_MAX} listeners)",
    )
    p.add_argument("--sources", type=int, default=256, help="distinct 127.x.y.z source addresses")
    p.add_argument(
        "--per-network",
        type=int,
        default=1,
        help="source addresses per /24 network (the server's unit of fairness)",
    )
    p.add_argument(
        "--start-buffer-s", type=float, default=1.5, help="media buffered before playback"
    )
    p.add_argument("--timeout-s", type=float, default=10.0, help="timeout of one request")
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="send the hinted part's request with the blocking playlist reload (pipelined on "
        "the same connection, as players that fetch preload hints do) instead of after it",
    )
    p.add_argument(
        "--speakers",
        type=int,
        choices=(0, 2),
        default=0,
        help="2: a host and a guest on stage (sendrecv WHIP, 450 and 700 Hz tones) during the "
        "flood; each one's return audio is checked for the other's tone, second by second",
    )
    p.add_argument(
        "--speaker-priority",
        type=int,
        default=3,
        help="real-time (SCHED_RR) priority of this process, which runs the two speakers: real "
        "speakers are on other machines, so they must not starve beside the local generator "
        "(below the server's media process, 5); 0 = normal scheduling",
    )
    p.add_argument("--seed", type=int, default=1, help="seed of Poisson arrivals")
    p.add_argument("--nice", type=int, default=0, help="run the generator processes at this nice")
    p.add_argument("--plot", type=Path, help="write a PNG timeline here (needs matplotlib)")
    p.add_argument("--records", type=Path, help="write every listener's record here (JSON)")
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass to a started `ruang serve` (repeatable), e.g. --server-arg=--joins-per-s=200",
    )


# -- arrivals and sources ------------------------------------------------------------------------
def arrival_times(n: int, ramp_s: float, shape: str, seed: int = 1) -> list[float]:
    """N arrival offsets (seconds from the start), fixed before the run."""
    if n <= 0:
        return []
    if ramp_s <= 0:
        return [0.0] * n
    if shape == "uniform":
        return [i * ramp_s / n for i in range(n)]
    if shape == "ramp":  # rate 2Nt/T²: the i-th arrival when N(t/T)² reaches i
        return [ramp_s * math.sqrt(i / n) for i in range(n)]
    if shape == "poisson":
        rng = random.Random(seed)
        rate, t, out = n / ramp_s, 0.0, []
        for _ in range(n):
            out.append(t)
            t += rng.expovariate(rate)
        return out
    raise ValueError(f"unknown arrival shape {shape!r}")


def source_address(k: int, per_network: int) -> str:
    """The k-th source address: `per_network` hosts in each /24 of 127.1.0.0 - 127.254.255.0."""
    net, host = divmod(k, max(1, min(254, per_network)))
    net %= 254 * 256
    return f"127.{1 + net // 256}.{net % 256}.{1 + host}"


# -- the server ----------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def flood_server(args: argparse.Namespace) -> AsyncIterator[BenchServer]:
    """--url, or a server of our own in a temporary folder."""
    if args.url:
        yield BenchServer(
            args.url.rstrip("/"),
            Path(args.data_dir) if args.data_dir else None,
            args.server_pid,
        )
        return
    with tempfile.TemporaryDirectory(prefix="ruang-flood-") as tmp:
        server = await asyncio.to_thread(
            start_server, Path(tmp) / "data", args.workers, None, args.server_arg
        )
        try:
            yield server
        finally:
            await asyncio.to_thread(server.stop)


# -- the run -------------------------------------------------------------------------------------
def check_bounds(args: argparse.Namespace) -> int:
    """Refuse runs beyond the caps; the number of generator processes to use."""
    if not 1 <= args.listeners <= MAX_LISTENERS:
        raise SystemExit(f"--listeners must be within 1..{MAX_LISTENERS}")
    if not 0 < args.duration_s <= MAX_DURATION_S:
        raise SystemExit(f"--duration-s must be within (0, {MAX_DURATION_S:g}]")
    if args.rate is not None and args.rate <= 0:
        raise SystemExit("--rate must be positive")
    # by default one process per PROCESS_SHARE listeners, up to the cores (shorter bursts per
    # event loop: 1000 listeners are 1000 answers at every part boundary), more if sockets need
    processes = args.processes or max(
        math.ceil(args.listeners / PER_PROCESS_MAX),
        min(os.cpu_count() or 1, math.ceil(args.listeners / PROCESS_SHARE)),
    )
    if math.ceil(args.listeners / processes) > PER_PROCESS_MAX:
        raise SystemExit(
            f"at most {PER_PROCESS_MAX} listeners per process (ulimit -n): use more --processes"
        )
    if args.sources < 1 or args.per_network < 1:
        raise SystemExit("--sources and --per-network must be at least 1")
    return int(processes)


async def poll_metrics(
    server: BenchServer, space: str, t0: float, end: float, out: list[dict[str, float]]
) -> None:
    """The server's /metrics once a second: listeners, shed requests, pressure, late ticks."""
    while True:
        now = time.monotonic()
        if now - t0 > end:
            return
        try:
            m = await fetch_metrics(server)
            out.append(
                {
                    "t": round(now - t0, 2),
                    "listeners": metric(m, "ruang_listeners", space),
                    "shed": metric(m, "ruang_shed_requests"),
                    "pressure": max(m.get("ruang_pressure_level", {}).values(), default=0.0),
                    "late_ticks": metric(m, "ruang_mixer_late_ticks", space),
                }
            )
        except (httpx.HTTPError, RuntimeError):
            out.append({"t": round(now - t0, 2), "error": 1.0})
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - now)))


async def _flood(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    processes = check_bounds(args)
    ramp_s = args.listeners / args.rate if args.rate else args.ramp_s
    shape = "uniform" if args.rate and args.shape == "ramp" else args.shape
    async with flood_server(args) as server:
        host, port = _host_port(server.url)
        stage: Stage | None = None
        if args.space:
            space = args.space
        else:
            async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
                made = await create_space(api, "flood", speakers=1 if args.speakers else 0)
            space = made.id
            if args.speakers:
                stage = await Stage.start(made)
        times = arrival_times(args.listeners, ramp_s, shape, args.seed)
        with tempfile.TemporaryDirectory(prefix="ruang-flood-gen-") as tmp:
            folder = Path(tmp)
            t0 = time.monotonic() + LEAD_S + 0.2 * processes
            configs = [
                {
                    "host": host,
                    "port": port,
                    "space": space,
                    "t0": t0,
                    "duration_s": args.duration_s,
                    "start_buffer_s": args.start_buffer_s,
                    "timeout_s": args.timeout_s,
                    "pipeline": args.pipeline,
                    "listeners": [
                        [i, times[i], source_address(i % args.sources, args.per_network)]
                        for i in range(p, args.listeners, processes)
                    ],
                }
                for p in range(processes)
            ]
            procs = spawn_players(folder, configs, args.nice)
            if stage is not None and args.speaker_priority:  # after the players: not inherited
                policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
                os.sched_setscheduler(0, policy, os.sched_param(args.speaker_priority))
            meter = CpuMeter(
                {
                    "server_media": server.media_pids(),
                    "server_workers": server.worker_pids(),
                    "flood_parent": [os.getpid()],
                }
            )
            theirs = [] if server.proc else server.server_pids()
            load = MachineLoad([pid for pid in theirs if pid])
            await asyncio.sleep(max(0.0, t0 - time.monotonic()))
            wall0 = time.time()
            meter.start()
            load.start()
            samples: list[dict[str, float]] = []
            poller = asyncio.create_task(
                poll_metrics(server, space, t0, args.duration_s + 0.5, samples)
            )
            await asyncio.sleep(max(0.0, t0 + args.duration_s - time.monotonic()))
            cpu, machine = meter.read(), load.read()  # while the generator processes live
            wall1 = time.time()
            codes = await asyncio.to_thread(wait_all, procs, t0 + args.duration_s + KILL_GRACE_S)
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
            speakers = await stage.finish(wall0, wall1) if stage is not None else None
            results = []
            for p, code in enumerate(codes):
                path = folder / f"result-{p}.json"
                if code != 0 or not path.exists():
                    log = (folder / f"player-{p}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"generator process {p} failed ({code}): {log}")
                results.append(json.loads(path.read_text()))
        config_out = {
            "url": server.url,
            "space": space,
            "listeners": args.listeners,
            "ramp_s": round(ramp_s, 3),
            "shape": shape,
            "duration_s": args.duration_s,
            "processes": processes,
            "sources": args.sources,
            "per_network": args.per_network,
            "start_buffer_s": args.start_buffer_s,
            "timeout_s": args.timeout_s,
            "pipeline": args.pipeline,
            "nice": args.nice,
            "server_started": server.proc is not None,
            "server_workers": args.workers if server.proc is not None else None,
            "server_args": list(args.server_arg),
        }
        result = aggregate(results, samples, args.duration_s)
        if args.records:
            args.records.parent.mkdir(parents=True, exist_ok=True)
            fields = results[0]["fields"]
            rows = sorted((r for res in results for r in res["listeners"]), key=lambda r: r[0])
            args.records.write_text(json.dumps({"fields": fields, "listeners": rows}))
        gen_cpu = sum(r["cpu_s"] for r in results)
        wall = max(r["wall_s"] for r in results)
        cpu = {
            "generator_cores": round(gen_cpu / wall + cpu.pop("flood_parent_cores"), 3),
            "generator_cpu_s": round(gen_cpu, 2),
            "generator_cpu_us_per_request": round(
                1e6 * gen_cpu / max(1, result["requests"]["total"]), 1
            ),
            **cpu,
            "server_cores": round(cpu["server_media_cores"] + cpu["server_workers_cores"], 3),
        }
        cpu.pop("flood_parent_cpu_wait", None)
        result = {"config": config_out, **result, "cpu": cpu, "machine_load": machine}
        if speakers is not None:
            result["speakers"] = speakers
    return result, summarize(result)


class Stage:
    """Two people on stage during the flood: each hears the other's tone through the server
    (mix-minus), and what each heard is checked second by second."""

    def __init__(self, host: WhipPublisher, guest: WhipPublisher, lateness: Lateness) -> None:
        self.host, self.guest, self.lateness = host, guest, lateness

    @classmethod
    async def start(cls, space: Space) -> Stage:
        """Host (450 Hz) and guest (700 Hz) connected, and their audio flowing."""
        configure_host_addresses(("127.0.0.1",))
        lateness = Lateness()
        host = WhipPublisher(space.whip_url, space.host_token, OpusToneTrack(HOST_HZ, lateness))
        token, whip = space.speakers[0]
        guest = WhipPublisher(whip, token, OpusToneTrack(GUEST_HZ, lateness))
        for pub in (host, guest):
            await pub.start()
            await pub.wait_connected()
        await asyncio.sleep(STAGE_SETTLE_S)
        return cls(host, guest, lateness)

    async def finish(self, t0: float, t1: float) -> dict[str, Any]:
        """Stop both; what each heard of the other over [t0, t1] (time.time()), overall and
        per second."""
        await asyncio.sleep(STAGE_SETTLE_S)  # the return audio of the window's end
        await self.host.stop()
        await self.guest.stop()
        out: dict[str, Any] = {
            "publisher_frames": self.lateness.frames,
            "publisher_late_frames": self.lateness.late,
        }
        for name, pub, freq in (
            ("guest_hears_host", self.guest, HOST_HZ),
            ("host_hears_guest", self.host, GUEST_HZ),
        ):
            seconds = [return_audio(pub, freq, t, t + 1.0) for t in np.arange(t0, t1 - 1.0, 1.0)]
            clean = [
                s
                for s in seconds
                if s.get("frames", 0) >= 0.95 * s.get("expected_frames", 50)
                and s.get("blocks_missing_tone", 1) == 0
                and s.get("arrival_gaps_over_60ms", 1) == 0
            ]
            out[name] = {
                **return_audio(pub, freq, t0, t1),
                "seconds": len(seconds),
                "clean_seconds": len(clean),
            }
        return out


def spawn_players(
    folder: Path, configs: list[dict[str, Any]], nice: int
) -> list[subprocess.Popen[bytes]]:
    """Start one `ruang_bench.player` process per config (its log and result in `folder`)."""
    procs = []
    for p, config in enumerate(configs):
        (folder / f"config-{p}.json").write_text(json.dumps(config))
        with open(folder / f"player-{p}.log", "wb") as log:
            procs.append(
                subprocess.Popen(
                    [
                        *(["nice", "-n", str(nice)] if nice else []),
                        sys.executable,
                        "-m",
                        "ruang_bench.player",
                        str(folder / f"config-{p}.json"),
                        str(folder / f"result-{p}.json"),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


def wait_all(procs: list[subprocess.Popen[bytes]], deadline: float) -> list[int]:
    """Wait for the generator processes; kill those still running at the deadline."""
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            proc.kill()
            codes.append(proc.wait())
    return codes


def _host_port(url: str) -> tuple[str, int]:
    u = httpx.URL(url)
    return u.host, u.port or (443 if u.scheme == "https" else 80)


# -- the report ----------------------------------------------------------------------------------
def _pcts(
    values: Sequence[float], qs: Sequence[float] = (50, 99), digits: int = 4
) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    a = np.asarray(values, dtype=np.float64)
    out: dict[str, Any] = {f"p{q:g}": round(float(np.percentile(a, q)), digits) for q in qs}
    out["max"] = round(float(a.max()), digits)
    out["mean"] = round(float(a.mean()), digits)
    out["n"] = int(a.size)
    return out


def fifo_check(rows: list[dict[str, float]]) -> dict[str, Any]:
    """Were listeners admitted in the order they arrived? Exact, from client-side times only:
    L certainly arrived before M when L's first join answer came back before M's first join
    was sent — counting only joins the server could number (a join answered 428, 429 or 503
    has not arrived yet: it must first pay its proof-of-work or come back later). A violation
    is a 202 given to L on a request sent after some such later M had
    its 200 back: the server let M in while L, ahead of M, still waited. (Exact with one
    delivery worker; each worker keeps its own line.) Also counts queue numbers handed out
    out of arrival order the same way."""

    def arrived(r: dict[str, float]) -> tuple[float, float]:
        if r.get("arrived_sent", -1.0) >= 0:
            return r["arrived_sent"], r["arrived_recv"]
        return r["first_sent"], r["first_recv"]

    admits = sorted(
        (r["admitted"], arrived(r)[0]) for r in rows if r["admitted"] >= 0 and arrived(r)[0] >= 0
    )
    admit_times = [a for a, _ in admits]
    prefix_max: list[float] = []
    best = -math.inf
    for _, first_sent in admits:
        best = max(best, first_sent)
        prefix_max.append(best)
    violations = 0
    waited = [r for r in rows if r["first_wait"] >= 0]
    for r in waited:
        k = bisect_left(admit_times, r["last_wait_sent"])  # admits received before that request
        if k > 0 and prefix_max[k - 1] > arrived(r)[1]:
            violations += 1
    numbered = sorted((r["queue_n"], *arrived(r)) for r in waited if r["queue_n"] >= 0)
    inversions = 0
    latest_sent = -math.inf  # among smaller numbers: the latest first request
    for _, first_sent, first_recv in numbered:
        if latest_sent > first_recv:  # someone who certainly came later got a smaller number
            inversions += 1
        latest_sent = max(latest_sent, first_sent)
    return {
        "waited": len(waited),
        "violations": violations,
        "queue_number_inversions": inversions,
        "rule": "no listener told to wait after a listener who arrived after it was admitted",
    }


def aggregate(
    results: list[dict[str, Any]], samples: list[dict[str, float]], duration_s: float
) -> dict[str, Any]:
    """Sum the generator processes' results into the report (without config and CPU)."""
    fields = results[0]["fields"]
    rows = [dict(zip(fields, r, strict=True)) for res in results for r in res["listeners"]]
    n_seconds = min(len(results[0]["counters"]["requests"]), math.ceil(duration_s))
    counters = {
        k: [sum(res["counters"][k][i] for res in results) for i in range(n_seconds)]
        for k in COUNTERS
    }
    gauges = {
        k: [sum(res["gauges"][k][i] for res in results) for i in range(n_seconds)]
        for k in ("joining", "waiting", "active", "stalled")
    }
    total = {k: sum(v) for k, v in counters.items()}
    error_kinds: dict[str, int] = {}
    for res in results:
        for k, v in res["error_kinds"].items():
            error_kinds[k] = error_kinds.get(k, 0) + v
    join_ms = [x for res in results for x in res["join_ms"]]
    pow_ms = [x for res in results for x in res.get("pow_ms", [])]
    connect_ms = [x for res in results for x in res["connect_ms"]]
    loop_lag = [x for res in results for x in res["loop_lag_ms"]]

    admitted = [r for r in rows if r["admitted"] >= 0]
    waited = [r for r in admitted if r["first_wait"] >= 0]
    still_waiting = [r for r in rows if r["admitted"] < 0 and r["first_wait"] >= 0]
    playing = [r for r in rows if r["play_start"] >= 0]
    ratios = [r["stall_s"] / r["played_s"] for r in playing if r["played_s"] > 0]
    parts_playing = sum(r["parts_on_time"] + r["parts_late"] for r in playing)
    on_time = sum(r["parts_on_time"] for r in playing)
    window = [i for i in range(n_seconds) if i < duration_s]
    req_series = [counters["requests"][i] for i in window]
    s5xx = total["s5xx"]

    server: dict[str, Any] = {}
    good = [s for s in samples if "error" not in s]
    if good:
        server = {
            "listeners_peak": max(s["listeners"] for s in good),
            "listeners_last": good[-1]["listeners"],
            "shed_requests": good[-1]["shed"] - good[0]["shed"],
            "pressure_level_max": max(s["pressure"] for s in good),
            "mixer_late_ticks": good[-1]["late_ticks"] - good[0]["late_ticks"],
            "metrics_failures": len(samples) - len(good),
        }
    by_second: dict[int, dict[str, float]] = {}
    for s in good:
        by_second.setdefault(int(s["t"]), s)

    timeline: dict[str, list[Any]] = {"t": list(range(n_seconds))}
    for k in ("arrivals", "admitted", "requests", "s5xx", "s503", "timeouts", "errors", "stalls"):
        timeline[k] = counters[k]
    for k in ("joining", "waiting", "active", "stalled"):
        timeline[k] = gauges[k]
    timeline["generator_loop_lag_ms"] = [
        max(res["gauges"]["loop_lag_ms"][i] for res in results) for i in range(n_seconds)
    ]
    timeline["server_listeners"] = [by_second.get(i, {}).get("listeners") for i in range(n_seconds)]
    timeline["server_pressure"] = [by_second.get(i, {}).get("pressure") for i in range(n_seconds)]

    return {
        "arrivals": len(rows),
        "not_started": sum(res["not_started"] for res in results),
        "joins": {
            "admitted": len(admitted),
            "never_admitted": len(rows) - len(admitted),
            "still_waiting_at_end": len(still_waiting),
            "join_latency_s": _pcts([r["admitted"] - r["first_sent"] for r in admitted]),
            "join_request_ms": _pcts(join_ms, digits=2),
            "pow_solved": len(pow_ms),
            "pow_solve_ms": _pcts(pow_ms, digits=2),
            "connect_ms": _pcts(connect_ms, digits=2),
            "attempts_max": max((int(r["join_attempts"]) for r in rows), default=0),
            "waited": len(waited),
            "waiting_room_s": _pcts([r["admitted"] - r["first_wait"] for r in waited]),
            "fifo": fifo_check(rows),
        },
        "playback": {
            "playing": len(playing),
            "startup_s": _pcts([r["play_start"] - r["admitted"] for r in playing]),
            "stall_ratio_mean": round(float(np.mean(ratios)), 6) if ratios else None,
            "stall_ratio_p99": round(float(np.percentile(ratios, 99)), 6) if ratios else None,
            "stall_ratio_max": round(max(ratios), 6) if ratios else None,
            "share_below_0_1pct": (
                round(sum(1 for x in ratios if x < STALL_GOOD) / len(ratios), 4) if ratios else None
            ),
            "stalls": int(sum(r["stalls"] for r in playing)),
            "stalled_s": round(sum(r["stall_s"] for r in playing), 3),
            "played_s": round(sum(r["played_s"] for r in playing), 3),
            "parts": parts_playing,
            "parts_on_time_share": round(on_time / parts_playing, 6) if parts_playing else None,
            "parts_before_play": int(sum(r["parts_before_play"] for r in playing)),
            "resyncs": int(sum(r["resyncs"] for r in rows)),
        },
        "requests": {
            "total": total["requests"],
            "per_s_mean": round(total["requests"] / duration_s, 1),
            "per_s_peak": max(req_series, default=0),
            "status_2xx": total["s2xx"],
            "status_202": total["s202"],
            "status_3xx": total["s3xx"],
            "status_4xx": total["s4xx"],
            "status_5xx": s5xx,
            "shed_503": total["s503"],
            "timeouts": total["timeouts"],
            "errors": total["errors"],
            "error_kinds": error_kinds,
            "mb_per_s": round(total["bytes"] / duration_s / 1e6, 3),
        },
        "generator": {
            "arrival_lag_s": _pcts([r["lag"] for r in rows]),
            "loop_lag_ms": _pcts(loop_lag, digits=2),
        },
        "server_metrics": server,
        "timeline": timeline,
    }


def summarize(result: dict[str, Any]) -> str:
    """The one-line summary."""
    c, j, p, q, cpu = (result[k] for k in ("config", "joins", "playback", "requests", "cpu"))

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f} %"

    gen, media = cpu.get("generator_cores", 0.0), cpu.get("server_media_cores", 0.0)
    workers = cpu.get("server_workers_cores", 0.0)
    lag = result["generator"]["loop_lag_ms"]
    others = result.get("machine_load", {}).get("others_cores", 0.0)
    jl = j["join_latency_s"]
    wr = j["waiting_room_s"]
    return (
        f"flood: {result['arrivals']} listeners over {c['ramp_s']:g} s ({c['shape']}) for "
        f"{c['duration_s']:g} s: admitted {j['admitted']}/{result['arrivals']} "
        f"(join p50 {1000 * jl.get('p50', 0):.0f} ms, p99 {1000 * jl.get('p99', 0):.0f} ms; "
        f"{j['waited']} waited, p99 {wr.get('p99', 0):.1f} s; FIFO violations "
        f"{j['fifo']['violations']}); stall ratio mean {pct(p['stall_ratio_mean'])}, "
        f"p99 {pct(p['stall_ratio_p99'])}, {pct(p['share_below_0_1pct'])} of listeners < 0.1 %; "
        f"parts on time {pct(p['parts_on_time_share'])}; {q['per_s_mean']:.0f} req/s "
        f"(peak {q['per_s_peak']}); 5xx {q['status_5xx']} (503 {q['shed_503']}), timeouts "
        f"{q['timeouts']}, errors {q['errors']}; CPU generator {gen:.2f} cores (loop lag p99 "
        f"{lag.get('p99', 0):.0f} ms), server {media + workers:.2f} (media {media:.2f}), "
        f"others on the machine {others:.2f}" + _stage_summary(result)
    )


def _stage_summary(result: dict[str, Any]) -> str:
    sp = result.get("speakers")
    if sp is None:
        return ""
    late = result.get("server", {}).get("mixer_late_ticks")
    each = ", ".join(
        f"{k.replace('_', ' ')}: {v['clean_seconds']}/{v['seconds']} clean seconds, "
        f"{v.get('blocks_missing_tone', '?')}/{v.get('blocks', '?')} blocks missing the tone"
        for k, v in sp.items()
        if isinstance(v, dict)
    )
    return f"; on stage: {each}" + ("" if late is None else f"; mixer late ticks {late}")


def plot(result: dict[str, Any], path: Path) -> str | None:
    """A PNG of the timeline; None when written, else why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no plot"
    tl = result["timeline"]
    t = tl["t"]
    fig, axes = plt.subplots(5, 1, figsize=(10, 13), sharex=True)
    ax = axes[0]
    ax.plot(t, tl["active"], label="active listeners")
    ax.plot(t, tl["waiting"], label="waiting (202)")
    ax.plot(t, tl["joining"], label="joining (answer pending or backing off)")
    if any(x is not None for x in tl["server_listeners"]):
        ax.plot(
            t,
            [np.nan if x is None else x for x in tl["server_listeners"]],
            "--",
            label="server: ruang_listeners",
        )
    ax.set_ylabel("listeners")
    ax.legend(loc="upper left")
    ax = axes[1]
    ax.bar(t, tl["arrivals"], width=0.8, alpha=0.5, label="arrivals/s")
    ax.plot(t, tl["admitted"], color="C2", label="admitted/s")
    ax.set_ylabel("per second")
    ax.legend(loc="upper left")
    ax = axes[2]
    ax.plot(t, tl["requests"], label="requests/s")
    ax.plot(t, tl["s5xx"], color="C3", label="5xx/s")
    ax.plot(t, tl["timeouts"], color="C4", label="timeouts/s")
    ax.set_ylabel("requests per second")
    ax.legend(loc="upper left")
    ax = axes[3]
    ax.bar(t, tl["stalls"], width=0.8, color="C3", alpha=0.6, label="stalls begun/s")
    ax.plot(t, tl["stalled"], color="C1", label="listeners stalled (sampled)")
    ax.set_ylabel("stalls")
    ax.legend(loc="upper left")
    ax = axes[4]
    ax.plot(t, tl["generator_loop_lag_ms"], color="C5", label="generator loop lag, worst (ms)")
    ax.set_ylabel("ms")
    ax.legend(loc="upper left")
    right = ax.twinx()
    pressure = [np.nan if x is None else x for x in tl["server_pressure"]]
    right.step(t, pressure, where="mid", color="C3", label="server pressure level")
    right.set_ylim(-0.1, 3.5)
    right.set_ylabel("pressure level")
    right.legend(loc="upper right")
    ax.set_xlabel("seconds since the first arrival")
    words, lines = summarize(result).split(" "), [""]
    for w in words:
        if len(lines[-1]) + len(w) > 150:
            lines.append("")
        lines[-1] += w + " "
    fig.suptitle("\n".join(lines), fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def run(args: argparse.Namespace) -> None:
    """Run the flood, print the JSON and the summary, write --out and --plot."""
    result, summary = asyncio.run(_flood(args))
    if args.plot:
        note = plot(result, args.plot)
        result["plot"] = note or str(args.plot)
    emit("flood", args, result, summary)
