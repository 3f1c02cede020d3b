"""`ruang bench listeners`: listener requests per second Ruang alone serves, against nginx
serving the same files from the same folder on the same machine, in the same run.

For each delivery worker count, a fresh server makes a live space (silence keeps its parts
coming); once a few segments exist, wrk runs a Lua mix of one live-playlist request per part
request (what an LL-HLS listener does) against Ruang's public port, then the same script
against nginx (a temporary nginx.conf, `daemon off`, on another loopback port) whose
`/hls/` is an alias of the server's `DIR/spaces/`. wrk, the servers and nginx share the
machine's cores; the figure that matters is the ratio. The mix is a crowd (`--crowd`, 1000 by
default): each listener joins with its own address and plays with its own ticket, so the
server's per-source and per-ticket limits see players, not one client asking for a thousand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ruang_bench.common import (
    BenchServer,
    CpuMeter,
    MachineLoad,
    add_server_arguments,
    children_of,
    create_space,
    emit,
    free_port,
    need,
    start_server,
)
from ruang_bench.loadgen import crowd_paths, run_wrk, write_crowd_script

GOAL_RATIO = 0.6
TRUST_WRK = ["--trusted-proxy", "127.0.0.1"]  # wrk stands for an edge: requests name clients
WARM_S = 5.0  # live audio made before the load starts (at least two segments)

_NGINX_CONF = r"""# written by ruang bench listeners: nginx serving Ruang's spaces folder
daemon off;
master_process on;
user root;
worker_processes %(workers)s;
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60;
    keepalive_requests 1000000;
    client_body_temp_path %(prefix)s/body;
    proxy_temp_path %(prefix)s/proxy;
    fastcgi_temp_path %(prefix)s/fastcgi;
    uwsgi_temp_path %(prefix)s/uwsgi;
    scgi_temp_path %(prefix)s/scgi;
    types {
        application/vnd.apple.mpegurl m3u8;
        audio/mp4 m4s mp4;
    }
    map $uri $hls_cache {
        ~\.m3u8$ "public, max-age=1";
        default "public, max-age=31536000, immutable";
    }
    server {
        listen 127.0.0.1:%(port)d;
        # /hls/{space}/t/{ticket}/{file} as join hands it out (the ticket is not checked)
        location ~ ^/hls/(?<space>[a-z0-9]+)/t/[^/]+/(?<file>[^/]+)$ {
            alias %(spaces)s/$space/$file;
            add_header Cache-Control $hls_cache;
        }
        location /hls/ {
            alias %(spaces)s/;
            add_header Cache-Control $hls_cache;
        }
    }
}
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of this benchmark."""
    add_server_arguments(p)
    p.add_argument(
        "--worker-counts",
        default="1,2",
        help="Ruang delivery worker counts to measure, comma-separated",
    )
    p.add_argument("--nginx-workers", default="auto", help="nginx worker_processes")
    p.add_argument("--duration", type=float, default=6.0, help="seconds per wrk run")
    p.add_argument(
        "--rounds", type=int, default=3, help="Ruang/nginx runs, alternated; medians reported"
    )
    p.add_argument("--connections", type=int, default=64, help="wrk connections")
    p.add_argument("--threads", type=int, default=1, help="wrk threads")
    p.add_argument(
        "--crowd",
        type=int,
        default=1000,
        help="listeners in the mix, each with its own ticket and address (per-source and "
        "per-ticket limits apply to a crowd as they would to real players)",
    )


@contextlib.contextmanager
def nginx(spaces: Path, workers: str) -> Iterator[tuple[str, int]]:
    """nginx as a non-daemon child serving `spaces` at /hls/; yields (url, master pid)."""
    binary = need("nginx")
    with tempfile.TemporaryDirectory(prefix="ruang-nginx-") as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            _NGINX_CONF % {"workers": workers, "prefix": tmp, "port": port, "spaces": spaces}
        )
        proc = subprocess.Popen(
            [binary, "-p", tmp, "-e", f"{tmp}/error.log", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise RuntimeError(f"nginx exited: {err}")
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(url + "/", timeout=1)
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start")
                time.sleep(0.05)
            yield url, proc.pid
        finally:
            proc.send_signal(signal.SIGQUIT)  # graceful stop
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _load(
    args: argparse.Namespace, url: str, script: Path, pids: list[int]
) -> dict[str, Any]:
    meter = CpuMeter({"server": pids})
    meter.start()
    result = await run_wrk(url, script, args.duration, args.connections, args.threads)
    cpu = meter.read()
    result["server_cores"] = cpu["server_cores"]
    result["machine_cores_busy"] = cpu["machine_cores_busy"]
    return result


async def _pair(args: argparse.Namespace, server: BenchServer, tmp: Path) -> dict[str, Any]:
    """Ruang then nginx on the same files."""
    async with httpx.AsyncClient(verify=False, base_url=server.url, timeout=20) as api:
        space = await create_space(api, "bench listeners")
        await asyncio.sleep(WARM_S)
    folders, names, sources = await crowd_paths(server.url, space.id, args.crowd)
    script = write_crowd_script(tmp, folders, names, sources)
    parts = [f"{folders[0]}/{name}" for name in names]
    pids = server.server_pids() if server.proc else []
    assert server.spaces_dir is not None
    ruang: list[dict[str, Any]] = []
    other: list[dict[str, Any]] = []
    with nginx(server.spaces_dir, args.nginx_workers) as (nginx_url, master):
        async with httpx.AsyncClient(verify=False, timeout=5) as c:  # same bytes from both?
            a = await c.get(server.url + parts[0])
            b = await c.get(nginx_url + parts[0])
            if a.content != b.content or b.status_code != 200:
                raise RuntimeError(f"nginx does not serve the same part ({b.status_code})")
        for _ in range(args.rounds):  # alternate, so that a noisy moment hits both
            ruang.append(await _load(args, server.url, script, pids))
            other.append(await _load(args, nginx_url, script, [master, *children_of(master)]))

    def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
        ranked = sorted(runs, key=lambda r: r["requests_per_s"])
        return {
            **ranked[(len(ranked) - 1) // 2],
            "all_requests_per_s": [r["requests_per_s"] for r in runs],
        }

    r, n = median_run(ruang), median_run(other)
    pairs = zip(ruang, other, strict=True)
    ratios = [a["requests_per_s"] / max(1, b["requests_per_s"]) for a, b in pairs]
    return {
        "space": space.id,
        "parts_in_mix": len(parts),
        "ruang": r,
        "nginx": n,
        "ratio_each_round": [round(x, 3) for x in ratios],
        "ratio": round(statistics.median(ratios), 3),
    }


async def measure(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """One server per worker count; nginx measured after each."""
    if args.url:
        raise SystemExit("listeners starts its own servers (it compares worker counts)")
    counts = [int(x) for x in args.worker_counts.split(",") if x]
    load = MachineLoad()
    load.start()
    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ruang-bench-") as tmp:
        for n in counts:
            server = start_server(Path(tmp) / f"data-{n}", workers=n, extra=TRUST_WRK)
            try:
                runs[f"workers_{n}"] = await _pair(args, server, Path(tmp))
            finally:
                server.stop()
            r = runs[f"workers_{n}"]
            print(
                f"  ruang --workers {n}: {r['ruang']['requests_per_s']} req/s "
                f"p99 {r['ruang']['p99_ms']} ms; nginx {r['nginx']['requests_per_s']} req/s "
                f"p99 {r['nginx']['p99_ms']} ms; ratio {r['ratio']}",
                file=sys.stderr,
            )
    nginx_ref = statistics.median(r["nginx"]["requests_per_s"] for r in runs.values())
    best = max(runs.items(), key=lambda kv: kv[1]["ratio"])
    ratio = best[1]["ratio"]
    result = {
        "runs": runs,
        "nginx_median_requests_per_s": round(nginx_ref),
        "best_ruang": best[0],
        "best_ratio": ratio,
        "goal_ratio": GOAL_RATIO,
        "wrk": {
            "connections": args.connections,
            "threads": args.threads,
            "duration_s": args.duration,
        },
        "machine_load": load.read(),
        "nproc": os.cpu_count(),
    }
    parts = [
        f"--workers {k.split('_')[1]} {v['ruang']['requests_per_s']} req/s "
        f"(p99 {v['ruang']['p99_ms']} ms, ratio {v['ratio']})"
        for k, v in runs.items()
    ]
    summary = (
        f"listeners: Ruang {', '.join(parts)}; nginx {round(nginx_ref)} req/s; best ratio "
        f"{ratio} with {best[0].replace('_', ' ')} (median of alternated rounds; goal >= "
        f"{GOAL_RATIO}: {'met' if ratio >= GOAL_RATIO else 'MISSED'})"
    )
    return result, summary


def run(args: argparse.Namespace) -> None:
    """Entry point."""
    result, summary = asyncio.run(measure(args))
    emit("listeners", args, result, summary)
