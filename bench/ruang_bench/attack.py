"""`ruang bench attack`: labelled attack scenarios against a live space with a regular audience
and two speakers on stage, then `ruang report`'s verdict on each, against the ground truth.

Every run starts its own `ruang serve` (`--workers 1`, `--trusted-proxy 127.0.0.1/32` so that
the wrk floods can name their 127.a.b.c sources in X-Forwarded-For, `--joins-per-s 200` so that
a join flood at 10× the node's admission pace fits this machine, `--ticket-ttl 3600` so that the
audience's tickets outlive the run, `--pow-max-bits 14` because hundreds of simulated browsers
pay their proof-of-work on the same two cores as the server). A regular audience (LL-HLS
players, one or two per /24 in 127.1.0.0/16) arrives over 10 s and listens throughout; the first
scenario starts `--baseline-s` later, so that its networks are "known" (first seen more than a
minute before the incident). Scenarios then follow one another on the same server, `--attack-s`
each with `--gap-s` of calm between them (long enough for attack mode to leave);
`under_provisioned` gets a server of its own whose delivery worker runs under a CPU quota. Each
scenario's attackers and newcomers come from their own block of 127.0.0.0/8, so a network new in
one scenario is never the audience of another.

Afterwards `ruang report` judges the whole run once; each scenario is matched with the
incident window overlapping it most (windows that overlap none are reported as false
alarms). Per scenario: the verdict vs the truth, with confidence and reasons; the legitimate
listeners' on-time parts and stall ratio during the attack; both speakers' return audio,
second by second; the attackers' requests by answer; the server's CPU per refused request;
attack mode and proof-of-work difficulty from /metrics, once a second. Then the confusion
matrix. docs/BENCHMARKS.md ("Under attack") has the figures and bench/README.md the usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ruang_bench import attackers as atk
from ruang_bench.common import (
    BenchServer,
    CpuMeter,
    MachineLoad,
    Space,
    create_space,
    emit,
    fetch_metrics,
    start_server,
)
from ruang_bench.flood import GUEST_HZ, HOST_HZ, Stage, aggregate, spawn_players, wait_all
from ruang_bench.player import parse_live, solve_sliced
from ruang_bench.signals import return_audio

LEAD_S = 3.0  # from spawning a player process to its first arrival
AUDIENCE_RAMP_S = 10.0
SURGE_RAMP_S = 10.0
CPU_BASE_S = 10.0  # the server's CPU before each scenario, for the marginal cost
TAIL_S = 5.0  # after the last scenario, before the audience leaves
MAX_TOTAL_S = 1800.0  # hard cap on one group's timeline
ATTACK_TICKETS = 8  # tickets the ticketed floods got by joining (honestly, proof-of-work paid)
SHARED_ARGS = ("--trusted-proxy", "127.0.0.1/32", "--ticket-ttl", "3600")


@dataclass(frozen=True)
class Scenario:
    """One labelled scenario: what runs, and what the report should say."""

    name: str
    verdict: str
    kind: str | None
    what: str
    surge: bool = False  # legitimate newcomers arrive
    attack: str | None = None  # join, playlist, segment, cache_bust, forged, slowloris, bots
    small: bool = False  # on the under-provisioned server

    @property
    def label(self) -> str:
        """The expected label in the confusion matrix."""
        return label(self.verdict, self.kind)


SCENARIOS = (
    Scenario("organic_surge", "organic_surge", None,
             "newcomers, 60 % from the audience's networks, 40 % one per new /24", surge=True),
    Scenario("mixed", "mixed", "playlist_flood",
             "the organic surge with a ticketed playlist flood hidden in it", surge=True,
             attack="playlist"),
    Scenario("bot_listeners", "attack", "bot_listeners",
             "valid tickets, player pacing, 20 listeners per new /24", attack="bots"),
    Scenario("playlist_flood", "attack", "playlist_flood",
             "ticketed live.m3u8 from 200 sources far beyond player pace", attack="playlist"),
    Scenario("segment_flood", "attack", "segment_flood",
             "ticketed parts and segments from 200 sources", attack="segment"),
    Scenario("cache_busting", "attack", "cache_busting",
             "random query strings and file names on ticketed URLs", attack="cache_bust"),
    Scenario("forged_tickets", "attack", "forged_tickets",
             "random and tampered tickets on playlists and parts", attack="forged"),
    Scenario("slowloris", "attack", "slowloris",
             "connections trickling their headers, one line every 3 s", attack="slowloris"),
    Scenario("join_flood", "attack", "join_flood",
             "POST join without proof-of-work at 10x the node's admission pace", attack="join"),
    Scenario("under_provisioned", "capacity_failure", None,
             "the organic surge against a node whose worker has a small CPU quota", surge=True,
             small=True),
)  # fmt: skip
BY_NAME = {s.name: s for s in SCENARIOS}


def label(verdict: str | None, kind: str | None) -> str:
    """A verdict as one label: attack/KIND, or the verdict alone ('no incident' for None)."""
    if verdict is None:
        return "no incident"
    return f"attack/{kind}" if verdict == "attack" else verdict


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `ruang bench attack`."""
    p.add_argument(
        "--scenario",
        default="all",
        help=f"'all' or comma-separated names: {', '.join(BY_NAME)}",
    )
    p.add_argument("--baseline-s", type=float, default=90.0,
                   help="the audience listens this long before the first scenario (≥ 70 makes "
                   "its networks 'known'; its arrival is an incident of up to 60 s)")  # fmt: skip
    p.add_argument("--attack-s", type=float, default=20.0, help="length of each scenario")
    p.add_argument(
        "--gap-s",
        type=float,
        default=45.0,
        help="calm between scenarios (attack mode leaves ≥ 60 s after entering)",
    )
    p.add_argument("--audience", type=int, default=120, help="the regular audience")
    p.add_argument("--surge", type=int, default=300, help="legitimate newcomers in a surge")
    p.add_argument("--bots", type=int, default=240, help="bot listeners (20 per /24)")
    p.add_argument(
        "--pow-max-bits",
        type=int,
        default=14,
        help="the servers' proof-of-work ceiling: every simulated browser pays it "
        "on this machine's CPU, beside the server (a real one pays on its own)",
    )
    p.add_argument(
        "--joins-per-s",
        type=float,
        default=200.0,
        help="the shared server's admission pace (the join flood offers 10x)",
    )
    p.add_argument(
        "--flood-rps",
        type=float,
        default=10_000.0,
        help="offered rate of the playlist, segment, cache-busting and forged floods",
    )
    p.add_argument("--slow-connections", type=int, default=3000, help="slowloris connections")
    p.add_argument(
        "--worker-cpu",
        type=float,
        default=0.15,
        help="under_provisioned: share of a core its delivery worker may use",
    )
    p.add_argument(
        "--speakers",
        type=int,
        choices=(0, 2),
        default=2,
        help="2: host and guest on stage (sendrecv WHIP tones) for the whole run",
    )
    p.add_argument("--workers", type=int, default=1, help="delivery workers of each server")
    p.add_argument("--keep", type=Path, help="keep data, reports and logs in this folder")
    p.add_argument("--out", type=Path, help="also write the JSON result to this file")


# -- one group: a server, an audience, scenarios in turn ----------------------------------------
@dataclass
class Poll:
    """/metrics once a second: attack mode, proof-of-work, shedding, listeners (wall time)."""

    rows: list[dict[str, float]] = field(default_factory=list)

    async def run(self, server: BenchServer) -> None:
        while True:
            began = time.monotonic()
            with contextlib.suppress(httpx.HTTPError, RuntimeError, OSError):
                m = await fetch_metrics(server)
                top = {
                    k: max(m.get(k, {}).values(), default=0.0)
                    for k in ("ruang_attack_mode", "ruang_pow_difficulty", "ruang_pressure_level")
                }
                self.rows.append(
                    {
                        "t": round(time.time(), 2),
                        "attack_mode": top["ruang_attack_mode"],
                        "pow": top["ruang_pow_difficulty"],
                        "pressure": top["ruang_pressure_level"],
                        "listeners": sum(m.get("ruang_listeners", {}).values()),
                        "rate_limited": sum(m.get("ruang_rate_limited_requests", {}).values()),
                        "shed": sum(m.get("ruang_shed_requests", {}).values()),
                    }
                )
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - began)))


@dataclass
class Running:
    """A scenario under way: its processes and meters."""

    scenario: Scenario
    start: float  # time.monotonic() of its start
    wall: float = 0.0  # time.time() of its start
    procs: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)
    floods: list[atk.Flood] = field(default_factory=list)
    slow: subprocess.Popen[bytes] | None = None
    result: dict[str, Any] = field(default_factory=dict)


def _player_config(
    server: BenchServer, space: str, t0: float, duration_s: float, who: list[tuple[float, str]]
) -> dict[str, Any]:
    host, port = server.url.split("://", 1)[1].rsplit(":", 1)
    return {
        "host": host,
        "port": int(port),
        "space": space,
        "t0": t0,
        "duration_s": duration_s,
        "start_buffer_s": 1.5,
        "timeout_s": 10.0,
        "pipeline": False,
        "listeners": [[i, at, src] for i, (at, src) in enumerate(who)],
    }


def _split(configs: dict[str, Any], processes: int) -> list[dict[str, Any]]:
    every = configs["listeners"]
    return [{**configs, "listeners": every[p::processes]} for p in range(processes)]


async def _join_as(api: httpx.AsyncClient, space: str, source: str) -> str:
    """A ticket for `source` (named in X-Forwarded-For), proof-of-work paid when asked."""
    body: dict[str, Any] = {}
    for _ in range(20):
        r = await api.post(f"/api/spaces/{space}/join", json=body,
                           headers={"X-Forwarded-For": source})  # fmt: skip
        if r.status_code == 200:
            return str(r.json()["ticket"])
        if r.status_code == 428:
            pow_ = r.json()["pow"]
            nonce = await solve_sliced(str(pow_["challenge"]), int(pow_["difficulty"]))
            body = {"pow": {"challenge": pow_["challenge"], "nonce": nonce}}
            continue
        if r.status_code == 202:
            body = {"queue": r.json().get("queue")}
        await asyncio.sleep(float(r.headers.get("retry-after", "1")))
    raise RuntimeError(f"could not join as {source}: {r.status_code} {r.text[:200]}")


async def _media_names(api: httpx.AsyncClient, space: str, ticket: str) -> list[str]:
    """Names of parts (live playlist) and segments (replay) that exist now."""
    base = f"/hls/{space}/t/{ticket}/"
    live = (await api.get(base + "live.m3u8")).content
    parts = [uri for _, uri, _ in parse_live(live)[0]]
    replay = (await api.get(base + "replay.m3u8")).text
    segments = [x for x in replay.splitlines() if x and not x.startswith("#")]
    return parts + segments[-200:]


class Group:
    """One server with its regular audience, two speakers, and a series of scenarios."""

    def __init__(self, args: argparse.Namespace, scenarios: list[Scenario], folder: Path) -> None:
        self.args, self.scenarios, self.folder = args, scenarios, folder
        self.small = scenarios[0].small
        self.period = args.attack_s + args.gap_s
        self.total_s = args.baseline_s + len(scenarios) * self.period - args.gap_s + TAIL_S
        if self.total_s > MAX_TOTAL_S:
            raise SystemExit(
                f"one server's timeline would last {self.total_s:.0f} s (cap {MAX_TOTAL_S:.0f} s)"
            )
        self.poll = Poll()

    def server_args(self) -> list[str]:
        extra = [*SHARED_ARGS, "--pow-max-bits", str(self.args.pow_max_bits)]
        if not self.small:
            extra += ["--joins-per-s", f"{self.args.joins_per_s:g}"]
        return extra

    async def run(self) -> dict[str, Any]:
        args = self.args
        data = self.folder / "data"
        server = await asyncio.to_thread(start_server, data, args.workers, None, self.server_args())
        stage: Stage | None = None
        throttle: subprocess.Popen[bytes] | None = None
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=20, verify=False) as api:
                space = await create_space(api, "attack", speakers=1 if args.speakers else 0)
                if args.speakers:
                    stage = await Stage.start(space)
                    with contextlib.suppress(PermissionError, OSError):  # as bench flood does
                        policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
                        os.sched_setscheduler(0, policy, os.sched_param(3))
                out = await self._timeline(server, api, space)
            workers = server.worker_pids()
            if self.small:
                throttle = out.pop("throttle")
                await asyncio.to_thread(atk.stop_throttle, throttle, workers)
            if stage is not None:
                whole = await stage.finish(out["wall0"], out["wall1"])
                out["speakers_whole_run"] = whole
                for r in out["scenarios"]:
                    r["speakers"] = _speakers(stage, r["start"], r["start"] + args.attack_s)
            report = await asyncio.to_thread(self._report, data)
            out["report"] = {k: report[k] for k in ("verified", "problems", "chains", "range")}
            arrival = out["wall0"] + AUDIENCE_RAMP_S + 5  # windows opened by then: the arrival
            out["spurious_incidents"] = _judge(out["scenarios"], report, args.attack_s, arrival)
            return out
        finally:
            if throttle is not None:
                atk.stop_throttle(throttle, server.worker_pids())
            await asyncio.to_thread(server.stop)

    def _report(self, data: Path) -> dict[str, Any]:
        out = self.folder / "report"
        proc = subprocess.run(
            [sys.executable, "-m", "ruang.cli", "report", "--data-dir", str(data), "--out",
             str(out)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        (self.folder / "report.log").write_text(proc.stdout + proc.stderr)
        if not (out / "report.json").exists():
            raise RuntimeError(f"ruang report failed ({proc.returncode}): {proc.stderr[-1500:]}")
        doc: dict[str, Any] = json.loads((out / "report.json").read_text())
        return doc

    async def _timeline(
        self, server: BenchServer, api: httpx.AsyncClient, space: Space
    ) -> dict[str, Any]:
        args = self.args
        t0 = time.monotonic() + LEAD_S
        audience = [
            (AUDIENCE_RAMP_S * i / args.audience, atk.audience_address(i))
            for i in range(args.audience)
        ]
        aud_dir = self.folder / "audience"
        aud_dir.mkdir(parents=True, exist_ok=True)
        config = _player_config(server, space.id, t0, self.total_s, audience)
        aud_procs = spawn_players(aud_dir, _split(config, 1), 0)
        out: dict[str, Any] = {"server": server.url, "space": space.id, "scenarios": []}
        if self.small:
            out["throttle"] = atk.start_throttle(
                server.worker_pids(), args.worker_cpu, self.total_s + 60
            )
        poller = asyncio.create_task(self.poll.run(server))
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        out["wall0"] = time.time()
        runs = []
        for k, sc in enumerate(self.scenarios):
            start = t0 + args.baseline_s + k * self.period
            runs.append(await self._scenario(server, api, space, sc, start, k, t0))
        await asyncio.sleep(max(0.0, t0 + self.total_s - time.monotonic()))
        out["wall1"] = time.time()
        codes = await asyncio.to_thread(wait_all, aud_procs, t0 + self.total_s + 60)
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        if codes[0] != 0:
            log = (aud_dir / "player-0.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the audience's player process failed ({codes[0]}): {log}")
        aud = json.loads((aud_dir / "result-0.json").read_text())
        out["audience"] = aggregate([aud], [], self.total_s)["playback"]
        for run in runs:
            i0 = int(run.start - t0)
            run.result["legit"]["audience"] = _window(aud, i0, i0 + int(args.attack_s) + 5)
            run.result["attack_mode"], run.result["pow_difficulty"] = self._guard_timeline(
                run.wall, run.wall + self.period
            )
            out["scenarios"].append(run.result)
        out["metrics"] = self.poll.rows
        return out

    def _guard_timeline(self, a: float, b: float) -> tuple[dict[str, Any], list[list[float]]]:
        """Attack mode entered/left and the proof-of-work difficulty's changes, from /metrics,
        in seconds from the scenario's start (a = its start, b = the next one's)."""
        rows = [r for r in self.poll.rows if a - 5 <= r["t"] < b]
        before = next((r["attack_mode"] for r in rows if r["t"] >= a - 5), 0.0)
        entered = left = None
        on = bool(before)
        for r in self.poll.rows:  # each change from the scenario's start on (left: even later)
            if r["t"] < a or (entered is None and r["t"] >= b):
                continue
            if not on and r["attack_mode"] > 0 and entered is None:
                entered, on = round(r["t"] - a, 1), True
            elif on and r["attack_mode"] == 0:
                left = round(r["t"] - a, 1)
                break
        changes: list[list[float]] = []
        for r in rows:
            if not changes or changes[-1][1] != r["pow"]:
                changes.append([round(r["t"] - a, 1), r["pow"]])
        mode = {"on_at_start": bool(before), "entered_s": entered, "left_s": left}
        return mode, changes

    async def _scenario(
        self, server: BenchServer, api: httpx.AsyncClient, space: Space, sc: Scenario,
        start: float, k: int, t0: float,
    ) -> Running:  # fmt: skip
        """Prepare just before `start`, run for --attack-s, measure."""
        args = self.args
        run = Running(sc, start)
        folder = self.folder / sc.name
        folder.mkdir(parents=True, exist_ok=True)
        block = 20 + 20 * k  # this scenario's own 127.block.0.0 - 127.(block+19).255.255
        await asyncio.sleep(max(0.0, start - LEAD_S - 4.0 - time.monotonic()))
        newcomers: list[tuple[float, str]] = []
        if sc.surge:
            n_known = round(0.6 * args.surge)
            for i in range(args.surge):
                src = (
                    atk.known_network_address(i, 10 + 3 * k)
                    if i < n_known
                    else atk.spread_address(block, i - n_known)
                )
                newcomers.append((0.0, src))
            order = np.random.default_rng(k).permutation(len(newcomers))
            newcomers = [(SURGE_RAMP_S * j / len(newcomers), newcomers[i][1])
                         for j, i in enumerate(order)]  # fmt: skip
        if sc.attack == "bots":
            bots = [(8.0 * i / args.bots, atk.packed_address(block + 5, i, 20))
                    for i in range(args.bots)]  # fmt: skip
            self._spawn(run, folder / "bots", server, space, start, bots)
        if newcomers:
            self._spawn(run, folder / "surge", server, space, start, newcomers)
        scripts = await self._prepare(server, api, space, sc, block, folder)
        meter = CpuMeter({"workers": server.worker_pids(),
                          "media": server.media_pids()})  # fmt: skip
        await asyncio.sleep(max(0.0, start - CPU_BASE_S - time.monotonic()))
        meter.start()
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        base_cpu = meter.read()
        meter.start()
        load = MachineLoad()
        load.start()
        run.wall = time.time()
        for name, script, conns in scripts:
            run.floods.append(atk.start_wrk(name, server.url, script, folder, args.attack_s, conns))
        if sc.attack == "slowloris":
            host, port = server.url.split("://", 1)[1].rsplit(":", 1)
            run.slow = atk.start_slowloris(folder, {
                "host": host, "port": int(port), "duration_s": args.attack_s, "trickle_s": 3.0,
                "connections": args.slow_connections, "path": f"/hls/{space.id}/live.m3u8",
                "sources": [atk.spread_address(block, i) for i in range(1000)],
            })  # fmt: skip
        await asyncio.sleep(max(0.0, start + args.attack_s - time.monotonic()))
        cpu, machine = meter.read(), load.read()
        attackers = [await asyncio.to_thread(f.result) for f in run.floods]
        if run.slow is not None:
            await asyncio.to_thread(wait_all, [run.slow], time.monotonic() + 15)
            path = folder / "slowloris.json"
            attackers.append(json.loads(path.read_text()) if path.exists() else {"error": "none"})
        legit: dict[str, Any] = {}
        for name in ("surge", "bots"):
            results = await asyncio.to_thread(self._collect, folder / name, run, start)
            if results:
                agg = aggregate(results, [], args.attack_s)
                legit[name] = {"joins": _joins(agg), "playback": agg["playback"]}
        if "bots" in legit:
            attackers.append({"tool": "player processes (bots)", **legit.pop("bots")})
        run.result = {
            "scenario": sc.name,
            "what": sc.what,
            "expected": {"verdict": sc.verdict, "kind": sc.kind, "label": sc.label},
            "start": round(run.wall, 2),
            "attack_s": args.attack_s,
            "attackers": attackers,
            "server_cpu": _cpu_cost(base_cpu, cpu, attackers),
            "machine_load": machine,
            "legit": legit,
        }
        return run

    def _spawn(
        self, run: Running, folder: Path, server: BenchServer, space: Space, start: float,
        who: list[tuple[float, str]],
    ) -> None:  # fmt: skip
        folder.mkdir(parents=True, exist_ok=True)
        config = _player_config(server, space.id, start, self.args.attack_s, who)
        procs = spawn_players(folder, _split(config, 2 if len(who) > 300 else 1), 0)
        run.procs[folder.name] = procs

    def _collect(self, folder: Path, run: Running, start: float) -> list[dict[str, Any]]:
        procs = run.procs.get(folder.name, [])
        if not procs:
            return []
        codes = wait_all(procs, start + self.args.attack_s + 30)
        out = []
        for p, code in enumerate(codes):
            path = folder / f"result-{p}.json"
            if code != 0 or not path.exists():
                log = (folder / f"player-{p}.log").read_text(errors="replace")[-1500:]
                raise RuntimeError(f"player process {folder.name}-{p} failed ({code}): {log}")
            out.append(json.loads(path.read_text()))
        return out

    async def _prepare(
        self, server: BenchServer, api: httpx.AsyncClient, space: Space, sc: Scenario,
        block: int, folder: Path,
    ) -> list[tuple[str, str, int]]:  # fmt: skip
        """The wrk scripts of this scenario's floods: (name, Lua, connections)."""
        args, sid = self.args, space.id
        if sc.attack not in ("join", "playlist", "segment", "cache_bust", "forged"):
            return []
        if sc.attack == "join":
            # 250 sources, 10 per /24: 8 joins/s each at 2000/s, over the 5/s per address
            sources = [atk.packed_address(block + 10, i, 10) for i in range(250)]
            rate = 10 * args.joins_per_s
            lua = atk.wrk_script([f"/api/spaces/{sid}/join"], sources, "POST", "{}", rate, 64)
            return [("join_flood", lua, 64)]
        tickets = [
            await _join_as(api, sid, atk.spread_address(block + 15, i))
            for i in range(ATTACK_TICKETS)
        ]
        names = await _media_names(api, sid, tickets[0])
        sources = [atk.spread_address(block + 10, i) for i in range(200)]
        rate, conns = args.flood_rps, 128
        if sc.attack == "playlist":
            paths = [f"/hls/{sid}/t/{t}/live.m3u8" for t in tickets]
        elif sc.attack == "segment":
            paths = [f"/hls/{sid}/t/{t}/{n}" for t in tickets for n in names]
        elif sc.attack == "cache_bust":
            sources = [atk.spread_address(block + 10, i) for i in range(500)]
            paths = atk.cache_bust_paths(sid, tickets, names, 5000)
        else:
            sources = [atk.spread_address(block + 10, i) for i in range(500)]
            forged = atk.forged_tickets(tickets, 2500)
            paths = [f"/hls/{sid}/t/{f}/{'live.m3u8' if i % 2 else names[i % len(names)]}"
                     for i, f in enumerate(forged)]  # fmt: skip
        (folder / "paths.txt").write_text("\n".join(paths[:50]) + "\n")
        return [(f"{sc.name}-wrk", atk.wrk_script(paths, sources, "GET", None, rate, conns), conns)]


# -- measures -------------------------------------------------------------------------------
def _window(result: dict[str, Any], i0: int, i1: int) -> dict[str, Any]:
    """The regular audience over seconds [i0, i1) of its run: parts on time, stalls."""
    c, g = result["counters"], result["gauges"]
    i1 = min(i1, len(c["parts"]))
    parts = sum(c["parts"][i0:i1])
    late = sum(c["parts_late"][i0:i1])
    active = sum(g["active"][i0:i1])
    stalled = sum(g["stalled"][i0:i1])
    return {
        "seconds": i1 - i0,
        "parts": parts,
        "parts_late": late,
        "on_time_share": round(1 - late / parts, 5) if parts else None,
        "stalls_begun": sum(c["stalls"][i0:i1]),
        "stall_ratio_sampled": round(stalled / active, 5) if active else None,
        "timeouts": sum(c["timeouts"][i0:i1]),
        "errors": sum(c["errors"][i0:i1]),
        "s5xx": sum(c["s5xx"][i0:i1]),
        "s4xx": sum(c["s4xx"][i0:i1]),
    }


def _joins(agg: dict[str, Any]) -> dict[str, Any]:
    j = agg["joins"]
    return {
        "arrivals": agg["arrivals"],
        "admitted": j["admitted"],
        "waited": j["waited"],
        "join_latency_s": j["join_latency_s"],
        "pow_solved": j["pow_solved"],
        "pow_solve_ms": j["pow_solve_ms"],
        "requests": {k: v for k, v in agg["requests"].items() if k != "error_kinds"},
        "error_kinds": agg["requests"]["error_kinds"],
    }


def _cpu_cost(
    base: dict[str, float], during: dict[str, float], attackers: list[dict[str, Any]]
) -> dict[str, Any]:
    """Server CPU during the attack, and per refused / per attack request: the workers' CPU
    over the attack (and the same minus the 10 s before it, scaled) divided by the count."""
    wall = during["wall_s"]
    cpu_s = during["workers_cores"] * wall
    extra_s = max(0.0, (during["workers_cores"] - base["workers_cores"]) * wall)
    refused = sum(int(a.get("refused", 0)) + int(a.get("hung_up_by_server", 0)) for a in attackers)
    answered = sum(int(a.get("answered", 0)) for a in attackers)
    out: dict[str, Any] = {
        "workers_cores_before": base["workers_cores"],
        "workers_cores_during": during["workers_cores"],
        "workers_cpu_wait_during": during.get("workers_cpu_wait"),
        "media_cores_during": during.get("media_cores"),
        "media_cpu_wait_during": during.get("media_cpu_wait"),
        "machine_cores_busy": during["machine_cores_busy"],
        "attack_requests_answered": answered,
        "refused": refused,
    }
    if refused:
        out["us_per_refused"] = round(1e6 * cpu_s / refused, 1)
        out["us_per_refused_marginal"] = round(1e6 * extra_s / refused, 1)
    if answered:
        out["us_per_attack_request_marginal"] = round(1e6 * extra_s / answered, 1)
    return out


def _speakers(stage: Stage, a: float, b: float) -> dict[str, Any]:
    """Each speaker's return audio over [a, b] (time.time()), second by second."""
    out: dict[str, Any] = {}
    for name, pub, freq in (("guest_hears_host", stage.guest, HOST_HZ),
                            ("host_hears_guest", stage.host, GUEST_HZ)):  # fmt: skip
        seconds = [return_audio(pub, freq, t, t + 1.0) for t in np.arange(a, b - 0.5, 1.0)]
        clean = [
            s for s in seconds
            if s.get("frames", 0) >= 0.95 * s.get("expected_frames", 50)
            and s.get("blocks_missing_tone", 1) == 0 and s.get("arrival_gaps_over_60ms", 1) == 0
        ]  # fmt: skip
        out[name] = {
            "seconds": len(seconds),
            "clean_seconds": len(clean),
            "blocks_missing_tone": sum(int(s.get("blocks_missing_tone", 0)) for s in seconds),
            "blocks": sum(int(s.get("blocks", 0)) for s in seconds),
            "max_arrival_gap_ms": max(
                (s.get("max_arrival_gap_ms", 0) for s in seconds), default=None
            ),  # fmt: skip
        }
    return out


def _judge(
    results: list[dict[str, Any]], report: dict[str, Any], attack_s: float, first: float
) -> list[dict[str, Any]]:
    """Match each scenario with the incident overlapping it most; the others are returned,
    marked as the audience's arrival (opened before `first`) or as false alarms."""
    incidents = report.get("incidents", [])
    used: set[int] = set()
    for r in results:
        a, b = r["start"], r["start"] + attack_s
        best, overlap = None, 0.0
        for inc in incidents:
            o = min(b, inc["end"] + 1) - max(a, inc["start"])
            if o > overlap:
                best, overlap = inc, o
        if best is None:
            r["got"] = {"verdict": None, "kind": None, "label": "no incident"}
        else:
            used.add(best["id"])
            f = best["features"]
            r["got"] = {
                "label": label(best["verdict"], best["kind"]),
                **{k: best[k] for k in ("verdict", "kind", "kinds", "confidence",
                                        "confidence_word", "reasons", "weak_signs", "scores")},
                "incident": best["id"],
                "window_s": [round(best["start"] - a), round(best["end"] - a)],
                "features": {k: f.get(k) for k in (
                    "rps", "join_ps", "playlist_ps", "media_ps", "lis_ps", "lis_known_ps",
                    "lis_new_ps", "lis_packed_ps", "paced_share", "conversion", "new_net_share",
                    "regularity", "fail_ps", "lag_max_s", "shed_level_max", "attack_mode_s",
                    "groups")},
            }  # fmt: skip
        r["right"] = r["got"]["label"] == r["expected"]["label"]
        if r["expected"]["verdict"] == "mixed":
            r["kind_right"] = r["got"].get("kind") == r["expected"]["kind"]
        r["pow_bits_max"] = max((b_ for _, b_ in r.get("pow_difficulty", [])), default=0)
    return [
        {k: inc[k] for k in ("id", "start", "end", "verdict", "kind", "confidence")}
        | {"during": "the audience's arrival" if inc["start"] < first else "calm (false alarm)"}
        for inc in incidents
        if inc["id"] not in used
    ]


# -- the whole run ------------------------------------------------------------------------------
def confusion(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Expected label × reported label, counts."""
    rows = sorted({r["expected"]["label"] for r in results})
    cols = sorted({r["got"]["label"] for r in results} | set(rows))
    matrix = {e: {g: 0 for g in cols} for e in rows}
    for r in results:
        matrix[r["expected"]["label"]][r["got"]["label"]] += 1
    right = sum(1 for r in results if r["right"])
    return {"labels": cols, "matrix": matrix, "right": right, "total": len(results)}


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def line(r: dict[str, Any]) -> str:
    """One scenario in one line."""
    got, legit, cpu = r["got"], r["legit"], r["server_cpu"]
    aud = legit.get("audience", {})
    sent = sum(int(a.get("sent", a.get("opened", 0)) or 0) for a in r["attackers"])
    refused = cpu["refused"]
    sp = r.get("speakers", {})
    speakers = ", ".join(f"{v['clean_seconds']}/{v['seconds']}" for v in sp.values())
    surge = legit.get("surge", {}).get("playback", {})
    mode = r.get("attack_mode", {})
    return (
        f"{r['scenario']}: {'RIGHT' if r['right'] else 'WRONG'} — expected "
        f"{r['expected']['label']}, got {got['label']}"
        + (f" ({got['confidence']:.2f} {got['confidence_word']})" if got.get("verdict") else "")
        + f"; audience parts on time {_pct(aud.get('on_time_share'))}, stall "
        f"{_pct(aud.get('stall_ratio_sampled'))}"
        + (f"; newcomers on time {_pct(surge.get('parts_on_time_share'))}" if surge else "")
        + f"; attack requests {sent}, refused {refused}"
        + (
            f" ({cpu['us_per_refused_marginal']:.0f} µs server CPU each)"
            if "us_per_refused_marginal" in cpu
            else ""
        )  # fmt: skip
        + (f"; speakers clean s {speakers}" if speakers else "")
        + f"; attack mode {'on at' if mode.get('entered_s') is not None else 'off'}"
        + (f" {mode['entered_s']:g} s" if mode.get("entered_s") is not None else "")
        + f"; PoW max {r.get('pow_bits_max', 0):g} bits"
        + f"; others {r['machine_load'].get('others_cores', 0):.2f} cores"
    )


async def _run_all(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    names = list(BY_NAME) if args.scenario == "all" else args.scenario.split(",")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(BY_NAME)}")
    chosen = [s for s in SCENARIOS if s.name in names]  # canonical order
    groups = [g for g in ([s for s in chosen if not s.small], [s for s in chosen if s.small]) if g]
    began = time.time()
    out: dict[str, Any] = {"groups": [], "scenarios": [], "spurious_incidents": []}
    for n, scenarios in enumerate(groups):
        sub = folder / f"group{n}"
        g = await Group(args, scenarios, sub).run()
        out["spurious_incidents"] += g.pop("spurious_incidents")
        for r in g.pop("scenarios"):
            out["scenarios"].append(r)
            print(line(r), file=sys.stderr, flush=True)
        out["groups"].append({**{k: v for k, v in g.items() if k != "metrics"},
                              "metrics_tail": g["metrics"][-3:]})  # fmt: skip
        (sub / "metrics.json").write_text(json.dumps(g["metrics"]))
    out["confusion"] = confusion(out["scenarios"])
    out["wall_s"] = round(time.time() - began, 1)
    out["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in ("func",)}  # fmt: skip
    return out


def run(args: argparse.Namespace) -> None:
    """Run the scenarios, print the JSON and one line each plus the matrix; write --out."""
    if args.attack_s <= 0 or args.baseline_s < 5 or args.gap_s < 0:
        raise SystemExit("--attack-s must be positive, --baseline-s ≥ 5, --gap-s ≥ 0")
    for name, value, cap in (("--audience", args.audience, 2000), ("--surge", args.surge, 3000),
                             ("--bots", args.bots, 3000),
                             ("--slow-connections", args.slow_connections, 15000)):  # fmt: skip
        if not 1 <= value <= cap:
            raise SystemExit(f"{name} must be within 1..{cap}")
    with contextlib.ExitStack() as stack:
        if args.keep:
            folder = args.keep
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ruang-atk-")))
        result = asyncio.run(_run_all(args, folder))
    c = result["confusion"]
    false_alarms = [i for i in result["spurious_incidents"] if i["during"].startswith("calm")]
    summary = "\n".join(line(r) for r in result["scenarios"]) + (
        f"\nattack: {c['right']}/{c['total']} verdicts right; "
        f"{len(false_alarms)} incident(s) in the calm between scenarios; "
        f"{result['wall_s']:.0f} s"
    )
    emit("attack", args, result, summary)


def matrix_markdown(c: dict[str, Any]) -> str:
    """The confusion matrix as a Markdown table (rows: truth, columns: the report's verdict)."""
    cols = c["labels"]
    head = "| truth \\ report | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    rows = "".join(
        f"| {e} | " + " | ".join(str(c["matrix"][e][g] or "·") for g in cols) + " |\n"
        for e in c["matrix"]
    )
    return head + rows


def table_markdown(result: dict[str, Any]) -> str:
    """The per-scenario figures as a Markdown table (for docs/BENCHMARKS.md)."""
    head = (
        "| scenario | truth | report (confidence) | attackers: sent (/s) → 2xx / refused by "
        "status | worker CPU cores before → during; µs per refused | audience parts on time, "
        "stall | newcomers on time | speakers clean s (guest, host); blocks missing tone | "
        "attack mode on → off (s) | PoW bits | others' cores |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for r in result["scenarios"]:
        got, cpu, aud = r["got"], r["server_cpu"], r["legit"].get("audience", {})
        conf = f" ({got['confidence']:.2f})" if got.get("verdict") else ""
        mark = "✔" if r["right"] else "✘"
        attackers = []
        for a in r["attackers"]:
            if "status" in a:
                refused = ", ".join(f"{k}: {v:,}" for k, v in a["status"].items() if k[0] != "2")
                attackers.append(f"{a['sent']:,} ({a['sent_per_s']:,.0f}/s) → {a['ok_2xx']:,} / "
                                 f"{refused or '0'}")  # fmt: skip
            elif "opened" in a:
                attackers.append(f"{a['opened']:,} connections ({a['connections']:,} held) → "
                                 f"{a['hung_up_by_server']:,} hung up by the server after "
                                 f"{a['held_s_p50']} s (p50)")  # fmt: skip
            elif "joins" in a:
                j = a["joins"]
                attackers.append(f"{j['arrivals']} bots, {j['admitted']} admitted, "
                                 f"{j['requests']['total']:,} requests")  # fmt: skip
        us = cpu.get("us_per_refused_marginal")
        per = cpu.get("us_per_attack_request_marginal")
        cost = (f"; {us:.0f} µs" if us is not None else
                f"; {per:.0f} µs per answered" if per is not None else "")  # fmt: skip
        surge = r["legit"].get("surge", {}).get("playback", {})
        sp = r.get("speakers", {})
        speakers = (
            f"{sp['guest_hears_host']['clean_seconds']}/{sp['guest_hears_host']['seconds']}, "
            f"{sp['host_hears_guest']['clean_seconds']}/{sp['host_hears_guest']['seconds']}; "
            f"{sp['guest_hears_host']['blocks_missing_tone']} + "
            f"{sp['host_hears_guest']['blocks_missing_tone']}"
            if sp
            else "–"
        )
        mode = r.get("attack_mode", {})
        on = mode.get("entered_s")
        mode_s = "off" if on is None else f"{on:g} → {mode.get('left_s') or '…'}"
        if mode.get("on_at_start"):
            mode_s = "on already; " + mode_s
        pow_s = " → ".join(f"{b:g}" for _, b in r.get("pow_difficulty", [])) or "0"
        rows.append(
            f"| {r['scenario']} | {r['expected']['label']} | {mark} {got['label']}{conf} | "
            f"{'; '.join(attackers) or '–'} | {cpu['workers_cores_before']:.2f} → "
            f"{cpu['workers_cores_during']:.2f}{cost} | {_pct(aud.get('on_time_share'))}, "
            f"{_pct(aud.get('stall_ratio_sampled'))} | {_pct(surge.get('parts_on_time_share'))} | "
            f"{speakers} | {mode_s} | {pow_s} | {r['machine_load'].get('others_cores', 0):.2f} |"
        )
    return head + "\n".join(rows) + "\n"
