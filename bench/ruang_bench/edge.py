"""`ruang bench edge`: listener requests per second through the shipped nginx edge
(deploy/nginx: LuaJIT ticket check, cache, coalescing, its access log), against nginx serving
the same files statically, on the same machine in the same run. DESIGN §6: "listeners per node,
behind the shipped nginx edge" must be ≥ 90 % of the static figure.

One Ruang origin (`RUANG_TICKET_KEY` set) makes a live space; once a few segments exist, a
join gives a ticketed listen_url. The edge is rendered with `render` from deploy/nginx (or
--edge-dir, a modified copy, to try config changes), with `worker_processes` set to
--nginx-workers and `user root;`, as tests/end_to_end/test_edge.py does; the static nginx is
`ruang bench listeners`' (access log off, `/hls/{space}/t/{ticket}/{file}` aliased to the
spaces folder, tickets not checked) with the same worker count. One pass over every path warms
the edge's cache, then the same wrk Lua mix (the ticketed live playlist, then one of the parts
it lists, alternately; every answer that is not a 200 is counted) runs against the edge and
the static nginx, alternated for --rounds; medians are reported. The edge's access log says
how many of its answers went to the origin ($upstream_status; the rendered copy adds
`log_subrequest on` so that the cache's background updates, which are subrequests, count).
CPU of each nginx (master and workers), of Ruang (media process and workers) and of wrk is
metered per run: everything shares the machine's cores, so the per-request CPU of each nginx
is the machine-independent figure beside the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ruang_bench.common import (
    REPO_ROOT,
    CpuMeter,
    MachineLoad,
    add_server_arguments,
    children_of,
    create_space,
    emit,
    free_port,
    listen_url,
    need,
    start_server,
)
from ruang_bench.listeners import nginx as static_nginx
from ruang_bench.loadgen import COUNT_NOT_200_LUA, listener_paths, run_wrk, write_script

GOAL_RATIO = 0.9
WARM_S = 5.0  # live audio made before the load starts (at least two segments)
PART_S = 0.512
LISTENER_REQUESTS_PER_S = 2 / PART_S  # an LL-HLS listener: one playlist + one part per part
EDGE_DIR = REPO_ROOT / "deploy" / "nginx"
NGINX_START_TIMEOUT_S = 10.0

# deploy/nginx/nginx.conf's log_format ruang_edge:
# '$msec $remote_addr "$request" $status $upstream_cache_status $upstream_status $request_time'
_LOG_LINE = re.compile(r'^(\S+) \S+ "[^"]*" (\d{3}) (\S+) (.+) \S+$')


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument(
        "--nginx-workers",
        type=int,
        default=1,
        help="worker_processes of the edge nginx and of the static nginx (the same for both)",
    )
    p.add_argument(
        "--edge-dir",
        type=Path,
        default=EDGE_DIR,
        help="folder with the edge's render, nginx.conf and ruang_ticket.lua (default: the "
        "shipped deploy/nginx; a modified copy measures a config change)",
    )
    p.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run")
    p.add_argument(
        "--rounds", type=int, default=3, help="edge/static runs, alternated; medians reported"
    )
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")


# -- the edge ----------------------------------------------------------------------------------
@contextlib.contextmanager
def edge_nginx(
    edge_dir: Path, origin: str, workers: int, key: str, prefix: Path
) -> Iterator[tuple[str, int, Path]]:
    """The edge rendered from `edge_dir` as a non-daemon child in front of `origin`
    (host:port), `RUANG_TICKET_KEY` in its environment; yields (url, master pid, access log)."""
    binary = need("nginx")
    port = free_port()
    for sub in ("cache", "client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = subprocess.run(
        [
            str(edge_dir / "render"),
            f"127.0.0.1:{port}",
            origin,
            str(prefix / "cache"),
            str(prefix),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    if "worker_processes auto;" not in conf:
        raise RuntimeError(f"{edge_dir}/nginx.conf has no `worker_processes auto;` to set")
    conf = conf.replace("worker_processes auto;", f"worker_processes {workers};\nuser root;")
    # the cache's background updates are subrequests: log them too, to count origin requests
    conf = re.sub(r"(\n\s*access_log [^;]*;)", r"\1\n    log_subrequest on;", conf, count=1)
    path = prefix / "nginx.conf"
    path.write_text(conf)
    with open(prefix / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            [binary, "-c", str(path), "-p", str(prefix), "-e", str(prefix / "error.log")]
            + ["-g", "daemon off;"],
            env={**os.environ, "RUANG_TICKET_KEY": key},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + NGINX_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "edge nginx exited: " + (prefix / "stderr.log").read_text(errors="replace")
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("edge nginx did not start (or cannot reach the origin)")
            time.sleep(0.05)
        yield url, proc.pid, prefix / "access.log"
    finally:
        proc.send_signal(signal.SIGQUIT)  # graceful stop: the access log is flushed
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_log(path: Path, since: float, until: float) -> dict[str, Any]:
    """Edge answers logged between two times (epoch s): how many, their statuses, the cache's
    status, and how many went to the origin ($upstream_status not "-")."""
    statuses: Counter[str] = Counter()
    cache: Counter[str] = Counter()
    total = origin = 0
    with contextlib.suppress(FileNotFoundError), open(path, errors="replace") as f:
        for line in f:
            m = _LOG_LINE.match(line.rstrip("\n"))
            if m is None or not since <= float(m.group(1)) < until:
                continue
            total += 1
            statuses[m.group(2)] += 1
            cache[m.group(3)] += 1
            origin += m.group(4) != "-"
    return {
        "answers": total,
        "origin_requests": origin,
        "statuses": dict(statuses),
        "cache_status": dict(cache),
    }


# -- one run -----------------------------------------------------------------------------------
def _children_cpu_s() -> float:
    """CPU of this process's reaped children (wrk, once run_wrk has waited for it)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def _load(
    args: argparse.Namespace, url: str, script: Path, groups: dict[str, list[int]]
) -> dict[str, Any]:
    meter = CpuMeter(groups)
    meter.start()
    wrk0 = _children_cpu_s()
    t0 = time.time()
    result = await run_wrk(url, script, args.duration, args.connections, args.threads)
    t1 = time.time()
    cpu = meter.read()
    result["wrk_cores"] = round((_children_cpu_s() - wrk0) / cpu["wall_s"], 3)
    for name in groups:
        result[f"{name}_cores"] = cpu[f"{name}_cores"]
    result["machine_cores_busy"] = cpu["machine_cores_busy"]
    result["window"] = [t0, t1]
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(runs, key=lambda r: r["requests_per_s"])
    return {
        **{k: v for k, v in ranked[(len(ranked) - 1) // 2].items() if k != "window"},
        "all_requests_per_s": [r["requests_per_s"] for r in runs],
        "all_p99_ms": [r["p99_ms"] for r in runs],
        "not_200_total": sum(r["not_200"] for r in runs),
        "errors_total": sum(sum(r["errors"].values()) for r in runs),
    }


def _us_per_request(run: dict[str, Any], group: str) -> float:
    """CPU microseconds a process group spent per request answered in a run."""
    cores, rate = float(run[f"{group}_cores"]), int(run["requests_per_s"])
    return round(cores * 1e6 / max(1, rate), 1)


async def _check_same(edge: str, static: str, playlist: str, parts: list[str]) -> dict[str, Any]:
    """Both answer 200 with the same part bytes; one pass over every path warms the edge."""
    async with httpx.AsyncClient(verify=False, timeout=10) as c:
        cache: Counter[str] = Counter()
        for path in [playlist, *parts]:
            r = await c.get(edge + path)
            if r.status_code != 200:
                raise RuntimeError(f"edge answered {r.status_code} to {path}: {r.text[:200]}")
            cache[r.headers.get("X-Cache", "?")] += 1
        a = await c.get(edge + parts[0])
        b = await c.get(static + parts[0])
        if b.status_code != 200 or a.content != b.content:
            raise RuntimeError(f"edge and static nginx differ on a part ({b.status_code})")
        p = await c.get(static + playlist)
        if p.status_code != 200 or not p.text.startswith("#EXTM3U"):
            raise RuntimeError(f"static nginx answered {p.status_code} to the playlist")
        return {
            "warm_pass_cache_status": dict(cache),
            "part_hit_after_warm": a.headers.get("X-Cache"),
        }


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """Origin, edge and static nginx; alternated wrk runs."""
    if args.url:
        raise SystemExit("edge starts its own origin (with a ticket key) and its own nginx")
    edge_dir: Path = args.edge_dir
    key = secrets.token_hex(32)
    load = MachineLoad()
    load.start()
    with tempfile.TemporaryDirectory(prefix="ruang-bench-edge-") as tmp_name:
        tmp = Path(tmp_name)
        saved = os.environ.get("RUANG_TICKET_KEY")
        os.environ["RUANG_TICKET_KEY"] = key  # start_server passes our environment on
        try:
            server = start_server(tmp / "data", workers=args.workers)
        finally:
            if saved is None:
                os.environ.pop("RUANG_TICKET_KEY", None)
            else:
                os.environ["RUANG_TICKET_KEY"] = saved
        try:
            async with httpx.AsyncClient(verify=False, base_url=server.url, timeout=20) as api:
                space = await create_space(api, "bench edge")
                await asyncio.sleep(WARM_S)
                listen = await listen_url(api, space)
            if "/t/" not in listen:
                raise RuntimeError(f"join handed out no ticketed URL: {listen}")
            playlist, parts = await listener_paths(listen)
            script = write_script(tmp, playlist, parts)
            script.write_text(script.read_text() + COUNT_NOT_200_LUA)
            assert server.spaces_dir is not None
            origin = server.url.removeprefix("http://")
            ruang_pids = server.server_pids()
            with (
                edge_nginx(edge_dir, origin, args.nginx_workers, key, tmp / "edge") as edge,
                static_nginx(server.spaces_dir, str(args.nginx_workers)) as (static_url, master),
            ):
                edge_url, edge_master, access_log = edge
                groups = {
                    "edge_nginx": [edge_master, *children_of(edge_master)],
                    "static_nginx": [master, *children_of(master)],
                    "ruang": ruang_pids,
                }
                checks = await _check_same(edge_url, static_url, playlist, parts)
                edge_runs: list[dict[str, Any]] = []
                static_runs: list[dict[str, Any]] = []
                for _ in range(args.rounds):  # alternate, so that a noisy moment hits both
                    edge_runs.append(await _load(args, edge_url, script, groups))
                    static_runs.append(await _load(args, static_url, script, groups))
                    a, b = edge_runs[-1], static_runs[-1]
                    print(
                        f"  edge {a['requests_per_s']} req/s p99 {a['p99_ms']} ms "
                        f"(nginx {a['edge_nginx_cores']}, wrk {a['wrk_cores']} cores); static "
                        f"{b['requests_per_s']} req/s p99 {b['p99_ms']} ms (nginx "
                        f"{b['static_nginx_cores']}, wrk {b['wrk_cores']} cores)",
                        file=sys.stderr,
                    )
                await asyncio.sleep(1.5)  # the access log is flushed every second
                for r in edge_runs:
                    r["edge_log"] = read_log(access_log, *r["window"])
                    r["origin_requests_per_s"] = round(
                        r["edge_log"]["origin_requests"] / (r["window"][1] - r["window"][0]), 2
                    )
        finally:
            server.stop()

    e, s = _median_run(edge_runs), _median_run(static_runs)
    ratios = [
        a["requests_per_s"] / max(1, b["requests_per_s"])
        for a, b in zip(edge_runs, static_runs, strict=True)
    ]
    ratio = round(statistics.median(ratios), 3)
    valid = e["not_200_total"] == 0 and e["errors_total"] == 0
    met = ratio >= GOAL_RATIO and valid
    edge_cpu_us = statistics.median(_us_per_request(r, "edge_nginx") for r in edge_runs)
    static_cpu_us = statistics.median(_us_per_request(r, "static_nginx") for r in static_runs)
    result = {
        "space": space.id,
        "parts_in_mix": len(parts),
        "edge_dir": str(edge_dir),
        "nginx_workers": args.nginx_workers,
        "ruang_workers": args.workers,
        "checks": checks,
        "edge": e,
        "static": s,
        "edge_rounds": edge_runs,
        "static_rounds": static_runs,
        "ratio_each_round": [round(x, 3) for x in ratios],
        "ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "edge_all_200": valid,
        "met": met,
        "listener_equivalents": {
            "requests_per_listener_s": round(LISTENER_REQUESTS_PER_S, 3),
            "edge": round(e["requests_per_s"] / LISTENER_REQUESTS_PER_S),
            "static": round(s["requests_per_s"] / LISTENER_REQUESTS_PER_S),
        },
        "nginx_cpu_us_per_request": {"edge": edge_cpu_us, "static": static_cpu_us},
        "origin_requests_per_s_during_edge_runs": [r["origin_requests_per_s"] for r in edge_runs],
        "wrk": {
            "connections": args.connections,
            "threads": args.threads,
            "duration_s": args.duration,
            "lua": "listener mix (live playlist, then a part) + a count of non-200 answers",
        },
        "machine_load": load.read(),
    }
    summary = (
        f"edge: {'shipped nginx edge' if edge_dir == EDGE_DIR else f'edge from {edge_dir}'} "
        f"{e['requests_per_s']} req/s (p99 {e['p99_ms']} ms, "
        f"~{result['listener_equivalents']['edge']} listeners, non-200 {e['not_200_total']}, "
        f"errors {e['errors_total']}, origin {e['edge_log']['origin_requests']} requests in "
        f"{args.duration:g} s) vs static nginx {s['requests_per_s']} req/s (p99 {s['p99_ms']} ms,"
        f" ~{result['listener_equivalents']['static']} listeners), {args.nginx_workers} nginx "
        f"worker(s) each; nginx CPU {edge_cpu_us} vs {static_cpu_us} µs/request; ratio {ratio} "
        f"(median of {args.rounds} alternated rounds {result['ratio_each_round']}; goal >= "
        f"{GOAL_RATIO}: {'met' if met else 'MISSED'}); others' cores "
        f"{result['machine_load']['others_cores']}"
    )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    args.edge_dir = Path(args.edge_dir).resolve()
    result, summary = asyncio.run(measure(args))
    emit("edge", args, result, summary)
