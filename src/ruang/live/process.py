"""A media process: the composition root of one share of a node's spaces.

`python -m ruang.live.process` imports everything it needs, says `ready` on stdout and waits
for its number on stdin: the supervisor (`ruang.server`) keeps one such warm spare, so that a
crashed media process is replaced in a fraction of a second instead of the second or so that
importing aiortc, PyAV and numpy takes. Given number N, it reads the configuration once, opens
its store and shared services once, resumes the spaces stamped N (live or scheduled) from
disk, and serves their control API and WHIP on the Unix socket `DATA_DIR/media-N.sock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ruang.backends import Backends
from ruang.captions.feed import CaptionFeed, spaces_share
from ruang.config import Config
from ruang.live.capacity import Costs
from ruang.live.studio import Studio
from ruang.logs import setup_logging
from ruang.web.control import build_control_app
from ruang.web.metrics import StudioCollector

log = logging.getLogger(__name__)

MEDIA_RT_PRIORITY = 5  # SCHED_RR priority (1–99): above every normal task, below the kernel's
MEDIA_NICENESS = -5  # the fallback when real-time scheduling is not permitted
PR_SET_PDEATHSIG = 1  # prctl option: signal this process when its parent dies
READY = b"ready\n"  # what a warm spare prints once it has imported everything


def die_with_parent() -> None:
    """If the supervisor is killed (even with kill -9), its children go too, freeing the port
    and the sockets for the next start."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        log.warning("prctl unavailable: children may outlive a crashed supervisor")


def prioritise_media(realtime: bool) -> str:
    """Put this media process ahead of every listener-serving process on the CPU: real-time
    round-robin at a low priority (what audio servers get from rtkit), else nice -5. Children
    do not inherit it (SCHED_RESET_ON_FORK). The kernel still keeps 5 % of each second for
    normal tasks (sched_rt_runtime_us). Returns what was obtained."""
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


async def run(config: Config, media: int) -> None:
    """Serve media process number `media` until SIGINT/SIGTERM; then stop every clock with
    its parts flushed to disk (live spaces stay live, for the next start)."""
    scheduling = prioritise_media(config.media_realtime)
    backends = Backends(config)  # this process's one set of shared services
    db = backends.store(media)
    costs = Costs(config.media_budget, seats=config.max_on_stage)
    captions = None
    if config.captions:  # the engine was checked by `ruang serve`; it loads in its own process
        command = CaptionFeed.worker_command(
            config.spaces_dir, config.captions_engine, config.captions_model
        )
        share = spaces_share(config.captions_max_spaces, media, config.media_count)
        captions = CaptionFeed(command, share)
    studio = Studio(config, db, media, costs, backends.shared_audience(), captions)
    await studio.start()
    registry = CollectorRegistry()
    registry.register(StudioCollector(studio))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app = build_control_app(studio)
    app.router.routes.append(Route("/metrics", metrics))
    path = config.control_socket(media)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a crashed predecessor's socket
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            uds=str(path),
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=2,
        )
    )
    log.info(
        "media process %d: %d spaces resumed, %d full stages of capacity; scheduling: %s",
        media,
        len(studio.pipelines),
        costs.full_stages,
        scheduling,
    )
    # uvicorn catches SIGTERM/SIGINT while serving, then restores the handlers it found and
    # raises the signal again: with the default handler that would kill the process before
    # the drain below. A handler of our own lets it run.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: None)
    try:
        await server.serve()
    finally:
        await studio.stop()
        db.close()
        await backends.aclose()
        log.info("media process %d stopped: every space's parts flushed", media)


def main() -> None:
    """Entry point: `python -m ruang.live.process` (a warm spare; its number comes on stdin)
    or `python -m ruang.live.process N`."""
    die_with_parent()
    setup_logging()
    if len(sys.argv) > 1:
        media = int(sys.argv[1])
    else:
        sys.stdout.buffer.write(READY)
        sys.stdout.buffer.flush()
        line = sys.stdin.readline()
        if not line.strip():  # the supervisor went away before needing this spare
            return
        media = int(line)
        os.dup2(2, 1)  # nobody reads the pipe from here on: anything printed goes to the log
    config = Config.from_env()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(config, media))


if __name__ == "__main__":
    main()
