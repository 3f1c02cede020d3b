"""A delivery worker process: serves the public app on the socket its parent bound."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time

from ruang.audience import REPORT_EVERY_S
from ruang.backends import Backends
from ruang.config import Config
from ruang.delivery.app import build_delivery_app
from ruang.delivery.fastserver import Handlers, HttpProtocol
from ruang.guard.cells import NodeMemory

LISTEN_BACKLOG = 4096  # pending connections; create_server would listen() again with 100
LAG_PROBE_S = 0.05  # event-loop lag is measured by oversleep of a 50 ms timer
DRAIN_S = 0.5  # after SIGTERM, seconds spent refusing joins before connections close
PR_SET_PDEATHSIG = 1  # prctl option: signal this process when its parent dies
NICENESS = 5  # without real-time media, workers yield the CPU to the media processes (speakers
# first, DESIGN §2.4): at +5 the kernel weighs a worker ~3x below a media process
log = logging.getLogger(__name__)


def niceness(config: Config) -> int:
    """How far a worker lowers itself. When the media processes run real-time (asked for and
    permitted here: probed by taking and giving back round-robin at priority 1), they already
    outrank every normal task, so a worker stays at 0 and competes as an equal with the rest of
    the machine (a load balancer, Redis, an edge); otherwise +5, below the media processes'
    -5 or normal priority."""
    if not config.media_realtime:
        return NICENESS
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except (OSError, AttributeError):
        return NICENESS
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return 0


def die_with_parent() -> None:
    """If the supervisor is killed (even with kill -9), its workers go too, freeing the port."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        log.warning("prctl unavailable: workers may outlive a crash")


async def serve(
    config: Config, sock: socket.socket, worker: int = 0, memory: NodeMemory | None = None
) -> None:
    """Accept on `sock` until SIGTERM/SIGINT; `memory`: what the node's workers share."""
    backends = Backends(config)  # this process's one set of shared services
    app = build_delivery_app(config, backends, worker, memory)
    guard = app.state.guard
    loop = asyncio.get_running_loop()
    shedder = app.state.shedder
    handlers = Handlers(
        app.state.hls.handle,
        app.state.hls.handle_now,
        app.state.joins.handle,
        app.state.joins.handle_now,
        app,
    )
    server = await loop.create_server(
        lambda: HttpProtocol(handlers, shedder, guard),
        sock=sock,
        backlog=LISTEN_BACKLOG,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def report_forever() -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            await app.state.report_audience()

    async def measure_lag() -> None:
        while True:
            began = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            shedder.sample(max(0.0, loop.time() - began - LAG_PROBE_S), loop.time())

    async def guard_forever() -> None:
        while True:  # just after each second's end, so that second is complete
            await asyncio.sleep(1.05 - time.time() % 1.0)
            guard.tick(time.time())

    async def reactions_forever() -> None:
        while True:  # one report a second: the media process publishes one event a second
            await asyncio.sleep(1.0)
            try:
                await app.state.report_reactions()
            except Exception:
                log.exception("could not report the reactions")

    tasks = [
        asyncio.create_task(reactions_forever()),
        asyncio.create_task(report_forever()),
        asyncio.create_task(measure_lag()),
        asyncio.create_task(guard_forever()),
    ]
    if app.state.events is not None:  # several nodes: space state changes from the others
        tasks.append(asyncio.create_task(app.state.events))
    async with server:
        await stop.wait()
        # Drain: new joins get a clear 503 on connections already open, players already
        # admitted keep being served for a moment, then the worker stops accepting.
        app.state.joins.draining = True
        await asyncio.sleep(DRAIN_S)
    for task in tasks:
        task.cancel()
    guard.tick(time.time() + 1.0)  # the last second's evidence, then the file synced
    guard.close()
    await backends.aclose()


def main() -> None:
    """Entry point: `python -m ruang.delivery.worker FD [INDEX [MEMORY_FD]]` (MEMORY_FD: the
    node's shared guard memory, from the supervisor)."""
    die_with_parent()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    fd = int(sys.argv[1])
    worker = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    memory = NodeMemory(int(sys.argv[3])) if len(sys.argv) > 3 else None
    config = Config.from_env()
    os.nice(niceness(config))
    sock = socket.socket(fileno=fd)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config, sock, worker, memory))


if __name__ == "__main__":
    main()
