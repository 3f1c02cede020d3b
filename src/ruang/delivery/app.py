"""The public app, run by the delivery workers: pages, space metadata, join, HLS, and a proxy
to the media process for everything that changes a space (rare, small requests)."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ruang.config import Config
from ruang.delivery.files import SpaceFiles
from ruang.errors import ApiError, not_found
from ruang.guard.admission import Admission, Limits, Waiting
from ruang.guard.tickets import TicketError, TicketSigner, load_or_create_key
from ruang.spaces.model import ID_PATTERN, Space, State
from ruang.store.sqlite import SpaceStore
from ruang.web.common import (
    CORS,
    EXCEPTION_HANDLERS,
    NO_STORE,
    Preflight,
    error_response,
    read_json,
    space_view,
)
from ruang.web.openapi import OPENAPI

IMMUTABLE = "public, max-age=31536000, immutable"
LIVE_PLAYLIST = "public, max-age=1"  # about one part
BLOCKING_PLAYLIST = "public, max-age=6"  # a blocking answer never changes; edges may keep it
ERROR_CACHE = "public, max-age=1"
METADATA_CACHE = "public, max-age=2"
_MEDIA_NAME = re.compile(r"^(?:init\.mp4|\d{1,9}(?:\.\d{1,2})?\.m4s)$")
_PART_NAME = re.compile(r"^(\d{1,9})\.(\d{1,2})\.m4s$")
_PROXY_HEADERS = ("authorization", "content-type", "content-length", "accept")
_PROXY_BACK = (
    "content-type",
    "location",
    "www-authenticate",
    "cache-control",
    "allow",
    "retry-after",
)
STATIC = Path(str(resources.files("ruang.web") / "static"))


def _hls_error(err: ApiError) -> Response:
    return error_response(err, ERROR_CACHE)


def _int_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "bad_query", f"{name}={raw!r} is not a non-negative integer.")
    return int(raw)


def network_of(request: Request) -> str:
    """The caller's network: its /24 (IPv4) or /64 (IPv6), the unit of fairness and limits."""
    host = request.client.host if request.client else "0.0.0.0"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def build_delivery_app(config: Config) -> Starlette:
    """The Starlette app a delivery worker serves on the public port."""
    db = SpaceStore(config.db_path)
    files = SpaceFiles(config.spaces_dir)
    key = load_or_create_key(config.ticket_key_path, config.ticket_key)
    signer = TicketSigner(key, config.ticket_ttl_s)
    admission = Admission(
        Limits(config.max_listeners, config.joins_per_s, max(1, int(config.joins_per_s))),
        key,
        time.time(),
    )
    control = httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(uds=str(config.control_socket)),
        base_url="http://control",
        timeout=httpx.Timeout(20.0),
    )

    def known_space(space_id: str) -> Space:
        space = db.get_space(space_id) if ID_PATTERN.match(space_id) else None
        if space is None:
            raise not_found(f"Space {space_id!r}")
        return space

    def page(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return FileResponse(STATIC / name, headers={"Cache-Control": "public, max-age=60"})

        return endpoint

    async def get_space(request: Request) -> Response:
        if request.headers.get("authorization"):
            return await proxy(request)  # a stage member's view is the media process's
        space = known_space(request.path_params["space_id"])
        return JSONResponse(
            space_view(config, db, space), headers={"Cache-Control": METADATA_CACHE, **CORS}
        )

    async def join(request: Request) -> Response:
        space = known_space(request.path_params["space_id"])
        data = await read_json(request, config.max_body_bytes)
        now = time.time()
        listener = renewing(space.id, data.get("ticket"), now)
        if listener is None:
            if space.state is State.SCHEDULED:
                admission.schedule(space.id)
            else:
                admission.start(space.id)
            queue = data.get("queue")
            decision = admission.join(
                space.id, network_of(request), queue if isinstance(queue, str) else None, now
            )
            if isinstance(decision, Waiting):
                body: dict[str, Any] = {
                    "space_id": space.id,
                    "state": space.state.value,
                    "position": decision.position,
                    "estimated_wait_s": decision.estimated_wait_s,
                    "queue": decision.token,
                    "retry_after": decision.retry_after_s,
                }
                headers = {**NO_STORE, **CORS, "Retry-After": str(decision.retry_after_s)}
                return JSONResponse(body, status_code=202, headers=headers)
        ticket = signer.issue(space.id, now, listener)
        admission.seen(space.id, ticket.split(".", 1)[0], now)
        base = f"{config.base_url}/hls/{space.id}/t/{ticket}"
        playlist = "replay.m3u8" if space.state is State.ENDED else "live.m3u8"
        body = {
            "space_id": space.id,
            "state": space.state.value,
            "listen_url": f"{base}/{playlist}",
            "replay_url": f"{base}/replay.m3u8",
            "ticket": ticket,
            "expires_in_s": signer.ttl_s,
            "renew_after_s": signer.ttl_s // 2,
        }
        return JSONResponse(body, headers={**NO_STORE, **CORS})

    def renewing(space_id: str, ticket: object, now: float) -> str | None:
        """The listener id of a still-valid ticket being renewed (renewals skip the line)."""
        if not isinstance(ticket, str):
            return None
        try:
            return signer.verify(ticket, space_id, now).listener
        except TicketError:
            return None

    async def hls_ticketed(request: Request) -> Response:
        space_id, name = request.path_params["space_id"], request.path_params["name"]
        now = time.time()
        try:
            ticket = signer.verify(request.path_params["ticket"], space_id, now)
        except TicketError as exc:
            status = 401 if exc.code in ("missing", "expired") else 403
            return error_response(ApiError(status, f"ticket_{exc.code}", exc.message), "no-store")
        if name.endswith(".m3u8"):
            admission.seen(space_id, ticket.listener, now)
        return await serve_hls(request, space_id, name)

    async def hls(request: Request) -> Response:
        space_id, name = request.path_params["space_id"], request.path_params["name"]
        return await serve_hls(request, space_id, name)

    async def serve_hls(request: Request, space_id: str, name: str) -> Response:
        try:
            if not ID_PATTERN.match(space_id):
                raise not_found(f"Space {space_id!r}")
            if name == "live.m3u8":
                return await live_playlist(request, space_id)
            if name == "replay.m3u8":
                data = files.replay(space_id)
                if data is None:
                    raise not_found(f"The replay of space {space_id!r}")
                ended = b"#EXT-X-ENDLIST" in data
                return playlist_response(data, "public, max-age=300" if ended else LIVE_PLAYLIST)
            if not _MEDIA_NAME.match(name):
                raise not_found(f"{name!r}")
            return await media(space_id, name)
        except ApiError as err:
            return _hls_error(err)

    async def live_playlist(request: Request, space_id: str) -> Response:
        msn, part = _int_param(request, "_HLS_msn"), _int_param(request, "_HLS_part")
        pl = files.live(space_id)
        if not pl.text:
            raise not_found(f"A live playlist for space {space_id!r}")
        if msn is None:
            if part is not None:
                raise ApiError(400, "bad_query", "_HLS_part needs _HLS_msn.")
            if pl.next_part is not None and pl.next_part[0] == 0:
                # Not one whole segment yet (the space has just started): hold the request
                # until there is, so that players that do not know parts (ffmpeg, VLC) can start.
                await files.wait_for(pl, 0, None, config.blocking_timeout_s)
            return playlist_response(pl.text, LIVE_PLAYLIST)
        if pl.next_part is not None and msn > pl.next_part[0] + 2:
            raise ApiError(
                400,
                "too_far_ahead",
                f"_HLS_msn={msn} is more than two segments beyond the live edge.",
            )
        if not await files.wait_for(pl, msn, part, config.blocking_timeout_s):
            raise ApiError(
                503, "part_late", "The requested part did not arrive in time.", {"Retry-After": "1"}
            )
        return playlist_response(pl.text, BLOCKING_PLAYLIST)

    async def media(space_id: str, name: str) -> Response:
        data = files.media(space_id, name)
        if data is None:
            m = _PART_NAME.match(name)
            pl = files.live(space_id)
            if m and pl.next_part is not None:
                # The preload hint names the next part: hold the request until it exists.
                wanted = (int(m.group(1)), int(m.group(2)))
                if wanted <= pl.next_part and await files.wait_for(
                    pl, wanted[0], wanted[1], config.blocking_timeout_s
                ):
                    data = files.media(space_id, name)
            if data is None:
                raise not_found(f"{name!r} of space {space_id!r}")
        ctype = "audio/mp4" if name.endswith(".m4s") or name.endswith(".mp4") else "video/mp4"
        return Response(data, media_type=ctype, headers={"Cache-Control": IMMUTABLE, **CORS})

    def playlist_response(data: bytes, cache: str) -> Response:
        return Response(
            data,
            media_type="application/vnd.apple.mpegurl",
            headers={"Cache-Control": cache, **CORS},
        )

    async def proxy(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k in _PROXY_HEADERS}
        if request.client is not None:
            headers["x-forwarded-for"] = request.client.host
        try:
            upstream = await control.request(
                request.method,
                request.url.path,
                params=request.query_params,
                headers=headers,
                content=request.stream(),
            )
        except httpx.HTTPError:
            return error_response(
                ApiError(
                    503,
                    "media_unavailable",
                    "The media process is not answering; try again.",
                    {"Retry-After": "2"},
                )
            )
        back = {k: v for k, v in upstream.headers.items() if k in _PROXY_BACK}
        return Response(
            upstream.content, status_code=upstream.status_code, headers={**back, **CORS}
        )

    async def preflight(request: Request) -> Response:
        return Response(
            status_code=204,
            headers={
                **CORS,
                "Access-Control-Allow-Methods": "GET, POST, DELETE, PATCH, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI, headers={"Cache-Control": "public, max-age=300"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await control.aclose()
        db.close()

    s = "/api/spaces/{space_id}"
    return Starlette(
        routes=[
            Route("/", page("index.html")),
            Route("/s/{space_id}", page("listen.html")),
            Route("/s/{space_id}/host", page("studio.html")),
            Route("/s/{space_id}/speak", page("studio.html")),
            Mount("/static", StaticFiles(directory=STATIC)),
            Route("/healthz", healthz),
            Route("/openapi.json", openapi),
            Route("/metrics", proxy),
            Route(s, get_space, methods=["GET"]),
            Route(s + "/join", join, methods=["POST"]),
            Route("/hls/{space_id}/t/{ticket}/{name}", hls_ticketed, methods=["GET", "HEAD"]),
            Route("/hls/{space_id}/{name}", hls, methods=["GET", "HEAD"]),
            Route("/api/{path:path}", proxy, methods=["GET", "POST", "DELETE", "PATCH"]),
            Route("/whip/{path:path}", proxy, methods=["POST", "DELETE", "PATCH"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(Preflight)],
        lifespan=lifespan,
    )
