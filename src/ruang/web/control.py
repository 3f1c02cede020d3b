"""The control API, served by the media process on a Unix socket (the public port proxies it).

Everything that changes a space or puts someone on stage goes through here, so the media
pipeline and the session state live in one process, apart from listener traffic.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ruang.delivery.guard import summarize
from ruang.errors import ApiError, bad_request
from ruang.forensics import build_report, render_html
from ruang.forensics.report import load as load_evidence
from ruang.guard.sessions import SessionSigner
from ruang.guard.tickets import load_or_create_key
from ruang.live.studio import Studio
from ruang.rtc.whip import SDP_MAX_BYTES
from ruang.spaces.model import (
    Role,
    clean_tags,
    clean_title,
    iso,
    parse_starts_at,
    parse_visibility,
    utc,
)
from ruang.spaces.permissions import Action
from ruang.web.common import (
    CORS,
    EXCEPTION_HANDLERS,
    NO_STORE,
    bearer,
    forwarded_base,
    read_body,
    read_json,
    space_view,
)
from ruang.web.stage import session_of, stage_routes


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={**NO_STORE, **CORS, **(headers or {})})


def _source(request: Request) -> str:
    """The client's address as the delivery worker names it: it sets X-Forwarded-For itself,
    from the connection or a trusted edge's header, and never passes a client's own on (the
    control socket is reachable from this machine only)."""
    forwarded = request.headers.get("x-forwarded-for")
    return forwarded or (request.client.host if request.client else "")


def build_control_app(studio: Studio) -> Starlette:
    """The Starlette app of the control API bound to a running Studio."""
    config = studio.config
    db = studio.db
    limit = config.max_body_bytes
    key = load_or_create_key(config.ticket_key_path, config.ticket_key)
    sessions = SessionSigner(key, secure=config.base_url.startswith("https://"))

    async def create_space(request: Request) -> Response:
        data = await read_json(request, limit)
        try:
            title = clean_title(data.get("title"))
            starts_at = parse_starts_at(data.get("starts_at"))
            tags = clean_tags(data.get("tags"))
            listed = parse_visibility(data.get("visibility"))
        except ValueError as exc:
            raise ApiError(422, "invalid_field", str(exc)) from None
        key, source = bearer(request), _source(request)
        space, token = await studio.create_space(title, starts_at, key, source, tags, listed)
        base = forwarded_base(config, request)
        view = await studio.off_loop(space_view, config, db, space, None, base)
        view["host_token"] = token
        view["host_url"] = f"{base}/s/{space.id}/host#token={token}"
        return _json(view, 201, {"Location": f"/api/spaces/{space.id}"})

    async def get_space(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        space = await studio.space(space_id)
        token = bearer(request)
        viewer = await studio.member(space_id, token) if token else None
        view = await studio.off_loop(
            space_view, config, db, space, viewer, forwarded_base(config, request)
        )
        if viewer is not None and viewer.role is Role.HOST:
            ends_at = studio.reaper.ends_at(space, time.time())
            view["auto_end_at"] = None if ends_at is None else iso(utc(ends_at))
            view["listeners"] = studio.audience.snapshot(space_id, time.time())
            view["guard"] = summarize([w.get("guard", {}) for w in studio.worker_load.values()])
        return _json(view)

    async def start_space(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        await studio.moderation.allowed(
            space_id, bearer(request), Action.START, session_of(sessions, request)
        )
        return _json(
            await studio.off_loop(
                space_view,
                config,
                db,
                await studio.start_space(space_id),
                None,
                forwarded_base(config, request),
            )
        )

    reporting = asyncio.Lock()

    async def incident_report(request: Request) -> Response:
        """The host's incident report for this space (docs/FORENSICS.md): the same verdicts,
        series and chain heads as `ruang report --space ID`, as HTML or, with ?format=json,
        JSON."""
        space_id = request.path_params["space_id"]
        await studio.host(space_id, bearer(request))
        space = await studio.space(space_id)
        since = space.created_at.timestamp()

        def build() -> dict[str, Any]:
            checked = load_evidence([config.data_dir])
            return build_report(
                checked.records,
                space=space_id,
                since=since,
                chains=[c.as_dict() for c in checked.chains],
                problems=checked.problems,
            )

        # Reading and checking every chain is CPU work beside this process's mixers: one
        # report at a time, and a clear 429 for the next while one is being built.
        if reporting.locked():
            raise ApiError(
                429,
                "report_busy",
                "An incident report is being built on this server; try again in a few seconds.",
                {"Retry-After": "5"},
            )
        async with reporting:
            report = await asyncio.to_thread(build)
            if request.query_params.get("format") == "json":
                return _json(report)
            html = await asyncio.to_thread(render_html, report)
        return HTMLResponse(html, headers={**NO_STORE, **CORS})

    async def end_space(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        await studio.moderation.allowed(
            space_id, bearer(request), Action.END, session_of(sessions, request)
        )
        return _json(
            await studio.off_loop(
                space_view,
                config,
                db,
                await studio.end_space(space_id),
                None,
                forwarded_base(config, request),
            )
        )

    async def whip_publish(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        await studio.member(space_id, bearer(request))  # refuse before reading the body
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/sdp":
            raise ApiError(
                415,
                "unsupported_media_type",
                f"WHIP offers are application/sdp, not {ctype or 'nothing'}.",
            )
        body = await read_body(request, SDP_MAX_BYTES)
        try:
            offer = body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request("malformed_sdp", "The SDP offer is not UTF-8 text.") from None
        take_over = request.query_params.get("take_over") in ("1", "true")
        session = await studio.publish(space_id, bearer(request), offer, take_over)
        location = f"/whip/{space_id}/sessions/{session.id}"
        return Response(
            session.answer,
            status_code=201,
            media_type="application/sdp",
            headers={**NO_STORE, **CORS, "Location": location},
        )

    async def whip_delete(request: Request) -> Response:
        p = request.path_params
        await studio.unpublish(p["space_id"], p["session_id"], bearer(request))
        return Response(status_code=200, headers={**NO_STORE, **CORS})

    async def audience_report(request: Request) -> Response:
        # Only delivery workers reach this: the public port never proxies /internal/.
        data = await read_json(request, 4 * 1024 * 1024)
        spaces = data.get("spaces")
        if not isinstance(spaces, dict):
            raise ApiError(422, "invalid_field", "spaces must be an object.")
        worker = str(data.get("worker", "?"))
        studio.audience.ingest(worker, spaces, time.time())
        load = data.get("load")
        if isinstance(load, dict):
            studio.worker_load[worker] = load
        return Response(status_code=204)

    async def reactions_report(request: Request) -> Response:
        # Only delivery workers reach this: their last second's reactions, per space and kind.
        data = await read_json(request, 1024 * 1024)
        spaces = data.get("spaces")
        if not isinstance(spaces, dict):
            raise ApiError(422, "invalid_field", "spaces must be an object.")
        for space_id, counts in spaces.items():
            if space_id in studio.pipelines and isinstance(counts, dict):
                studio.feed.reactions.add(space_id, counts)
        return Response(status_code=204)

    async def load(request: Request) -> Response:
        # Only delivery workers reach this: where to place a new space.
        return _json(studio.statistics())

    async def whip_patch(request: Request) -> Response:
        raise ApiError(
            405,
            "trickle_not_supported",
            "This server does not take trickled candidates; gather them all first.",
            {"Allow": "POST, DELETE, OPTIONS"},
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    s = "/api/spaces/{space_id}"
    return Starlette(
        routes=[
            Route("/api/spaces", create_space, methods=["POST"]),
            Route(s, get_space, methods=["GET"]),
            Route(s + "/start", start_space, methods=["POST"]),
            Route(s + "/end", end_space, methods=["POST"]),
            Route(s + "/report", incident_report, methods=["GET"]),
            *stage_routes(studio, sessions),
            Route("/internal/audience", audience_report, methods=["POST"]),
            Route("/internal/load", load, methods=["GET"]),
            Route("/internal/reactions", reactions_report, methods=["POST"]),
            Route("/whip/{space_id}", whip_publish, methods=["POST"]),
            Route("/whip/{space_id}/sessions/{session_id}", whip_delete, methods=["DELETE"]),
            Route("/whip/{space_id}/sessions/{session_id}", whip_patch, methods=["PATCH"]),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
