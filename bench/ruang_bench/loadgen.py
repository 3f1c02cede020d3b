"""Listener load with wrk: a Lua script alternating live playlist and part requests, as LL-HLS
listeners do (one playlist reload per part), with a JSON summary printed by wrk itself."""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx

from ruang_bench.common import need
from ruang_bench.llhls import parse_playlist

_LUA = """-- written by ruang bench: alternate the live playlist and existing parts
local playlist = "%(playlist)s"
local parts = { %(parts)s }
local n = 0
request = function()
  n = n + 1
  if n %% 2 == 1 then
    return wrk.format("GET", playlist)
  end
  return wrk.format("GET", parts[(n / 2) %% #parts + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect_errors":%%d,' ..
    '"read_errors":%%d,"write_errors":%%d,"status_errors":%%d,"timeouts":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""


_CROWD_LUA = """-- written by ruang bench: a crowd of listeners, each with its own ticket and
-- address (named in X-Forwarded-For, as an edge does), alternating playlist and parts
local folders = { %(folders)s }
local sources = { %(sources)s }
local names = { %(names)s }
local n = 0
request = function()
  n = n + 1
  local k = math.floor(n / 2) %% #folders + 1
  local headers = {["X-Forwarded-For"] = sources[k]}
  if n %% 2 == 1 then
    return wrk.format("GET", folders[k] .. "/live.m3u8", headers)
  end
  return wrk.format("GET", folders[k] .. "/" .. names[math.floor(n / 2) %% #names + 1], headers)
end
""" + _LUA[_LUA.index("done = function") :]


def counting_lua(field: str, condition: str) -> str:
    """A wrk script part that counts the answers for which the Lua `condition` on `status`
    holds, over every thread, and reports the count as `field` in the JSON line (`done`
    redefined)."""
    return f"""
-- count every answer with {condition}, and report it as {field} in the JSON line
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
{field} = 0
function response(status, headers, body)
  if {condition} then {field} = {field} + 1 end
end
done = function(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("{field}") end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,"{field}":%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, n))
end
"""


COUNT_NOT_200_LUA = counting_lua("not_200", "status ~= 200")
"""Appended to a wrk script (not %-formatted): its runs report `not_200` (see `run_wrk`)."""


async def crowd_paths(
    base_url: str, space: str, listeners: int
) -> tuple[list[str], list[str], list[str]]:
    """Join `listeners` listeners, each from its own address (X-Forwarded-For: the server
    must trust 127.0.0.1 as its edge); their ticketed folders, the part names the live
    playlist lists now, and their addresses."""
    folders, sources = [], []
    async with httpx.AsyncClient(base_url=base_url, timeout=20) as api:
        for i in range(listeners):
            source = f"10.{i // 65536 % 256}.{i // 256 % 256}.{1 + i % 254}"
            r = await api.post(f"/api/spaces/{space}/join", headers={"X-Forwarded-For": source})
            r.raise_for_status()
            listen = httpx.URL(r.json()["listen_url"]).raw_path.decode()
            folders.append(listen.rsplit("/", 1)[0])
            sources.append(source)
    _, parts = await listener_paths(base_url + folders[0] + "/live.m3u8")
    return folders, [p.rsplit("/", 1)[-1] for p in parts], sources


def write_crowd_script(
    directory: Path, folders: list[str], names: list[str], sources: list[str]
) -> Path:
    """The wrk Lua script for a crowd (see `crowd_paths`)."""
    path = directory / "crowd.lua"

    def table(items: list[str]) -> str:
        return ", ".join(f'"{x}"' for x in items)

    path.write_text(
        _CROWD_LUA % {"folders": table(folders), "sources": table(sources), "names": table(names)}
    )
    return path


async def listener_paths(listen_url: str) -> tuple[str, list[str]]:
    """The path of the live playlist `join` handed out (with its ticket, if any) and the
    paths of the parts it lists now."""
    url = httpx.URL(listen_url)
    playlist = url.raw_path.decode()
    folder = playlist.rsplit("/", 1)[0]
    async with httpx.AsyncClient(verify=False, timeout=10) as c:
        r = await c.get(url)
    r.raise_for_status()
    parts = [f"{folder}/{p.uri}" for p in parse_playlist(r.text).parts.values()]
    if not parts:
        raise RuntimeError("the live playlist lists no parts yet")
    return playlist, parts


def write_script(directory: Path, playlist: str, parts: list[str]) -> Path:
    """The wrk Lua script for these paths."""
    path = directory / "listeners.lua"
    quoted = ", ".join(f'"{p}"' for p in parts)
    path.write_text(_LUA % {"playlist": playlist, "parts": quoted})
    return path


WRK_GRACE_S = 30.0  # seconds a wrk run may take beyond its duration (start, init, summary)


async def run_wrk(
    url: str,
    script: Path,
    seconds: float,
    connections: int,
    threads: int = 1,
    nice: int | None = None,
) -> dict[str, Any]:
    """Run wrk (at niceness `nice`, if given) and return its summary (requests per second,
    latency percentiles, errors)."""
    wrk = need("wrk")
    # `nice -n` adds to the current niceness; no preexec_fn, so that Popen can use vfork and
    # not stall this event loop while it forks a big process
    relative = None if nice is None else nice - os.getpriority(os.PRIO_PROCESS, 0)
    args = [
        *(["nice", "-n", str(relative)] if relative else []),
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
    ]
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), seconds + WRK_GRACE_S)
    except TimeoutError:
        proc.kill()  # never left running behind the benchmark
        await proc.wait()
        raise RuntimeError(
            f"wrk did not end within {seconds + WRK_GRACE_S:.0f} s of a {seconds:.0f} s run "
            f"(its script's init, or a loaded machine): {' '.join(args)}"
        ) from None
    m = re.search(r"WRKJSON (\{.*\})", out.decode())
    if proc.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out.decode()} {err.decode()}")
    raw = json.loads(m.group(1))
    secs = raw["duration_us"] / 1e6
    extra = {k: raw[k] for k in ("not_200", "passed") if k in raw}  # scripts that count
    return {
        **extra,
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / secs),
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
        "mb_per_s": round(raw["bytes"] / secs / 1e6, 2),
        "errors": {
            k: raw[k]
            for k in (
                "connect_errors",
                "read_errors",
                "write_errors",
                "status_errors",
                "timeouts",
            )
            if raw[k]
        },
        "command": ("" if nice is None else f"nice {nice}: ")
        + " ".join(["wrk", *args[args.index(wrk) + 1 :]]),
    }
