"""What both HTTP apps share: JSON errors, bounded bodies, bearer tokens, space views."""

from __future__ import annotations

import functools
import json
import logging
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ruang.captions.webvtt import CAPTIONS_FILE
from ruang.config import Config
from ruang.errors import ApiError, store_unavailable
from ruang.hls.recording import RECORDING_NAME
from ruang.spaces.model import Role, Space, Speaker, State, iso
from ruang.store.base import Store

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Location, Retry-After, Link",
}


# The pages load only this server's own scripts (no inline script anywhere). hls.js feeds
# Media Source Extensions from blob: URLs and may start its workers from blob:; the
# proof-of-work worker is /static/pow.js. Inline styles are allowed for the incident report,
# which the studio opens as a blob: document (it inherits this policy); scripts stay strict.
CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_SECURITY = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
}


class Preflight:
    """Answers CORS preflight (OPTIONS) for any path at once, so browsers on other origins can
    use WHIP and the API; every other request passes through untouched."""

    HEADERS = [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", b"GET, POST, DELETE, PATCH, OPTIONS"),
        # never Allow-Credentials: another origin can never send the session cookie
        (b"access-control-allow-headers", b"Authorization, Content-Type"),
        (b"access-control-max-age", b"600"),
        (b"content-length", b"0"),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": self.HEADERS})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


def error_response(err: ApiError, cache: str = "no-store") -> JSONResponse:
    """The JSON body every refusal has."""
    headers = {"Cache-Control": cache, **CORS, **err.headers}
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


async def on_api_error(request: Request, exc: Exception) -> Response:
    """Starlette handler for ApiError."""
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 and friends, as JSON."""
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    message = {
        404: f"Nothing is served at {request.url.path}.",
        405: f"{request.method} is not allowed on {request.url.path}.",
    }.get(exc.status_code, str(exc.detail))
    # Starlette's 405 carries Allow (RFC 9110 requires it)
    headers = dict(exc.headers or {})
    err = ApiError(exc.status_code, codes.get(exc.status_code, "http_error"), message, headers)
    return error_response(err, "public, max-age=1" if exc.status_code == 404 else "no-store")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback, answered as JSON so clients can still parse it.
    An unreachable shared store (Redis, several nodes) is not a bug: 503, try again."""
    unavailable = store_unavailable(exc)
    if unavailable is not None:
        log.warning("%s %s: shared state unreachable: %s", request.method, request.url.path, exc)
        return error_response(unavailable)
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    err = ApiError(500, "internal", "The server hit an unexpected error; it has been logged.")
    return error_response(err)


EXCEPTION_HANDLERS: Any = {
    ApiError: on_api_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 beyond `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_length", "Content-Length is not a number.")
        if int(declared) > limit:
            raise ApiError(413, "too_large", f"The body is {declared} bytes; at most {limit}.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"The body is over {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """A JSON object body (an empty body counts as {}), or a clear 4xx."""
    body = await read_body(request, limit)
    return json_object(body, request.headers.get("content-type"))


def json_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The JSON object a request body holds (an empty body counts as {}), or a clear 4xx."""
    if not body.strip():
        return {}
    ctype = (content_type or "application/json").split(";")[0].strip()
    if ctype not in ("application/json", ""):
        raise ApiError(415, "unsupported_media_type", f"Send application/json, not {ctype}.")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"The body is not valid JSON: {exc}") from None
    except RecursionError:  # nested deeper than the parser's stack: bad input, not a bug
        raise ApiError(400, "invalid_json", "The body nests too deeply.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "The body must be a JSON object.")
    try:  # a lone surrogate (\ud800) is valid JSON but no text: it cannot be stored or sent
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_json", "The body holds a lone UTF-16 surrogate.") from None
    return data


def bearer(request: Request) -> str | None:
    """The bearer token of the Authorization header, if any."""
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


# A Host header worth building links on: a DNS name or IPv4 address, or a bracketed IPv6
# address, with an optional port. Anything else (a path, credentials, spaces, a second host)
# is someone trying to make the server hand out links to elsewhere: the default is used.
_SANE_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.?)*|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?"
)
FOLLOWS_HOST = {"Vary": "Host"}  # on cacheable answers whose links follow the Host header


@functools.lru_cache(maxsize=256)
def _base_for_host(default: str, host: str) -> str:
    if len(host) > 261 or not _SANE_HOST.fullmatch(host):
        return default
    return f"http://{host.lower()}"


def link_base(config: Config, host: str | bytes | None) -> str:
    """The URL prefix of the links handed to this client: the configured public URL when there
    is one (behind an edge, with TLS); else the request's own Host when it is a sane
    host[:port] (so a phone on the LAN gets links it can open), else the default."""
    if config.public_url or not host:
        return config.base_url
    if isinstance(host, bytes):
        host = host.decode("latin-1")
    return _base_for_host(config.base_url, host)


def request_base(config: Config, request: Request) -> str:
    """`link_base` for a request to the public port: its own Host (never a client's
    X-Forwarded-Host, which would let anyone choose the links a cache then keeps)."""
    return link_base(config, request.headers.get("host"))


def forwarded_base(config: Config, request: Request) -> str:
    """`link_base` in the media process: the Host the delivery worker saw, which it sets as
    X-Forwarded-Host itself (the control socket is reachable from this machine only)."""
    return link_base(config, request.headers.get("x-forwarded-host"))


def space_urls(config: Config, space_id: str, base: str | None = None) -> dict[str, str]:
    """The public links of a space (under `base`, by default the configured one)."""
    base = base or config.base_url
    return {
        "page_url": f"{base}/s/{space_id}",
        "whip_url": f"{base}/whip/{space_id}",
        "join_url": f"{base}/api/spaces/{space_id}/join",
        "replay_url": f"{base}/hls/{space_id}/replay.m3u8",
    }


def member_view(s: Speaker) -> dict[str, Any]:
    """A stage member as the host sees them."""
    return {
        "id": s.id,
        "name": s.name,
        "role": s.role.value,
        "muted": s.muted,
        "on_stage": s.on_stage,
    }


def space_view(
    config: Config,
    db: Store,
    space: Space,
    viewer: Speaker | None = None,
    base: str | None = None,
) -> dict[str, Any]:
    """A space as JSON: public fields, who is on stage; plus `you` (and for the host, every
    invited speaker) when a stage member asks — the host or a co-host. Links under `base`."""
    base = base or config.base_url
    members = db.speakers(space.id)
    view: dict[str, Any] = {
        "id": space.id,
        "title": space.title,
        "state": space.state.value,
        "created_at": iso(space.created_at),
        "starts_at": iso(space.starts_at),
        "started_at": iso(space.started_at),
        "ended_at": iso(space.ended_at),
        "tags": list(space.tags),
        "visibility": "public" if space.listed else "unlisted",
        **space_urls(config, space.id, base),
        "stage": [
            {"id": m.id, "name": m.name, "role": m.role.value, "muted": m.muted}
            for m in members
            if m.on_stage
        ],
    }
    if space.recording_deleted:  # the host deleted it: nothing recorded is served
        del view["replay_url"]
        view["recording_deleted"] = True
    elif space.state is State.ENDED:
        view["recording_url"] = f"{base}/hls/{space.id}/{RECORDING_NAME}"
    captions = config.spaces_dir / space.id / CAPTIONS_FILE
    if not space.recording_deleted and captions.exists():  # where captions were made, live or ended
        view["captions_url"] = f"{base}/api/spaces/{space.id}/captions.vtt"
    if viewer is not None:
        view["you"] = member_view(viewer)
        if viewer.role in (Role.HOST, Role.COHOST):
            view["speakers"] = [member_view(m) for m in members]
    return view
