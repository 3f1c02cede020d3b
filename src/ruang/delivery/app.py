"""The public app, run by the delivery workers: pages, space metadata, join, HLS, and a proxy
to the media process for everything that changes a space (rare, small requests)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ruang.backends import Backends
from ruang.config import Config
from ruang.delivery.calendar import calendar_text
from ruang.delivery.captions import captions_response
from ruang.delivery.clips import Clips
from ruang.delivery.events import EventStream
from ruang.delivery.files import SpaceFiles
from ruang.delivery.gate import Gate
from ruang.delivery.guard import Guard
from ruang.delivery.hls import HlsService, gone_error
from ruang.delivery.joins import JoinService
from ruang.delivery.placement import MediaProcesses, choose_node, no_cookies
from ruang.delivery.podcast import PodcastFeeds
from ruang.delivery.reactions import Reactions, ticket_holder
from ruang.delivery.recordings import NothingRecorded, Recordings, unsatisfiable
from ruang.delivery.remote import FORWARDED, RemoteOrigin
from ruang.delivery.timeline import Timelines
from ruang.errors import ApiError, media_unavailable, not_found, store_unavailable
from ruang.guard.admission import Limits
from ruang.guard.cells import NodeMemory
from ruang.guard.creation import creation_gate
from ruang.guard.sessions import SessionSigner, cookie_value, csrf_refusal, origin_of
from ruang.guard.shedding import Shedder
from ruang.guard.tickets import load_or_create_key
from ruang.hls.recording import RecordingInfo, replay_durations
from ruang.spaces.model import ID_PATTERN, Space, State, iso
from ruang.spaces.permissions import Action, actor_of, check
from ruang.web.common import (
    CORS,
    EXCEPTION_HANDLERS,
    FOLLOWS_HOST,
    NO_STORE,
    PAGE_SECURITY,
    Preflight,
    bearer,
    error_response,
    read_body,
    read_json,
    request_base,
    space_urls,
    space_view,
)
from ruang.web.metrics import merge_expositions
from ruang.web.openapi import OPENAPI

log = logging.getLogger(__name__)
METADATA_CACHE = "public, max-age=2"
METADATA_CACHE_PRESSED = "public, max-age=30"  # under pressure, edges keep metadata longer
PAGE_CACHE = "public, max-age=60"
CALENDAR_CACHE = "public, max-age=300"  # an .ics never changes once the space exists
# the recording never changes once made; only its deletion ends it (the shipped edge keeps it
# at most a minute, so a deletion reaches its listeners within one; deploy/nginx)
RECORDING_CACHE = "public, max-age=86400"
_RECORDING_BACK = (
    "content-type",
    "content-range",
    "accept-ranges",
    "cache-control",
    "content-disposition",
    "etag",
    "last-modified",
)
# cookie, origin and sec-fetch-site: the media process checks sessions and forgery (issue #9)
_PROXY_HEADERS = (
    "authorization",
    "content-type",
    "content-length",
    "accept",
    "cookie",
    "origin",
    "sec-fetch-site",
)
_PROXY_BACK = (
    "set-cookie",
    "content-type",
    "location",
    "www-authenticate",
    "cache-control",
    "allow",
    "retry-after",
)
END_TRIES, END_RETRY_S = 20, 0.5  # making the recording at the end: tries, seconds apart
_END_PATH = re.compile(r"^/api/spaces/[a-z0-9]{10}/end$")
_OWNED_PATH = re.compile(r"^/(?:api/spaces|whip)/([a-z0-9]{10})(?:/|$)")
SPACE_CACHE_S = 5.0  # with Redis, a worker remembers a space this long (events invalidate it)
SPACE_RECHECK_S = 0.05  # one node: a remembered space is rechecked against the store this often
SPACE_CACHE_MAX = 100_000
STATIC = Path(str(resources.files("ruang.web") / "static"))


def supervisor_status(config: Config) -> dict[str, Any] | None:
    """What the supervisor last wrote of itself (restarts), or None."""
    try:
        return dict(json.loads((config.data_dir / "supervisor.json").read_text()))
    except (OSError, ValueError):
        return None


def build_delivery_app(
    config: Config, backends: Backends, worker: int = 0, memory: NodeMemory | None = None
) -> Starlette:
    """The Starlette app delivery worker number `worker` serves on the public port, on the
    process's shared services (`backends`) and the node's shared guard memory (`memory`)."""
    db = backends.store()
    files = SpaceFiles(config.spaces_dir)
    key = load_or_create_key(config.ticket_key_path, config.ticket_key)
    limits = Limits(config.max_listeners, config.joins_per_s, max(1, int(config.joins_per_s)))
    now = time.time()
    memory = memory if memory is not None else NodeMemory()
    admission = backends.admission(limits, key, now, memory)
    gate = Gate(key, config.ticket_ttl_s, limits, now, admission)
    media = MediaProcesses(config)
    peers = httpx.AsyncClient(timeout=httpx.Timeout(20.0), cookies=no_cookies())  # other nodes
    # Nodes prove a forwarded request is theirs with a value derived from the shared key, so a
    # client cannot make a node act on a space another node runs.
    hop = hmac.new(key, b"ruang.forwarded", hashlib.sha256).hexdigest()[:32]
    sessions = SessionSigner(key, secure=config.base_url.startswith("https://"))

    # Several nodes: spaces run elsewhere are fetched from (and controlled on) their node, and
    # spaces are remembered for a few seconds (state changes arrive by pub/sub at once).
    several = backends.multi_node
    remote = RemoteOrigin(db.owner, config.blocking_timeout_s + 4) if several else None
    spaces: dict[str, tuple[float, Space]] = {}
    cache_s = SPACE_CACHE_S if several else SPACE_RECHECK_S
    seen_version: list[int | None] = [db.changes()]

    def find_space(space_id: str) -> Space | None:
        if not ID_PATTERN.match(space_id):
            return None
        now = time.monotonic()
        hit = spaces.get(space_id)
        if hit is not None and now - hit[0] < cache_s:
            return hit[1]
        if hit is not None and remote is None:  # one node: still good unless the store moved
            version = db.changes()
            if version == seen_version[0]:
                spaces[space_id] = (now, hit[1])
                return hit[1]
            seen_version[0] = version
            spaces.clear()
        try:
            space = db.get_space(space_id)
        except Exception as exc:
            if hit is None or store_unavailable(exc) is None:
                raise
            return hit[1]  # the shared store is unreachable: admitted listeners keep playing
        if space is not None:
            if len(spaces) > SPACE_CACHE_MAX:
                spaces.clear()
            spaces[space_id] = (now, space)
        return space

    def space_changed(space_id: str, state: str) -> None:
        spaces.pop(space_id, None)
        if remote is not None:
            remote.forget(space_id)

    shedder = Shedder()
    hls_service = HlsService(config, files, gate, find_space, shedder, remote)
    shared = backends.shared_limiter(memory.limits())
    guard = Guard(config, key, gate.admission, shedder, worker, shared, memory, gate.signer)
    joins = JoinService(config, gate, find_space, shedder, guard)
    creation = creation_gate(config, db)
    events = EventStream(config.spaces_dir, find_space, remote)
    recordings = Recordings(config.spaces_dir)
    reactions = Reactions(ticket_holder(gate.signer), find_space)
    clips = Clips(config.spaces_dir, config.base_url)  # links: the request's (request_base)
    listener_of = ticket_holder(gate.signer)

    def known_space(space_id: str) -> Space:
        space = find_space(space_id)
        if space is None:
            raise not_found(f"Space {space_id!r}")
        return space

    def page(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            headers = {"Cache-Control": PAGE_CACHE, **PAGE_SECURITY}
            return FileResponse(STATIC / name, headers=headers)

        return endpoint

    async def get_space(request: Request) -> Response:
        if request.headers.get("authorization"):
            return await proxy(request)  # a stage member's view is the media process's
        space = known_space(request.path_params["space_id"])
        cache = METADATA_CACHE_PRESSED if shedder.cache_longer else METADATA_CACHE
        view = space_view(config, db, space, None, request_base(config, request))
        return JSONResponse(view, headers={"Cache-Control": cache, **FOLLOWS_HOST, **CORS})

    async def calendar(request: Request) -> Response:
        space = known_space(request.path_params["space_id"])
        page_url = space_urls(config, space.id, request_base(config, request))["page_url"]
        text = calendar_text(space, page_url)
        headers = {
            "Cache-Control": CALENDAR_CACHE,
            **FOLLOWS_HOST,
            "Content-Disposition": f'attachment; filename="ruang-{space.id}.ics"',
            **CORS,
        }
        return Response(text, media_type="text/calendar; charset=utf-8", headers=headers)

    timelines = Timelines(config.spaces_dir, db)

    async def space_timeline(request: Request) -> Response:
        space = known_space(request.path_params["space_id"])
        if space.recording_deleted:
            raise gone_error()
        body, cache = await timelines.answer(space)
        headers = {"Cache-Control": cache, **CORS}
        return Response(body, media_type="application/json", headers=headers)

    async def captions(request: Request) -> Response:
        space = known_space(request.path_params["space_id"])
        if space.recording_deleted:  # deleted with the recording
            raise gone_error()
        return await captions_response(config.spaces_dir, space)

    async def join(request: Request) -> Response:
        # Joins with a session cookie come here, not the inline path (HttpProtocol): a session
        # blocked in this space gets no new ticket. Anonymous joins cannot be told apart.
        held = sessions.verify(cookie_value(request.headers.get("cookie")), time.time())
        space_id = request.path_params["space_id"]
        if (
            held is not None
            and ID_PATTERN.match(space_id)
            and await asyncio.to_thread(db.is_blocked, space_id, held.identity)
        ):
            raise ApiError(
                403, "blocked", "You are blocked in this space (by its host or a co-host)."
            )
        body = await read_body(request, config.max_body_bytes)
        client = request.client.host if request.client else ""
        h = request.headers
        sid = request.path_params["space_id"]
        r = await joins.handle(sid, body, h.get("content-type"), client, h.get("host"))
        return Response(r.body, status_code=r.status, headers=r.header_dict())

    async def hls(request: Request) -> Response:
        p = request.path_params
        host = request.client.host if request.client else None
        r = await hls_service.handle(
            p["space_id"], p.get("ticket"), p["name"], request.query_params, host or ""
        )
        return Response(r.body, status_code=r.status, headers=r.header_dict())

    def recording_info(space: Space) -> RecordingInfo:
        """The recording's metadata: title, start, the names of everyone who had a seat on
        the stage (the host first), and where it was (called on a thread)."""
        names = list(dict.fromkeys(m.name for m in db.speakers(space.id) if m.name))
        page = space_urls(config, space.id)["page_url"]
        when = iso(space.started_at or space.created_at) or ""
        return RecordingInfo(space.title, when, names, f"Recorded live on Ruang: {page}")

    background: set[asyncio.Task[Any]] = set()
    feeds = PodcastFeeds(config, db)

    def soon(work: Coroutine[Any, Any, Any]) -> None:
        """Run work in the background, kept until it is done (its failure only logged)."""
        task = asyncio.ensure_future(work)
        background.add(task)
        task.add_done_callback(background.discard)

    async def made_recording(space: Space) -> Path:
        """The recording's file, made first if needed, its size and length noted in the
        store (for podcast feeds) the first time. Raises as Recordings.ensure does."""
        path = await recordings.ensure(space.id, lambda: recording_info(space))
        if not space.recording_bytes:
            playlist = await asyncio.to_thread((path.parent / "replay.m3u8").read_text)
            seconds = sum(d for _, d in replay_durations(playlist))
            await asyncio.to_thread(db.set_recording, space.id, path.stat().st_size, seconds)
            spaces.pop(space.id, None)
            feeds.forget()
        return path

    async def make_recording(space_id: str) -> None:
        """After the end: the recording made at once rather than at the first download."""
        space = await asyncio.to_thread(db.get_space, space_id)
        if space is None or space.state is not State.ENDED or space.recording_deleted:
            return
        for attempt in range(END_TRIES):  # the media process may still be closing the replay
            try:
                await made_recording(space)
                return
            except NothingRecorded as exc:
                if attempt == END_TRIES - 1:
                    log.info("space %s: no recording made at its end: %s", space_id, exc)
                await asyncio.sleep(END_RETRY_S)
            except OSError as exc:
                log.info("space %s: no recording made at its end: %s", space_id, exc)
                return
            except Exception:
                log.exception("space %s: making its recording failed", space_id)
                return

    async def recording(request: Request) -> Response:
        """GET/HEAD /hls/{id}/recording.m4a: the whole space as one .m4a, made on the first
        request (on the node holding its files), with byte ranges."""
        space = known_space(request.path_params["space_id"])
        if space.recording_deleted:
            raise gone_error()
        if space.state is not State.ENDED:
            raise ApiError(
                409,
                "not_ended",
                "The recording is made once the space has ended; until then, listen live.",
            )
        node = None if remote is None or from_node(request) else remote.owner(space.id)
        if node is not None:  # its files are on that node: its answer, range and all
            asked = {FORWARDED: hop}
            if request.headers.get("range"):
                asked["range"] = request.headers["range"]
            try:
                upstream = await peers.request(
                    request.method, f"{node}{request.url.path}", headers=asked
                )
            except httpx.HTTPError:
                return error_response(media_unavailable())
            back = {k: v for k, v in upstream.headers.items() if k in _RECORDING_BACK}
            return Response(upstream.content, upstream.status_code, {**back, **CORS})
        try:
            path = await made_recording(space)
        except NothingRecorded:
            raise not_found(f"A recording of space {space.id!r}") from None
        except FileNotFoundError:  # its folder went away: deleted meanwhile?
            fresh = await asyncio.to_thread(db.get_space, space.id)
            if fresh is not None and fresh.recording_deleted:
                raise gone_error() from None
            raise not_found(f"A recording of space {space.id!r}") from None
        refusal = unsatisfiable(request.headers.get("range"), path.stat().st_size)
        if refusal is not None:
            raise refusal
        headers = {
            "Cache-Control": RECORDING_CACHE,
            "Content-Disposition": f'inline; filename="ruang-{space.id}.m4a"',
            **CORS,
        }
        return FileResponse(path, media_type="audio/mp4", headers=headers)

    async def delete_recording(request: Request) -> Response:
        """DELETE /api/spaces/{id}/recording (the host, once ended): the store marks it
        deleted first, so every worker and node answers 410 from its next look (at once on
        this node; Redis tells the others), then the space's folder goes, on the node that
        holds it."""
        node = owner_of_path(request)
        if node is not None:
            return await proxy(request, to_node=node)
        space_id = request.path_params["space_id"]
        space = (
            await asyncio.to_thread(db.get_space, space_id) if ID_PATTERN.match(space_id) else None
        )
        if space is None:
            raise not_found(f"Space {space_id!r}")
        token = bearer(request)
        caller = await asyncio.to_thread(db.speaker_by_token, space_id, token) if token else None
        role = caller.role if caller is not None and not caller.removed else None
        session = sessions.verify(cookie_value(request.headers.get("cookie")), time.time())
        refusal = check(actor_of(role, session is not None), Action.DELETE_RECORDING)
        if refusal is not None:
            raise ApiError(refusal.status, refusal.code, refusal.message)
        if space.state is not State.ENDED:
            raise ApiError(
                409,
                "not_ended",
                "The recording can be deleted once the space has ended: end it first.",
            )
        if not space.recording_deleted:
            await asyncio.to_thread(db.delete_recording, space_id)
            log.info("space %s: recording deleted by the host", space_id)
        spaces.pop(space_id, None)
        feeds.forget()
        files.forget(space_id)  # the other workers' copies age out of their caches
        await recordings.delete(space_id)
        return Response(status_code=204, headers={**NO_STORE, **CORS})

    def recorded_space(request: Request) -> Space:
        """The space a request about its recording names (410 once that was deleted)."""
        space = known_space(request.path_params["space_id"])
        if space.recording_deleted:
            raise gone_error()
        return space

    async def create_clip(request: Request) -> Response:
        """POST /api/spaces/{id}/clips: a person (a listener's ticket, or a session) cuts
        15–60 s, on the node holding the space's files."""
        node = owner_of_path(request)
        if node is not None:
            return await proxy(request, to_node=node)
        space = recorded_space(request)
        person = None
        credential = bearer(request)
        if credential:
            listener = listener_of(space.id, credential)
            if listener is None:
                raise ApiError(401, "ticket_invalid", "That ticket is not valid for this space.")
            person = "t:" + listener
        else:
            held = sessions.verify(cookie_value(request.headers.get("cookie")), time.time())
            if held is not None:
                h = request.headers
                refusal = csrf_refusal(
                    h.get("origin"),
                    h.get("sec-fetch-site"),
                    h.get("content-type"),
                    origin_of(request_base(config, request)),
                )
                if refusal is not None:
                    raise refusal
                if await asyncio.to_thread(db.is_blocked, space.id, held.identity):
                    raise ApiError(403, "blocked", "You are blocked in this space.")
                person = "s:" + held.identity
        if person is None:
            raise ApiError(
                401,
                "identity_required",
                "Clips are cut by people: send your listener ticket as the Bearer token, or "
                "name yourself first (POST /api/session).",
            )
        data = await read_json(request, config.max_body_bytes)
        view = await clips.create(space, person, data, request_base(config, request))
        return JSONResponse(view, status_code=201, headers={**NO_STORE, **CORS})

    async def clip_json(request: Request) -> Response:
        space = recorded_space(request)
        clip = await asyncio.to_thread(clips.read, space.id, request.path_params["clip_id"])
        if clip is None:
            raise not_found(f"Clip {request.path_params['clip_id']!r} of space {space.id!r}")
        view = {**clips.view(clip, request_base(config, request)), "space_title": space.title}
        headers = {"Cache-Control": METADATA_CACHE, **FOLLOWS_HOST, **CORS}
        return JSONResponse(view, headers=headers)

    async def clip_file(request: Request) -> Response:
        space = recorded_space(request)
        clip_id = request.path_params["clip_id"]
        path = await asyncio.to_thread(clips.file, space.id, clip_id)
        if path is None:
            raise not_found(f"Clip {clip_id!r} of space {space.id!r}")
        refusal = unsatisfiable(request.headers.get("range"), path.stat().st_size)
        if refusal is not None:
            raise refusal
        headers = {
            "Cache-Control": RECORDING_CACHE,
            "Content-Disposition": f'inline; filename="ruang-{space.id}-{clip_id}.m4a"',
            **CORS,
        }
        return FileResponse(path, media_type="audio/mp4", headers=headers)

    async def podcast(request: Request) -> Response:
        """GET /podcast.xml[?tag=…]: the public ended spaces as a podcast (RSS 2.0)."""
        body = await feeds.answer(request.query_params.get("tag"), request_base(config, request))
        headers = {"Cache-Control": PodcastFeeds.CACHE, **FOLLOWS_HOST, **CORS}
        return Response(body, media_type="application/rss+xml; charset=utf-8", headers=headers)

    async def space_events(request: Request) -> Response:
        last = request.headers.get("last-event-id") or request.query_params.get("after")
        r = await events.handle(request.path_params["space_id"], last)
        return Response(r.body, status_code=r.status, headers=r.header_dict())

    async def react(request: Request) -> Response:
        body = await read_body(request, 1024)
        space_id = request.path_params["space_id"]
        if remote is not None and from_node(request):  # another node's second of counts
            reactions.add_counts(space_id, body)
            return Response(status_code=204)
        r = reactions.react(space_id, bearer(request), body, time.time())
        return Response(r.body, status_code=r.status, headers={**r.header_dict(), **CORS})

    async def report_reactions() -> None:
        """Hand the last second's reactions to the media processes running their spaces, or,
        with several nodes, to the node running the space (one request per space a second)."""
        counts = reactions.take()
        if not counts:
            return
        per_media: list[dict[str, Any]] = [{} for _ in media.clients]
        for space_id, by_kind in counts.items():
            node = remote.owner(space_id) if remote is not None else None
            if node is not None:
                try:
                    await peers.post(
                        f"{node}/api/spaces/{space_id}/reactions",
                        json={"counts": by_kind},
                        headers={FORWARDED: hop},
                    )
                except httpx.HTTPError as exc:  # a second of reactions is not worth more
                    log.warning("space %s: could not hand reactions to %s: %s", space_id, node, exc)
                continue
            space = find_space(space_id)
            if space is not None and 0 <= space.media < len(per_media):
                per_media[space.media][space_id] = by_kind
        await media.post_all("/internal/reactions", [{"spaces": s} for s in per_media])

    def from_node(request: Request) -> bool:
        """True for a request another node of this deployment forwarded (it proves so with
        the hop value, derived from the shared key)."""
        forwarded = request.headers.get(FORWARDED, "")
        return hmac.compare_digest(forwarded.encode(), hop.encode())

    def source_of(request: Request) -> str:
        """Who asks: the client the guard worked out (the peer, or a trusted edge's client),
        or, for a request another node forwarded, the client that node named. Never an
        address a client wrote itself: only these two are handed on, in X-Forwarded-For."""
        if remote is not None and from_node(request):
            return request.headers.get("x-forwarded-for", "")
        return request.client.host if request.client else ""

    def owner_of_path(request: Request) -> str | None:
        """The node running the space a control request is about, when it is another node."""
        if remote is None or from_node(request):
            return None  # one node, or already forwarded once: handle it here
        m = _OWNED_PATH.match(request.url.path)
        return remote.owner(m.group(1)) if m else None

    def media_of_path(request: Request) -> int:
        """The media process of this node running the space the request is about (0 for
        requests about no known space: it answers them, with a 404 where fitting)."""
        m = _OWNED_PATH.match(request.url.path)
        space = find_space(m.group(1)) if m else None
        return space.media if space is not None else 0

    async def create_space(request: Request) -> Response:
        """A new space goes to the least-loaded node (several nodes), then to its least-loaded
        media process with room for a full stage; 503 when there is none. The creation caps
        are checked on the node that creates it, before any of its media processes hears of
        it: a flood of creations costs the mixers nothing (the chosen process checks again as
        it creates, against races)."""
        if remote is not None and not from_node(request):
            node = choose_node(await asyncio.to_thread(db.node_loads), config.node)
            if node is not None and node != config.node:
                return await proxy(request, to_node=node)  # which checks the caps
        await asyncio.to_thread(creation.admit, bearer(request), source_of(request))
        return await proxy(request, await media.place())

    async def proxy(
        request: Request, to_media: int | None = None, to_node: str | None = None
    ) -> Response:
        # stripped: a value with trailing blanks ("Bearer ") cannot be written out again
        headers = {k: v.strip() for k, v in request.headers.items() if k in _PROXY_HEADERS}
        headers["x-forwarded-for"] = source_of(request)
        headers["x-forwarded-host"] = request.headers.get("host", "")  # links follow it
        node = to_node or owner_of_path(request)
        path = quote(request.url.path, safe="/")  # whatever the client sent, a valid URL
        try:
            if node is not None:  # the space runs on another node: its media process decides
                headers[FORWARDED] = hop
                upstream = await peers.request(
                    request.method,
                    node + path,
                    params=request.query_params,
                    headers=headers,
                    content=request.stream(),
                )
            else:
                control = media.client(media_of_path(request) if to_media is None else to_media)
                upstream = await control.request(
                    request.method,
                    path,
                    params=request.query_params,
                    headers=headers,
                    content=request.stream(),
                )
        except (httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            # the client's request cannot even be written out again (e.g. control characters
            # in a header): its fault, not the media process's
            return error_response(ApiError(400, "bad_request", f"Unusable request: {exc}"))
        except httpx.HTTPError:
            return error_response(media_unavailable())
        if request.method != "GET":  # it may have changed the space: read it afresh next
            m = _OWNED_PATH.match(request.url.path)
            if m:
                spaces.pop(m.group(1), None)
                if node is None and upstream.status_code == 200 and _END_PATH.match(path):
                    # ended here: make its recording now, so that feeds list it at once
                    soon(make_recording(m.group(1)))
        back = {k: v for k, v in upstream.headers.items() if k in _PROXY_BACK}
        return Response(
            upstream.content, status_code=upstream.status_code, headers={**back, **CORS}
        )

    async def metrics(request: Request) -> Response:
        """Every media process's figures in one exposition, with the supervisor's."""
        answers = await media.gather("/metrics")
        up = GaugeMetricFamily(
            "ruang_media_up", "1 if a media process answered this scrape", labels=["media"]
        )
        for index, answer in enumerate(answers):
            up.add_metric([str(index)], float(answer is not None and answer.status_code == 200))
        extra: list[Metric] = [up]
        status = supervisor_status(config)
        if status is not None:
            restarts = CounterMetricFamily(
                "ruang_process_restarts",
                "Processes the supervisor restarted after they died",
                labels=["kind"],
            )
            for kind, n in dict(status.get("restarts", {})).items():
                restarts.add_metric([str(kind)], float(n))
            extra.append(restarts)
        texts = [a.text for a in answers if a is not None and a.status_code == 200]
        body = await asyncio.to_thread(merge_expositions, texts, extra)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=NO_STORE)

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI, headers={"Cache-Control": "public, max-age=300"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await media.aclose()
        await peers.aclose()
        if remote is not None:
            await remote.aclose()
        db.close()

    s = "/api/spaces/{space_id}"
    app = Starlette(
        routes=[
            Route("/hls/{space_id}/recording.m4a", recording, methods=["GET", "HEAD"]),
            Route("/hls/{space_id}/t/{ticket}/{name}", hls, methods=["GET", "HEAD"]),
            Route("/hls/{space_id}/{name}", hls, methods=["GET", "HEAD"]),
            Route("/", page("index.html")),
            Route("/s/{space_id}", page("listen.html")),
            Route("/s/{space_id}/replay", page("replay.html")),
            Route("/s/{space_id}/clips/{clip_id}", page("clip.html")),
            Route("/s/{space_id}/host", page("studio.html")),
            Route("/s/{space_id}/speak", page("studio.html")),
            Mount("/static", StaticFiles(directory=STATIC)),
            Route("/podcast.xml", podcast, methods=["GET", "HEAD"]),
            Route("/healthz", healthz),
            Route("/openapi.json", openapi),
            Route("/metrics", metrics),
            Route(s, get_space, methods=["GET"]),
            Route(s + "/join", join, methods=["POST"]),
            Route(s + "/calendar.ics", calendar, methods=["GET", "HEAD"]),
            Route(s + "/timeline", space_timeline, methods=["GET", "HEAD"]),
            Route(s + "/captions.vtt", captions, methods=["GET", "HEAD"]),
            Route(s + "/events", space_events, methods=["GET"]),
            Route(s + "/reactions", react, methods=["POST"]),
            Route(s + "/recording", delete_recording, methods=["DELETE"]),
            Route(s + "/clips", create_clip, methods=["POST"]),
            Route(s + "/clips/{clip_id}.m4a", clip_file, methods=["GET", "HEAD"]),
            Route(s + "/clips/{clip_id}", clip_json, methods=["GET"]),
            Route("/api/spaces", create_space, methods=["POST"]),
            Route("/api/{path:path}", proxy, methods=["GET", "POST", "DELETE", "PATCH"]),
            Route("/whip/{path:path}", proxy, methods=["POST", "DELETE", "PATCH"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(Preflight)],
        lifespan=lifespan,
    )

    shared_audience = backends.shared_audience()
    if shared_audience is not None:
        gate.admission.audience.fresh = {}  # keep new listener ids for the shared HyperLogLog

    async def report_audience() -> None:
        """Tell the media process what this worker sees (it adds up every worker), and with
        several nodes add it to the shared figures the node running each space reads."""
        now = time.time()
        report = gate.admission.audience.report(now)
        if shared_audience is not None:
            fresh = gate.admission.audience.drain()
            try:
                await asyncio.to_thread(
                    shared_audience.publish, str(os.getpid()), report, fresh, now
                )
            except Exception as exc:  # figures are not worth failing a worker for
                log.warning("could not share the audience: %s", exc)
        load = {
            "level": shedder.level,
            "shed": {p.name.lower(): n for p, n in shedder.shed.items()},
            "guard": guard.statistics(),
        }
        # each media process hears of its own spaces' listeners, and every one of the load
        per_media: list[dict[str, Any]] = [{} for _ in media.clients]
        for space_id, figures in report.items():
            space = find_space(space_id)
            if space is not None and 0 <= space.media < len(per_media):
                per_media[space.media][space_id] = figures
        bodies = [{"worker": str(os.getpid()), "spaces": s, "load": load} for s in per_media]
        await media.post_all("/internal/audience", bodies)

    app.state.events = backends.space_events(space_changed)
    app.state.hls = hls_service
    app.state.joins = joins
    app.state.guard = guard
    app.state.shedder = shedder
    app.state.report_audience = report_audience
    app.state.report_reactions = report_reactions
    return app
