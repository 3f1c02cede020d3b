"""The delivery workers' HTTP/1.1 server: listener HLS requests answered straight from the
protocol, everything else handed to the Starlette app through a minimal ASGI bridge.

Why not uvicorn alone: a listener request is tiny (a 1–2 KB playlist or a 4 KB part from
memory), so per-request framework overhead decides how many listeners a node holds. Parsing
is httptools (the parser uvicorn uses), the loop is uvloop; what is hand-written here is only
the dispatch, keep-alive and the timeouts, kept small on purpose.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, unquote

import httptools

from ruang.delivery.guard import (
    Described,
    Guard,
    budget_class,
    describe_parts,
    outcome_of,
    ticketed,
)
from ruang.delivery.hls import HLS_PARAMS, HlsResponse, encode_headers, error_answer
from ruang.delivery.wire import (
    NOTHING,
    REASONS,
    STATUS_LINES,
    Refusal,
    Request,
    content_type,
    has_session,
    head,
    header,
    split_hls_parts,
    split_join,
)
from ruang.errors import ApiError
from ruang.guard.network import network_of
from ruang.guard.shedding import RETRY_AFTER_S, Priority, Shedder, classify
from ruang.hls.recording import RECORDING_NAME

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0  # a request's headers must arrive within this (slowloris)
IDLE_TIMEOUT_S = 30.0  # keep-alive connections idle longer are closed
MAX_BODY_BYTES = 64 * 1024  # larger request bodies are refused with 413
MAX_HEADER_BYTES = 16 * 1024  # URL plus headers
MAX_PIPELINED = 16  # requests queued on one connection before reading pauses
LATE_S = 1.0  # a media request held longer than two 0.512 s parts is late (for the evidence)

HlsHandler = Callable[[str, str | None, str, dict[str, str], str], Awaitable[HlsResponse]]
HlsNow = Callable[[str, str | None, str, dict[str, str]], HlsResponse | None]
# (space, body, content type, client address, Host header: the links follow it)
JoinHandler = Callable[[str, bytes, str | None, str, bytes | None], Awaitable[HlsResponse]]
# the same and a callback: the answer, True if the callback will get it, False if not answered
JoinNow = Callable[
    [str, bytes, str | None, str, bytes | None, Callable[[HlsResponse], None]], HlsResponse | bool
]
AsgiApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]

SHED = HlsResponse(
    503,
    b'{"error":"busy","message":"This server is busy with its listeners; try again shortly."}',
    encode_headers(
        [
            ("Content-Type", "application/json"),
            ("Cache-Control", "no-store"),
            ("Retry-After", str(RETRY_AFTER_S)),
        ]
    ),
)


CACHE_BUST = error_answer(
    ApiError(
        400,
        "cache_bust",
        "Unknown query parameters on a media or playlist URL are refused (cache-busting); "
        "LL-HLS uses only _HLS_msn, _HLS_part and _HLS_skip.",
    ),
    "no-store",
)
KNOWN_PATHS = frozenset({"/", "/healthz", "/openapi.json", "/metrics", "/podcast.xml"})
KNOWN_PREFIXES = ("/hls/", "/api/", "/whip/", "/s/", "/static/")
METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
UNKNOWN_PATH = error_answer(ApiError(404, "not_found", "Nothing is served at this path."))
BAD_URL = error_answer(ApiError(400, "bad_request", "The request URL is not valid."), "no-store")


def declared_too_large(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's Content-Length already says its body is over MAX_BODY_BYTES."""
    for name, value in headers:
        if name == b"content-length" and value.strip().isdigit():
            return int(value) > MAX_BODY_BYTES
    return False


def hls_params(query: bytes) -> dict[str, str]:
    """An HLS request's query parameters, as `parse_qsl` reads them (blank values and names
    without a value left out), without its unquoting when there is nothing to unquote (a
    player's `_HLS_msn=…&_HLS_part=…`)."""
    q = query.decode("latin-1")
    if "%" in q or "+" in q:
        return dict(parse_qsl(q))
    params = {}
    for item in q.split("&"):
        name, _, value = item.partition("=")
        if value:
            params[name] = value
    return params


@dataclass(frozen=True, slots=True)
class Handlers:
    """What the protocol answers itself: HLS requests and joins, each with an inline
    (`*_now`, None when the answer is not ready) and an awaited form; the app gets the rest."""

    hls: HlsHandler
    hls_now: HlsNow
    join: JoinHandler
    join_now: JoinNow
    app: AsgiApp


class HttpProtocol(asyncio.Protocol):
    """One client connection: parse, dispatch in order, keep alive, time out."""

    def __init__(
        self, handlers: Handlers, shedder: Shedder | None = None, guard: Guard | None = None
    ) -> None:
        self._h = handlers
        self._shedder = shedder or Shedder()
        self._guard = guard
        self._in_request = False
        self._completed = 0  # requests this connection finished sending
        self._network = ""  # the peer's /24 or /64, once needed
        self._edge: bool | None = None  # whether the peer is a trusted edge, once needed
        self._loop = asyncio.get_running_loop()  # made by the loop's server, in the loop
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._client = ("", 0)
        self._server = ("", 0)
        self._current = Request()
        self._header_bytes = 0
        self._queue: deque[Request] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._awaiting = False  # a join's answer is on its way (from Redis), written by callback
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._closed = False
        self._paused = False
        self._disconnected = asyncio.Event()

    # -- connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername") or ("", 0)
        sock = transport.get_extra_info("sockname") or ("", 0)
        self._client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else ("", 0)
        self._server = (str(sock[0]), int(sock[1])) if isinstance(sock, tuple) else ("", 0)
        self._arm(HEADER_TIMEOUT_S)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._disconnected.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()

    def _arm(self, seconds: float) -> None:
        """Set the deadline; one timer per connection checks it lazily (no timer churn per
        request on the hot path)."""
        loop = self._loop
        self._deadline = loop.time() + seconds
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._timeout)

    def _timeout(self) -> None:
        loop = asyncio.get_running_loop()
        busy = self._awaiting or (self._worker is not None and not self._worker.done())
        if busy or loop.time() < self._deadline:
            later = max(self._deadline, loop.time() + 1.0) if busy else self._deadline
            self._timer = loop.call_at(later, self._timeout)
            return
        self._timer = None
        if self._in_request or not self._completed:  # too slow to say anything: slowloris?
            self._note(NOTHING, "timeout", self._client[0])
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()  # idle, or headers too slow: no response owed

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, b"upgrade_not_supported", b"This server does not upgrade.")
        except httptools.HttpParserCallbackError as exc:
            r = exc.__context__
            if isinstance(r, Refusal):
                self._refuse(r.status, r.code, r.message)
            else:
                log.error("HTTP parser callback failed", exc_info=exc)
                self._refuse(500, b"internal", b"The server hit an unexpected error.")
        except httptools.HttpParserError:
            self._refuse(400, b"bad_request", b"The request is not valid HTTP/1.1.")

    def _refuse(self, status: int, code: bytes, message: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        self._note(NOTHING, outcome_of(status, code.decode()), self._client[0])
        body = b'{"error":"%s","message":"%s"}' % (code, message)
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        self._transport.write(head(status, headers, len(body), False) + body)
        self._transport.close()

    # -- parser callbacks --------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._current = Request()
        self._in_request = True
        self._header_bytes = 0
        self._arm(HEADER_TIMEOUT_S)

    def on_url(self, url: bytes) -> None:
        self._current.url += url
        self._header_bytes += len(url)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise Refusal(431, b"header_too_large", b"The request line or headers are too large.")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            raise Refusal(431, b"header_too_large", b"The request line or headers are too large.")
        self._current.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        method = self._parser.get_method()
        self._current.method = METHODS.get(method) or method.decode()
        self._current.keep_alive = bool(self._parser.should_keep_alive())
        self._current.http_version = self._parser.get_http_version()
        # refuse now, not once the body came (GETs, the listeners' requests, skip the scan)
        if self._current.method != "GET" and declared_too_large(self._current.headers):
            raise Refusal(413, b"too_large", b"The request body is too large.")

    def on_body(self, body: bytes) -> None:
        self._current.body += body
        if len(self._current.body) > MAX_BODY_BYTES:
            raise Refusal(413, b"too_large", b"The request body is too large.")

    def on_message_complete(self) -> None:
        request = self._current
        self._in_request = False
        self._completed += 1
        self._understand(request)
        working = self._awaiting or (self._worker is not None and not self._worker.done())
        idle = not self._queue and not working
        if idle and (request.refusal is not None or self._answer_now(request)):
            if request.refusal is not None:
                self._write(request, request.refusal)
            self._arm(IDLE_TIMEOUT_S)
            return
        self._queue.append(request)
        if len(self._queue) >= MAX_PIPELINED and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        if not working:
            self._worker = asyncio.get_running_loop().create_task(self._serve_queue())

    # -- dispatch ----------------------------------------------------------------------------
    async def _serve_queue(self) -> None:
        while self._queue and not self._closed:
            request = self._queue.popleft()
            if self._paused and len(self._queue) < MAX_PIPELINED // 2:
                assert self._transport is not None
                self._transport.resume_reading()
                self._paused = False
            try:
                await self._dispatch(request)
            except Exception:
                log.exception("%s %r failed", request.method, request.url)
                self._refuse(500, b"internal", b"The server hit an unexpected error.")
                return
            if not request.keep_alive and self._transport is not None:
                self._transport.close()
                return
        self._arm(IDLE_TIMEOUT_S)

    def _understand(self, request: Request) -> None:
        """Once per request: its path and parameters, who sent it, what it is, and whether
        it is refused before any work (a source over its budget, a cache-busting URL). The
        path is split once; what the connection's peer is (its network, whether it is a
        trusted edge) is worked out once per connection."""
        raw = request.url
        if raw.startswith(b"/") and b"?" not in raw and b"%" not in raw and b"#" not in raw:
            request.path = path = raw.decode("latin-1")  # the common case: nothing to parse
        else:
            try:
                url = httptools.parse_url(raw)
            except httptools.HttpParserInvalidURLError:
                request.refusal = BAD_URL
                return
            request.path = path = unquote(url.path.decode("latin-1"))
            request.query = url.query or b""
        if path not in KNOWN_PATHS and not path.startswith(KNOWN_PREFIXES):
            request.refusal = UNKNOWN_PATH  # no framework for what nothing here answers
        parts = path.split("/")
        if path.startswith("/hls/"):
            request.hls = split_hls_parts(parts)
            if request.query:
                request.params = hls_params(request.query)
                if not HLS_PARAMS.issuperset(request.params):
                    request.refusal = CACHE_BUST
        g = self._guard
        peer = self._client[0]
        if g is None:
            request.ip = peer
            return
        if self._edge is None:
            self._edge = g.trusted(peer)
        forwarded = header(request, b"x-forwarded-for") if self._edge else None
        if forwarded is None:  # the peer itself: worked out once per connection
            if not self._network:
                self._network = network_of(peer)
            request.ip, request.network = peer, self._network
        else:
            request.ip, request.network = g.client(peer, forwarded)
        request.about = about = describe_parts(parts)
        if about.ticket:
            request.listener = about.ticket.split(".", 1)[0]
        if request.refusal is not None or (forwarded is None and self._edge):
            return  # refused already, or our own infrastructure (another node, the edge)
        if about.ticket and ticketed(about.cls):
            # a listener's request is held to one player's pace by its ticket (getting
            # tickets is what the join budget and proof-of-work make expensive); a forged
            # ticket is refused at once, for a microsecond or two
            request.refusal = g.limit_listener_id(request.listener, time.time())
        elif about.cls != "join":  # joins: once their body is read
            # an ended space's replay and recording come without a ticket: the generous
            # per-source "vod" budget, so a client may download a whole replay at once
            cls = budget_class(about)
            if g.shares(cls):
                request.limit_later = True  # a round trip: not on the inline path
            else:
                request.refusal = g.limit(cls, request.ip, request.network, time.time())

    def _answer_now(self, request: Request) -> bool:
        """Answer a listener request or a join inline, without a task, when its answer is
        ready (the common case); False leaves it to the full path."""
        hls = request.hls
        if hls is None:
            if request.method == "POST" and request.path.endswith("/join") and not request.query:
                return self._join_now(request)
            return False
        if request.method not in ("GET", "HEAD"):
            return False
        # admitted listeners are never shed: no pressure check needed
        r = self._h.hls_now(hls[0], hls[1], hls[2], request.params)
        if r is None:
            return False
        self._write(request, r)
        return True

    def _join_now(self, request: Request) -> bool:
        space = split_join(request.path)
        if space is None or self._shedder.refuses(Priority.JOIN) or has_session(request):
            return False
        body, ctype, host = bytes(request.body), content_type(request), header(request, b"host")
        r = self._h.join_now(space, body, ctype, request.ip, host, partial(self._joined, request))
        if r is True:  # the answer comes from Redis; requests after it wait in the queue
            self._awaiting = True
        elif r is not False:
            self._write(request, r)
        return r is not False

    def _joined(self, request: Request, r: HlsResponse) -> None:
        """A join's answer, come back from Redis: written, then the requests behind it."""
        self._awaiting = False
        self._write(request, r)
        if self._closed or self._transport is None or self._transport.is_closing():
            return  # closed (the client asked for it, or left): nothing queued behind is served
        if self._queue:
            self._worker = asyncio.get_running_loop().create_task(self._serve_queue())
        else:
            self._arm(IDLE_TIMEOUT_S)

    async def _dispatch(self, request: Request) -> None:
        if request.limit_later and self._guard is not None:
            request.refusal = await self._guard.limit_async(
                budget_class(request.about), request.ip, request.network, time.time()
            )
        if request.refusal is not None:
            self._write_hls(request, request.refusal)
            return
        path = request.path
        if self._shedder.refuses(classify(request.method, path)):
            # refused before any work: the worker keeps its breath for listeners and joins
            self._write_hls(request, SHED)
            return
        if request.method in ("GET", "HEAD"):
            hls = request.hls
            if hls is not None and hls[2] != RECORDING_NAME:  # the recording: the app's
                began = time.monotonic()
                r = await self._h.hls(hls[0], hls[1], hls[2], request.params, request.ip)
                # a part or segment the player had to wait for too long (or never got) is late
                late = request.about.cls in ("part", "segment") and (
                    r.status == 503 or time.monotonic() - began > LATE_S
                )
                self._write_hls(request, r, late)
                return
        elif request.method == "POST" and not request.query:
            space = split_join(path)
            if space is not None and not has_session(request):  # the app checks blocks
                body, ctype = bytes(request.body), content_type(request)
                host = header(request, b"host")
                self._write_hls(request, await self._h.join(space, body, ctype, request.ip, host))
                return
        await self._asgi(request, path, request.query)

    def _write(self, request: Request, r: HlsResponse) -> None:
        """An inline answer, then the connection closed if the client asked for that."""
        self._write_hls(request, r)
        if not request.keep_alive and self._transport is not None:
            self._transport.close()

    def _note(
        self,
        about: Described,
        outcome: str,
        ip: str,
        network: str = "",
        listener: str = "",
        late: bool = False,
        ticket: str | None = None,
        carried: str | None = None,
    ) -> None:
        """Tell the traffic recorder how a request ended."""
        if self._guard is not None:
            network = network or network_of(ip)
            self._guard.record(
                time.time(), about, outcome, ip, network, listener or None, late, ticket, carried
            )

    def _write_hls(self, request: Request, r: HlsResponse, late: bool = False) -> None:
        g = self._guard
        if g is not None:
            outcome = "ok" if r.status == 200 and not r.code else outcome_of(r.status, r.code)
            about, listener = request.about, request.listener
            if not listener:  # no ticket (or one naming nobody: "" is still its id)
                ticket = "" if about.ticket else None
                self._note(about, outcome, request.ip, request.network, r.listener, late, ticket)
            elif outcome == "rate_limited" and about.space and about.ticket:
                # refused before its ticket was checked: what did it carry? (the evidence
                # of a flood the per-ticket budget stopped first, issue #11)
                carried = g.carried(about.ticket, about.space, time.time())
                ip, network = request.ip, request.network
                self._note(about, outcome, ip, network, r.listener, late, listener, carried)
            elif r.listener:
                self._note(about, outcome, request.ip, request.network, r.listener, late, listener)
            else:  # a listener's request: counted in its tally for the second
                g.recorder.listened(
                    time.time(),
                    about.space,
                    about.cls,
                    outcome,
                    request.ip,
                    request.network,
                    listener,
                    late,
                )
        if self._transport is None or self._transport.is_closing():
            return
        status = STATUS_LINES.get(r.status) or b"HTTP/1.1 %d %s\r\n" % (
            r.status,
            REASONS.get(r.status, b"Unknown"),
        )
        tail = b"content-length: %d\r\n\r\n" % len(r.body)
        if not request.keep_alive:
            tail = b"connection: close\r\n" + tail
        head = status + r.headers + tail
        self._transport.write(head if request.method == "HEAD" else head + r.body)

    async def _asgi(self, request: Request, path: str, query: bytes) -> None:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": request.http_version,
            "method": request.method,
            "scheme": "http",
            "path": path,
            "raw_path": request.url.split(b"?", 1)[0],
            "query_string": query,
            "root_path": "",
            "headers": request.headers,
            # the source the guard worked out (a trusted edge's client, else the peer), so
            # the app and the media process behind it see who really asks
            "client": (request.ip or self._client[0], self._client[1]),
            "server": self._server,
        }
        body_sent = False
        started = False

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": bytes(request.body), "more_body": False}
            await self._disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal started
            transport = self._transport
            if transport is None or transport.is_closing():
                return
            if message["type"] == "http.response.start":
                started = True
                if self._guard is not None:
                    outcome = outcome_of(message["status"])
                    self._note(request.about, outcome, request.ip, request.network)
                headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", [])]
                has_length = any(k == b"content-length" for k, _ in headers)
                if not has_length:
                    request.keep_alive = False  # no length, no chunking: end marks the body
                transport.write(head(message["status"], headers, None, request.keep_alive))
            elif message["type"] == "http.response.body" and request.method != "HEAD":
                transport.write(message.get("body", b""))

        try:
            await self._h.app(scope, receive, send)
        except Exception:
            # Starlette re-raises after it has sent its JSON 500 (and logged it): one answer
            # per request, so only answer here if nothing was sent.
            if started:
                return
            raise
        if not started:
            self._refuse(500, b"internal", b"The application sent no response.")
