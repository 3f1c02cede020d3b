"""A delivery worker process: serves the public app on the socket its parent bound."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import socket
import sys

import uvicorn

from ruang.config import Config
from ruang.delivery.app import build_delivery_app

PR_SET_PDEATHSIG = 1  # prctl option: signal this process when its parent dies


def die_with_parent() -> None:
    """If the media process is killed (even with kill -9), its workers go too, freeing the port."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        logging.getLogger(__name__).warning("prctl unavailable: workers may outlive a crash")


def main() -> None:
    """Entry point: `python -m ruang.delivery.worker FD`."""
    die_with_parent()
    fd = int(sys.argv[1])
    config = Config.from_env()
    sock = socket.socket(fileno=fd)
    server = uvicorn.Server(
        uvicorn.Config(
            build_delivery_app(config),
            log_level="warning",
            access_log=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
            backlog=4096,
        )
    )
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
