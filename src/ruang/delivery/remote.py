"""HLS of spaces whose pipeline runs on another node: fetched from that node's public port.

A delivery worker asked for a space it does not run asks the owner (found through the shared
store, remembered for a few seconds) with the listener's ticket — every node shares the ticket
key — and the same LL-HLS query, so blocking reload works through it. Identical requests in
flight are coalesced into one upstream request; parts, segments and init are immutable and kept
in memory, so each crosses between nodes once per worker.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

import httpx

from ruang.delivery.hls import NODE_PARAM, HlsResponse, encode_headers
from ruang.errors import ApiError

FORWARDED = "x-ruang-forwarded"  # a control request one node forwards to another (not again)
OWNER_CACHE_S = 2.0  # how long a worker remembers which node runs a space, seconds
MEDIA_CACHE_BYTES = 64 * 1024 * 1024  # remote immutable media kept per worker
BLOCKING_KEEP_S = 6.0  # a blocking playlist answer (_HLS_msn) never changes: reuse it this long
PLAYLIST_KEEP_S = 0.25  # a plain live playlist is reused this long (half a part)
ANSWERS_MAX = 10_000  # playlist answers kept per worker before expired ones are swept
_KEEP = ("content-type", "cache-control", "retry-after")
CORS = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", "Location")]
UNAVAILABLE = (
    b'{"error":"node_unavailable","message":"The node running this space is not answering."}'
)


class RemoteOrigin:
    """Fetches other nodes' spaces for one delivery worker."""

    def __init__(
        self,
        owner_of: Callable[[str], str | None],
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._owner_of = owner_of
        self._owners: dict[str, tuple[float, str | None]] = {}
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=256),
            transport=transport,
        )
        self._answers: dict[str, tuple[float, HlsResponse]] = {}  # recent playlist answers
        self.upstream_requests = 0
        self._media: OrderedDict[str, bytes] = OrderedDict()
        self._media_bytes = 0
        self._inflight: dict[str, asyncio.Task[HlsResponse]] = {}

    async def aclose(self) -> None:
        """Close the connections to the other nodes."""
        await self._client.aclose()

    def owner(self, space_id: str) -> str | None:
        """The base URL of the node running the space, or None when it is this node."""
        now = time.monotonic()
        hit = self._owners.get(space_id)
        if hit is not None and now - hit[0] < OWNER_CACHE_S:
            return hit[1]
        try:
            node = self._owner_of(space_id)
        except Exception as exc:  # the shared store is unreachable: keep what was known
            if hit is not None:
                return hit[1]
            raise ApiError(
                503,
                "store_unavailable",
                "Shared state is unreachable; try again.",
                {"Retry-After": "2"},
            ) from exc
        self._owners[space_id] = (now, node)
        return node

    def forget(self, space_id: str) -> None:
        """Ask the store again next time (the space changed state)."""
        self._owners.pop(space_id, None)

    def cached(self, space_id: str, name: str) -> bytes | None:
        """Immutable media of a remote space already fetched."""
        return self._media.get(f"{space_id}/{name}")

    async def fetch(
        self,
        node: str,
        space_id: str,
        ticket: str | None,
        name: str,
        query: Mapping[str, str],
        immutable: bool,
    ) -> HlsResponse:
        """The owner's answer to the same request (coalesced with identical ones in flight)."""
        qs = "&".join(f"{k}={v}" for k, v in sorted(query.items()) if k.startswith("_HLS_"))
        key = f"{space_id}/{name}" + (f"?{qs}" if qs else "") + ("" if ticket else "#bare")
        if immutable:
            data = self._media.get(key)
            if data is not None:
                return _response(200, data, {"content-type": "audio/mp4"}, immutable=True)
        else:
            kept = self._answers.get(key)
            if kept is not None and time.monotonic() < kept[0]:
                return kept[1]
        task = self._inflight.get(key)
        if task is None:
            path = f"/hls/{space_id}/t/{ticket}/{name}" if ticket else f"/hls/{space_id}/{name}"
            url = f"{node}{path}?{qs + '&' if qs else ''}{NODE_PARAM}=1"
            keep = BLOCKING_KEEP_S if "_HLS_msn" in query else PLAYLIST_KEEP_S
            task = asyncio.ensure_future(self._get(url, key, immutable, keep))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def fetch_events(self, node: str, space_id: str, after: int | None) -> HlsResponse:
        """The owner's event-stream answer for subscribers whose last id is `after`: one
        upstream request per (space, id) in flight, however many of this node's subscribers
        wait for it (the owner holds it until its next batch)."""
        key = f"{space_id}/events?after={'' if after is None else after}"
        task = self._inflight.get(key)
        if task is None:
            url = f"{node}/api/spaces/{space_id}/events"
            if after is not None:
                url += f"?after={after}"
            task = asyncio.ensure_future(self._get(url, key, False, 0.0))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _get(self, url: str, key: str, immutable: bool, keep_s: float) -> HlsResponse:
        self.upstream_requests += 1
        try:
            r = await self._client.get(url)
        except httpx.HTTPError:
            json_503 = {"content-type": "application/json", "retry-after": "1"}
            return _response(503, UNAVAILABLE, json_503)
        answer = _response(r.status_code, r.content, r.headers)
        if r.status_code == 200 and not immutable and key.split("?")[0].endswith("live.m3u8"):
            now = time.monotonic()
            if len(self._answers) >= ANSWERS_MAX:
                self._answers = {k: v for k, v in self._answers.items() if v[0] > now}
            self._answers[key] = (now + keep_s, answer)
        if r.status_code == 200 and immutable:
            self._media[key] = r.content
            self._media_bytes += len(r.content)
            while self._media_bytes > MEDIA_CACHE_BYTES:
                _, old = self._media.popitem(last=False)
                self._media_bytes -= len(old)
        return answer


def _response(
    status: int, body: bytes, headers: Mapping[str, str], immutable: bool = False
) -> HlsResponse:
    kept = [(k.title(), v) for k, v in headers.items() if k.lower() in _KEEP]
    if immutable:
        kept.append(("Cache-Control", "public, max-age=31536000, immutable"))
    elif not any(k == "Cache-Control" for k, _ in kept):
        kept.append(("Cache-Control", "public, max-age=1"))
    return HlsResponse(status, body, encode_headers(kept + CORS))
