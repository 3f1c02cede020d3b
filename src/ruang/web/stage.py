"""The control API's routes for sessions, requests to speak and moderation (issue #9).

Two kinds of credentials, never mixed in one call: a stage token (`Authorization: Bearer`,
the host's, a co-host's or a speaker's) for everything done from the stage, and the session
cookie (a display name) for what a listener does: ask to speak, see their standing. Bearer
calls cannot be forged cross-site (a browser never adds the header by itself); cookie calls
that change anything pass `csrf_refusal` first. Every rule is `ruang.spaces.permissions`'.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ruang.errors import ApiError, bad_request
from ruang.guard.sessions import (
    COOKIE,
    Session,
    SessionSigner,
    cookie_value,
    csrf_refusal,
    origin_of,
)
from ruang.live.studio import Studio
from ruang.spaces.model import Role, clean_name
from ruang.spaces.permissions import Action
from ruang.web.common import (
    CORS,
    NO_STORE,
    bearer,
    forwarded_base,
    member_view,
    read_json,
    space_urls,
)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={**NO_STORE, **CORS, **(headers or {})})


def session_of(signer: SessionSigner, request: Request) -> Session | None:
    """The caller's session, if their cookie holds a good one."""
    return signer.verify(cookie_value(request.headers.get("cookie")), time.time())


def stage_routes(studio: Studio, signer: SessionSigner) -> list[Route]:
    """The routes, bound to a running Studio and the deployment's session signer."""
    config = studio.config
    limit = config.max_body_bytes
    moderation = studio.moderation

    def whip_url(request: Request, space_id: str) -> str:
        return space_urls(config, space_id, forwarded_base(config, request))["whip_url"]

    def not_forged(request: Request) -> None:
        """Refuse a cookie-authenticated write that another site could have sent."""
        h = request.headers
        refusal = csrf_refusal(
            h.get("origin"),
            h.get("sec-fetch-site"),
            h.get("content-type"),
            origin_of(forwarded_base(config, request)),  # the page's own origin, as linked
        )
        if refusal is not None:
            raise refusal

    def name_in(data: dict[str, Any]) -> str:
        try:
            name = clean_name(data.get("name"), "")
        except ValueError as exc:
            raise ApiError(422, "invalid_field", str(exc)) from None
        if not name:
            raise ApiError(422, "invalid_field", "name must not be empty.")
        return name

    # -- the session (a display name) --------------------------------------------------------
    async def open_session(request: Request) -> Response:
        not_forged(request)
        name = name_in(await read_json(request, limit))
        held = session_of(signer, request)  # renaming keeps the identity
        value = signer.issue(name, time.time(), held.identity if held else None)
        return _json({"name": name}, 201, {"Set-Cookie": signer.cookie(value)})

    async def show_session(request: Request) -> Response:
        held = session_of(signer, request)
        if held is None:
            raise ApiError(404, "no_session", "You have no session: choose a display name.")
        return _json({"name": held.name})

    async def close_session(request: Request) -> Response:
        not_forged(request)
        return Response(status_code=204, headers={**NO_STORE, "Set-Cookie": signer.cleared()})

    # -- a listener's standing and requests to speak ---------------------------------------
    async def me(request: Request) -> Response:
        """The caller's role in the space, their request to speak, and once approved their
        stage credentials (only ever to their own session)."""
        space_id = request.path_params["space_id"]
        held = session_of(signer, request)
        token = bearer(request)
        actor, seat = await moderation.caller(space_id, token, held, by_session=True)
        body: dict[str, Any] = {"role": actor.value, "name": held.name if held else None}
        if seat is not None:
            body["you"] = member_view(seat)
        if held is not None and not token:
            db = studio.db
            body["blocked"] = await studio.off_loop(db.is_blocked, space_id, held.identity)
            asked = moderation.mine(space_id, held.identity)
            body["request"] = None if asked is None else asked.view()
            if (
                asked is not None
                and asked.token
                and seat is not None
                and seat.id == asked.speaker_id
            ):
                body["token"] = asked.token
                body["whip_url"] = whip_url(request, space_id)
        return _json(body)

    async def ask(request: Request) -> Response:
        not_forged(request)
        await read_json(request, limit)
        space_id = request.path_params["space_id"]
        asked, new = await moderation.ask(space_id, session_of(signer, request), bearer(request))
        return _json(asked.view(), 201 if new else 200)

    async def withdraw(request: Request) -> Response:
        not_forged(request)
        await moderation.withdraw(request.path_params["space_id"], session_of(signer, request))
        return Response(status_code=204, headers={**NO_STORE, **CORS})

    async def list_requests(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        await moderation.allowed(
            space_id, bearer(request), Action.LIST_REQUESTS, session_of(signer, request)
        )
        return _json({"requests": [r.view() for r in moderation.pending(space_id)]})

    async def answer(request: Request) -> Response:
        p = request.path_params
        space_id, verdict = p["space_id"], p["verdict"]
        action = {"approve": Action.APPROVE, "deny": Action.DENY}.get(verdict)
        if action is None:
            raise ApiError(404, "not_found", f"Requests are approved or denied, not {verdict}.")
        await moderation.allowed(space_id, bearer(request), action, session_of(signer, request))
        if action is Action.APPROVE:
            done = await moderation.approve(space_id, p["request_id"])
        else:
            done = await moderation.deny(space_id, p["request_id"])
        return _json({**done.view(), "speaker": done.speaker_id or None})

    # -- the stage ---------------------------------------------------------------------------
    async def invite(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        await moderation.allowed(
            space_id, bearer(request), Action.INVITE, session_of(signer, request)
        )
        data = await read_json(request, limit)
        try:
            name = clean_name(data.get("name"), "Speaker")
        except ValueError as exc:
            raise ApiError(422, "invalid_field", str(exc)) from None
        speaker, token = await studio.invite(space_id, name)
        body = {
            **member_view(speaker),
            "token": token,
            "whip_url": whip_url(request, space_id),
            "invite_url": f"{forwarded_base(config, request)}/s/{space_id}/speak#token={token}",
        }
        return _json(body, 201)

    async def mute(request: Request) -> Response:
        space_id, target_id = request.path_params["space_id"], request.path_params["speaker_id"]
        data = await read_json(request, limit)
        muted = data.get("muted", True)
        if not isinstance(muted, bool):
            raise ApiError(422, "invalid_field", "muted must be true or false.")
        token = bearer(request)
        held = session_of(signer, request)
        actor, caller = await moderation.caller(space_id, token, held)
        if caller is not None and caller.id == target_id:
            action = Action.MUTE_SELF if muted else Action.UNMUTE_SELF
            await moderation.allowed(space_id, token, action, held)
        else:
            action = Action.MUTE_OTHER if muted else Action.UNMUTE_OTHER
            await moderation.allowed(space_id, token, action, held, target_id=target_id)
        return _json(member_view(await studio.set_muted(space_id, target_id, muted)))

    async def mute_all(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        caller, _ = await moderation.allowed(
            space_id, bearer(request), Action.MUTE_ALL, session_of(signer, request)
        )
        assert caller is not None
        return _json({"muted": await moderation.mute_all(space_id, caller)})

    def off_stage(action: Action) -> Any:
        async def endpoint(request: Request) -> Response:
            p = request.path_params
            _, target = await moderation.allowed(
                p["space_id"],
                bearer(request),
                action,
                session_of(signer, request),
                target_id=p["speaker_id"],
            )
            assert target is not None
            await moderation.off_stage(p["space_id"], target, action)
            outcome = {Action.TO_AUDIENCE: "audience", Action.REMOVE: "removed"}
            return _json({outcome.get(action, "blocked"): True, "id": target.id})

        return endpoint

    async def set_role(request: Request) -> Response:
        p = request.path_params
        data = await read_json(request, limit)
        role = {"cohost": Role.COHOST, "speaker": Role.SPEAKER}.get(str(data.get("role")))
        if role is None:
            raise ApiError(422, "invalid_field", "role must be cohost or speaker.")
        action = Action.MAKE_COHOST if role is Role.COHOST else Action.MAKE_SPEAKER
        _, target = await moderation.allowed(
            p["space_id"],
            bearer(request),
            action,
            session_of(signer, request),
            target_id=p["speaker_id"],
        )
        assert target is not None
        return _json(member_view(await moderation.set_role(p["space_id"], target, role)))

    async def hand_over(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        data = await read_json(request, limit)
        target_id = data.get("speaker")
        if not isinstance(target_id, str):
            raise bad_request("invalid_field", "speaker must be the id of a co-host.")
        caller, target = await moderation.allowed(
            space_id,
            bearer(request),
            Action.HAND_OVER,
            session_of(signer, request),
            target_id=target_id,
        )
        assert caller is not None and target is not None
        return _json(member_view(await moderation.hand_over(space_id, caller, target)))

    async def rename(request: Request) -> Response:
        space_id = request.path_params["space_id"]
        caller, _ = await moderation.allowed(
            space_id, bearer(request), Action.RENAME_SELF, session_of(signer, request)
        )
        name = name_in(await read_json(request, limit))
        assert caller is not None
        return _json(member_view(await moderation.rename(space_id, caller, name)))

    to_audience = off_stage(Action.TO_AUDIENCE)
    s = "/api/spaces/{space_id}"
    return [
        Route("/api/session", open_session, methods=["POST"]),
        Route("/api/session", show_session, methods=["GET"]),
        Route("/api/session", close_session, methods=["DELETE"]),
        Route(s + "/me", me, methods=["GET"]),
        Route(s + "/me", rename, methods=["PATCH"]),
        Route(s + "/requests", ask, methods=["POST"]),
        Route(s + "/requests", list_requests, methods=["GET"]),
        Route(s + "/requests/mine", withdraw, methods=["DELETE"]),
        Route(s + "/requests/{request_id}/{verdict}", answer, methods=["POST"]),
        Route(s + "/speakers", invite, methods=["POST"]),
        Route(s + "/mute-all", mute_all, methods=["POST"]),
        Route(s + "/host", hand_over, methods=["POST"]),
        Route(s + "/speakers/{speaker_id}/mute", mute, methods=["POST"]),
        Route(s + "/speakers/{speaker_id}/audience", to_audience, methods=["POST"]),
        Route(s + "/speakers/{speaker_id}/block", off_stage(Action.BLOCK), methods=["POST"]),
        Route(s + "/speakers/{speaker_id}/role", set_role, methods=["POST"]),
        Route(s + "/speakers/{speaker_id}", off_stage(Action.REMOVE), methods=["DELETE"]),
    ]


__all__ = ["COOKIE", "stage_routes"]
