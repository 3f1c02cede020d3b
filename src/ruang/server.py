"""Composition root: one media process (the pipelines, WHIP, control API on a Unix socket) and
N delivery worker processes sharing the public port (pages, join, HLS, proxy to control).

Listeners never share an event loop or a GIL with the mixer clock: a listener flood slows the
delivery workers, not the speakers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ruang.backends import open_store
from ruang.config import Config
from ruang.guard.tickets import load_or_create_key
from ruang.live.studio import Studio
from ruang.web.control import build_control_app
from ruang.web.metrics import StudioCollector

log = logging.getLogger("ruang")

WORKER_CHECK_S = 1.0  # how often the media process checks that delivery workers are alive
LISTEN_BACKLOG = 4096  # pending connections on the public port
MEDIA_RT_PRIORITY = 5  # SCHED_RR priority (1–99): above every normal task, below the kernel's
MEDIA_NICENESS = -5  # the fallback when real-time scheduling is not permitted


def bind_public(config: Config) -> socket.socket:
    """Bind the public port once, in the parent; every delivery worker accepts on it."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def prioritise_media(realtime: bool) -> str:
    """Put the media process ahead of every listener-serving process on the CPU: real-time
    round-robin at a low priority (what audio servers get from rtkit), else nice -5. Children
    (the delivery workers) do not inherit it (SCHED_RESET_ON_FORK). The kernel still keeps
    5 % of each second for normal tasks (sched_rt_runtime_us). Returns what was obtained."""
    if realtime:
        try:
            policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
            os.sched_setscheduler(0, policy, os.sched_param(MEDIA_RT_PRIORITY))
            return f"real-time round-robin, priority {MEDIA_RT_PRIORITY}"
        except (OSError, AttributeError) as exc:
            log.info("real-time scheduling not permitted (%s); trying nice", exc)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, MEDIA_NICENESS)
        return f"nice {MEDIA_NICENESS}"
    except OSError:
        return "normal (delivery workers still yield: they run at nice +5)"


def spawn_worker(config: Config, sock: socket.socket, index: int) -> subprocess.Popen[bytes]:
    """Start delivery worker number `index` on the shared socket (a restarted worker keeps its
    number, and so continues its evidence chain)."""
    fd = sock.fileno()
    env = {**os.environ, **config.to_env()}
    return subprocess.Popen(
        [sys.executable, "-m", "ruang.delivery.worker", str(fd), str(index)],
        pass_fds=(fd,),
        env=env,
    )


async def run_media(config: Config, sock: socket.socket) -> None:
    """Run the media process until SIGINT/SIGTERM, supervising the delivery workers."""
    load_or_create_key(config.ticket_key_path, config.ticket_key)  # before any worker reads it
    scheduling = prioritise_media(config.media_realtime)
    db = open_store(config)
    studio = Studio(config, db)
    await studio.start()
    registry = CollectorRegistry()
    registry.register(StudioCollector(studio))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = build_control_app(studio)
    app.router.routes.append(Route("/metrics", metrics))
    with contextlib.suppress(FileNotFoundError):
        config.control_socket.unlink()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            uds=str(config.control_socket),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    workers = [spawn_worker(config, sock, i) for i in range(config.delivery_workers)]

    async def supervise() -> None:
        while True:
            await asyncio.sleep(WORKER_CHECK_S)
            for i, w in enumerate(workers):
                if w.poll() is not None and not server.should_exit:
                    log.error("delivery worker %d exited with %s; restarting", w.pid, w.returncode)
                    workers[i] = spawn_worker(config, sock, i)

    supervisor = asyncio.create_task(supervise())
    if config.redis_url and "://127." in config.node and config.host not in ("127.0.0.1", "::1"):
        log.warning(
            "several nodes share %s but this node calls itself %s, which the others cannot "
            "reach: set --node-url (or --public-url) to an address they can",
            config.redis_url.split("@")[-1],
            config.node,
        )
    log.info(
        "Ruang on %s (data in %s, %d delivery workers; media process scheduling: %s)",
        config.base_url,
        config.data_dir,
        len(workers),
        scheduling,
    )
    try:
        await server.serve()
    finally:
        supervisor.cancel()
        for w in workers:
            w.terminate()
        await studio.stop()
        for w in workers:
            try:
                w.wait(timeout=3)
            except subprocess.TimeoutExpired:
                w.kill()
        db.close()


def serve(config: Config) -> None:
    """`ruang serve`: blocks until interrupted."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    sock = bind_public(config)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    asyncio.run(run_media(config, sock))
