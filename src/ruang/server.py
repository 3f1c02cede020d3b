"""`ruang serve`: the supervisor of a node's processes.

It binds the public port, then runs and watches two kinds of children, as an OTP supervisor
would (one for one: a child that dies is restarted and only its own work is lost):

* media processes 0..M-1 (`ruang.live.process`), each running its share of the spaces (WHIP,
  mixing, replay writing) with a control API on `DATA_DIR/media-N.sock`. One warm spare, with
  everything imported, waits to take over a crashed one's number at once;
* delivery workers 0..W-1 (`ruang.delivery.worker`) sharing the public port: pages, joins,
  HLS, and a proxy to the media process running each space.

Listeners never share an event loop or a GIL with a mixer clock, and a crashed media process
cuts off only its own spaces, for the moment it takes to resume them from disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from ruang.backends import Backends
from ruang.config import Config
from ruang.guard.cells import NodeMemory, create_memory
from ruang.guard.tickets import load_or_create_key
from ruang.spaces.model import State

log = logging.getLogger("ruang")

LISTEN_BACKLOG = 4096  # pending connections on the public port
STOP_GRACE_S = 10.0  # children still running this long after SIGTERM are killed
RESTART_WINDOW_S = 10.0  # restarts within this window count towards the back-off
RESTART_BACKOFF_S = (0.0, 0.0, 0.5, 1.0, 2.0, 5.0)  # delay before the nth quick restart
SPARE_READY_TIMEOUT_S = 30.0  # a spare that has not imported everything by then is replaced


def bind_public(config: Config) -> socket.socket:
    """Bind the public port once, in the supervisor; every delivery worker accepts on it."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def rebalance(config: Config) -> int:
    """Spaces stamped with a media process this node no longer runs (it was restarted with
    fewer) go to the others, evenly; returns how many moved."""
    backends = Backends(config)
    db = backends.store()
    try:
        count = config.media_count
        spaces = db.spaces_in_state(State.LIVE) + db.spaces_in_state(State.SCHEDULED)
        per = [0] * count
        for space in spaces:
            if space.media < count:
                per[space.media] += 1
        moved = 0
        for space in spaces:
            if space.media >= count:
                target = per.index(min(per))
                db.move(space.id, target)
                per[target] += 1
                moved += 1
        return moved
    finally:
        db.close()
        asyncio.run(backends.aclose())


@dataclass
class Child:
    """One supervised process and its restart history."""

    kind: str  # "media" or "worker"
    index: int
    proc: asyncio.subprocess.Process
    restarts: list[float] = field(default_factory=list)  # monotonic times of recent restarts

    @property
    def label(self) -> str:
        """For logs."""
        return f"{self.kind} {self.index} (pid {self.proc.pid})"


class Supervisor:
    """Starts, watches and restarts a node's media processes and delivery workers."""

    def __init__(self, config: Config, sock: socket.socket) -> None:
        self.config = config
        self.sock = sock
        # the children see the number of media processes resolved here, whatever their cores
        self.env = {
            **os.environ,
            **config.to_env(),
            "RUANG_MEDIA_PROCESSES": str(config.media_count),
            # the workers' shared guard cells are keyed by hash(): one seed for the node's
            # processes, random per node (guard.cells)
            "PYTHONHASHSEED": str(secrets.randbelow(2**32 - 1) + 1),
        }
        # one guard per node: the memory every delivery worker maps (budgets, attack mode)
        self.guard_fd = create_memory(NodeMemory.SIZE)
        self.children: dict[tuple[str, int], Child] = {}
        self.restarts: dict[str, int] = {"media": 0, "worker": 0}
        self.stopping = asyncio.Event()
        self._spare: asyncio.Task[asyncio.subprocess.Process] | None = None
        self._watchers: set[asyncio.Task[None]] = set()

    # -- spawning ------------------------------------------------------------------------
    async def _spawn_spare(self) -> asyncio.subprocess.Process:
        """A media process with everything imported, waiting for its number."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ruang.live.process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), SPARE_READY_TIMEOUT_S)
        except TimeoutError:
            line = b""
        if line != b"ready\n":
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise RuntimeError(f"a spare media process did not start (said {line!r})")
        return proc

    def _prepare_spare(self) -> None:
        if not self.stopping.is_set() and self._spare is None:
            self._spare = asyncio.create_task(self._spawn_spare())

    async def _start_media(self, index: int) -> asyncio.subprocess.Process:
        spare, self._spare = self._spare, None
        try:
            proc = await spare if spare is not None else await self._spawn_spare()
        except RuntimeError as exc:
            log.error("%s; starting another", exc)
            proc = await self._spawn_spare()
        if proc.returncode is not None:  # the spare died while it waited
            log.error("the spare had exited with %s; starting another", proc.returncode)
            proc = await self._spawn_spare()
        self._prepare_spare()  # the next crash is taken over at once too
        assert proc.stdin is not None
        proc.stdin.write(f"{index}\n".encode())
        await proc.stdin.drain()
        return proc

    async def _start_worker(self, index: int) -> asyncio.subprocess.Process:
        """Delivery worker number `index` on the shared socket (a restarted worker keeps its
        number, and so continues its evidence chain)."""
        fd = self.sock.fileno()
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ruang.delivery.worker",
            str(fd),
            str(index),
            str(self.guard_fd),
            pass_fds=(fd, self.guard_fd),
            env=self.env,
        )

    async def _start(self, kind: str, index: int) -> asyncio.subprocess.Process:
        if kind == "media":
            return await self._start_media(index)
        return await self._start_worker(index)

    # -- watching ------------------------------------------------------------------------
    def _watch(self, child: Child) -> None:
        task = asyncio.create_task(self._keep(child))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _keep(self, child: Child) -> None:
        """Restart the child whenever it exits, until the node stops."""
        while True:
            code = await child.proc.wait()
            if self.stopping.is_set():
                return
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_S] + [now]
            delay = RESTART_BACKOFF_S[min(len(child.restarts), len(RESTART_BACKOFF_S)) - 1]
            log.error("%s exited with %s; restarting in %.1f s", child.label, code, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return
            try:
                child.proc = await self._start(child.kind, child.index)
            except (OSError, RuntimeError) as exc:  # the old process stays dead: try again
                log.error("%s could not be restarted: %s", child.label, exc)
                continue
            if self.stopping.is_set():  # the node began to stop while this one started
                with contextlib.suppress(ProcessLookupError):
                    child.proc.terminate()
                return
            self.restarts[child.kind] += 1
            self._write_status()
            log.info("%s started", child.label)

    def _write_status(self) -> None:
        """`DATA_DIR/supervisor.json`: its pid, its children's pids by kind and number, and the
        restarts per kind (which /metrics reports)."""
        pids: dict[str, dict[str, int]] = {"media": {}, "worker": {}}
        for child in self.children.values():
            pids[child.kind][str(child.index)] = child.proc.pid
        status = {"pid": os.getpid(), "children": pids, "restarts": self.restarts}
        path = self.config.data_dir / "supervisor.json"
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(status))
            os.replace(tmp, path)
        except OSError as exc:  # a full disk must not stop the supervision
            log.error("could not write %s: %s", path, exc)

    # -- running -------------------------------------------------------------------------
    async def run(self) -> None:
        """Start every child, keep them running until SIGINT/SIGTERM, then stop them all."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        count = self.config.media_count
        self._spare = None
        media = await asyncio.gather(*(self._spawn_spare() for _ in range(count)))
        self._prepare_spare()
        for index, proc in enumerate(media):
            assert proc.stdin is not None
            proc.stdin.write(f"{index}\n".encode())
            self.children[("media", index)] = Child("media", index, proc)
        for index in range(self.config.delivery_workers):
            proc = await self._start_worker(index)
            self.children[("worker", index)] = Child("worker", index, proc)
        for child in self.children.values():
            self._watch(child)
        self._write_status()
        log.info(
            "Ruang on %s (data in %s): %d media processes, %d delivery workers",
            self.config.base_url,
            self.config.data_dir,
            count,
            self.config.delivery_workers,
        )
        await self.stopping.wait()
        await self.stop()

    async def stop(self) -> None:
        """Drain: every child gets SIGTERM at once (workers refuse new joins and finish their
        evidence, media processes flush every space's parts); stragglers are killed."""
        log.info("stopping: draining %d processes", len(self.children))
        spare = self._spare
        if spare is not None:
            spare.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                proc = await spare
                proc.kill()
                await proc.wait()
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.proc.terminate()
        waits = [child.proc.wait() for child in self.children.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), STOP_GRACE_S)
        except TimeoutError:
            for child in self.children.values():
                if child.proc.returncode is None:
                    log.warning("%s did not stop in %.0f s; killing it", child.label, STOP_GRACE_S)
                    with contextlib.suppress(ProcessLookupError):
                        child.proc.kill()
            await asyncio.gather(*(child.proc.wait() for child in self.children.values()))
        for task in self._watchers:
            task.cancel()
        for index in range(self.config.media_count):
            with contextlib.suppress(FileNotFoundError):
                self.config.control_socket(index).unlink()


def serve(config: Config) -> None:
    """`ruang serve`: blocks until interrupted."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    load_or_create_key(config.ticket_key_path, config.ticket_key)  # before any child reads it
    moved = rebalance(config)
    if moved:
        log.info("%d spaces moved to the media processes this node runs now", moved)
    if config.redis_url and "://127." in config.node and config.host not in ("127.0.0.1", "::1"):
        log.warning(
            "several nodes share %s but this node calls itself %s, which the others cannot "
            "reach: set --node-url (or --public-url) to an address they can",
            config.redis_url.split("@")[-1],
            config.node,
        )
    sock = bind_public(config)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    asyncio.run(Supervisor(config, sock).run())
