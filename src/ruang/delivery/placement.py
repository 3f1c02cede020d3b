"""Which media process of this node runs a space, and where a new one goes.

A delivery worker holds one client per media process (its Unix socket). Requests about a
space go to the process stamped on it in the store; a new space goes to the least-loaded
process that still has room for a full stage, as each process itself judges
(`ruang.live.capacity`), asked at the moment of creation (creations are rare and
rate-limited; a stale figure would let a burst pile onto one process).
"""

from __future__ import annotations

import asyncio
import logging
from http.cookiejar import Cookie, CookieJar, DefaultCookiePolicy
from typing import Any

import httpx

from ruang.config import Config
from ruang.errors import media_unavailable, node_full

log = logging.getLogger(__name__)

LOAD_TIMEOUT_S = 0.5  # a media process that cannot say its load this fast gets no new space
CONTROL_TIMEOUT_S = 20.0  # a control request (a WHIP offer's ICE gathering included), seconds


def choose(loads: list[dict[str, Any] | None]) -> int | None:
    """The process to take a new space: among those that answered with room for a full
    stage, the one carrying the fewest cores (lowest number on a tie); None if none can."""
    fitting = [
        (float(load.get("cores", 0.0)), index)
        for index, load in enumerate(loads)
        if load is not None and load.get("room_for_space")
    ]
    return min(fitting)[1] if fitting else None


def choose_node(loads: dict[str, list[dict[str, Any]]], this: str) -> str | None:
    """The node to take a new space (several nodes, each reporting its media processes'
    statistics through Redis): among those with a process that has room, the least loaded
    (cores carried over cores of budget); this node on a tie, which saves a hop. None when
    no node reported room: then this node decides by itself, from fresh figures."""
    best: tuple[float, bool, str] | None = None
    for node, processes in loads.items():
        if choose(list(processes)) is None:
            continue
        budget = sum(float(p.get("budget", 0.0)) for p in processes) or 1.0
        used = sum(float(p.get("cores", 0.0)) for p in processes) / budget
        key = (used, node != this, node)
        if best is None or key < best:
            best = key
    return None if best is None else best[2]


class _KeepNone(DefaultCookiePolicy):
    def set_ok(self, cookie: Cookie, request: Any) -> bool:
        return False


def no_cookies() -> CookieJar:
    """A cookie jar that keeps nothing: a proxy's client must never remember one client's
    session (Set-Cookie from upstream) and send it with everybody else's requests."""
    return CookieJar(policy=_KeepNone())  # a jar, not httpx.Cookies: a client copies those


class MediaProcesses:
    """The media processes of this node, as a delivery worker reaches them."""

    def __init__(self, config: Config) -> None:
        self.clients = [
            httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=str(config.control_socket(i))),
                base_url="http://control",
                timeout=httpx.Timeout(CONTROL_TIMEOUT_S),
                cookies=no_cookies(),
            )
            for i in range(config.media_count)
        ]

    def client(self, media: int) -> httpx.AsyncClient:
        """The client of process number `media` (0 for a number this node does not run)."""
        return self.clients[media] if 0 <= media < len(self.clients) else self.clients[0]

    async def loads(self) -> list[dict[str, Any] | None]:
        """Every process's statistics, None for one that did not answer in time."""

        async def one(client: httpx.AsyncClient) -> dict[str, Any] | None:
            try:
                r = await client.get("/internal/load", timeout=LOAD_TIMEOUT_S)
                return dict(r.json()) if r.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                return None

        return list(await asyncio.gather(*(one(c) for c in self.clients)))

    async def place(self) -> int:
        """The number of the process to create a new space on, or a 503."""
        loads = await self.loads()
        chosen = choose(loads)
        if chosen is not None:
            return chosen
        if all(load is None for load in loads):
            raise media_unavailable()
        raise node_full(f"all {len(loads)} media processes are full")

    async def gather(self, path: str) -> list[httpx.Response | None]:
        """GET `path` from every process (None where one did not answer)."""

        async def one(client: httpx.AsyncClient) -> httpx.Response | None:
            try:
                return await client.get(path, timeout=LOAD_TIMEOUT_S * 4)
            except httpx.HTTPError:
                return None

        return list(await asyncio.gather(*(one(c) for c in self.clients)))

    async def post_all(self, path: str, bodies: list[dict[str, Any]]) -> None:
        """POST bodies[i] to process i (reports; a process restarting misses one)."""

        async def one(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
            try:
                await client.post(path, json=body)
            except httpx.HTTPError as exc:
                log.debug("could not report to a media process: %s", exc)

        await asyncio.gather(*(one(c, b) for c, b in zip(self.clients, bodies, strict=True)))

    async def aclose(self) -> None:
        """Close every connection."""
        for client in self.clients:
            await client.aclose()
